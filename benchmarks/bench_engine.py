"""Engine benchmarks: devbox create and exec, each next to the bare cost of the same kernel work.

    .venv/bin/python benchmarks/bench_engine.py [--runs N]

(a) LocalBackend.create_devbox from a snapshot (the devbox is shut down after each, untimed)
    vs. `bwrap --unshare-all --ro-bind / / true`: a fresh set of namespaces around a trivial program.
    Once back to back, once each 100 ms after the last: the spawner prepares the next sandbox (and
    parks it in its cgroups) while it waits, so a create that is not back to back skips that part.
(a') Sandbox.start alone for the same layers (no database writes, no cgroups), same floor.
(b) LocalBackend.execute(`true`) in a running devbox
    vs. `nsenter -t <init pid> -a -r -w true` into the same devbox's namespaces. A command of plain
    words runs without bash (commands.py), as bash itself would run it.
(b') LocalBackend.execute(`true;`): a command bash must interpret, so bash starts too; same floor.
(n) LocalBackend.create_devbox with `launch_parameters.network` vs. the same create without, run
    alternately (back to back, and spaced 100 ms apart). Goal: <= 1.5x, or <= +5 ms, at p50.
(o) The first outbound connection of a fresh networked devbox: a Python that resolves pypi.org and
    opens a TCP connection to its port 443 (through slirp4netns), vs. the same program on the host.
    Few runs (--connect-runs, default 10): it is traffic to a real registry.

Each figure is the median of N runs (default 50) after a few warm-up runs; measured runs and floor
runs alternate so that a drift of the machine hits both alike. The data dir is temporary: the
first run builds the default blueprint (a venv with pytest, from PyPI, ~10 s) before any timing.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import anyio
from _common import Figure, Row, print_table, run_argv, shutdown_all, timed

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.sandbox import Sandbox
from scenario_mcp.models import DevboxCreateParameters, LaunchParameters

WARMUP = 5
BWRAP_FLOOR = ["bwrap", "--unshare-all", "--ro-bind", "/", "/", "true"]
CONNECT = "import socket; socket.create_connection(('pypi.org', 443), timeout=10).close()"


async def make_snapshot(backend: LocalBackend) -> str:
    """A snapshot on the default blueprint holding a small project, like a scenario's."""
    box = await backend.create_devbox(DevboxCreateParameters())
    await backend.write_file(box.id, "project/tests/test_example.py", "def test_example():\n    assert 1 + 1 == 3\n")
    snapshot = await backend.snapshot_disk(box.id, name="bench")
    await backend.shutdown_devbox(box.id)
    return str(snapshot.id)


async def bench_create(backend: LocalBackend, snapshot_id: str, runs: int, *, pause: float = 0.0) -> Row:
    measured = Figure("create_devbox(snapshot_id)" + (f", {pause * 1000:.0f} ms after the last" if pause else ""))
    floor = Figure(" ".join(BWRAP_FLOOR))
    for i in range(WARMUP + runs):
        box_id = ""
        # With a pause, the spawner has its next sandbox prepared (and parked in its cgroups)
        # before the create, as between an agent's calls; without, creates come back to back.
        await anyio.sleep(pause)

        async def create() -> None:
            nonlocal box_id
            box_id = (await backend.create_devbox(DevboxCreateParameters(snapshot_id=snapshot_id))).id

        ms = await timed(create)
        await backend.shutdown_devbox(box_id)
        floor_ms = await timed(lambda: run_argv(BWRAP_FLOOR))
        if i >= WARMUP:
            measured.samples.append(ms)
            floor.samples.append(floor_ms)
    label = "(a) devbox create from a snapshot" + (", spaced" if pause else "")
    return Row(label, measured, floor, goal_ms=12)


async def bench_sandbox_start(backend: LocalBackend, snapshot_id: str, runs: int) -> Row:
    """The sandbox part of (a) alone: Sandbox.start for the same layers, without the engine's
    bookkeeping (database writes, cgroups)."""
    environment = await backend.blueprints.environment(blueprint_id=None, blueprint_name=None, snapshot_id=snapshot_id)
    store = backend.devboxes.layers
    measured = Figure("Sandbox.start, then stop (untimed)")
    floor = Figure(" ".join(BWRAP_FLOOR))
    state_dirs = Path(tempfile.mkdtemp(prefix="bench-sandboxes-", dir=backend.data_dir))
    for i in range(WARMUP + runs):
        # The spec the engine makes for a devbox on this snapshot (no network, no mounts).
        spec = environment.spec(store, state_dirs / str(i), network=False, hostname="bench")
        started = time.perf_counter()
        sandbox = await Sandbox.start(spec)
        ms = (time.perf_counter() - started) * 1000
        await sandbox.stop()
        floor_ms = await timed(lambda: run_argv(BWRAP_FLOOR))
        if i >= WARMUP:
            measured.samples.append(ms)
            floor.samples.append(floor_ms)
    shutil.rmtree(state_dirs, ignore_errors=True)
    return Row("(a') its sandbox alone", measured, floor, goal_ms=None)


async def bench_exec(backend: LocalBackend, snapshot_id: str, runs: int, command: str = "true") -> Row:
    box = await backend.create_devbox(DevboxCreateParameters(snapshot_id=snapshot_id))
    try:
        init_pid = (await backend.devboxes.sandbox(box.id)).init_pid
        nsenter = ["nsenter", "-t", str(init_pid), "-a", "-r", "-w", "true"]
        measured = Figure(f"execute(`{command}`)")
        floor = Figure(" ".join(nsenter))
        for i in range(WARMUP + runs):

            async def execute() -> None:
                result = await backend.execute(box.id, command)
                assert result.exit_status == 0, result.stderr

            ms = await timed(execute)
            floor_ms = await timed(lambda: run_argv(nsenter))
            if i >= WARMUP:
                measured.samples.append(ms)
                floor.samples.append(floor_ms)
    finally:
        await backend.shutdown_devbox(box.id)
    if command == "true":
        return Row("(b) exec `true` in a running devbox", measured, floor, goal_ms=4)
    return Row(f"(b') exec `{command}`, through bash", measured, floor, goal_ms=None)


async def bench_network_create(backend: LocalBackend, snapshot_id: str, runs: int, *, pause: float = 0.0) -> Row:
    """(n): create with network, its floor the same create without, alternately."""
    networked = DevboxCreateParameters(snapshot_id=snapshot_id, launch_parameters=LaunchParameters(network=True))
    plain = DevboxCreateParameters(snapshot_id=snapshot_id)
    spaced = f", {pause * 1000:.0f} ms after the last" if pause else ""
    measured = Figure("create_devbox(snapshot_id, network=True)" + spaced)
    floor = Figure("create_devbox(snapshot_id), no network" + spaced)
    for i in range(WARMUP + runs):
        for params, figure in ((networked, measured), (plain, floor)):
            box_id = ""
            await anyio.sleep(pause)

            async def create(params: DevboxCreateParameters = params) -> None:
                nonlocal box_id
                box_id = (await backend.create_devbox(params)).id

            ms = await timed(create)
            await backend.shutdown_devbox(box_id)
            if i >= WARMUP:
                figure.samples.append(ms)
    goal = max(1.5 * floor.p50, floor.p50 + 5)
    return Row("(n) create with network" + (", spaced" if pause else ""), measured, floor, goal_ms=round(goal, 2))


async def bench_first_connection(backend: LocalBackend, snapshot_id: str, runs: int) -> Row:
    """(o): the first outbound connection of a fresh networked devbox, vs. the same on the host."""
    params = DevboxCreateParameters(snapshot_id=snapshot_id, launch_parameters=LaunchParameters(network=True))
    measured = Figure("first connection to pypi.org:443 from a fresh networked devbox")
    floor = Figure("the same Python on the host")
    host_python = ["/usr/bin/python3", "-c", CONNECT]
    for i in range(1 + runs):
        await anyio.sleep(0.1)  # the spawner's next networked sandbox is prepared, as between calls
        box = await backend.create_devbox(params)

        async def connect(box_id: str = box.id) -> None:
            result = await backend.execute(box_id, f'python3 -c "{CONNECT}"')
            assert result.exit_status == 0, result.stderr

        ms = await timed(connect)
        await backend.shutdown_devbox(box.id)
        floor_ms = await timed(lambda: run_argv(host_python))
        if i >= 1:
            measured.samples.append(ms)
            floor.samples.append(floor_ms)
    return Row("(o) first outbound connection", measured, floor, goal_ms=None)


async def main(runs: int, data_dir: Path, connect_runs: int) -> None:
    async with LocalBackend(data_dir) as backend:
        print("building the default blueprint (once per data dir) and a snapshot ...", file=sys.stderr)
        await backend.blueprints.ensure_default()
        snapshot_id = await make_snapshot(backend)
        print(f"timing {runs} runs of each figure ...", file=sys.stderr)
        rows = [
            await bench_create(backend, snapshot_id, runs),
            await bench_create(backend, snapshot_id, runs, pause=0.1),
            await bench_sandbox_start(backend, snapshot_id, runs),
            await bench_exec(backend, snapshot_id, runs),
            # A command bash must interpret (`;`): the same, plus bash's start-up (commands.py).
            await bench_exec(backend, snapshot_id, runs, command="true;"),
            await bench_network_create(backend, snapshot_id, runs),
            await bench_network_create(backend, snapshot_id, runs, pause=0.1),
        ]
        if connect_runs:
            rows.append(await bench_first_connection(backend, snapshot_id, connect_runs))
    print_table(f"engine benchmarks (p50 over {runs} runs, after {WARMUP} warm-up runs)", rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50, help="timed runs per figure (default 50)")
    parser.add_argument("--connect-runs", type=int, default=10, help="runs of (o), to a real registry (0: skip)")
    parser.add_argument("--data-dir", type=Path, help="reuse this data dir (default: a fresh temporary one)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tmp = None if args.data_dir is not None else Path(tempfile.mkdtemp(prefix="scenario-mcp-bench-"))
    data_dir: Path = args.data_dir if tmp is None else tmp / "data"
    try:
        anyio.run(main, args.runs, data_dir, args.connect_runs)
    finally:
        anyio.run(shutdown_all, data_dir)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
