"""Dev-server stand-ins for the failure paths: python3 server.py MODE PORT [ARG].

Modes:
  serve PORT DIR        serve DIR (a normal dev server)
  die PORT              print an error to stderr and exit 3 at once
  never PORT            listen, but answer every request with 503 forever
  slow PORT SECONDS     print, wait SECONDS, then serve the site
  fork PORT MARKER      start a grandchild in its own session (like npm 11 or a watcher),
                        which sleeps with MARKER in its argv, then serve the site
  outbound PORT URL     try to GET URL (print whether it was reached), then serve the site
  hostile PORT MARKER   an app that tries what a hostile one would (prints what it found:
                        its environment's names, the processes it can see, the X displays
                        it can reach), leaves a double-forked, setsid, environment-scrubbed
                        grandchild sleeping with MARKER in its argv, then serves the site
  flood PORT BYTES      write BYTES of output without a newline, then serve the site
  swarm PORT N MARKER   start N processes sleeping with MARKER in their argv (every other
                        one double-forked into a session of its own), then serve the site
  api PORT              a JSON API: /health, /items (CORS open), /die (exits 5)
  web PORT DIR          serve DIR, and /config.js telling pages $API_URL
"""

from __future__ import annotations

import functools
import http.server
import os
import signal
import subprocess
import sys
import threading
import time

SITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "site")


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write("%s\n" % (format % args))

    def do_GET(self) -> None:
        if self.path == "/big.bin":  # a 16 MiB download
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Disposition", "attachment; filename=big.bin")
            self.send_header("Content-Length", str(16 << 20))
            self.end_headers()
            for _ in range(256):
                self.wfile.write(b"\0" * 65536)
            return
        if self.path == "/endless.bin":  # a download that never ends
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Disposition", "attachment; filename=endless.bin")
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"\0" * 65536)
                    time.sleep(0.01)
            except OSError:
                return
        super().do_GET()


def serve(port: int, directory: str) -> None:
    handler = functools.partial(Quiet, directory=directory)
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as httpd:
        print(f"serving {directory} on {port}", flush=True)
        httpd.serve_forever()


class Unhealthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503)
        self.end_headers()
        self.wfile.write(b"warming up forever")

    def log_message(self, format: str, *args: object) -> None:
        pass


def graceful() -> None:
    """Shut down gracefully on SIGTERM, taking 0.3 s, and say each SIGTERM that came
    (a server like uvicorn quits at once, cutting its shutdown short, on a second)."""
    terms = []

    def on_term(signum: int, _frame: object) -> None:
        terms.append(signum)
        print(f"graceful: SIGTERM {len(terms)}", flush=True)
        if len(terms) == 1:
            threading.Timer(0.3, lambda: os._exit(0)).start()

    signal.signal(signal.SIGTERM, on_term)


def main() -> None:
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "serve":
        serve(port, sys.argv[3])
    elif mode == "die":
        print("Error: Cannot find module 'vite' (fixture dies at start)", file=sys.stderr)
        sys.exit(3)
    elif mode == "never":
        with http.server.HTTPServer(("127.0.0.1", port), Unhealthy) as httpd:
            httpd.serve_forever()
    elif mode == "slow":
        print("compiling...", flush=True)
        time.sleep(float(sys.argv[3]))
        serve(port, SITE)
    elif mode == "fork":
        marker = sys.argv[3]
        subprocess.Popen(
            [sys.executable, "-c", "import time, sys; time.sleep(3600)", marker],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        serve(port, SITE)
    elif mode == "outbound":
        import urllib.request

        try:
            urllib.request.urlopen(sys.argv[3], timeout=3)
            print("outbound: reached", flush=True)
        except OSError as exc:
            print(f"outbound: blocked ({exc})", flush=True)
        serve(port, SITE)
    elif mode == "hostile":
        hostile(sys.argv[3])
        serve(port, SITE)
    elif mode == "flood":
        left, block = int(sys.argv[3]), b"x" * (1 << 20)
        while left > 0:
            left -= os.write(1, block[: min(left, len(block))])
        print("\nflood done", flush=True)
        serve(port, SITE)
    elif mode == "swarm":
        for n in range(int(sys.argv[3])):
            argv = ["/bin/sh", "-c", "sleep 3600; :", sys.argv[4]]
            if n % 2:
                subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            elif os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.execv(argv[0], argv)
                os._exit(0)
            else:
                os.wait()
        print(f"swarm of {sys.argv[3]} started", flush=True)
        serve(port, SITE)
    elif mode == "graceful":
        graceful()
        serve(port, SITE)
    elif mode == "api":
        with http.server.ThreadingHTTPServer(("127.0.0.1", port), Api) as httpd:
            print(f"api on {port}", flush=True)
            httpd.serve_forever()
    elif mode == "web":
        handler = functools.partial(Web, directory=sys.argv[3])
        with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as httpd:
            print(f"web on {port}, API at {os.environ.get('API_URL')}", flush=True)
            httpd.serve_forever()
    else:
        sys.exit(f"unknown mode {mode!r}")


class Api(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/die":
            print("api: told to die", flush=True)
            os._exit(5)
        body = b'{"ok": true}' if self.path == "/health" else b'["apples", "pears"]'
        self.send_response(200 if self.path in ("/health", "/items") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write("api: %s\n" % (format % args))


class Web(Quiet):
    def do_GET(self) -> None:
        if self.path == "/config.js":
            body = f"window.API_URL = {os.environ.get('API_URL', '')!r};".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript")
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


def _reach_x(path: str) -> str:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(path)
        except OSError as exc:
            return f"refused ({exc.strerror})"
        # The X handshake without a cookie: the byte order, protocol 11.0, no auth.
        sock.sendall(b"l\0\x0b\0\0\0\0\0\0\0\0\0")
        answer = sock.recv(1)
        return "accepted" if answer == b"\x01" else "refused (authorization)"


def hostile(marker: str) -> None:
    # What it was given at exec (Python adds LC_CTYPE to os.environ in the C locale).
    with open("/proc/self/environ", "rb") as fh:
        names = sorted(item.split(b"=", 1)[0].decode() for item in fh.read().split(b"\0") if item)
    print(f"hostile: env {' '.join(names)}", flush=True)
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    print(f"hostile: sees {len(pids)} processes", flush=True)
    displays = []
    if os.path.isdir("/tmp/.X11-unix"):
        displays = sorted(os.listdir("/tmp/.X11-unix"))
    for name in displays:
        print(f"hostile: display {name} {_reach_x('/tmp/.X11-unix/' + name)}", flush=True)
    for number in range(0, 20):
        print(f"hostile: abstract X{number} {_reach_x(chr(0) + '/tmp/.X11-unix/X' + str(number))}")
    sys.stdout.flush()
    if os.fork() == 0:  # a double fork into a new session, with nothing in its environment
        os.setsid()
        if os.fork() == 0:
            os.execve("/bin/sh", ["/bin/sh", "-c", "sleep 3600; :", marker], {})
        os._exit(0)
    os.wait()


if __name__ == "__main__":
    main()
