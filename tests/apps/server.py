"""Dev-server stand-ins for the failure paths: python3 server.py MODE PORT [ARG].

Modes:
  serve PORT DIR        serve DIR (a normal dev server)
  die PORT              print an error to stderr and exit 3 at once
  never PORT            listen, but answer every request with 503 forever
  slow PORT SECONDS     print, wait SECONDS, then serve the site
  fork PORT MARKER      start a grandchild in its own session (like npm 11 or a watcher),
                        which sleeps with MARKER in its argv, then serve the site
  outbound PORT URL     try to GET URL (print whether it was reached), then serve the site
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import time

SITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "site")


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write("%s\n" % (format % args))


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
    else:
        sys.exit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
