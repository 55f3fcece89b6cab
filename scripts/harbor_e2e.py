"""Harbor end to end on this engine: `harbor run --env runloop` against `scenario-mcp api`.

Run by scripts/harbor-e2e.sh (which makes Harbor's own Python 3.12 venv). Steps:
1. a docker-registry on loopback holding `debian:bookworm` (mmdebstrap minbase with python3,
   cached in .tools/test-images) and `busybox:1.36` (a static busybox), served to the engine as
   its Docker Hub mirror, so the tasks' Dockerfiles read as any Harbor task's (`FROM debian:...`);
2. `scenario-mcp api` on a free loopback port, on a fresh data dir;
3. Harbor's oracle agent over tests/harbor_tasks (every trial must score 1.0), the `nop` agent
   (every trial 0.0), and the oracle again (its blueprints reused: faster), no exception in any
   trial's result.json. Prints each run's wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.local.oci_registry import (  # noqa: E402 (the repository root first)
    DEBIAN_PATH,
    Pusher,
    busybox_layer,
    debian_tar,
    free_port,
    run_registry,
    wait_http,
)

TASKS = ROOT / "tests" / "harbor_tasks"
# Harbor's LiteLLM fetches a model price list from GitHub at start, retrying for ~7 s without
# internet; its own bundled copy is what these agents (oracle, nop) would read anyway. Harbor's
# telemetry (on by default) imports LiteLLM at the job's end (~4 s of CPU here) to send PostHog
# an event no test run should send.
OFFLINE = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "HARBOR_TELEMETRY": "0"}


def push_bases(pusher: Pusher) -> None:
    pusher.image(
        "library/debian",
        "bookworm",
        [debian_tar().read_bytes()],
        compression="none",
        config={"Env": [f"PATH={DEBIAN_PATH}"]},
    )
    pusher.image("library/busybox", "1.36", [busybox_layer()], config={"Env": ["PATH=/bin"], "Cmd": ["sh"]})


@contextlib.contextmanager
def api_server(data_dir: Path, mirror: str, log: Path, request_log: Path | None = None) -> Iterator[str]:
    port = free_port()
    extra = ["--request-log", str(request_log)] if request_log else []
    env = {**os.environ, "SCENARIO_MCP_REGISTRY_MIRROR": mirror}
    env.pop("SCENARIO_MCP_TOKEN", None)
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "scenario_mcp", "api", "--data-dir", str(data_dir), "--port", str(port), *extra],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", seconds=120)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=60)


def harbor_run(harbor: Path, base_url: str, agent: str, jobs: Path, name: str) -> float:
    env = {**os.environ, "RUNLOOP_BASE_URL": base_url, "RUNLOOP_API_KEY": "scenario-mcp-e2e", **OFFLINE}
    argv = [str(harbor), "run", "-p", str(TASKS), "--agent", agent, "--env", "runloop", "-n", "2"]
    argv += ["-o", str(jobs), "--job-name", name, "-y", "-q"]
    started = time.monotonic()
    done = subprocess.run(argv, env=env, check=False, capture_output=True, text=True, timeout=1800)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"harbor run ({agent}) exited {done.returncode}")
    return elapsed


def trial_rewards(job_dir: Path) -> dict[str, tuple[dict[str, float] | None, str | None]]:
    """Each trial's rewards and exception (if any), by task name, from Harbor's result.json files."""
    found: dict[str, tuple[dict[str, float] | None, str | None]] = {}
    for result in sorted(job_dir.glob("*/result.json")):
        data = json.loads(result.read_text())
        verifier = data.get("verifier_result") or {}
        exception = data.get("exception_info")
        message = None if not exception else f"{exception.get('exception_type')}: {exception.get('exception_message')}"
        found[str(data.get("task_name") or result.parent.name)] = (verifier.get("rewards"), message)
    return found


def check(job_dir: Path, expected: float) -> list[str]:
    problems = []
    trials = trial_rewards(job_dir)
    tasks = sorted(p.name for p in TASKS.iterdir() if (p / "task.toml").exists())
    if len(trials) != len(tasks):
        problems.append(f"{len(trials)} trial result(s) for {len(tasks)} task(s) in {job_dir}")
    for task, (rewards, exception) in sorted(trials.items()):
        print(f"  {task}: rewards {rewards}" + (f", exception {exception}" if exception else ""))
        if exception:
            problems.append(f"{task}: {exception}")
        if not rewards or any(value != expected for value in rewards.values()):
            problems.append(f"{task}: rewards {rewards}, expected every one {expected}")
    return problems


def main(harbor: Path, keep: bool) -> int:
    work = Path(tempfile.mkdtemp(prefix="harbor-e2e-", dir=ROOT / ".tools"))
    (work / "registry").mkdir()
    problems: list[str] = []
    with run_registry(work / "registry") as registry:
        pusher = Pusher(registry)
        push_bases(pusher)
        pusher.http.close()
        with api_server(work / "data", registry, work / "api.log") as base_url:
            print(f"scenario-mcp api at {base_url}, registry mirror at {registry}")
            for agent, name, expected in (
                ("oracle", "oracle-1", 1.0),
                ("nop", "nop", 0.0),
                ("oracle", "oracle-2", 1.0),
            ):
                seconds = harbor_run(harbor, base_url, agent, work / "jobs", name)
                print(f"harbor run --agent {agent} ({name}): {seconds:.1f} s")
                problems += check(work / "jobs" / name, expected)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    if problems or keep:
        print(f"kept for inspection: {work}", file=sys.stderr)
    else:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return 1 if problems else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--harbor", type=Path, required=True, help="the harbor executable (in its own venv)")
    parser.add_argument("--keep", action="store_true", help="keep the data dir, jobs and logs")
    args = parser.parse_args()
    sys.exit(main(args.harbor, args.keep))
