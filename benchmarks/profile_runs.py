"""Where a trivial run's CPU goes: cProfile over a batch of runs on LocalBackend, in process.

    .venv/bin/python benchmarks/profile_runs.py [--runs N] [--concurrency C] [--top K] [--data-dir DIR]

The run is bench_runs.py's (agent `touch done`, a one-line bash scorer; start, execute, score,
wait, complete). Prints this process's CPU per run next to the wall time, the event loop's lag
(how late a 10 ms sleep wakes up: what any other request waits), the CPU of the processes the
engine started (children, reaped), the spawner's (with the sandbox inits it reaped), the whole
machine's (everyone's), and the functions with the most own and cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from _common import shutdown_all
from bench_runs import SCENARIO, batch, floor_batch, trivial_run

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.sandbox import handle
from scenario_mcp.models import ScenarioCreateParameters


def cpu_s(pid: int) -> float:
    """A process's CPU and its reaped children's (the spawner reaps the inits it started)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy so far (every process: others' too)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


async def loop_lag(samples: list[float], stop: anyio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await anyio.sleep(0.01)
        samples.append((time.perf_counter() - started) * 1000 - 10)


async def main(runs: int, concurrency: int, top: int, data_dir: Path, floor: bool) -> None:
    async with LocalBackend(data_dir) as engine:
        await engine.blueprints.ensure_default()
        scenario = await engine.create_scenario(ScenarioCreateParameters.model_validate(SCENARIO))
        await batch(4, 4, lambda _i: trivial_run(engine, scenario.id))  # warm-up
        lag: list[float] = []
        stop = anyio.Event()
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        spawner_pids = [h._process.pid for h in handle._SPAWNERS.helpers if h._process is not None]
        spawner_before, machine_before = sum(map(cpu_s, spawner_pids)), machine_busy_s()
        profile = cProfile.Profile(time.thread_time)  # CPU of the event loop thread, not wall time
        async with anyio.create_task_group() as tg:
            tg.start_soon(loop_lag, lag, stop)
            profile.enable()
            if floor:
                result = await floor_batch(engine, runs, concurrency)
            else:
                result = await batch(runs, concurrency, lambda _i: trivial_run(engine, scenario.id))
            profile.disable()
            stop.set()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        spawner = sum(map(cpu_s, spawner_pids)) - spawner_before
        machine = machine_busy_s() - machine_before
    child_cpu = (children.ru_utime + children.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
    print(f"{runs} runs, {concurrency} at a time: {result.per_s:.1f} runs/s, wall {result.wall_s:.1f} s")
    print(f"  this process's CPU per run: {result.cpu_s / runs * 1000:.1f} ms (under cProfile, which adds to it)")
    print(f"  reaped children's CPU per run: {child_cpu / runs * 1000:.1f} ms (helpers such as nsenter and cp)")
    print(f"  the spawners' CPU per run, with the inits it reaped: {spawner / runs * 1000:.1f} ms")
    print(f"  the whole machine's busy CPU per run (other users' too): {machine / runs * 1000:.1f} ms")
    ordered = sorted(lag)
    print(
        f"  event loop lag: p50 {statistics.median(lag):.1f} ms, p95 {ordered[int(0.95 * len(ordered))]:.1f} ms, "
        f"max {ordered[-1]:.1f} ms"
    )
    print(f"  load average: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).strip_dirs().sort_stats(key).print_stats(top)
        print(out.getvalue())
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out).strip_dirs().sort_stats("tottime")
    stats.print_callers(12)  # who makes the costliest calls
    stats.print_callers(r"pathlib.py.*\((mkdir|open|rename|write_text)\)|_execute_child|fork_exec")
    print(out.getvalue())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--floor", action="store_true", help="profile bench_runs.py's floor batch instead")
    parser.add_argument("--data-dir", type=Path, help="a data dir to keep (its default blueprint too)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    directory = args.data_dir or Path(tempfile.mkdtemp(prefix="scenario-mcp-profile-"))
    try:
        anyio.run(main, args.runs, args.concurrency, args.top, directory, args.floor)
    finally:
        anyio.run(shutdown_all, directory)
        if args.data_dir is None:
            shutil.rmtree(directory, ignore_errors=True)
    sys.exit(0)
