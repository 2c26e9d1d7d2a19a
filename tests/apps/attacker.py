"""A hostile app: tries what untrusted code would against the verifier that runs it.

    python3 attacker.py attacks PORT   every attack below, then serve the fixture site
    python3 attacker.py plant PORT     leave a package and a link for later (see plant())
    python3 attacker.py forkbomb PORT  fork until the kernel says no, keep them, then serve
    python3 attacker.py memory PORT MB allocate MB megabytes (touching every page), serve

Each attack prints one line, ``attack NAME: held (...)`` or ``attack NAME: BROKE (...)``,
then ``attacks: N held, M broke``. Its targets come from its environment (the recipe's
``app.env``): TARGET_PID (a process of ours), OUT_DIR (the output folder), PROTECTED (a
path list of files it must not change, ``:``-separated), HIDDEN (files it must not see),
WRITABLE (folders of its checkout it must be able to write), CHECKOUT (its checkout,
default its working folder).
Nothing here changes the machine when the sandbox holds; where it does not, the attacks
that could (sysctls, cgroup files) only open for writing, they write nothing.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import http.server
import os
import socket
import stat
import sys
import time

SITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "site")
_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000
_MNT_DETACH = 2
_PTRACE_ATTACH = 16
_results: list[tuple[str, bool, str]] = []


def _report(name: str, held: bool, detail: str) -> None:
    _results.append((name, held, detail))
    print(f"attack {name}: {'held' if held else 'BROKE'} ({detail})", flush=True)


def _errno_text() -> str:
    return os.strerror(ctypes.get_errno())


def _open_for_writing(path: str) -> str | None:
    """None when it cannot be opened for writing (a folder: nothing can be made in it),
    else what happened. Writes nothing to a file that exists."""
    if os.path.isdir(path):
        probe = os.path.join(path, f".attacker-{os.getpid()}")
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError:
            return None
        os.unlink(probe)
        return f"made a file in {path}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    os.close(fd)
    return f"{path} opened for writing"


def attack_proc() -> None:
    if _libc.umount2(b"/proc", _MNT_DETACH) == 0:
        _report("umount-proc", False, "unmounted /proc")
        return
    why = _errno_text()
    if _libc.mount(b"proc", b"/tmp", b"proc", 0, None) == 0:
        _report("umount-proc", False, "mounted a new proc")
        return
    _report("umount-proc", True, why)


def attack_processes() -> None:
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    foreign = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(w in cmd for w in ("verifier", "Xvfb", "chromium", "pytest", "ffmpeg")):
            if "attacker.py" not in cmd and "_init.py" not in cmd:
                foreign.append(cmd[:60])
    _report("processes", not foreign, f"{len(pids)} visible; ours: {foreign[:3]}")
    found = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if b"VERIFIER_" in fh.read():
                    found.append(pid)
        except OSError:
            continue
    _report("environ", not found, f"VERIFIER_ variables in processes {found}")


def attack_target() -> None:
    target = os.environ.get("TARGET_PID")
    if not target:
        return
    reached = []
    for name in ("mem", "environ", "cmdline"):
        try:
            with open(f"/proc/{target}/{name}", "rb") as fh:
                fh.read(64)
            reached.append(name)
        except OSError:
            continue
    if _libc.ptrace(_PTRACE_ATTACH, int(target), None, None) == 0:
        reached.append("ptrace")
    _report("target", not reached, f"pid {target}: read {reached}")


def attack_namespaces() -> None:
    broke = []
    for path in ("/proc/1/ns/net", "/proc/1/ns/mnt", "/proc/1/ns/pid"):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            if _libc.setns(fd, 0) == 0:
                broke.append(path)
        finally:
            os.close(fd)
    if _libc.unshare(_CLONE_NEWNET) == 0:
        broke.append("unshare(net)")
    _report("nsenter", not broke, f"entered {broke}" if broke else _errno_text())


def attack_privileges() -> None:
    with open("/proc/self/status") as fh:
        status = dict(line.split(":", 1) for line in fh if ":" in line)
    caps = status.get("CapEff", "").strip()
    nnp = status.get("NoNewPrivs", "").strip()
    _report("capabilities", set(caps) <= {"0"}, f"CapEff {caps}, NoNewPrivs {nnp}")
    opened = [
        what
        for what in (
            "/proc/sys/kernel/core_pattern",
            "/proc/sys/kernel/hostname",
            "/proc/sysrq-trigger",
            *glob.glob("/sys/fs/cgroup/*/release_agent"),
            *glob.glob("/sys/fs/cgroup/*/cgroup.procs"),
            "/sys/fs/cgroup/cgroup.procs",
        )
        if _open_for_writing(what)
    ]
    _report("kernel-knobs", not opened, f"writable: {opened}")


def _x_handshake(sock: socket.socket) -> bool:
    sock.sendall(b"l\0\x0b\0\0\0\0\0\0\0\0\0")
    return sock.recv(1) == b"\x01"


def _try_socket(address: str) -> str | None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(address)
        except OSError:
            return None
        name = address.replace("\0", "@")
        if "X11" in address:
            try:
                return f"{name} (X {'accepted' if _x_handshake(sock) else 'refused us'})"
            except OSError:
                return f"{name} (X)"
        return name


def attack_sockets() -> None:
    addresses = set()
    try:
        with open("/proc/net/unix") as fh:
            for line in list(fh)[1:]:
                parts = line.split()
                if len(parts) >= 8:
                    path = parts[7]
                    addresses.add("\0" + path[1:] if path.startswith("@") else path)
    except OSError:
        pass
    for number in range(64):
        addresses.add(f"\0/tmp/.X11-unix/X{number}")
        addresses.add(f"/tmp/.X11-unix/X{number}")
    for top in {"/tmp", "/var/tmp", "/run", "/dev/shm", os.environ.get("TMPDIR", "/tmp")}:
        for root, _dirs, files in os.walk(top):
            for name in files:
                path = os.path.join(root, name)
                try:
                    if stat.S_ISSOCK(os.lstat(path).st_mode):
                        addresses.add(path)
                except OSError:
                    continue
    reached = [r for a in sorted(addresses) if (r := _try_socket(a)) is not None]
    ours = [r for r in reached if any(w in r for w in ("X11", "vnc", "verifier", "live"))]
    _report("sockets", not ours, f"tried {len(addresses)}, reached ours: {ours}")
    _report("x-display", not any("X11" in r for r in reached), f"X sockets reached: {ours}")


def attack_files() -> None:
    cookies = []
    for top in ("/tmp", "/var/tmp", "/run", "/dev/shm", os.environ.get("TMPDIR", "/tmp")):
        for root, _dirs, files in os.walk(top):
            cookies += [os.path.join(root, f) for f in files if "authority" in f.lower()]
            # The X cookie's folder and the live view's (in our scratch folder).
            parts = root.split(os.sep)
            cookies += [root for p in parts if p.startswith(("xauth-", "live-"))][:1]
    _report("x-cookies", not cookies, f"found {cookies[:3]}")
    out = os.environ.get("OUT_DIR")
    if out:
        seen = []
        try:
            seen = os.listdir(out)
        except OSError:
            pass
        shots = glob.glob(os.path.join(out, "*", "screenshots", "*.png"))
        written = [p for p in shots if _open_for_writing(p)]
        try:
            with open(os.path.join(out, "planted.txt"), "w") as fh:
                fh.write("x")
            written.append("planted.txt")
        except OSError:
            pass
        _report("bundle", not seen and not written, f"saw {seen[:3]}, wrote {written[:3]}")
    protected = [p for p in os.environ.get("PROTECTED", "").split(":") if p]
    changed = [p for p in protected if _open_for_writing(p)]
    _report("read-only", not changed, f"writable: {changed}")
    hidden = [p for p in os.environ.get("HIDDEN", "").split(":") if p]
    readable = []
    for path in hidden:
        try:
            with open(path, "rb") as fh:
                if fh.read(1):
                    readable.append(path)
        except OSError:
            continue
    _report("hidden", not readable, f"readable: {readable}")
    moved = []
    checkout = os.environ.get("CHECKOUT", os.getcwd())
    for path in [*protected, *hidden]:  # carry a cover away by renaming a folder above it
        parent = os.path.dirname(path)
        if not parent.startswith(checkout + os.sep) or not os.path.isdir(parent):
            continue  # (outside the checkout: a private folder, or read-only anyway)
        try:
            os.rename(parent, parent + ".moved")
        except OSError:
            continue
        os.rename(parent + ".moved", parent)
        moved.append(parent)
    _report("rename", not moved, f"renamed {moved}")
    # Not an attack: its own checkout must stay writable (a sandbox that takes everything
    # away proves nothing).
    needed = [p for p in os.environ.get("WRITABLE", "").split(":") if p]
    refused = [p for p in needed if not _open_for_writing(p)]
    _report("checkout", not refused, f"not writable: {refused}")
    home = os.environ.get("HOME", "")
    planted = [p for p in (f"{home}/.bashrc", f"{home}/.profile") if _open_for_writing(p)]
    _report("home", not planted, f"writable: {planted}")
    # Not an attack either: dev servers make folders in these (Astro, pnpm), privately.
    made = []
    for name in (".config", ".local/share", ".local/state", ".cache", ".npm"):
        try:
            os.makedirs(os.path.join(home, name, "attacker-probe"), exist_ok=True)
            made.append(name)
        except OSError:
            continue
    _report("home-state", len(made) == 5, f"could make folders in {made}")


def attacks() -> None:
    for attack in (
        attack_proc,
        attack_processes,
        attack_target,
        attack_namespaces,
        attack_privileges,
        attack_sockets,
        attack_files,
    ):
        try:
            attack()
        except Exception as exc:  # noqa: BLE001 - an attack that cannot run has not broken in
            print(f"attack {attack.__name__}: could not run ({exc!r})", flush=True)
    broke = sum(1 for _n, held, _d in _results if not held)
    print(f"attacks: {len(_results) - broke} held, {broke} broke", flush=True)


def plant() -> None:
    """Leave what later programs of the verifier's would run or write through: a package
    named verifier in PLANT_DIR (``python -m verifier`` from there), and a link at
    STATE_LINK to VICTIM (a file a step will write)."""
    folder = os.environ.get("PLANT_DIR")
    if folder:
        package = os.path.join(folder, "verifier")
        os.makedirs(package, exist_ok=True)
        fake = 'import json; print(json.dumps({"verdict": "passed", "exit_code": 0}))\n'
        for name, text in (("__init__.py", ""), ("__main__.py", fake), ("_watchdog.py", fake)):
            with open(os.path.join(package, name), "w") as fh:
                fh.write(text)
        print(f"planted a package in {package}", flush=True)
    link, victim = os.environ.get("STATE_LINK"), os.environ.get("VICTIM")
    if link and victim:
        try:
            os.symlink(victim, link)
            print(f"planted a link {link} -> {victim}", flush=True)
        except OSError as exc:
            print(f"could not plant a link at {link}: {exc.strerror}", flush=True)


def forkbomb() -> None:
    """Fork until refused, then let 8 go (so that the server has threads to serve)."""
    children: list[int] = []
    while len(children) < 100_000:
        try:
            pid = os.fork()
        except OSError as exc:
            print(f"forkbomb: stopped at {len(children)} processes ({exc.strerror})", flush=True)
            break
        if pid == 0:
            while True:
                time.sleep(3600)
        children.append(pid)
    else:
        print("forkbomb: 100000 processes and no limit", flush=True)
    for pid in children[-8:]:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def memory(megabytes: int) -> None:
    chunks = []
    for n in range(megabytes):
        chunks.append(bytearray(b"x" * (1024 * 1024)))
        if n % 64 == 0:
            print(f"memory: {n} MB", flush=True)
    print(f"memory: holding {megabytes} MB", flush=True)
    globals()["_held"] = chunks


def serve(port: int) -> None:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=SITE)
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as httpd:
        print(f"serving on {port}", flush=True)
        httpd.serve_forever()


def main() -> None:
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "attacks":
        attacks()
    elif mode == "plant":
        plant()
    elif mode == "forkbomb":
        forkbomb()
    elif mode == "memory":
        memory(int(sys.argv[3]))
    serve(port)


if __name__ == "__main__":
    main()
