"""The spawner helper: a sandbox nobody can hear of never runs; what a restart finds is ended."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest

from scenario_mcp.backend import InvalidStateError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.launcher import end_stray_init, launcher_socket
from scenario_mcp.local.sandbox import SandboxSpec, mount_plan, prepare_dirs, root_plan, spawner
from scenario_mcp.models import DevboxCreateParameters

pytestmark = pytest.mark.anyio


async def _request(backend: LocalBackend, state_dir: Path) -> bytes:
    """A spawner request for a sandbox on the default environment, as Sandbox.start sends it."""
    environment = await backend.blueprints.environment(blueprint_id=None, blueprint_name=None, snapshot_id=None)
    layers = environment.layers
    store = backend.devboxes.layers
    spec = SandboxSpec(
        state_dir=state_dir,
        layers=tuple(store.path(layer) for layer in layers),
        skeleton=store.skeleton,
        etc_mask=store.etc_mask,
    )
    prepare_dirs(spec)
    request = {
        "root": str(spec.mount_point),
        "plan": mount_plan.encode(root_plan(spec)),
        "network": False,
        "hostname": "t",
        "launcher_dir": str(state_dir),
    }
    return json.dumps(request).encode() + b"\n"


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie (its parent, the spawner, is gone too)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _spawner() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", "-S", spawner.__file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )


async def test_a_start_is_answered_and_a_stray_init_is_ended(backend: LocalBackend, tmp_path: Path) -> None:
    request = await _request(backend, tmp_path / "box")
    with _spawner() as process:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(request)
        process.stdin.flush()
        reply = json.loads(process.stdout.readline())
        assert reply["ok"], reply
    # Nobody recorded it: a restarted server ends it by its state directory, and waits until it has.
    assert launcher_socket(tmp_path / "box") is not None
    assert await anyio.to_thread.run_sync(end_stray_init, tmp_path / "box")
    assert _gone(int(reply["pid"]))
    assert not await anyio.to_thread.run_sync(end_stray_init, tmp_path / "box")


async def test_a_request_left_by_a_dead_server_starts_nothing(backend: LocalBackend, tmp_path: Path) -> None:
    request = await _request(backend, tmp_path / "box")
    with _spawner() as process:
        assert process.stdin is not None and process.stdout is not None
        process.stdout.close()  # the server is gone: nobody reads the answer
        # Its request is still in the pipe, as a server killed after writing it leaves it.
        process.stdin.write(request)
    # A restarted server may have looked already: had the init started, it would have a socket.
    assert launcher_socket(tmp_path / "box") is None


def test_ending_a_stray_init_waits_for_a_start_in_flight(tmp_path: Path) -> None:
    held = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(held, fcntl.LOCK_SH)  # as a spawner holds a sandbox's directory while it starts it
    started = time.monotonic()
    threading.Timer(0.3, os.close, (held,)).start()
    assert not end_stray_init(tmp_path)
    assert time.monotonic() - started >= 0.3


async def test_a_killed_init_is_not_alive_while_it_exits(backend: LocalBackend) -> None:
    box = (await backend.create_devbox(DevboxCreateParameters())).id
    sandbox = await backend.devboxes.sandbox(box)
    os.kill(sandbox.init_pid, signal.SIGKILL)
    # Tearing down its namespaces takes milliseconds, and its launcher accepts connections at
    # first: a restart must not take back a devbox whose init was being killed (a shutdown a
    # crash cut short). It is dead from the kill on.
    assert not sandbox.alive()
    with pytest.raises(InvalidStateError, match="has died"):
        await backend.devboxes.sandbox(box)
    assert (await backend.get_devbox(box)).status == "failure"


async def test_devbox_processes_run_below_the_server(backend: LocalBackend) -> None:
    """The spawner, and so every sandbox init and what it starts, runs at SANDBOX_NICE: a
    server whose devboxes keep the cores busy still answers."""
    box = await backend.create_devbox(DevboxCreateParameters())
    result = await backend.execute(box.id, "cat /proc/self/stat")
    nice = int((result.stdout or "").rsplit(")", 1)[1].split()[16])
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert nice == max(own, spawner.SANDBOX_NICE)


async def test_concurrent_starts_use_several_spawners(backend: LocalBackend) -> None:
    """A start waits for its init to build the root; with several helpers, starts overlap."""
    from scenario_mcp.local.sandbox import handle

    boxes: list[str] = []

    async def create() -> None:
        boxes.append((await backend.create_devbox(DevboxCreateParameters())).id)

    async with anyio.create_task_group() as tg:
        for _ in range(2 * handle.SPAWNERS):
            tg.start_soon(create)
    # Each init's parent is the spawner that started it (a child subreaper).
    parents = set()
    for box_id in boxes:
        init_pid = (await backend.devboxes.sandbox(box_id)).init_pid
        status = Path(f"/proc/{init_pid}/status").read_text()
        parents.add(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
    assert len(parents) >= 2
