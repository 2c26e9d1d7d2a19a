"""The shop's API: the environment's start command leaves it running in the background."""

import http.server
import sys


class Items(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/items" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(b'["apples", "pears"]')


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Items).serve_forever()
