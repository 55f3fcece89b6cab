"""Run throughput and responsiveness under load, each beside its floor measured in the same run.

    .venv/bin/python benchmarks/bench_runs.py [--runs N] [--concurrency C] [--repeat R] [--data-dir DIR]
                                              [--figures t,h,g]

The trivial run: a scenario on the default environment whose agent does `touch done` and whose
one scorer is the one-line bash test `test -f done && echo 1.0 || echo 0.0`; start_run, execute,
score_run, wait for `scored`, complete_run.

(t) in process: N runs (default 200) on LocalBackend, C at a time (default 32); runs/s, and the
    CPU per run of this process, and of everything the runs made run ("all CPU": this process,
    the programs it started, the sandbox spawners with the sandbox inits and commands they
    reaped). Floor: the same kernel work without the engine, C at a time: the devbox's sandbox
    started, `mkdir -p` and `touch done` run in it (nsenter + bash), the working directory's
    changes copied (`cp -a`), a second sandbox started on the same layers plus that copy, the
    scorer's bash run in it, both stopped (Sandbox.start/run/stop directly).
(h) through MCP streamable HTTP: the same N runs, C MCP clients at a time (one session each) against
    `scenario-mcp serve --transport http` in its own process, each run as four tool calls
    (start_run, execute_on_devbox, score_run waiting for its score, complete_run). The clients share
    the 2 cores with the server; their CPU is measured (this process's) and counted apart:
    "runs/s, clients apart" is N / (wall time - client CPU / cores). Floor: (t)'s floor.
(g) responsiveness: while 64 runs go through the HTTP server at once, a separate MCP client calls
    `get_run` back to back (a run of its own, already scored); p50, p95 and max of those calls.
    The 64 runs' clients run in a process of their own at nice 10 (they stand for agents that run
    elsewhere; in the prober's process they would also delay its event loop).
    Floor: the same client's `get_run` on the idle server just before. Goal: p95 <= 50 ms, max <= 250 ms.

Each figure is repeated R times (default 2), alternating with its floor, and the medians printed,
with the load average before and after. The first run of a data dir builds the default blueprint (a
venv with pytest, from PyPI, ~10 s); `--data-dir` keeps it between invocations.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from _common import shutdown_all
from mcp import Client

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.environments import Environment
from scenario_mcp.local.sandbox import Sandbox, handle
from scenario_mcp.models import ScenarioCreateParameters, ScenarioRunState, StartScenarioRunParameters

SCORER = "test -f done && echo 1.0 || echo 0.0"
AGENT = "touch done"
POLL_INTERVAL = 0.01
LOAD_RUNS = 64
LOAD_NICE = ["nice", "-n", "10"]
SCENARIO = {
    "name": "bench-trivial",
    "input_context": {"problem_statement": "Create a file named `done` in the working directory."},
    "scoring_contract": {
        "scoring_function_parameters": [
            {"name": "done", "weight": 1.0, "scorer": {"type": "bash_script_scorer", "bash_script": SCORER}}
        ]
    },
}


@dataclass
class Batch:
    """One batch of runs: wall time, CPU of this process (and of the server, over HTTP)."""

    runs: int
    wall_s: float
    cpu_s: float
    server_cpu_s: float | None = None
    tree_cpu_s: float | None = None  # this process's, its reaped children's, the spawners' (in process only)
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return self.runs / self.wall_s

    @property
    def per_s_clients_apart(self) -> float:
        return self.runs / max(self.wall_s - self.cpu_s / (os.cpu_count() or 1), 1e-9)


async def batch(runs: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> Batch:
    """`runs` calls of `one`, `concurrency` at a time; timed as a whole."""
    next_index = 0
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal next_index
        while next_index < runs:
            index = next_index
            next_index += 1
            started = time.perf_counter()
            await one(index)
            latencies.append((time.perf_counter() - started) * 1000)

    cpu, tree, wall = time.process_time(), tree_cpu_s(), time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    wall, cpu, tree = time.perf_counter() - wall, time.process_time() - cpu, tree_cpu_s() - tree
    return Batch(runs, wall, cpu, latencies_ms=latencies, tree_cpu_s=tree)


def tree_cpu_s() -> float:
    """CPU seconds of this process, the programs it started and reaped (nsenter, cp, rm), and the
    sandbox spawners (their own, and that of the sandbox inits they reaped, each with the
    commands it reaped): every sandbox of a finished run has been reaped by then."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    spawners = 0.0
    for pid in handle._SPAWNERS.pids():
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            spawners += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return time.process_time() + children.ru_utime + children.ru_stime + spawners


# --- (t) in process ------------------------------------------------------------------------------


async def trivial_run(engine: LocalBackend, scenario_id: str) -> None:
    run = await engine.start_run(StartScenarioRunParameters(scenario_id=scenario_id))
    touched = await engine.execute(run.devbox_id, AGENT)
    assert touched.exit_status == 0, touched.stderr
    run = await engine.score_run(run.id)
    while run.state == ScenarioRunState.SCORING:
        await anyio.sleep(POLL_INTERVAL)
        run = await engine.get_run(run.id)
    result = run.scoring_contract_result
    assert run.state == ScenarioRunState.SCORED and result is not None and result.score == 1.0, run
    await engine.complete_run(run.id)


async def floor_run(engine: LocalBackend, environment: Environment, work: Path) -> None:
    """The trivial run's kernel work without the engine: two sandboxes, three commands."""
    layers = engine.devboxes.layers
    devbox = await Sandbox.start(environment.spec(layers, work / "devbox", network=False, hostname="floor"))
    try:
        with open(os.devnull, "wb") as sink:
            for command in ("mkdir -p /home/user", f"cd /home/user && {AGENT}"):
                code, _ = await devbox.run(["/bin/bash", "-c", command], stdout=sink, stderr=sink, timeout=30)
                assert code == 0, command
        # The scorer's view of the agent: the working directory's changes, copied (`cp -a`).
        agent = work / "agent"
        await layers.subtree_layer(work / "devbox" / "upper", "/home/user", agent)
        scorer = await Sandbox.start(
            environment.spec(layers, work / "scorer", network=False, hostname="floor", extra_layers=(agent,))
        )
        try:
            with open(work / "out", "w+b") as out, open(os.devnull, "wb") as sink:
                code, _ = await scorer.run(
                    ["/bin/bash", "-c", f"cd /home/user && {SCORER}"], stdout=out, stderr=sink, timeout=30
                )
                out.seek(0)
                assert code == 0 and out.read().strip() == b"1.0"
        finally:
            await scorer.stop()
    finally:
        await devbox.stop()
    await anyio.to_thread.run_sync(shutil.rmtree, work, True)


async def floor_batch(engine: LocalBackend, runs: int, concurrency: int) -> Batch:
    environment = await engine.blueprints.environment(blueprint_id=None, blueprint_name=None, snapshot_id=None)
    scratch = Path(tempfile.mkdtemp(prefix="bench-floor-", dir=engine.data_dir))
    try:
        return await batch(runs, concurrency, lambda i: floor_run(engine, environment, scratch / str(i)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --- (h) and (g) over MCP streamable HTTP --------------------------------------------------------


@asynccontextmanager
async def http_server(data_dir: Path) -> AsyncIterator[tuple[str, int]]:
    """`scenario-mcp serve --transport http` on a free port: its URL and pid."""
    log = data_dir.parent / f"serve-{uuid.uuid4().hex[:8]}.log"
    with open(log, "wb") as stderr:
        process = await anyio.open_process(
            [sys.executable, "-m", "scenario_mcp", "serve", "--transport", "http", "--port", "0",
             "--data-dir", str(data_dir), "--log-level", "WARNING"],
            stdin=None, stdout=None, stderr=stderr,
        )  # fmt: skip
        try:
            with anyio.fail_after(60):
                while not (found := re.search(r"serving .* on (http://\S+)", log.read_text())):
                    assert process.returncode is None, log.read_text()
                    await anyio.sleep(0.05)
            yield found.group(1), process.pid
        finally:
            process.terminate()
            with anyio.move_on_after(10):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool's answer; a call still working after its bounded wait is made again, as asked."""
    while True:
        result = await client.call_tool(tool, arguments)
        if result.is_error:
            raise RuntimeError(f"{tool} failed: {' '.join(getattr(b, 'text', '') for b in result.content)}")
        assert result.structured_content is not None
        answer = dict(result.structured_content)
        if "is still working after" not in str(answer.get("message", "")):
            return answer


async def mcp_run(client: Client, scenario_id: str) -> str:
    # A name of its own: the same start_run arguments twice are one operation (a retry), one run.
    run = await call(client, "start_run", scenario_id=scenario_id, run_name=f"bench-{uuid.uuid4().hex[:12]}")
    touched = await call(client, "execute_on_devbox", devbox_id=run["devbox_id"], command=AGENT)
    assert touched["exit_status"] == 0, touched
    run = await call(client, "score_run", run_id=run["id"], wait_seconds=60)
    assert run["state"] == "scored" and run["scoring_contract_result"]["score"] == 1.0, run
    await call(client, "complete_run", run_id=run["id"])
    return str(run["id"])


async def mcp_batch(url: str, server_pid: int, scenario_id: str, runs: int, concurrency: int) -> Batch:
    """`runs` trivial runs through `concurrency` MCP sessions, each its own client."""
    async with anyio.create_task_group() as tg:
        clients: list[Client] = []
        ready = anyio.Event()
        done = anyio.Event()

        async def session() -> None:
            async with Client(url) as client:
                clients.append(client)
                if len(clients) == concurrency:
                    ready.set()
                await done.wait()

        for _ in range(concurrency):
            tg.start_soon(session)
        await ready.wait()
        free = list(clients)
        server_cpu = process_cpu_s(server_pid)

        async def one(_index: int) -> None:
            client = free.pop()
            try:
                await mcp_run(client, scenario_id)
            finally:
                free.append(client)

        result = await batch(runs, concurrency, one)
        result.server_cpu_s = process_cpu_s(server_pid) - server_cpu
        done.set()
    return result


async def probe_get_run(url: str, run_id: str, until: anyio.Event) -> list[float]:
    """A separate client's back-to-back `get_run` calls until `until` is set: their latencies."""
    samples: list[float] = []
    async with Client(url) as client:
        while not until.is_set():
            started = time.perf_counter()
            await call(client, "get_run", run_id=run_id)
            samples.append((time.perf_counter() - started) * 1000)
            await anyio.sleep(0.005)
    return samples


async def responsiveness(url: str, server_pid: int, scenario_id: str) -> tuple[list[float], list[float], float]:
    """get_run latencies on the idle server, then while LOAD_RUNS runs go through it at once, and
    the server process's CPU meanwhile (in cores)."""
    async with Client(url) as client:
        probed_run = await mcp_run(client, scenario_id)
    idle_over = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_set_after, idle_over, 1.5)
        idle = await probe_get_run(url, probed_run, idle_over)
    loaded_over = anyio.Event()
    loaded: list[float] = []

    async def probe() -> None:
        loaded.extend(await probe_get_run(url, probed_run, loaded_over))

    async with anyio.create_task_group() as tg:
        tg.start_soon(probe)
        # The load's 64 MCP clients in a process of their own: the probing client must not wait
        # behind their callbacks in its own event loop. They stand for agents that run elsewhere,
        # so they run below the server (nice 10) on these shared cores.
        load = [*LOAD_NICE, sys.executable, __file__, "--load-clients", url, scenario_id, str(LOAD_RUNS)]
        cpu, wall = process_cpu_s(server_pid), time.perf_counter()
        result = await anyio.run_process(load, check=False, stdout=None, stderr=None)
        server_cores = (process_cpu_s(server_pid) - cpu) / (time.perf_counter() - wall)
        loaded_over.set()
        if result.returncode != 0:
            raise RuntimeError(f"the load's clients failed (exit {result.returncode})")
    return idle, loaded, server_cores


async def load_clients(url: str, scenario_id: str, runs: int) -> None:
    """`runs` trivial runs at once through as many MCP sessions (the load of (g))."""
    await mcp_batch(url, os.getpid(), scenario_id, runs, runs)


async def _set_after(event: anyio.Event, seconds: float) -> None:
    await anyio.sleep(seconds)
    event.set()


# --- the whole -----------------------------------------------------------------------------------


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def all_cpu_ms(batches: list[Batch]) -> float:
    return statistics.median((b.tree_cpu_s or 0) / b.runs * 1000 for b in batches)


def load_average() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def print_throughput(runs: int, concurrency: int, repeat: int, results: dict[str, list[Batch]]) -> None:
    floors = results["floor"]
    floor_rate = statistics.median(b.per_s for b in floors)
    print()
    print(f"run throughput ({runs} trivial runs, {concurrency} at a time; medians of {repeat} batches)")
    print(
        f"{'figure':<48} {'runs/s':>8} {'floor':>8} {'ratio':>6} {'goal':>6}  {'CPU ms/run':>10}  "
        f"{'all CPU':>8}  per batch"
    )
    if in_process := results.get("t"):
        rate = statistics.median(b.per_s for b in in_process)
        cpu = statistics.median(b.cpu_s / b.runs * 1000 for b in in_process)
        print(
            f"{'(t) in process':<48} {rate:>8.1f} {floor_rate:>8.1f} {rate / floor_rate:>6.2f} {'>= 25':>6}  "
            f"{cpu:>10.1f}  {all_cpu_ms(in_process):>8.1f}  {', '.join(f'{b.per_s:.1f}' for b in in_process)}"
        )
    if over_http := results.get("h"):
        rate = statistics.median(b.per_s for b in over_http)
        apart = statistics.median(b.per_s_clients_apart for b in over_http)
        client_cpu = statistics.median(b.cpu_s / b.runs * 1000 for b in over_http)
        server_cpu = statistics.median((b.server_cpu_s or 0) / b.runs * 1000 for b in over_http)
        print(
            f"{'(h) MCP streamable HTTP, clients apart':<48} {apart:>8.1f} {floor_rate:>8.1f} "
            f"{apart / floor_rate:>6.2f} {'>= 15':>6}  {server_cpu:>10.1f}  "
            f"{', '.join(f'{b.per_s_clients_apart:.1f}' for b in over_http)}"
        )
        print(
            f"{'(h) ... as measured, clients on the same cores':<48} {rate:>8.1f} {floor_rate:>8.1f} "
            f"{rate / floor_rate:>6.2f} {'-':>6}  {client_cpu:>10.1f}  (CPU: the clients')"
        )
    floor_cpu = statistics.median(b.cpu_s / b.runs * 1000 for b in floors)
    label = "  floor: the same sandboxes and commands"
    print(f"{label:<48} {floor_rate:>8.1f} {'':>8} {'':>6} {'':>6}  {floor_cpu:>10.1f}  {all_cpu_ms(floors):>8.1f}")
    for key, label in (("t", "(t)"), ("floor", "floor")):
        if key in results:
            p50 = statistics.median(statistics.median(b.latencies_ms) for b in results[key])
            print(f"  {label}: one run's p50 {p50:.0f} ms")
    print("  CPU ms/run: (t) and floor: this process's; (h): the server process's own (not its sandboxes')")
    print("  all CPU: (t) and floor: this process's, its helpers', the spawners' with every sandbox's (see tree_cpu_s)")


def print_responsiveness(idle: list[float], loaded: list[list[float]], cores: list[float]) -> None:
    print()
    print(f"(g) get_run from a separate MCP client while {LOAD_RUNS} runs go through the server at once")
    print(f"{'':<48} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'n':>5}  goal")
    print(
        f"{'  floor: the same calls, idle server':<48} {statistics.median(idle):>8.1f} "
        f"{quantile(idle, 0.95):>8.1f} {max(idle):>8.1f} {len(idle):>5}"
    )
    for i, samples in enumerate(loaded):
        print(
            f"{f'  under load, batch {i + 1}':<48} {statistics.median(samples):>8.1f} {quantile(samples, 0.95):>8.1f} "
            f"{max(samples):>8.1f} {len(samples):>5}  p95 <= 50, max <= 250"
        )
    print(f"  the server process's own CPU meanwhile: {', '.join(f'{c:.2f}' for c in cores)} of a core")


async def main(runs: int, concurrency: int, repeat: int, data_dir: Path, figures: set[str]) -> None:
    before = load_average()
    print(f"load average before: {before}", file=sys.stderr)
    results: dict[str, list[Batch]] = {"floor": []}
    async with LocalBackend(data_dir / "engine") as engine:
        print("building the default blueprint (once per data dir) ...", file=sys.stderr)
        await engine.blueprints.ensure_default()
        scenario = await engine.create_scenario(ScenarioCreateParameters.model_validate(SCENARIO))
        await batch(4, 4, lambda _i: trivial_run(engine, scenario.id))  # warm-up
        for i in range(repeat):
            if "t" in figures:
                print(f"(t) batch {i + 1}/{repeat} ...", file=sys.stderr)
                batch_t = await batch(runs, concurrency, lambda _i: trivial_run(engine, scenario.id))
                results.setdefault("t", []).append(batch_t)
            if figures & {"t", "h"}:
                print(f"floor batch {i + 1}/{repeat} ...", file=sys.stderr)
                results["floor"].append(await floor_batch(engine, runs, concurrency))
    # The server gets the engine's data dir: its default blueprint is built already.
    idle: list[float] = []
    loaded: list[list[float]] = []
    cores: list[float] = []
    if figures & {"h", "g"}:
        async with http_server(data_dir / "engine") as (url, pid):
            async with Client(url) as client:
                await call(client, "get_scenario", scenario_id=scenario.id)
            for i in range(repeat):
                if "h" in figures:
                    print(f"(h) batch {i + 1}/{repeat} ...", file=sys.stderr)
                    results.setdefault("h", []).append(await mcp_batch(url, pid, scenario.id, runs, concurrency))
                if "g" in figures:
                    print(f"(g) {LOAD_RUNS} runs at once, get_run probed ...", file=sys.stderr)
                    idle_ms, loaded_ms, server_cores = await responsiveness(url, pid, scenario.id)
                    cores.append(server_cores)
                    idle.extend(idle_ms)
                    loaded.append(loaded_ms)
    if results["floor"]:
        print_throughput(runs, concurrency, repeat, results)
    if loaded:
        print_responsiveness(idle, loaded, cores)
    print()
    print(f"  load average before: {before}, after: {load_average()}")
    print(f"  host: Linux {os.uname().release}, {os.cpu_count()} cpus")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="runs per batch (default 200)")
    parser.add_argument("--concurrency", type=int, default=32, help="runs at a time (default 32)")
    parser.add_argument("--repeat", type=int, default=2, help="batches of each figure (default 2)")
    parser.add_argument("--data-dir", type=Path, help="a data dir to keep (its default blueprint too)")
    parser.add_argument("--figures", default="t,h,g", help="which figures, of t,h,g (default all)")
    parser.add_argument("--load-clients", nargs=3, metavar=("URL", "SCENARIO", "RUNS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_clients:
        url, scenario_id, count = args.load_clients
        anyio.run(load_clients, url, scenario_id, int(count))
        sys.exit(0)
    logging.basicConfig(level=logging.WARNING)
    directory = args.data_dir or Path(tempfile.mkdtemp(prefix="scenario-mcp-bench-"))
    try:
        anyio.run(main, args.runs, args.concurrency, args.repeat, directory, set(args.figures.split(",")))
    finally:
        anyio.run(shutdown_all, directory / "engine")
        if args.data_dir is None:
            shutil.rmtree(directory, ignore_errors=True)
