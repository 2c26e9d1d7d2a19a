"""The few GitHub REST API calls publishing needs, over httpx.

Every failure becomes one PublishError line that says what was asked, what GitHub said and
what to do; the token is masked out of it. A rate limit whose reset is near is waited out
once; anything longer fails at once rather than hold a CI job.
See https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx

from verifier import __version__
from verifier.errors import PublishError
from verifier.publish._errors import mask

__all__ = ("GitHub",)

_log = logging.getLogger(__name__)

API_VERSION = "2022-11-28"
_MAX_PAGES = 100
_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
StatusState = Literal["error", "failure", "pending", "success"]
Json = dict[str, Any]


class GitHub:
    """A GitHub REST API client bound to one repository and one token.

    :param api_url: ``https://api.github.com``, or ``https://HOST/api/v3`` for Enterprise.
    :param max_wait: longest rate-limit wait, in seconds, worth one retry.
    """

    def __init__(
        self,
        *,
        api_url: str,
        repo: str,
        token: str,
        max_wait: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._base = api_url.rstrip("/")
        self._origin = urlsplit(self._base)[:2]
        self._repo = repo
        self._token = token
        self._max_wait = max_wait
        self._sleep = sleep
        self._client = httpx.Client(
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": f"verifier-publish/{__version__}",
            },
            timeout=_TIMEOUT,
            # httpx drops the Authorization header when a redirect leaves the origin.
            follow_redirects=True,
            transport=transport,
        )

    def __enter__(self) -> GitHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # -- the calls ------------------------------------------------------------------------

    def issue_comments(self, number: int) -> Iterator[Json]:
        """Every comment on issue or pull request ``number``, oldest first, page by page."""
        url: str | None = f"{self._repo_url()}/issues/{number}/comments?per_page=100"
        what = f"list the comments of {self._repo}#{number}"
        pages = 0
        while url is not None and pages < _MAX_PAGES:
            response = self._request("GET", url, what=what)
            page = response.json()
            if not isinstance(page, list):
                raise self._error(what, response, "the answer is not a list")
            yield from (c for c in page if isinstance(c, dict))
            pages += 1
            url = self._next(response)

    def create_comment(self, number: int, body: str) -> Json:
        what = f"comment on {self._repo}#{number}"
        url = f"{self._repo_url()}/issues/{number}/comments"
        return self._object(self._request("POST", url, what=what, json={"body": body}), what)

    def update_comment(self, comment_id: int, body: str) -> Json:
        what = f"update comment {comment_id} in {self._repo}"
        url = f"{self._repo_url()}/issues/comments/{comment_id}"
        return self._object(self._request("PATCH", url, what=what, json={"body": body}), what)

    def create_status(
        self,
        sha: str,
        *,
        state: StatusState,
        context: str,
        description: str,
        target_url: str | None = None,
    ) -> Json:
        what = f"set the commit status of {sha[:12]} in {self._repo}"
        payload: Json = {"state": state, "context": context, "description": description}
        if target_url:
            payload["target_url"] = target_url
        url = f"{self._repo_url()}/statuses/{sha}"
        return self._object(self._request("POST", url, what=what, json=payload), what)

    # -- plumbing -------------------------------------------------------------------------

    def _repo_url(self) -> str:
        owner, name = self._repo.split("/", 1)
        return f"{self._base}/repos/{quote(owner, safe='')}/{quote(name, safe='')}"

    def _next(self, response: httpx.Response) -> str | None:
        url = response.links.get("next", {}).get("url")
        if not url:
            return None
        # Never send the token to another host than the API's, whatever the header says.
        if urlsplit(url)[:2] != self._origin:
            _log.warning("ignoring a next-page link to another origin: %s", url)
            return None
        return url

    def _object(self, response: httpx.Response, what: str) -> Json:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise self._error(what, response, "the answer is not a JSON object")
        return data

    def _request(
        self, method: str, url: str, *, what: str, json: Json | None = None
    ) -> httpx.Response:
        for attempt in (1, 2):
            try:
                response = self._client.request(method, url, json=json)
            except httpx.TimeoutException as exc:
                msg = f"cannot {what}: {self._base} did not answer in time ({type(exc).__name__})"
                raise PublishError(self._mask(msg)) from None
            except httpx.HTTPError as exc:
                msg = f"cannot {what}: cannot reach {self._base}: {exc}; check --api-url"
                raise PublishError(self._mask(msg)) from None
            if response.is_success:
                return response
            wait = _rate_limit_wait(response)
            if wait is not None and attempt == 1 and wait <= self._max_wait:
                _log.warning("rate limited; retrying %s %s in %.0f s", method, url, wait)
                self._sleep(wait)
                continue
            raise self._error(what, response, rate_wait=wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(
        self,
        what: str,
        response: httpx.Response,
        problem: str | None = None,
        *,
        rate_wait: float | None = None,
    ) -> PublishError:
        status = response.status_code
        said = problem or _github_message(response)
        hint = {
            401: "GITHUB_TOKEN is wrong or expired; set a valid token",
            403: "the token lacks permission: it needs pull-requests (or issues) and statuses "
            "write access; a pull request from a fork gets a read-only token",
            404: f"check --repo {self._repo!r} and --pr, and that the token can see the repository",
            422: "GitHub rejected the request's content",
        }.get(status, "try again later" if status >= 500 else "see GitHub's message")
        if rate_wait is not None:
            hint = f"rate limited for {rate_wait:.0f} s more; try again later"
        msg = f"cannot {what}: GitHub answered {status} ({said}): {hint}"
        return PublishError(self._mask(msg), status=status)

    def _mask(self, text: str) -> str:
        return mask(text, [self._token])


def _github_message(response: httpx.Response) -> str:
    """GitHub's own words: ``message`` plus the first validation errors, on one line."""
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase or "no message"
    if not isinstance(data, dict):
        return response.reason_phrase or "no message"
    parts = [str(data.get("message") or response.reason_phrase or "no message")]
    errors = data.get("errors")
    for error in errors[:3] if isinstance(errors, list) else []:
        if isinstance(error, dict):
            detail = error.get("message") or " ".join(
                str(error.get(k)) for k in ("resource", "field", "code") if error.get(k)
            )
            parts.append(str(detail))
        else:
            parts.append(str(error))
    text = "; ".join(parts).replace("\n", " ").replace("\r", " ")
    return text if len(text) <= 300 else text[:299] + "…"


def _rate_limit_wait(response: httpx.Response) -> float | None:
    """Seconds until a rate limit lifts, or None when the answer is not a rate limit."""
    if response.status_code not in (403, 429):
        return None
    headers = response.headers
    retry_after = headers.get("retry-after")
    if retry_after:
        if retry_after.strip().isdigit():
            return float(retry_after.strip())
        try:
            when = email.utils.parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    if (
        headers.get("x-ratelimit-remaining") == "0"
        and headers.get("x-ratelimit-reset", "").isdigit()
    ):
        return max(0.0, float(headers["x-ratelimit-reset"]) - time.time()) + 1.0
    # A secondary rate limit may come without either header: GitHub says to wait a minute.
    if response.status_code == 429 or "rate limit" in _github_message(response).lower():
        return 60.0
    return None
