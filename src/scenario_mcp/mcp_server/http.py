"""The HTTP transports: streamable HTTP (`/mcp`) and the legacy SSE transport (`/sse` + `/messages/`).

Both sit behind the guard the REST API uses too (`scenario_mcp.http_guard`): Host (421), browser
Origin (403) and, with a token, `Authorization: Bearer <token>` (401), before the SDK sees a request.
Given the backend, the same guard fronts the benchmark-run pages at /runs and /runs/{id} (run_pages.py).
Streamable HTTP answers quick calls through the SDK's JSON-configured session manager (quick_calls.py).
"""

from __future__ import annotations

import logging
import socket
import sys
from functools import partial
from typing import Any, Literal

from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from ..backend import Backend
from ..http_guard import HttpGuard, check_bind
from ..stop_signals import Server, serve_until_stopped, server_config
from .quick_calls import QuickCalls
from .run_pages import is_run_page, run_pages

log = logging.getLogger(__name__)

HttpTransport = Literal["sse", "http"]
MCP_PATH = "/mcp"
SSE_PATH = "/sse"
MESSAGES_PATH = "/messages/"


def http_app(
    server: MCPServer[Any], transport: HttpTransport, *, host: str, token: str | None, backend: Backend | None = None
) -> ASGIApp:
    """The ASGI app serving `server` over `transport` (and, given `backend`, the run pages), behind the guard."""
    # The guard does the Host/Origin checks for both transports, with the same rules; the SDK's
    # own copy of them would only disagree on non-loopback binds.
    unchecked = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    if transport == "sse":
        app: ASGIApp = server.sse_app(
            sse_path=SSE_PATH, message_path=MESSAGES_PATH, transport_security=unchecked, host=host
        )
    else:
        app = server.streamable_http_app(streamable_http_path=MCP_PATH, transport_security=unchecked, host=host)
        app = QuickCalls(app, server, path=MCP_PATH, security=unchecked)
    if backend is not None:
        app = _with_run_pages(app, run_pages(backend))
    return HttpGuard(app, bind_host=host, token=token)


def _with_run_pages(mcp: ASGIApp, pages: ASGIApp) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_run_page(scope["path"]):
            await pages(scope, receive, send)
        else:
            await mcp(scope, receive, send)

    return app


def endpoint_path(transport: HttpTransport) -> str:
    return SSE_PATH if transport == "sse" else MCP_PATH


def listening_socket(host: str, port: int, family: socket.AddressFamily) -> socket.socket:
    """A TCP listener whose accepted connections send at once (TCP_NODELAY).

    asyncio sets TCP_NODELAY only on sockets whose `proto` is IPPROTO_TCP, and
    `socket.create_server` makes them with proto 0: each response's body, written after its
    headers, then waited for the client's delayed ACK (~40 ms per call).
    """
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock


async def serve_http(
    server: MCPServer[Any],
    transport: HttpTransport,
    *,
    host: str,
    port: int,
    token: str | None,
    log_level: str,
    backend: Backend | None = None,
) -> None:
    """Serve until cancelled. Port 0 picks a free port; the URL served is printed on stderr."""
    check_bind(host, token)
    # Bind here rather than in uvicorn: a busy port is a clear OSError, and the real port is known.
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = listening_socket(host.strip("[]"), port, family)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
    kind = "legacy SSE" if transport == "sse" else "streamable HTTP"
    config = server_config(
        http_app(server, transport, host=host, token=token, backend=backend),
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
        http_server = Server(config)
        await serve_until_stopped(
            partial(http_server.serve, sockets=[sock]), partial(setattr, http_server, "should_exit", True)
        )
    finally:
        sock.close()
