"""Tunnels: enable_tunnel / remove_tunnel, and the tunnel host itself.

Locally the tunnel host is this server: a request whose Host is `{port}-{tunnel_key}.localhost[:api
port]` (browsers send every `*.localhost` to loopback) is not an API call but goes to that port of
the devbox behind the tunnel, with the tunnel's own credential (`X-Runloop-Tunnel-Authorization:
Bearer {auth_token}` when authenticated) instead of the API's. Each request is forwarded whole on a
connection made into the devbox's network namespace (local/tunnels.py), and its answer returned
whole (no streaming, no WebSocket upgrade).
"""

from __future__ import annotations

import http.client
import re
import socket
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..backend import Backend, BackendError
from ..models import TunnelConfig
from .common import RouteTable, backend, body, error_response, json_response, model_response, path_param

TUNNEL_HOST = re.compile(r"(?P<port>\d{1,5})-(?P<key>[a-z0-9]+)\.localhost(:\d+)?", re.I)
AUTH_HEADER = "x-runloop-tunnel-authorization"
# Hop-by-hop headers (RFC 9110 7.6.1) and the tunnel's own credential stay on this side.
NOT_FORWARDED = frozenset({"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", AUTH_HEADER})
FORWARD_TIMEOUT = 60.0


async def enable_tunnel(request: Request) -> Response:
    config = await body(request, TunnelConfig, required=False)
    return model_response(await backend(request).enable_tunnel(path_param(request, "id"), config))


async def remove_tunnel(request: Request) -> Response:
    await backend(request).remove_tunnel(path_param(request, "id"))
    return json_response({})


ROUTES: RouteTable = [
    ("POST", "/v1/devboxes/{id}/enable_tunnel", enable_tunnel),
    ("POST", "/v1/devboxes/{id}/remove_tunnel", remove_tunnel),
]


def _forward(
    sock: socket.socket, method: str, target: str, headers: list[tuple[str, str]], content: bytes
) -> tuple[int, list[tuple[str, str]], bytes]:
    """One HTTP/1.1 exchange on a connected socket (blocking: run in a worker thread)."""
    sock.settimeout(FORWARD_TIMEOUT)
    connection = http.client.HTTPConnection("127.0.0.1")
    connection.sock = sock
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        connection.putheader("Connection", "close")
        if content or method in ("POST", "PUT", "PATCH"):
            connection.putheader("Content-Length", str(len(content)))
        connection.endheaders(content or None)
        answer = connection.getresponse()
        data = answer.read()
        kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in NOT_FORWARDED | {"content-length"}]
        return answer.status, kept, data
    finally:
        connection.close()


class TunnelHost:
    """ASGI middleware: requests to a tunnel's host go to the devbox; all others to the API."""

    def __init__(self, app: ASGIApp, backend: Backend) -> None:
        self.app = app
        self.backend = backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
            matched = TUNNEL_HOST.fullmatch(host)
            if matched is not None:
                response = await self._forward(Request(scope, receive), matched)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _forward(self, request: Request, matched: re.Match[str]) -> Response:
        connect: Any = getattr(self.backend, "tunnel_connect", None)
        if connect is None:
            return error_response(404, "this server's backend serves no tunnels (its own engine's devboxes only)")
        port = int(matched["port"])
        if not 1 <= port <= 65535:
            return error_response(400, f"port {port} is not a TCP port (1-65535)")
        try:
            sock = await connect(matched["key"].lower(), port, request.headers.get(AUTH_HEADER))
        except BackendError as exc:
            status = 502 if exc.status >= 500 else exc.status
            return error_response(status, exc.message)
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in NOT_FORWARDED]
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        content = await request.body()
        try:
            status, answer_headers, data = await anyio.to_thread.run_sync(
                _forward, sock, request.method, target, headers, content
            )
        except (OSError, http.client.HTTPException) as exc:
            return error_response(502, f"the devbox's server on port {port} did not answer over HTTP ({exc})")
        response = Response(data, status_code=status)
        for name, value in answer_headers:
            response.headers.append(name, value)
        return response
