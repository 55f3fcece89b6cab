"""The HTTP transports' listening socket."""

from __future__ import annotations

import asyncio
import socket

import pytest

from scenario_mcp.mcp_server.http import listening_socket

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_accepted_connections_send_without_waiting_for_acks(anyio_backend: str) -> None:
    """asyncio turns Nagle off only for sockets made with proto IPPROTO_TCP; with it on, a
    response's body written after its headers waited ~40 ms for the client's delayed ACK."""
    listener = listening_socket("127.0.0.1", 0, socket.AF_INET)
    nodelay: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nodelay.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accepted, sock=listener)
    try:
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        assert await asyncio.wait_for(nodelay, 5) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


def test_a_busy_port_is_a_clear_error() -> None:
    first = listening_socket("127.0.0.1", 0, socket.AF_INET)
    try:
        with pytest.raises(OSError, match="in use"):
            listening_socket("127.0.0.1", first.getsockname()[1], socket.AF_INET)
    finally:
        first.close()
