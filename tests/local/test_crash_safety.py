"""kill -9 at random points, restart on the same data dir: nothing acknowledged is lost (issue 3)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sys
from pathlib import Path

import anyio
import pytest

from scenario_mcp.backend import InvalidStateError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.launcher import launcher_socket, terminate

from ..conftest import seed_default_blueprint, shutdown_all

pytestmark = pytest.mark.anyio

KILLS = 20
WORKER = Path(__file__).with_name("crash_worker.py")


async def run_and_kill(data_dir: Path, delay: float) -> list[dict[str, object]]:
    """Start the worker, let it work for `delay` seconds, kill -9 it; return what it acknowledged."""
    acks: list[dict[str, object]] = []
    process = await anyio.open_process([sys.executable, "-u", str(WORKER), str(data_dir)])
    assert process.stdout is not None
    buffer = b""
    with anyio.move_on_after(delay):
        async for chunk in process.stdout:
            buffer += chunk
    os.kill(process.pid, signal.SIGKILL)
    await process.wait()
    async for chunk in process.stdout:  # what it wrote before dying
        buffer += chunk
    await process.aclose()
    for line in buffer.decode().splitlines():
        acks.append(json.loads(line))
    return acks


def scorer_sockets(scoring: Path) -> list[Path]:
    """The launcher sockets of scorer sandboxes under `scoring`. The engine removes a finished
    scoring's directory in the background (off the scoring's critical path), so one may go while
    it is listed: what is gone has no socket."""

    def entries(directory: Path) -> list[Path]:
        try:
            return list(directory.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []

    sockets = [function / "box" / "launcher.sock" for work in entries(scoring) for function in entries(work)]
    return [socket_path for socket_path in sockets if socket_path.exists()]


async def check_survivors(backend: LocalBackend, acks: list[dict[str, object]]) -> None:
    store = backend._store
    assert store.integrity_check() == "ok"
    scores: dict[str, float] = {}
    for entry in acks:
        kind, ident = str(entry["kind"]), str(entry["id"])
        if kind == "devbox":
            assert await store.get("devboxes", ident) is not None, entry
        elif kind == "execution":
            row = await store.get("executions", ident)
            assert row is not None and row.data["status"] == "completed", entry
        elif kind == "snapshot":
            assert await store.get("snapshots", ident) is not None, entry
            assert backend.devboxes.layers.exists(ident), entry
        elif kind == "scenario":
            assert await store.get("scenarios", ident) is not None, entry
        elif kind in ("run", "scoring", "completed"):
            assert await store.get("runs", ident) is not None, entry
        elif kind == "score":
            scores[ident] = float(entry["score"])  # type: ignore[arg-type]
    for run_id, score in scores.items():
        run = await backend.get_run(run_id)
        assert run.scoring_contract_result is not None and run.scoring_contract_result.score == score
    # Runs caught scoring are scored again or failed with a reason; none stays stuck.
    with anyio.fail_after(60):
        while (await backend.list_runs(limit=5000, state="scoring")).runs:
            await anyio.sleep(0.05)
    for run in (await backend.list_runs(limit=5000, state="failed")).runs:
        assert run.failure_reason
    # No scorer sandbox of a killed server is left running.
    for socket_path in scorer_sockets(backend.data_dir / "scoring"):
        assert not terminate(socket_path), socket_path
    # Devboxes: restored (alive) or failed with a reason; nothing of a dead one left on the host.
    host_mounts = Path("/proc/mounts").read_text()
    for box in (await backend.list_devboxes(limit=5000)).devboxes:
        if box.status == "running":
            try:
                assert (await backend.execute(box.id, "true")).exit_status == 0
                continue
            except InvalidStateError:
                # Its init died after reconciliation looked (a shutdown cut short by the kill):
                # the engine notices on first use and fails it with a reason, as it should.
                box = await backend.get_devbox(box.id)
        assert box.status in ("shutdown", "failure"), box
        if box.status == "failure":
            assert box.failure_message
        assert box.id not in host_mounts
        # No init of it is left answering on its launcher socket (an init whose create was cut
        # short by the kill has no pid on record, only this).
        socket_path = launcher_socket(backend.devboxes.boxes_dir / box.id)
        assert socket_path is None or not terminate(socket_path), box.id
        for controller in ("pids", "freezer"):
            procs = Path("/sys/fs/cgroup", controller, "scenario-mcp", box.id, "cgroup.procs")
            with contextlib.suppress(FileNotFoundError):  # removed: nothing left, as it should be
                assert not procs.read_text().strip(), (box.id, controller)


async def test_kill_9_at_random_points_loses_nothing(tmp_path: Path, default_blueprint_cache: Path) -> None:
    data_dir = tmp_path / "data"
    async with LocalBackend(data_dir) as engine:
        await seed_default_blueprint(engine, default_blueprint_cache)
    rng = random.Random(20261121)
    all_acks: list[dict[str, object]] = []
    try:
        for _ in range(KILLS):
            all_acks += await run_and_kill(data_dir, rng.uniform(0.3, 2.5))
            async with LocalBackend(data_dir) as backend:
                await check_survivors(backend, all_acks)
        assert sum(1 for a in all_acks if a["kind"] == "score") >= 3, "the worker should get some runs scored"
    finally:
        async with LocalBackend(data_dir) as backend:
            await shutdown_all(backend)
