"""Commands start from the devbox's init (its launcher), and one engine owns a data dir."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.launcher import launch, launcher_socket
from scenario_mcp.models import DevboxCreateParameters

pytestmark = pytest.mark.anyio


async def test_commands_are_started_by_the_devbox_init(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters())
    socket_path = launcher_socket(backend.devboxes.boxes_dir / box.id)
    assert socket_path is not None
    assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600  # the server's uid only
    result = await backend.execute(box.id, "ps -o ppid= -p $$; ulimit -f; grep SigIgn /proc/self/status")
    parent, file_limit, ignored = (result.stdout or "").splitlines()
    assert parent.strip() == "1"  # init started it: no nsenter in between
    assert file_limit != "unlimited"  # the disk cap's file size limit applies
    assert ignored.split()[1] == "0" * 16  # no signal ignored, whatever the server ignores


async def test_a_request_for_other_rlimits_still_gets_them(backend: LocalBackend) -> None:
    # Init takes a devbox's rlimits on itself at its first command, so commands inherit them; a
    # request that asks for others (a restarted server with other limits) is forked to get them.
    box = await backend.create_devbox(DevboxCreateParameters())
    devbox_limit = (await backend.execute(box.id, "ulimit -f")).stdout
    socket_path = launcher_socket(backend.devboxes.boxes_dir / box.id)
    assert socket_path is not None
    read_end, write_end = os.pipe()
    with open(os.devnull, "rb") as devnull:
        process = launch(
            socket_path,
            ["/bin/sh", "-c", "ulimit -f"],
            {"PATH": "/usr/bin:/bin"},
            (devnull.fileno(), write_end, write_end),
            rlimits={"FSIZE": 512 * 1024},
        )
    os.close(write_end)
    assert await process.wait() == 0 and process.start_error is None
    with os.fdopen(read_end, "rb") as output:
        assert output.read() == b"1024\n"  # 512 KiB in ulimit's 512-byte blocks
    await process.aclose()
    assert (await backend.execute(box.id, "ulimit -f")).stdout == devbox_limit  # init's own stay


async def test_init_and_commands_sit_in_the_devbox_cgroups(backend: LocalBackend) -> None:
    first = await backend.create_devbox(DevboxCreateParameters())
    second = await backend.create_devbox(DevboxCreateParameters())  # the spawner's next, parked ahead
    for box in (first, second):
        result = await backend.execute(box.id, "grep -E ':(pids|memory):' /proc/1/cgroup /proc/self/cgroup")
        lines = (result.stdout or "").splitlines()
        assert len(lines) == 4 and all(line.endswith(f"/scenario-mcp/{box.id}") for line in lines), lines


async def test_a_command_the_caller_abandons_is_killed(backend: LocalBackend) -> None:
    import anyio

    box = await backend.create_devbox(DevboxCreateParameters())
    with anyio.move_on_after(0.5):
        await backend.execute(box.id, "sleep 300")
    left = await backend.execute(box.id, "ps -eo args | grep -c '^sleep 300' || true")
    assert left.stdout == "0\n"


async def test_one_engine_per_data_dir(backend: LocalBackend, data_dir: Path) -> None:
    with pytest.raises(RuntimeError, match="another scenario-mcp engine is using the data dir"):
        async with LocalBackend(data_dir):
            pass
