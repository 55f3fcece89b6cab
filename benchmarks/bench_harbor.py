"""Harbor on the engine: the oracle over tests/harbor_tasks with warm blueprints, beside its floor.

    bash scripts/harbor-e2e.sh          # once: Harbor 0.25's own Python 3.12 venv under .tools/
    .venv/bin/python benchmarks/bench_harbor.py [--runs N]

(h) `harbor run -p tests/harbor_tasks --agent oracle --env runloop -n 1` against `scenario-mcp api`
    (the same setup as scripts/harbor_e2e.py: a loopback registry as the engine's Docker Hub
    mirror), after one untimed run that builds every task's blueprint: the job's wall time, and
    Harbor's phases from each trial's result.json (environment start, agent, verifier).
Floor: the same work without Harbor, through the same REST API (RemoteBackend): for each task a
    devbox from its blueprint, `solution/` and `tests/` uploaded, `bash /solution/solve.sh`, then
    `bash /tests/test.sh` from the working directory, the devbox shut down; tasks one after
    another, as `-n 1` runs them. Goal: (h) <= 2x the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
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


def run_harbor(base_url: str, jobs: Path, name: str) -> float:
    env = {**os.environ, "RUNLOOP_BASE_URL": base_url, "RUNLOOP_API_KEY": "bench", **OFFLINE}
    argv = [str(HARBOR), "run", "-p", str(TASKS), "--agent", "oracle", "--env", "runloop", "-n", "1"]
    started = time.monotonic()
    subprocess.run([*argv, "-o", str(jobs), "--job-name", name, "-y", "-q"], env=env, check=True, timeout=1800)
    return (time.monotonic() - started) * 1000


def phases(job: Path) -> dict[str, float]:
    """Each phase's total over the job's trials, in ms."""
    totals = dict.fromkeys(PHASES, 0.0)
    for result in job.glob("*/result.json"):
        data = json.loads(result.read_text())
        for phase in PHASES:
            span = data.get(phase) or {}
            if span.get("started_at") and span.get("finished_at"):
                start = datetime.fromisoformat(span["started_at"].replace("Z", "+00:00"))
                end = datetime.fromisoformat(span["finished_at"].replace("Z", "+00:00"))
                totals[phase] += (end - start).total_seconds() * 1000
    return totals


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


def main(runs: int) -> None:
    if not HARBOR.exists():
        raise SystemExit("Harbor's venv is missing: run `bash scripts/harbor-e2e.sh` once")
    work = Path(tempfile.mkdtemp(prefix="bench-harbor-", dir=ROOT / ".tools"))
    (work / "registry").mkdir()
    walls: list[float] = []
    floors: list[float] = []
    phase_samples: dict[str, list[float]] = {phase: [] for phase in PHASES}
    with run_registry(work / "registry") as registry:
        pusher = Pusher(registry)
        push_bases(pusher)
        pusher.http.close()
        with api_server(work / "data", registry, work / "api.log") as base_url:
            print(f"warm-up (builds every blueprint): {run_harbor(base_url, work / 'jobs', 'warm') / 1000:.1f} s")
            for i in range(runs):
                walls.append(run_harbor(base_url, work / "jobs", f"run-{i}"))
                for phase, total in phases(work / "jobs" / f"run-{i}").items():
                    phase_samples[phase].append(total)
                floors.append(anyio.run(floor, base_url))
                print(f"  run {i}: harbor {walls[-1]:.0f} ms, floor {floors[-1]:.0f} ms")
    wall, base = statistics.median(walls), statistics.median(floors)
    print(
        f"\n(h) harbor oracle over {len(list(TASKS.glob('*/task.toml')))} tasks, warm blueprints, -n 1 "
        f"(p50 of {runs}): {wall:.0f} ms; floor {base:.0f} ms; ratio {wall / base:.2f} (goal <= 2.0: "
        f"{'yes' if wall <= 2 * base else 'NO'})"
    )
    for phase in PHASES:
        print(f"    {phase:<18} {statistics.median(phase_samples[phase]):8.0f} ms (sum over the trials)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="timed runs (default 3)")
    main(parser.parse_args().runs)
