"""A real uvicorn server for the REST API on 127.0.0.1, in the test's own event loop.

The backend's task groups and events belong to the test's loop, so the server runs there too
(a thread would need a second loop). It listens on a socket bound to a free port before start.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import uvicorn
from starlette.types import ASGIApp

from scenario_mcp.backend import Backend
from scenario_mcp.rest import build_rest_app

TOKEN = "test-token-5f1c"


@asynccontextmanager
async def serve_rest(backend: Backend, token: str | None = TOKEN) -> AsyncIterator[str]:
    """Serve `backend` over REST on 127.0.0.1; yields the base URL."""
    async with serve_app(build_rest_app(backend, token=token)) as url:
        yield url


@asynccontextmanager
async def serve_app(app: ASGIApp, *, lifespan: bool = False) -> AsyncIterator[str]:
    """Serve any ASGI app with uvicorn on a free port of 127.0.0.1; yields the base URL.

    `lifespan` runs the app's startup and shutdown (the MCP transports start their session manager there)."""
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it every response written in two parts waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="on" if lifespan else "off",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(10):
            while not server.started:
                await anyio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
    sock.close()
