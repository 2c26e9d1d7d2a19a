"""A dev server that is broken on its first start and fine on every later one:
python3 flaky.py PORT. It counts its starts in the file ``starts`` in its folder, so a
recipe run again (``--retries``, ``--repeat``) finds it fixed."""

from __future__ import annotations

import http.server
import sys
from pathlib import Path

COUNTER = Path("starts")
STARTS = (int(COUNTER.read_text() or 0) if COUNTER.exists() else 0) + 1
COUNTER.write_text(str(STARTS))
TEXT = "Saved" if STARTS > 1 else "Broken"
PAGE = f"<!doctype html><title>Flaky</title><h1>{TEXT}</h1>".encode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{format % args}\n")


http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
