"""Streamable HTTP for ``verifier mcp --http``: loopback by default, a bearer token always."""

from __future__ import annotations

import hmac
import socket
from typing import Any

import anyio
import uvicorn
from mcp.server.lowlevel import Server
from starlette.types import ASGIApp, Receive, Scope, Send

from verifier.errors import VerifierError

__all__ = ("bind", "serve_http")


class _BearerGuard:
    """Refuses (401) every HTTP request without ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                body = b'{"error": "unauthorized: send Authorization: Bearer <token>"}\n'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="verifier"'),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self._app(scope, receive, send)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        msg = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        raise VerifierError(msg) from exc
    return sock


async def serve_http(
    server: Server[Any], sock: socket.socket, host: str, token: str, stop: anyio.Event
) -> None:
    app = _BearerGuard(server.streamable_http_app(host=host), token)
    config = uvicorn.Config(
        app, log_config=None, lifespan="on", ws="none", timeout_graceful_shutdown=2
    )
    web = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            await stop.wait()
            web.should_exit = True

        tg.start_soon(watch)
        await web.serve(sockets=[sock])
        tg.cancel_scope.cancel()
