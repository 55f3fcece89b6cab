"""Harbor on the engine: the oracle over tests/harbor_tasks with warm blueprints, beside its floor,
and where Harbor's wall time goes (the engine's share measured by the server itself).

    bash scripts/harbor-e2e.sh          # once: Harbor 0.25's own Python 3.12 venv under .tools/
    .venv/bin/python benchmarks/bench_harbor.py [--runs N]

(h) `harbor run -p tests/harbor_tasks --agent oracle --env runloop -n 1` against `scenario-mcp api`
    (the same setup as scripts/harbor_e2e.py: a loopback registry as the engine's Docker Hub
    mirror; Harbor's telemetry off, as in the e2e), after one untimed run that builds every
    task's blueprint: the process's wall time, Harbor's phases from each trial's result.json
    (environment start, agent, verifier), and the server's own log of every request
    (`scenario-mcp api --request-log`): the engine's time is the time some request was being
    served; the rest of the wall (Harbor's start before its first request, its exit after its
    last, and its and its SDK's time between requests) is Harbor's own.
Floor: the same work without Harbor, through the same REST API (RemoteBackend): for each task a
    devbox from its blueprint, `solution/` and `tests/` uploaded, `bash /solution/solve.sh`, then
    `bash /tests/test.sh` from the working directory, the devbox shut down; tasks one after
    another, as `-n 1` runs them.
Goal: (h) <= 2x the floor. Printed too: (h) against Harbor's own overhead + the floor (what the
    engine could reach at best), and the engine's time serving Harbor against the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from harbor_e2e import OFFLINE, TASKS, api_server, push_bases  # noqa: E402 (the scripts dir first)
from tests.local.oci_registry import Pusher, run_registry  # noqa: E402

from scenario_mcp.models import DevboxCreateParameters  # noqa: E402
from scenario_mcp.remote import RemoteBackend  # noqa: E402

HARBOR = ROOT / ".tools" / "harbor-venv" / "bin" / "harbor"
PHASES = ("environment_setup", "agent_setup", "agent_execution", "verifier")
ID = re.compile(r"/(dbx|bpt|exe|obj|np|bmd|scs|scr)_[A-Za-z0-9]+")

Span = tuple[float, float]  # (start, end), seconds since the epoch


@dataclass
class Process:
    span: Span
    cpu: float  # ms of CPU (user + system) Harbor's process and its children used


@dataclass
class HarborRun:
    wall: float  # ms, the process's
    cpu: float  # ms of CPU Harbor's process used (on a machine of 2 cores, shared)
    start: float  # ms from its start to its first request
    exit: float  # ms from the end of its last request to its exit
    engine: float  # ms some request was being served
    between: float  # ms between requests with none being served: Harbor's and its SDK's own
    requests: int
    connections: int  # client ports seen: each a new connection (Runloop's SDK opens one per pool shard)
    by_kind: dict[str, float]  # engine ms by request kind (method and path, ids left out)
    counts: Counter[str]
    phases: dict[str, float]  # Harbor's phase totals over the trials, ms
    phases_engine: dict[str, float]  # the engine's time inside those phases, ms
    slowest: list[tuple[float, str]] = field(default_factory=list)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * 1000


def run_harbor(base_url: str, jobs: Path, name: str) -> Process:
    env = {**os.environ, "RUNLOOP_BASE_URL": base_url, "RUNLOOP_API_KEY": "bench", **OFFLINE}
    argv = [str(HARBOR), "run", "-p", str(TASKS), "--agent", "oracle", "--env", "runloop", "-n", "1"]
    cpu, started = _children_cpu(), time.time()
    done = subprocess.run(
        [*argv, "-o", str(jobs), "--job-name", name, "-y", "-q"], env=env, capture_output=True, text=True, timeout=900
    )
    ended, cpu = time.time(), _children_cpu() - cpu
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"harbor run ({name}) exited {done.returncode}")
    return Process((started, ended), cpu)


def _epoch(stamp: str) -> float:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def phase_spans(job: Path) -> dict[str, list[Span]]:
    """Each phase's (start, end) in every trial of the job."""
    spans: dict[str, list[Span]] = {phase: [] for phase in PHASES}
    for result in job.glob("*/result.json"):
        data = json.loads(result.read_text())
        for phase in PHASES:
            span = data.get(phase) or {}
            if span.get("started_at") and span.get("finished_at"):
                spans[phase].append((_epoch(span["started_at"]), _epoch(span["finished_at"])))
    return spans


def union(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def overlap(spans: list[Span], window: Span) -> float:
    return sum(max(0.0, min(end, window[1]) - max(start, window[0])) for start, end in spans)


def analyse(requests: list[dict[str, object]], harbor: Process, job: Path) -> HarborRun:
    """Where the run's wall time went, from the server's log of its requests."""
    process = harbor.span
    mine = [r for r in requests if process[0] <= float(r["start"]) <= process[1]]  # type: ignore[arg-type]
    spans = [(float(r["start"]), float(r["start"]) + float(r["ms"]) / 1000) for r in mine]  # type: ignore[arg-type]
    busy = union(spans)
    engine = sum(end - start for start, end in busy)
    by_kind: dict[str, float] = defaultdict(float)
    counts: Counter[str] = Counter()
    for r in mine:
        kind = f"{r['method']} {ID.sub('/{id}', str(r['path']))}"
        by_kind[kind] += float(r["ms"])  # type: ignore[arg-type]
        counts[kind] += 1
    wall = process[1] - process[0]
    start = (busy[0][0] - process[0]) if busy else wall
    exit_ = (process[1] - busy[-1][1]) if busy else 0.0
    phases = phase_spans(job)
    return HarborRun(
        wall=wall * 1000,
        cpu=harbor.cpu,
        start=start * 1000,
        exit=exit_ * 1000,
        engine=engine * 1000,
        between=(wall - engine - start - exit_) * 1000,
        requests=len(mine),
        connections=len({r.get("client") for r in mine}),
        by_kind=dict(by_kind),
        counts=counts,
        phases={p: sum(e - s for s, e in spans_) * 1000 for p, spans_ in phases.items()},
        phases_engine={p: sum(overlap(busy, w) for w in spans_) * 1000 for p, spans_ in phases.items()},
        slowest=sorted(((float(r["ms"]), str(r["path"])) for r in mine), reverse=True)[:3],  # type: ignore[arg-type]
    )


async def floor(base_url: str) -> float:
    """The tasks' solve.sh and test.sh in a devbox from each one's blueprint, one after another."""
    started = time.monotonic()
    async with RemoteBackend(base_url, "bench") as engine:
        for task in sorted(p for p in TASKS.iterdir() if (p / "task.toml").exists()):
            name = f"harbor_{task.name}_blueprint"
            blueprint = (await engine.list_blueprints(name=name)).blueprints[0]
            box = await engine.create_devbox(DevboxCreateParameters(blueprint_id=blueprint.id))
            for part in ("solution", "tests"):
                for path in (task / part).rglob("*"):
                    if path.is_file():
                        await engine.upload_file(box.id, f"/{part}/{path.relative_to(task / part)}", path.read_bytes())
            done = await engine.execute(
                box.id, "mkdir -p /logs/verifier && bash /solution/solve.sh && bash /tests/test.sh"
            )
            if done.exit_status != 0:
                raise SystemExit(f"floor: {task.name} exited {done.exit_status}: {done.stderr}")
            await engine.shutdown_devbox(box.id)
    return (time.monotonic() - started) * 1000


def median(runs: list[HarborRun], figure: str) -> float:
    return statistics.median(float(getattr(run, figure)) for run in runs)


def report(runs: list[HarborRun], floors: list[float]) -> None:
    base = statistics.median(floors)
    wall, engine = median(runs, "wall"), median(runs, "engine")
    own = statistics.median(run.wall - run.engine for run in runs)
    tasks = len(list(TASKS.glob("*/task.toml")))
    print(
        f"\n(h) harbor run --agent oracle --env runloop -n 1 over {tasks} tasks, warm blueprints (p50 of {len(runs)}):"
    )
    print(f"    wall                                        {wall:7.0f} ms")
    print(f"      Harbor's start, to its first request      {median(runs, 'start'):7.0f} ms")
    print(f"      Harbor and its SDK between requests       {median(runs, 'between'):7.0f} ms")
    print(f"      Harbor's exit, after its last request     {median(runs, 'exit'):7.0f} ms")
    print(f"      the engine serving {median(runs, 'requests'):.0f} requests{'':<15}{engine:7.0f} ms")
    print(f"    connections Harbor's SDK opened (a new httpx transport each) {median(runs, 'connections'):4.0f}")
    print(f"    Harbor's own CPU time (its process, user + system) {median(runs, 'cpu'):7.0f} ms")
    print(f"    floor: solve.sh + test.sh through the engine {base:6.0f} ms")
    print(
        f"    (h) / floor: {wall / base:.2f} (goal <= 2.0: {'yes' if wall <= 2 * base else 'NO'}); "
        f"(h) / (Harbor's own {own:.0f} ms + floor): {wall / (own + base):.2f}; "
        f"engine time serving Harbor / floor: {engine / base:.2f}"
    )
    print("  Harbor's phases (summed over the trials), and the engine's time inside them:")
    for phase in PHASES:
        spent = statistics.median(run.phases[phase] for run in runs)
        inside = statistics.median(run.phases_engine[phase] for run in runs)
        print(f"    {phase:<18} {spent:7.0f} ms   engine {inside:6.0f} ms")
    print("  The engine's time by request (each kind's p50 over the runs):")
    kinds = {
        kind: statistics.median(run.by_kind.get(kind, 0.0) for run in runs) for run in runs for kind in run.by_kind
    }
    for kind, ms in sorted(kinds.items(), key=lambda item: -item[1]):
        count = statistics.median(run.counts[kind] for run in runs)
        print(f"    {kind:<70} {count:4.0f} x {ms / count:6.1f} ms = {ms:6.0f} ms")


def main(runs: int) -> None:
    if not HARBOR.exists():
        raise SystemExit("Harbor's venv is missing: run `bash scripts/harbor-e2e.sh` once")
    work = Path(tempfile.mkdtemp(prefix="bench-harbor-", dir=ROOT / ".tools"))
    (work / "registry").mkdir()
    request_log = work / "requests.jsonl"
    results: list[HarborRun] = []
    floors: list[float] = []
    with run_registry(work / "registry") as registry:
        pusher = Pusher(registry)
        push_bases(pusher)
        pusher.http.close()
        with api_server(work / "data", registry, work / "api.log", request_log) as base_url:
            warm = run_harbor(base_url, work / "jobs", "warm").span
            print(f"warm-up (builds every blueprint): {warm[1] - warm[0]:.1f} s")
            for i in range(runs):
                process = run_harbor(base_url, work / "jobs", f"run-{i}")
                requests = [json.loads(line) for line in request_log.read_text().splitlines()]
                results.append(analyse(requests, process, work / "jobs" / f"run-{i}"))
                floors.append(anyio.run(floor, base_url))
                run = results[-1]
                slowest = ", ".join(f"{ms:.0f} ms {ID.sub('/…', path)}" for ms, path in run.slowest)
                print(
                    f"  run {i}: harbor {run.wall:.0f} ms, its CPU {run.cpu:.0f} ms (start {run.start:.0f}, "
                    f"between requests {run.between:.0f}, exit {run.exit:.0f}, engine {run.engine:.0f} "
                    f"over {run.requests} requests; slowest {slowest}); "
                    f"floor {floors[-1]:.0f} ms"
                )
    report(results, floors)
    print(f"load average at the end (1/5/15 min): {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="timed runs (default 3)")
    main(parser.parse_args().runs)
