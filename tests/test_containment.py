"""Containment, round 2: the app has no privilege over anything of ours, whoever runs us.

A hostile fixture app (tests/apps/attacker.py) tries, from inside its sandbox, what
untrusted code would: unmount its /proc, see and read our processes, ``nsenter`` and
``ptrace``, open the kernel's knobs, connect to every socket it can name (our X display's
abstract socket among them), find X cookies, read or plant files in the bundles, change
the recipes, the verifier's code and its home folder, fork without end, eat memory. Each
through the installed ``verifier`` (``run``, ``run --jobs 2``, ``--take-over``, ``mcp``
over stdio and HTTP), as root and as an unprivileged user (uid 65534, through setpriv).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.support import SITE, live_processes, server_command, wait_for_step
from verifier.evidence import read_manifest

pytestmark = pytest.mark.usefixtures("no_leaks")

ROOT = Path(__file__).resolve().parent.parent
ATTACKER = ROOT / "tests" / "apps" / "attacker.py"
VERIFIER = shutil.which("verifier")
NOBODY = 65534
ATTACKS = 17  # the lines attacker.py prints in "attacks" mode
IS_ROOT = os.geteuid() == 0


class Place:
    """A folder for one test's recipes, app and bundles, as root or as uid 65534."""

    def __init__(self, base: Path, *, as_user: bool) -> None:
        self.root = base / "checkout"
        self.home = base / "home"  # the user's home folder, outside the checkout
        self.as_user = as_user
        self.out = self.root / "out"
        self.home.mkdir()
        subprocess.run(["git", "init", "-q", str(self.root)], check=True)  # a checkout

    def recipe(self, name: str, data: dict[str, object]) -> Path:
        path = self.root / f"{name}.yaml"
        path.write_text(json.dumps(data, indent=1), encoding="utf-8")
        self.own(path)
        return path

    def own(self, path: Path) -> None:
        if self.as_user:
            shutil.chown(path, NOBODY, NOBODY)

    def argv(self, *args: str) -> list[str]:
        assert VERIFIER is not None, "the verifier command is not on PATH (run provision.sh)"
        drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        return [*(drop if self.as_user else []), VERIFIER, *args]

    def env(self, **more: str) -> dict[str, str]:
        env = {**os.environ, **more}
        if self.as_user:
            env["HOME"] = str(self.home)
        return env

    def verifier(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            timeout=240,
            env=self.env(**env),
            cwd=self.root,
            check=False,
        )


def _reachable_by_nobody() -> str | None:
    """Why uid 65534 cannot run this checkout's verifier (a checkout under /root)."""
    probe = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "test", "-r"]
        + [str(ATTACKER)],
        check=False,
    )
    return None if probe.returncode == 0 else f"uid {NOBODY} cannot read {ATTACKER}"


def _who() -> list[str]:
    if not IS_ROOT:
        return ["user"]
    return ["root", "user"]


@pytest.fixture(params=_who())
def place(request: pytest.FixtureRequest) -> Iterator[Place]:
    as_user = request.param == "user" and IS_ROOT
    if as_user and (why := _reachable_by_nobody()):
        pytest.fail(f"cannot run as an unprivileged user: {why} (clone outside /root)")
    base = Path(tempfile.mkdtemp(prefix="verifier-containment-"))
    base.chmod(0o755)
    try:
        here = Place(base, as_user=as_user)
        if as_user:
            subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(base)], check=True)
        yield here
    finally:
        shutil.rmtree(base, ignore_errors=True)


def attacker_app(
    place: Place,
    mode: str = "attacks",
    *extra: str,
    name: str = "r",
    hidden: tuple[Path, ...] = (),
) -> dict[str, Any]:
    """The attacker as the app of recipe ``name`` (whose files it must not change)."""
    auth = place.root / "auth.json"  # a saved login: the recipe loads it
    auth.write_text('{"cookies": [], "origins": []}')
    place.own(auth)
    baselines = place.root / f"{name}.baselines"
    baselines.mkdir(exist_ok=True)
    place.own(baselines)
    (place.root / "recipes").mkdir(exist_ok=True)  # a folder of recipes: its name pinned
    shot = place.root / "recipes" / "logo.png"
    picture = Image.new("RGB", (16, 16), (255, 0, 255))  # a picture never on screen
    picture.paste((0, 255, 0), (0, 0, 8, 8))
    picture.save(shot)
    place.own(place.root / "recipes")
    place.own(shot)
    protected = [place.root / f"{name}.yaml", place.root / ".git" / "config", baselines, shot]
    return {
        "command": [sys.executable, str(ATTACKER), mode, "{port}", *extra],
        "url": "http://127.0.0.1:{port}/",
        "env": {
            "TARGET_PID": str(os.getpid()),
            "OUT_DIR": str(place.out),
            "PROTECTED": ":".join(map(str, protected)),
            "HIDDEN": ":".join(map(str, (auth, *hidden))),
            "WRITABLE": str(place.root),
        },
    }


def attack_recipe(
    place: Place, name: str = "r", *, hidden: tuple[Path, ...] = (), **head: object
) -> Path:
    return place.recipe(
        name,
        {
            "name": f"attacker {name}",
            "storage_state": "auth.json",
            "app": attacker_app(place, name=name, hidden=hidden),
            "steps": [
                {"goto": "/"},
                {"expect_text": "Fixture app"},
                {"expect_no_image": {"image": "recipes/logo.png", "timeout": 1}},
            ],
            **head,
        },
    )


def held(bundle: Path) -> str:
    """The attacks' report in the bundle's app log; fails on any that broke in."""
    log = (bundle / "logs" / "app.log").read_text()
    broke = [line for line in log.splitlines() if "BROKE" in line or "could not run" in line]
    assert not broke, "\n".join(broke)
    assert f"attacks: {ATTACKS} held, 0 broke" in log, log
    return log


def bundle_of(done: subprocess.CompletedProcess[str]) -> Path:
    assert done.returncode == 0, done.stderr
    return Path(json.loads(done.stdout.splitlines()[-1])["bundle"])


def test_a_hostile_app_reaches_nothing_of_ours(place: Place) -> None:
    recipe = attack_recipe(place)
    more = {}
    if not place.as_user:  # our temporary files in the app's checkout: hidden there too
        (tmp := place.root / ".tmp").mkdir()
        # (By a short path: a long one would move them to /tmp, for Chromium's socket.)
        link = Path(tempfile.mkdtemp(prefix="vt-", dir="/tmp")) / "t"
        link.symlink_to(tmp)
        more["TMPDIR"] = str(link)
    try:
        done = place.verifier(
            "run", str(recipe), "--out", str(place.out), "--json", "--no-video", **more
        )
    finally:
        if more:
            shutil.rmtree(Path(more["TMPDIR"]).parent)
    bundle = bundle_of(done)
    log = held(bundle)
    assert "umount-proc: held" in log and "x-display: held" in log
    home = place.home if place.as_user else Path.home()
    for name in (".config", ".local/share", ".local/state", ".cache", ".npm"):
        assert not (home / name / "attacker-probe").exists(), f"the app's ~/{name} stayed"
    app = read_manifest(bundle)["setup"]["app"]
    assert app["sandbox"].startswith("sandbox: bubblewrap")
    limits = app["services"][0]["limits"]
    assert limits["memory"] == "2GiB" and limits["pids"] == 1024
    if place.as_user:  # no cgroup of its own to write: a limit on each process
        assert limits["by"].startswith("rlimit")
    elif _V1_PIDS.is_dir():  # as on this project's machines
        assert limits["by"] == "cgroup v1"


_V1_PIDS = Path("/sys/fs/cgroup/pids")


def _cgroups_left() -> list[Path]:
    """Groups of ours whose verifier is gone (each run removes its own)."""
    return [
        p
        for p in _V1_PIDS.rglob("verifier-app-*")
        if not Path("/proc", p.name.split("-")[2]).exists()
    ]


def test_an_app_in_our_own_checkout_cannot_change_our_code(place: Place) -> None:
    if place.as_user:
        pytest.skip("uid 65534 cannot write this checkout in the first place")
    app = attacker_app(place)
    apps = ROOT / "tests" / "apps"  # the git work tree holding it is ours: writable...
    ours = [ROOT / "verifier" / "stage.py", ROOT / "verifier", Path(sys.prefix), ROOT / ".git"]
    app["cwd"] = str(apps)
    app["env"]["PROTECTED"] = ":".join(map(str, ours))  # ...except our code and git
    app["env"]["WRITABLE"] = str(apps)
    app["env"]["CHECKOUT"] = str(ROOT)
    recipe = place.recipe(
        "r", {"name": "ours", "app": app, "steps": [{"goto": "/"}, {"expect_text": "Fixture"}]}
    )
    held(bundle_of(place.verifier("run", str(recipe), "--out", str(place.out), "--json")))


def test_jobs_loopback_and_a_live_view_reach_nothing_of_ours(place: Place) -> None:
    if not IS_ROOT or place.as_user:
        pytest.skip("network: loopback needs root (README: Network containment)")
    one = attack_recipe(place, "r")
    two = attack_recipe(place, "two", network="loopback")
    done = place.verifier(
        "run", str(one), str(two), "--jobs", "2", "--out", str(place.out), "--json", "--no-video"
    )
    assert done.returncode == 0, done.stderr
    for line in done.stdout.splitlines():
        held(Path(json.loads(line)["bundle"]))
    # One run with a view a person may take over: x11vnc's socket is ours alone.
    done = place.verifier(
        "run", str(two), "--take-over", "--out", str(place.out), "--json", "--no-video"
    )
    assert "live view at http://127.0.0.1:" in done.stderr
    held(bundle_of(done))


def test_an_agent_session_s_app_reaches_nothing_of_ours(place: Place) -> None:
    import anyio
    from mcp import Client, StdioServerParameters

    recipe = attack_recipe(place)
    params = StdioServerParameters(
        command=place.argv()[0],
        args=[*place.argv()[1:], "mcp", "--recipe", str(recipe), "--out", str(place.out)],
        env=place.env(),
        cwd=str(place.root),
    )

    async def session() -> dict[str, object]:
        async with Client(params) as client:
            await client.call_tool("computer", {"action": "screenshot"})
            done = await client.call_tool("finish", {"verdict": "passed", "summary": "x"})
            return dict(done.structured_content or {})

    held(Path(str(anyio.run(session)["bundle"])))


def test_an_agent_session_over_http_keeps_its_token_from_the_app(place: Place) -> None:
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    token_file = place.root / "token.txt"  # in the app's checkout: hidden from it
    token_file.write_text(uuid.uuid4().hex * 2)
    place.own(token_file)
    recipe = attack_recipe(place, hidden=(token_file,))
    args = ["mcp", "--http", "127.0.0.1:0", "--recipe", str(recipe), "--out", str(place.out)]
    proc = subprocess.Popen(
        place.argv(*args, "--token-file", str(token_file)),
        env=place.env(),
        cwd=place.root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        url = None
        for line in proc.stderr:
            if found := re.search(r"serving (http://\S+);", line):
                url = found[1]
                break
        assert url is not None, "verifier mcp --http did not start"
        token = token_file.read_text().strip()

        async def session() -> dict[str, object]:
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
                async with Client(streamable_http_client(url, http_client=http)) as client:
                    await client.call_tool("computer", {"action": "screenshot"})
                    done = await client.call_tool("finish", {"verdict": "passed", "summary": "x"})
                    return dict(done.structured_content or {})

        bundle = Path(str(anyio.run(session)["bundle"]))
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    held(bundle)


def test_a_fork_bomb_stops_at_its_limit_and_the_run_goes_on(place: Place) -> None:
    app = attacker_app(place, "forkbomb")
    recipe = place.recipe(
        "bomb",
        {
            "name": "fork bomb",
            "app": {**app, "limits": {"pids": 64}},
            "steps": [{"goto": "/"}, {"expect_text": "Fixture app"}],
        },
    )
    done = place.verifier("run", str(recipe), "--out", str(place.out), "--json", "--no-video")
    bundle = bundle_of(done)
    log = (bundle / "logs" / "app.log").read_text()
    stopped = re.search(r"forkbomb: stopped at (\d+) processes", log)
    assert stopped is not None, log
    assert int(stopped[1]) <= 64
    assert "Traceback" not in done.stderr
    assert not live_processes(set(), marker=str(ATTACKER))
    assert not _cgroups_left()


def test_a_memory_eater_is_stopped_and_the_run_says_which_limit(place: Place) -> None:
    app = attacker_app(place, "memory", "600")
    recipe = place.recipe(
        "eater",
        {
            "name": "memory eater",
            "app": {**app, "limits": {"memory": "128MiB"}},
            "steps": [{"goto": "/"}],
        },
    )
    done = place.verifier("run", str(recipe), "--out", str(place.out), "--no-video")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("ERROR ") and done.stderr.count("\n") == 1, done.stderr
    if not place.as_user and _V1_PIDS.is_dir():
        assert "it reached its memory limit (app.limits.memory: 128MiB)" in done.stderr
    else:  # an rlimit: the app's own allocation fails
        assert "MemoryError" in done.stderr
    assert not live_processes(set(), marker=str(ATTACKER))


def test_a_screenshot_changed_after_it_was_written_is_caught(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    recipe = write_recipe(
        {
            "name": "slow",
            "app": {
                "command": server_command("serve", str(SITE)),
                "url": "http://127.0.0.1:{port}/",
            },
            "steps": [{"goto": "/"}, {"screenshot": "first"}, {"wait": 3}, {"screenshot": "last"}],
        }
    )
    out = tmp_path / "out"
    assert VERIFIER is not None
    with subprocess.Popen(
        [VERIFIER, "run", str(recipe), "--out", str(out), "--no-video"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        bundle = wait_for_step(out, 2).parent  # the wait: the first screenshot is taken
        first = bundle / "screenshots" / "02-screenshot-first.png"
        assert _wait_file(first), "the first screenshot was never written"
        first.write_bytes(first.read_bytes()[:-1] + b"\0")  # as a hostile writer would
        assert proc.wait(timeout=120) == 0
    check = subprocess.run(
        [VERIFIER, "verify-bundle", str(bundle)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 1
    assert f"{first.relative_to(bundle)}: sha256 differs from the manifest" in check.stderr
    listed = {a["path"]: a for a in read_manifest(bundle)["artifacts"]}
    assert listed[str(first.relative_to(bundle))]["kind"] == "screenshot"


def _wait_file(path: Path) -> bool:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.is_file() and path.stat().st_size > 0:
            return True
        time.sleep(0.05)
    return False


def test_a_download_that_cannot_be_saved_is_exit_2(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    if not IS_ROOT:
        pytest.skip("mounting a small tmpfs needs root")
    recipe = write_recipe(
        {
            "name": "big download",
            "app": {
                "command": server_command("serve", str(SITE)),
                "url": "http://127.0.0.1:{port}/",
            },
            "steps": [{"goto": "/big.html"}, {"click": "#big"}, {"wait": 1}],
        }
    )
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(small)], check=True)
    try:
        assert VERIFIER is not None
        done = subprocess.run(
            [VERIFIER, "run", str(recipe), "--out", str(small), "--no-video"],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert "the download 'big.bin' could not be saved in the bundle" in done.stderr
        assert done.stderr.count("\n") == 1
        (bundle,) = small.iterdir()
        assert read_manifest(bundle)["verdict"] == "error"
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_what_a_recipe_or_an_agent_could_ask_for_is_refused(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    assert VERIFIER is not None

    def validate(recipe: Path) -> str:
        done = subprocess.run(
            [VERIFIER, "validate", str(recipe)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 2, done.stdout
        assert done.stderr.count("\n") == 1, done.stderr
        return done.stderr

    app = {"command": "python3 -m http.server {port}", "url": "http://127.0.0.1:{port}/"}
    ours = write_recipe(
        {"name": "x", "app": {**app, "pass_env": ["VERIFIER_MCP_TOKEN"]}, "steps": [{"goto": "/"}]}
    )
    assert "the app never gets the verifier's own VERIFIER_* variables" in validate(ours)
    (tmp_path / "secret.txt").write_text("x")
    (tmp_path / "in").mkdir()
    os.symlink("/etc/hostname", tmp_path / "in" / "link.txt")
    for name in ("../secret.txt", "/etc/hostname", "link.txt"):
        upload = write_recipe(
            {
                "name": "x",
                "url": "http://127.0.0.1:1/",
                "steps": [{"upload": {"selector": "#f", "files": [name]}}],
            },
            f"in/up{len(name)}.yaml",
        )
        assert "is outside the recipe's folder and its repository" in validate(upload)
    cursor = tmp_path / "repo" / ".cursor"
    cursor.mkdir(parents=True)
    env = {
        "name": "x",
        "app": {"environment": "repo/.cursor/environment.json", "url": "http://127.0.0.1:1/"},
        "steps": [{"goto": "/"}],
    }
    os.symlink("/dev/zero", cursor / "environment.json")
    assert "is not a regular file" in validate(write_recipe(env))
    (cursor / "environment.json").unlink()
    (cursor / "environment.json").write_text(" " * (1 << 20) + "{}")
    assert "is larger than 1 MiB" in validate(write_recipe(env))
    short = tmp_path / "short-token"
    short.write_text("x")
    done = subprocess.run(
        [VERIFIER, "mcp", "--http", "127.0.0.1:0", "--token-file", str(short)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "the token has 1 characters; use at least 32" in done.stderr


def test_a_file_url_typed_into_the_address_bar_is_blocked(
    tmp_path: Path, write_recipe: Callable[..., Path]
) -> None:
    secret = tmp_path / "local.txt"
    secret.write_text(f"local-{uuid.uuid4().hex}")
    steps = [
        {"goto": "/"},
        {"press": "Control+l"},
        {"type": secret.as_uri()},
        {"press": "Enter"},
        {"expect_no_text": {"text": secret.read_text(), "timeout": 3}},
    ]
    app = {"command": server_command("serve", str(SITE)), "url": "http://127.0.0.1:{port}/"}
    assert VERIFIER is not None
    for allowed, code in ((False, 0), (True, 1)):  # allowed, the page shows the file
        recipe = write_recipe(
            {"name": "typed", "allow_file_urls": allowed, "app": app, "steps": steps}
        )
        done = subprocess.run(
            [VERIFIER, "run", str(recipe), "--out", str(tmp_path / "out"), "--json", "--no-video"],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == code, done.stderr
        bundle = Path(json.loads(done.stdout)["bundle"])
        setup = read_manifest(bundle)["setup"]["browser"]
        assert setup["file_urls"] == ("allowed" if allowed else "blocked by policy")


def test_what_an_app_leaves_behind_runs_nowhere(place: Place) -> None:
    """A package named verifier in the command's folder is not what --jobs children or
    the watchdog import; a link where a step will write is replaced, not followed."""
    victim = place.home / "victim.txt"
    victim.write_text("untouched")
    place.own(victim)
    link = place.root / "state" / "auth.json"
    planter = place.recipe(
        "a",
        {
            "name": "planter",
            "app": {
                **attacker_app(place, "plant"),
                "env": {
                    "PLANT_DIR": str(place.root),
                    "STATE_LINK": str(link),
                    "VICTIM": str(victim),
                },
            },
            "steps": [{"goto": "/"}, {"save_storage_state": "state/auth.json"}],
        },
    )
    site = {"command": server_command("serve", str(SITE)), "url": "http://127.0.0.1:{port}/"}
    wrong = place.recipe(
        "c",
        {
            "name": "wrong",
            "app": site,
            "steps": [{"goto": "/"}, {"expect_text": {"text": "never there", "timeout": 1}}],
        },
    )
    slow = place.recipe("b", {"name": "slow", "app": site, "steps": [{"goto": "/"}, {"wait": 2}]})
    done = place.verifier(
        "run",
        str(planter),
        str(slow),
        str(wrong),
        "--jobs",
        "2",
        "--out",
        str(place.out),
        "--no-video",
    )
    log = "\n".join(p.read_text() for p in place.out.glob("*/logs/app.log"))
    assert "planted a package" in log, log  # the attack ran: the test can fail
    assert done.returncode == 1, done.stdout + done.stderr  # the wrong app still fails
    assert "FAILED" in done.stderr and str(wrong) in done.stderr
    assert victim.read_text() == "untouched"
    assert not link.is_symlink() and '"cookies"' in link.read_text()


def test_the_home_folder_or_the_machine_is_no_checkout(place: Place) -> None:
    app = {**attacker_app(place), "cwd": str(place.home)}
    recipe = place.recipe("r", {"name": "home", "app": app, "steps": [{"goto": "/"}]})
    home = str(place.home)
    done = place.verifier("run", str(recipe), "--out", str(place.out), "--no-video", HOME=home)
    assert done.returncode == 2
    assert (
        "would let the app write" in done.stderr
        and "give the app a folder of its own" in done.stderr
    )


def test_as_root_an_app_writes_a_checkout_another_user_owns(tmp_path: Path) -> None:
    """A CI workspace owned by the runner's user, verifier as root: the app runs as that
    user (it has no root privileges to write it as root)."""
    if not IS_ROOT:
        pytest.skip("only root runs the app as another user")
    base = Path(tempfile.mkdtemp(prefix="verifier-owned-"))
    try:
        base.chmod(0o755)
        app = base / "app"
        app.mkdir()
        (app / "index.html").write_text("<title>owned</title><p>Fixture app, owned</p>")
        script = (
            "import functools, http.server, os, sys; open('mine.txt', 'w').write('x'); "
            "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), "
            "functools.partial(http.server.SimpleHTTPRequestHandler, directory='.'))"
            ".serve_forever()"
        )
        recipe = base / "r.yaml"
        recipe.write_text(
            json.dumps(
                {
                    "name": "owned",
                    "app": {
                        "command": [sys.executable, "-c", script, "{port}"],
                        "cwd": "app",
                        "url": "http://127.0.0.1:{port}/",
                    },
                    "steps": [{"goto": "/"}, {"expect_text": "Fixture app, owned"}],
                }
            )
        )
        subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(app)], check=True)
        assert VERIFIER is not None
        done = subprocess.run(
            [VERIFIER, "run", str(recipe), "--out", str(tmp_path), "--json", "--no-video"],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        bundle = bundle_of(done)
        assert (app / "mine.txt").stat().st_uid == NOBODY
        sandbox = read_manifest(bundle)["setup"]["app"]["sandbox"]
        assert sandbox.endswith(f"as uid {NOBODY}, the owner of its checkout")
    finally:
        shutil.rmtree(base, ignore_errors=True)
