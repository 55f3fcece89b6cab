"""The engine's own helper programs: off the event loop, below the server in priority, ended
with their caller."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import anyio
import pytest

from scenario_mcp.local import helper_processes
from scenario_mcp.local.helper_processes import HELPER_NICE

pytestmark = pytest.mark.anyio


def nice_of(stat_line: str) -> int:
    return int(stat_line.rsplit(")", 1)[1].split()[16])


async def test_run_collects_output_and_status() -> None:
    code, out, err = await helper_processes.run(["sh", "-c", "cat; echo oops >&2; exit 3"], input=b"hello")
    assert (code, out, err) == (3, b"hello", b"oops\n")


async def test_more_than_a_pipe_holds_goes_both_ways() -> None:
    data = os.urandom(3 << 20)
    code, out, err = await helper_processes.run(["sh", "-c", "cat; head -c 200000 /dev/zero >&2"], input=data)
    assert code == 0 and out == data and err == bytes(200000)


async def test_a_helper_that_reads_nothing_still_ends() -> None:
    code, out, _ = await helper_processes.run(["echo", "done"], input=os.urandom(1 << 20))
    assert (code, out) == (0, b"done\n")


async def test_a_helper_and_what_it_starts_run_below_the_server() -> None:
    """The server keeps its priority; the helper and its children get HELPER_NICE (set from the
    server once the helper has started: its first moments may still run at the server's)."""
    _, out, _ = await helper_processes.run(["sh", "-c", "sleep 0.2; cat /proc/$$/stat; sh -c 'cat /proc/$$/stat'"])
    own, child = out.decode().splitlines()
    assert nice_of(own) == nice_of(child) == os.getpriority(os.PRIO_PROCESS, 0) + HELPER_NICE
    assert os.getpriority(os.PRIO_PROCESS, 0) != HELPER_NICE


async def test_the_event_loop_stays_free_while_a_helper_runs() -> None:
    """A helper that runs 0.5 s leaves the loop ticking every few ms."""
    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await anyio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        code, _, _ = await helper_processes.run(["sleep", "0.5"])
        tg.cancel_scope.cancel()
    assert code == 0
    assert len(gaps) > 20


async def test_a_cancelled_run_kills_the_helpers_whole_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    with anyio.move_on_after(1):
        await helper_processes.run(["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"])
    background = int(pid_file.read_text())
    with anyio.fail_after(5):
        while _alive(background):
            await anyio.sleep(0.01)


async def test_wait_and_end_of_a_started_helper() -> None:
    process = await helper_processes.start(
        ["sleep", "60"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=None
    )
    with anyio.move_on_after(0.2) as scope:
        await helper_processes.wait(process)
    assert scope.cancelled_caught and process.returncode is None
    await helper_processes.end(process)
    assert process.returncode == -9
    assert await helper_processes.wait(process) == -9


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
