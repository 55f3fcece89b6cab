"""RemoteBackend's commands against this project's REST API on 127.0.0.1 over a real LocalBackend:
what Runloop's API lacks (a command's timeout, a working directory) the client does itself."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import anyio
import pytest

from scenario_mcp.backend import InvalidRequestError
from scenario_mcp.conventions import MAX_EXEC_TIMEOUT
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import DevboxCreateParameters
from scenario_mcp.remote import RemoteBackend
from scenario_mcp.remote.executions import checked_timeout, uuid7
from tests.rest.server import TOKEN, serve_rest

pytestmark = pytest.mark.anyio


@pytest.fixture
async def remote(backend: LocalBackend) -> AsyncIterator[RemoteBackend]:
    async with serve_rest(backend) as url, RemoteBackend(url, TOKEN) as client:
        yield client


async def test_execute_async_is_killed_at_its_timeout(remote: RemoteBackend) -> None:
    box = await remote.create_devbox(DevboxCreateParameters(name="deadline"))
    started = await remote.execute_async(box.id, "sleep 30; echo survived", timeout_seconds=1)
    assert started.status != "completed"
    with anyio.fail_after(15):
        finished = await remote.wait_for_execution(box.id, started.execution_id, timeout_seconds=15)
    assert finished.status == "completed" and finished.exit_status != 0
    assert "survived" not in (finished.stdout or "")


async def test_a_relative_working_directory_is_under_home(remote: RemoteBackend) -> None:
    box = await remote.create_devbox(DevboxCreateParameters(name="cwd"))
    made = await remote.execute(box.id, 'mkdir -p "it\'s here"')
    assert made.exit_status == 0
    result = await remote.execute(box.id, "pwd", working_directory="it's here")
    assert result.stdout == "/home/user/it's here\n"


def test_a_timeout_out_of_range_is_refused() -> None:
    assert checked_timeout(None) == 120.0
    assert checked_timeout(MAX_EXEC_TIMEOUT) == MAX_EXEC_TIMEOUT
    for bad in (0, -1, MAX_EXEC_TIMEOUT + 1):
        with pytest.raises(InvalidRequestError, match="timeout_seconds must be in"):
            checked_timeout(bad)


def test_command_ids_are_uuid7_in_time_order() -> None:
    before = time.time_ns() // 1_000_000
    ids = [uuid.UUID(uuid7()) for _ in range(200)]
    after = time.time_ns() // 1_000_000
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    stamps = [u.int >> 80 for u in ids]
    assert stamps == sorted(stamps) and before <= stamps[0] and stamps[-1] <= after
    assert len(set(ids)) == len(ids)
