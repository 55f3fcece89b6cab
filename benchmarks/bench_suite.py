"""The benchmark runner's throughput: 100 trivial scenarios, the oracle agent, at concurrency 1,
4, 16 and 64, beside the floor of the same work on the engine in process.

    .venv/bin/python benchmarks/bench_suite.py [--scenarios 100] [--runs 3] [--no-diff]

(s) `SuiteRun` (what `scenario-mcp bench run --agent oracle` runs): per attempt a scenario run in
    one benchmark run, the working directory noted, the reference output applied, the agent's
    changes taken as a diff (unless --no-diff), the run scored and completed. Figures: scenarios
    per second (wall time of the whole suite) and the p95 of an attempt's latency (its three
    phases), and the errors.
Floor: the same create-exec-score work straight on the engine, at the same concurrency: start a
    run, execute the reference output, score, wait, complete. Goal: (s) >= 20 scenarios/s at
    concurrency >= 16 on 2 cores, and no error at 64. Each figure is the median of --runs runs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import shutdown_all  # noqa: E402 (benchmarks/ is on the path as the script's dir)

from scenario_mcp.harness.agents import parse_agent  # noqa: E402
from scenario_mcp.harness.runner import SuiteOptions, SuiteRun, score  # noqa: E402
from scenario_mcp.local.engine import LocalBackend  # noqa: E402
from scenario_mcp.models import (  # noqa: E402
    BashScriptScorer,
    BenchmarkCreateParameters,
    BenchmarkView,
    InputContext,
    ScenarioCreateParameters,
    ScenarioView,
    ScoringContract,
    ScoringFunction,
    StartScenarioRunParameters,
)

CONCURRENCY = (1, 4, 16, 64)
GOAL_PER_SECOND = 20.0


async def make_suite(backend: LocalBackend, count: int) -> tuple[BenchmarkView, list[ScenarioView]]:
    scenarios = []
    for i in range(count):
        scenarios.append(
            await backend.create_scenario(
                ScenarioCreateParameters(
                    name=f"trivial-{i:03d}",
                    input_context=InputContext(problem_statement="create the file done"),
                    scoring_contract=ScoringContract(
                        scoring_function_parameters=[
                            ScoringFunction(
                                name="done",
                                weight=1,
                                scorer=BashScriptScorer(bash_script="[ -f /home/user/done ] && echo 1.0 || echo 0.0"),
                            )
                        ]
                    ),
                    reference_output="echo solved > done",
                )
            )
        )
    benchmark = await backend.create_benchmark(
        BenchmarkCreateParameters(name="bench-suite", scenario_ids=[s.id for s in scenarios])
    )
    return benchmark, scenarios


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


async def runner_once(
    backend: LocalBackend, benchmark: BenchmarkView, concurrency: int, diff: bool
) -> tuple[float, float, int]:
    """Scenarios/s, p95 latency (ms), errors of one suite run through the runner."""
    runner = SuiteRun(backend, SuiteOptions(agent=parse_agent("oracle"), concurrency=concurrency, diff=diff))
    await runner.start(benchmark)
    started = time.perf_counter()
    suite = await runner.run()
    wall = time.perf_counter() - started
    latencies = [(r.phases.environment + r.phases.agent + r.phases.scoring) * 1000 for r in suite.results]
    errors = sum(r.error is not None or r.score != 1.0 for r in suite.results)
    return len(suite.results) / wall, p95(latencies), errors


async def floor_once(
    backend: LocalBackend, scenarios: list[ScenarioView], concurrency: int
) -> tuple[float, float, int]:
    """The same create-exec-score work straight on the engine."""
    limiter = anyio.CapacityLimiter(concurrency)
    latencies: list[float] = []
    errors = 0

    async def one(scenario: ScenarioView) -> None:
        nonlocal errors
        async with limiter:
            started = time.perf_counter()
            run = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
            result = await backend.execute(
                run.devbox_id, scenario.reference_output or "", working_directory="/home/user"
            )
            scored = await score(backend, run.id, scenario)
            await backend.complete_run(run.id)
            latencies.append((time.perf_counter() - started) * 1000)
            contract = scored.scoring_contract_result
            errors += result.exit_status != 0 or contract is None or contract.score != 1.0

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for scenario in scenarios:
            tg.start_soon(one, scenario)
    return len(scenarios) / (time.perf_counter() - started), p95(latencies), errors


async def main(data_dir: Path, count: int, runs: int, diff: bool) -> int:
    async with LocalBackend(data_dir) as backend:
        print("building the default blueprint (once per data dir) ...", file=sys.stderr)
        await backend.blueprints.ensure_default()
        benchmark, scenarios = await make_suite(backend, count)
        await floor_once(backend, scenarios[:8], 4)  # warm-up: the engine's spare sandboxes, page cache
        rows = []
        for concurrency in CONCURRENCY:
            measured, floors = [], []
            for _ in range(runs):  # alternating, so a busy moment of the machine falls on both
                measured.append(await runner_once(backend, benchmark, concurrency, diff))
                floors.append(await floor_once(backend, scenarios, concurrency))
            rows.append((concurrency, measured, floors))
            print(f"concurrency {concurrency}: done", file=sys.stderr)
    print()
    print(
        f"bench_suite: {count} trivial scenarios, oracle agent, diff {'on' if diff else 'off'}, median of {runs} run(s)"
    )
    header = (
        f"{'concurrency':>11} {'scen/s':>8} {'p95 ms':>8} {'errors':>6}   {'floor scen/s':>12} {'floor p95':>10} "
        f"{'ratio':>6}  goal"
    )
    print(header)
    print("-" * len(header))
    failed = False
    for concurrency, measured, floors in rows:
        rate = statistics.median(m[0] for m in measured)
        latency = statistics.median(m[1] for m in measured)
        errors = max(m[2] for m in measured)
        floor_rate = statistics.median(f[0] for f in floors)
        floor_latency = statistics.median(f[1] for f in floors)
        goal = ""
        if concurrency >= 16:
            ok = rate >= GOAL_PER_SECOND and (concurrency < 64 or errors == 0)
            failed |= not ok
            goal = f">= {GOAL_PER_SECOND:g}/s{', no error' if concurrency == 64 else ''}: {'yes' if ok else 'NO'}"
        print(
            f"{concurrency:>11} {rate:>8.1f} {latency:>8.0f} {errors:>6}   {floor_rate:>12.1f} {floor_latency:>10.0f} "
            f"{floor_rate / rate:>6.2f}  {goal}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; each figure is their median")
    parser.add_argument("--no-diff", action="store_true", help="the runner records no diff (two execs fewer)")
    parser.add_argument("--data-dir", type=Path, help="reuse this data dir (default: a fresh temporary one)")
    args = parser.parse_args()
    tmp = None if args.data_dir is not None else Path(tempfile.mkdtemp(prefix="scenario-mcp-bench-suite-"))
    data_dir: Path = args.data_dir if tmp is None else tmp / "data"
    try:
        code = anyio.run(main, data_dir, args.scenarios, args.runs, not args.no_diff)
    finally:
        anyio.run(shutdown_all, data_dir)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(code)
