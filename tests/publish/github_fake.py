"""A loopback fake of the GitHub REST API routes ``verifier publish`` uses, and a git smart-
HTTP server that demands the token, both on 127.0.0.1 in a thread.

The API fake follows GitHub's documented shapes (docs.github.com/en/rest: issue comments,
commit statuses, pagination, rate limits, errors) and is strict: every request must carry
``Authorization: Bearer <token>``, ``Accept: application/vnd.github+json``,
``X-GitHub-Api-Version: 2022-11-28`` and a User-Agent, and a JSON body of the documented
fields and types. A request that breaks a rule gets GitHub's answer for it (401, 400, 422)
and is recorded in ``problems``, so a test can assert that there were none.
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

API_VERSION = "2022-11-28"
DOCS = "https://docs.github.com/rest"
BODY_LIMIT = 65_536
STATES = ("error", "failure", "pending", "success")
_COMMENTS = re.compile(r"/repos/([^/]+)/([^/]+)/issues/(\d+)/comments")
_COMMENT = re.compile(r"/repos/([^/]+)/([^/]+)/issues/comments/(\d+)")
_STATUS = re.compile(r"/repos/([^/]+)/([^/]+)/statuses/([^/]+)")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Failure:
    """An answer to give instead of the real one, ``times`` times, to matching requests."""

    method: str
    path: re.Pattern[str]
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


class FakeGitHub:
    """GitHub's API for one token; ``pulls`` says which ``owner/repo`` has which PRs."""

    def __init__(self, *, token: str, pulls: dict[str, set[int]]) -> None:
        self.token = token
        self.pulls = pulls
        self.comments: dict[int, dict[str, Any]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.requests: list[Recorded] = []
        self.problems: list[str] = []
        self.failures: list[Failure] = []
        self._next_id = 1_500_000_001
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- test-side API --------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}"

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        body: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        self.failures.append(
            Failure(method, re.compile(path), status, body, dict(headers or {}), times)
        )

    def add_comment(
        self, repo: str, number: int, body: str, *, login: str = "octocat", association: str = ""
    ) -> int:
        with self._lock:
            made = self._store(repo, number, body, login)
            made["author_association"] = association or made["author_association"]
            return int(made["id"])

    def comments_on(self, repo: str, number: int) -> list[dict[str, Any]]:
        return [c for c in self.comments.values() if c["_where"] == (repo, number)]

    def __enter__(self) -> FakeGitHub:
        outer = self

        class Handler(_Handler):
            fake = outer

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # -- GitHub's behaviour ---------------------------------------------------------------

    def _user(self, login: str) -> dict[str, Any]:
        bot = login.endswith("[bot]")
        return {
            "login": login,
            "id": 41898282 if bot else 583231,
            "node_id": "MDM6Qm90NDE4OTgyODI=" if bot else "MDQ6VXNlcjU4MzIzMQ==",
            "avatar_url": "https://avatars.githubusercontent.com/in/15368?v=4",
            "url": f"https://api.github.com/users/{login}",
            "html_url": f"https://github.com/{login}",
            "type": "Bot" if bot else "User",
            "site_admin": False,
        }

    def _store(self, repo: str, number: int, body: str, login: str) -> dict[str, Any]:
        cid = self._next_id
        self._next_id += 1
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        comment = {
            "id": cid,
            "node_id": "IC_kwDO" + base64.b64encode(str(cid).encode()).decode().rstrip("="),
            "url": f"https://api.github.com/repos/{repo}/issues/comments/{cid}",
            "html_url": f"https://github.com/{repo}/pull/{number}#issuecomment-{cid}",
            "issue_url": f"https://api.github.com/repos/{repo}/issues/{number}",
            "body": body,
            "user": self._user(login),
            "created_at": now,
            "updated_at": now,
            "author_association": "NONE" if login.endswith("[bot]") else "MEMBER",
            "performed_via_github_app": None,
            "_where": (repo, number),
        }
        self.comments[cid] = comment
        return comment

    @staticmethod
    def public(comment: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in comment.items() if not k.startswith("_")}


def _error(status: int, message: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    return status, {"message": message, "documentation_url": DOCS, "status": str(status), **extra}


def _invalid(resource: str, field_name: str, code: str, message: str) -> tuple[int, Any]:
    error = {"resource": resource, "field": field_name, "code": code, "message": message}
    return _error(422, "Validation Failed", errors=[error])


class _Handler(http.server.BaseHTTPRequestHandler):
    fake: FakeGitHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.fake
        split = urlsplit(self.path)
        query = parse_qs(split.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = ...
        with fake._lock:
            fake.requests.append(Recorded(self.command, split.path, query, headers, body))
            status, payload, extra = self._answer(split.path, query, headers, raw, body)
        self._send(status, payload, extra)

    def _problem(self, text: str) -> None:
        self.fake.problems.append(f"{self.command} {self.path}: {text}")

    def _answer(
        self, path: str, query: dict[str, list[str]], headers: dict[str, str], raw: bytes, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        fake = self.fake
        if headers.get("authorization") != f"Bearer {fake.token}":
            self._problem("bad or missing Authorization")
            return (*_error(401, "Bad credentials"), {})
        if headers.get("accept") != "application/vnd.github+json":
            self._problem(f"Accept is {headers.get('accept')!r}")
        if headers.get("x-github-api-version") != API_VERSION:
            self._problem(f"X-GitHub-Api-Version is {headers.get('x-github-api-version')!r}")
            return (*_error(400, "Unsupported API version"), {})
        if not headers.get("user-agent"):
            self._problem("no User-Agent")
            return (*_error(403, "Request forbidden by administrative rules."), {})
        for failure in fake.failures:
            if failure.times > 0 and failure.method == self.command and failure.path.search(path):
                failure.times -= 1
                return failure.status, failure.body, failure.headers
        if self.command in ("POST", "PATCH"):
            if not headers.get("content-type", "").startswith("application/json"):
                self._problem(f"Content-Type is {headers.get('content-type')!r}")
            if body is ... or not isinstance(body, dict):
                self._problem(f"body is not a JSON object: {raw[:100]!r}")
                return (*_error(400, "Problems parsing JSON"), {})
        if m := _COMMENTS.fullmatch(path):
            repo, number = f"{m[1]}/{m[2]}", int(m[3])
            if number not in fake.pulls.get(repo, set()):
                return (*_error(404, "Not Found"), {})
            if self.command == "GET":
                return self._list(repo, number, query)
            if self.command == "POST":
                if problem := self._check_comment(body):
                    return (*problem, {})
                made = fake._store(repo, number, body["body"], "github-actions[bot]")
                return 201, fake.public(made), {"Location": made["url"]}
        if (m := _COMMENT.fullmatch(path)) and self.command == "PATCH":
            comment = fake.comments.get(int(m[3]))
            if comment is None or comment["_where"][0] != f"{m[1]}/{m[2]}":
                return (*_error(404, "Not Found"), {})
            if problem := self._check_comment(body):
                return (*problem, {})
            comment["body"] = body["body"]
            comment["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            return 200, fake.public(comment), {}
        if (m := _STATUS.fullmatch(path)) and self.command == "POST":
            return (*self._status(f"{m[1]}/{m[2]}", m[3], body), {})
        self._problem("no such route")
        return (*_error(404, "Not Found"), {})

    def _check_comment(self, body: dict[str, Any]) -> tuple[int, Any] | None:
        if set(body) - {"body"}:
            self._problem(f"unknown comment fields {sorted(set(body) - {'body'})}")
        text = body.get("body")
        if not isinstance(text, str):
            self._problem(f"comment body is {type(text).__name__}")
            return _invalid("IssueComment", "body", "missing_field", "body is required")
        if len(text) > BODY_LIMIT:
            self._problem(f"comment body is {len(text)} characters")
            return _invalid(
                "IssueComment", "body", "custom", "body is too long (maximum is 65536 characters)"
            )
        return None

    def _list(self, repo: str, number: int, query: dict[str, list[str]]) -> tuple[int, Any, Any]:
        per_page = min(int(query.get("per_page", ["30"])[0]), 100)
        page = int(query.get("page", ["1"])[0])
        items = self.fake.comments_on(repo, number)
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        base = f"{self.fake.url}/repos/{repo}/issues/{number}/comments"

        def link(n: int, rel: str) -> str:
            return f'<{base}?{urlencode({"per_page": per_page, "page": n})}>; rel="{rel}"'

        rels = []
        if page > 1:
            rels += [link(page - 1, "prev"), link(1, "first")]
        if page < last:
            rels += [link(page + 1, "next"), link(last, "last")]
        headers = {"Link": ", ".join(rels)} if rels else {}
        return 200, [self.fake.public(c) for c in chunk], headers

    def _status(self, repo: str, sha: str, body: dict[str, Any]) -> tuple[int, Any]:
        allowed = {"state", "target_url", "description", "context"}
        if set(body) - allowed:
            self._problem(f"unknown status fields {sorted(set(body) - allowed)}")
        if repo not in self.fake.pulls:
            return _error(404, "Not Found")
        if not re.fullmatch(r"[0-9a-f]{40}", sha):
            self._problem(f"status sha {sha!r}")
            return _error(422, f"No commit found for SHA: {sha}")
        state = body.get("state")
        if state not in STATES:
            self._problem(f"status state {state!r}")
            return _invalid("Status", "state", "invalid", "state is not included in the list")
        for key in ("target_url", "description", "context"):
            if key in body and body[key] is not None and not isinstance(body[key], str):
                self._problem(f"status {key} is {type(body[key]).__name__}")
                return _invalid("Status", key, "invalid", f"{key} is not a string")
        description = body.get("description") or ""
        if len(description) > 140:
            self._problem(f"status description is {len(description)} characters")
            return _invalid("Status", "description", "custom", "description is too long")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        sid = 20_000_000_000 + len(self.fake.statuses)
        status = {
            "url": f"https://api.github.com/repos/{repo}/statuses/{sha}",
            "avatar_url": "https://avatars.githubusercontent.com/in/15368?v=4",
            "id": sid,
            "node_id": "SC_kwDO" + base64.b64encode(str(sid).encode()).decode().rstrip("="),
            "state": state,
            "description": body.get("description"),
            "target_url": body.get("target_url"),
            "context": body.get("context") or "default",
            "created_at": now,
            "updated_at": now,
            "creator": self.fake._user("github-actions[bot]"),
            "_sha": sha,
            "_repo": repo,
        }
        self.fake.statuses.append(status)
        return 201, {k: v for k, v in status.items() if not k.startswith("_")}

    def _send(self, status: int, payload: Any, extra: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-GitHub-Api-Version-Selected", API_VERSION)
        self.send_header("X-RateLimit-Limit", "5000")
        self.send_header("X-RateLimit-Resource", "core")
        for key, value in extra.items():
            self.send_header(key, value)
        if "X-RateLimit-Remaining" not in extra:
            self.send_header("X-RateLimit-Remaining", "4999")
            self.send_header("X-RateLimit-Reset", str(int(time.time()) + 3600))
        self.end_headers()
        self.wfile.write(data)


# -- git over smart HTTP ---------------------------------------------------------------------


class GitHttp:
    """``git http-backend`` behind Basic auth: ``x-access-token`` and the token, nothing else.

    Repositories are the bare repositories under ``root``; ``auth_seen`` records every
    Authorization header the server got (None when a request had none).
    """

    BACKEND = "/usr/lib/git-core/git-http-backend"

    def __init__(self, root: Path, *, token: str) -> None:
        self.root = root
        self.token = token
        self.auth_seen: list[str | None] = []
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> GitHttp:
        outer = self

        class Handler(_GitHandler):
            git = outer

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class _GitHandler(http.server.BaseHTTPRequestHandler):
    git: GitHttp
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _cgi(self) -> None:
        auth = self.headers.get("Authorization")
        self.git.auth_seen.append(auth)
        wanted = base64.b64encode(f"x-access-token:{self.git.token}".encode()).decode()
        if auth != f"Basic {wanted}":
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="fake"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        split = urlsplit(self.path)
        env = {
            "PATH": "/usr/bin:/bin",
            "GIT_PROJECT_ROOT": str(self.git.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": "x-access-token",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": split.path,
            "QUERY_STRING": split.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.0",
            "REMOTE_ADDR": "127.0.0.1",
        }
        for name in ("Content-Encoding", "Git-Protocol"):
            if self.headers.get(name):
                env["HTTP_" + name.upper().replace("-", "_")] = self.headers[name]
        body = self._body()
        env["CONTENT_LENGTH"] = str(len(body))
        done = subprocess.run(
            [self.git.BACKEND], input=body, capture_output=True, env=env, check=False, timeout=60
        )
        head, found, payload = done.stdout.partition(b"\r\n\r\n")
        if not found:
            head, found, payload = done.stdout.partition(b"\n\n")
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
