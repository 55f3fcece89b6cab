"""RemoteBackend's own setup: where it connects, and what it says when it cannot."""

from __future__ import annotations

import socket

import anyio
import pytest

from scenario_mcp.remote import RemoteBackend, RemoteError


@pytest.mark.anyio
async def test_unreachable_server_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    async with RemoteBackend(f"http://127.0.0.1:{port}", "k", max_retries=2) as remote:
        with anyio.fail_after(10), pytest.raises(RemoteError) as unreachable:
            await remote.get_devbox("dbx_x")
    assert unreachable.value.status == 503 and "cannot reach the remote API" in unreachable.value.message


def test_from_env_requires_a_key_for_runloop_cloud() -> None:
    with pytest.raises(RuntimeError, match="RUNLOOP_API_KEY"):
        RemoteBackend.from_env({})
    remote = RemoteBackend.from_env({"RUNLOOP_BASE_URL": "http://127.0.0.1:9/", "RUNLOOP_API_KEY": "k"})
    assert remote.base_url == "http://127.0.0.1:9"
