"""The HTTP transports: streamable HTTP (`/mcp`) and the legacy SSE transport (`/sse` + `/messages/`).

One guard sits in front of both, before the SDK sees a request:
- `Host` must name this server (loopback names, or the address it is bound to): 421 otherwise,
  so a DNS-rebinding page cannot talk to a loopback server;
- a browser's `Origin`, when sent, must be one of those hosts too: 403 otherwise;
- with a token, `Authorization: Bearer <token>` is required: 401 otherwise. A token is mandatory
  when binding anything but a loopback address. Tokens are never read from the query string.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import socket
import sys
from typing import Any, Literal
from urllib.parse import urlsplit

import uvicorn
from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

HttpTransport = Literal["sse", "http"]
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
MCP_PATH = "/mcp"
SSE_PATH = "/sse"
MESSAGES_PATH = "/messages/"


class BindRefused(ValueError):
    """Binding as asked would expose the server without authentication."""


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise BindRefused(
            f"refusing to serve on {host!r} without authentication: that address is reachable from other machines. "
            "Pass --token (or set SCENARIO_MCP_TOKEN) so clients must send `Authorization: Bearer <token>`, "
            "or bind 127.0.0.1"
        )


def _hostname(value: str) -> str:
    """`example.com:8000` / `[::1]:8000` / `127.0.0.1` -> the bare, lower-case host name."""
    parsed = urlsplit(f"//{value}")
    return (parsed.hostname or "").lower()


class HttpGuard:
    """ASGI middleware: Host (421), Origin (403) and bearer-token (401) checks, in that order."""

    def __init__(self, app: ASGIApp, *, bind_host: str, token: str | None) -> None:
        self.app = app
        self.token = token
        bare = bind_host.strip("[]").lower()
        # A wildcard bind answers on every address the machine has: any Host may be right, and the
        # token (mandatory there) is what keeps strangers out.
        self.any_host = bare in WILDCARD_HOSTS
        self.allowed_hosts = set(LOOPBACK_NAMES) | {bare}

    def _host_ok(self, host: str | None) -> bool:
        if not host:
            return False
        return self.any_host or _hostname(host) in self.allowed_hosts

    def _origin_ok(self, origin: str | None) -> bool:
        if origin is None:
            return True  # not a browser, or same-origin
        parsed = urlsplit(origin)
        if parsed.scheme not in ("http", "https"):
            return False
        return self.any_host or (parsed.hostname or "").lower() in self.allowed_hosts

    def _token_ok(self, authorization: str | None) -> bool:
        if self.token is None:
            return True
        scheme, _, credentials = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(credentials.strip().encode(), self.token.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        response: JSONResponse | None = None
        if not self._host_ok(headers.get("host")):
            response = JSONResponse({"error": "misdirected request: unexpected Host header"}, status_code=421)
        elif not self._origin_ok(headers.get("origin")):
            response = JSONResponse({"error": "forbidden: cross-origin request refused"}, status_code=403)
        elif not self._token_ok(headers.get("authorization")):
            response = JSONResponse(
                {"error": "unauthorized: send `Authorization: Bearer <token>`"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="scenario-mcp"'},
            )
        if response is not None:
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def http_app(server: MCPServer[Any], transport: HttpTransport, *, host: str, token: str | None) -> ASGIApp:
    """The ASGI app serving `server` over `transport`, behind the guard."""
    # The guard does the Host/Origin checks for both transports, with the same rules; the SDK's
    # own copy of them would only disagree on non-loopback binds.
    unchecked = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    if transport == "sse":
        app: ASGIApp = server.sse_app(
            sse_path=SSE_PATH, message_path=MESSAGES_PATH, transport_security=unchecked, host=host
        )
    else:
        app = server.streamable_http_app(streamable_http_path=MCP_PATH, transport_security=unchecked, host=host)
    return HttpGuard(app, bind_host=host, token=token)


def endpoint_path(transport: HttpTransport) -> str:
    return SSE_PATH if transport == "sse" else MCP_PATH


async def serve_http(
    server: MCPServer[Any], transport: HttpTransport, *, host: str, port: int, token: str | None, log_level: str
) -> None:
    """Serve until cancelled. Port 0 picks a free port; the URL served is printed on stderr."""
    check_bind(host, token)
    # Bind here rather than in uvicorn: a busy port is a clear OSError, and the real port is known.
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.create_server((host.strip("[]"), port), family=family)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
    kind = "legacy SSE" if transport == "sse" else "streamable HTTP"
    config = uvicorn.Config(
        http_app(server, transport, host=host, token=token),
        log_level=log_level.lower(),
        lifespan="on",
        access_log=False,
    )
    print(
        f"scenario-mcp: serving {kind} on http://{shown}:{bound_port}{endpoint_path(transport)}",
        file=sys.stderr,
        flush=True,
    )
    try:
        await uvicorn.Server(config).serve(sockets=[sock])
    finally:
        sock.close()
