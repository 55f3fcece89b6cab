"""The benchmark runner on the real engine: every agent kind, attempts, timeouts, errors, resume, cancel."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from scenario_mcp.harness.agents import parse_agent
from scenario_mcp.harness.results import SuiteResults
from scenario_mcp.harness.runner import AGENT_TIMEOUT_KEY, SuiteOptions, SuiteRun, load_results, resolve_benchmark
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import (
    BashScriptScorer,
    BenchmarkCreateParameters,
    BenchmarkView,
    InputContext,
    ScenarioCreateParameters,
    ScenarioView,
    ScoringContract,
    ScoringFunction,
)

pytestmark = pytest.mark.anyio
HERE = Path(__file__).parent


async def trivial(backend: LocalBackend, name: str, metadata: dict[str, str] | None = None) -> ScenarioView:
    """Solved by a file `done` in the working directory."""
    return await backend.create_scenario(
        ScenarioCreateParameters(
            name=name,
            input_context=InputContext(problem_statement=f"create the file done ({name})"),
            scoring_contract=ScoringContract(
                scoring_function_parameters=[
                    ScoringFunction(
                        name="done",
                        weight=1,
                        scorer=BashScriptScorer(bash_script="[ -f /home/user/done ] && echo 1.0 || echo 0.0"),
                    ),
                    ScoringFunction(name="always", weight=1, scorer=BashScriptScorer(bash_script="echo 1.0")),
                ]
            ),
            reference_output="echo solved > done",
            metadata=metadata,
        )
    )


async def suite(backend: LocalBackend, count: int, metadata: dict[str, str] | None = None) -> BenchmarkView:
    scenarios = [await trivial(backend, f"task-{i}", metadata) for i in range(count)]
    ids = [s.id for s in scenarios]
    return await backend.create_benchmark(BenchmarkCreateParameters(name="suite", scenario_ids=ids))


async def run(backend: LocalBackend, benchmark: BenchmarkView, agent: str, **options: object) -> SuiteResults:
    runner = SuiteRun(backend, SuiteOptions(agent=parse_agent(agent), **options))  # type: ignore[arg-type]
    await runner.start(benchmark)
    return await runner.run()


async def running_devboxes(backend: LocalBackend) -> list[str]:
    return [d.id for d in (await backend.list_devboxes(limit=1000, status="running")).devboxes]


async def test_the_oracle_solves_every_attempt_inside_one_benchmark_run(backend: LocalBackend) -> None:
    benchmark = await suite(backend, 3)
    results = await run(backend, benchmark, "oracle", attempts=2, concurrency=4)
    assert results.complete and results.summary is not None
    assert [(r.scenario_name, r.attempt, r.score, r.state) for r in results.results] == [
        (f"task-{i}", k, 1.0, "completed") for i in range(3) for k in (1, 2)
    ]
    assert results.summary.mean == 1.0 and results.summary.pass_at == {1: 1.0, 2: 1.0}
    assert results.summary.errors == 0
    first = results.results[0]
    assert {s.scoring_function_name: s.score for s in first.scorers} == {"done": 1.0, "always": 1.0}
    assert "+++ b/done" in first.diff and "+solved" in first.diff
    assert first.phases.environment > 0 and first.phases.scoring > 0
    # Runloop's records: one benchmark run, completed, its six scenario runs in it.
    benchmark_run = await backend.get_benchmark_run(results.benchmark_run_id)
    assert benchmark_run.state == "completed" and benchmark_run.score == 1.0
    listed = await backend.list_runs(limit=100, benchmark_run_id=benchmark_run.id)
    assert sorted(r.id for r in listed.runs) == sorted(r.run_id for r in results.results if r.run_id)
    assert [r.id for r in await backend.benchmarks.scenario_runs(benchmark_run.id)] != []
    assert await running_devboxes(backend) == []
    kept = await load_results(backend, benchmark_run.id)
    assert kept is not None and kept.results == results.results


async def test_nop_scores_the_untouched_environment(backend: LocalBackend) -> None:
    results = await run(backend, await suite(backend, 2), "nop")
    assert [r.score for r in results.results] == [0.5, 0.5]
    assert results.summary is not None and results.summary.pass_at == {1: 0.0}
    assert results.complete and results.results[0].diff == ""


async def test_a_command_agent_runs_in_the_devbox_with_the_problem_statement(backend: LocalBackend) -> None:
    results = await run(backend, await suite(backend, 1), 'command:printf "%s" "$SCENARIO_PROBLEM_STATEMENT" > done')
    [attempt] = results.results
    assert attempt.score == 1.0 and attempt.agent_exit_status == 0
    assert "+create the file done (task-0)" in attempt.diff


async def test_an_agent_that_overruns_is_stopped_and_scored_as_it_stands(backend: LocalBackend) -> None:
    benchmark = await suite(backend, 1, {AGENT_TIMEOUT_KEY: "0.5"})
    started = anyio.current_time()
    results = await run(backend, benchmark, "command:touch done; sleep 60")
    [attempt] = results.results
    assert anyio.current_time() - started < 20
    assert attempt.agent_timed_out and attempt.score == 1.0 and attempt.error is None
    module = await run(backend, benchmark, "tests.harness.agents_for_tests:sleep_forever")
    assert module.results[0].agent_timed_out and module.results[0].score == 0.5


async def test_a_python_agent_gets_a_client_of_a_solver_server_pinned_to_its_run(backend: LocalBackend) -> None:
    results = await run(backend, await suite(backend, 2), "tests.harness.agents_for_tests:write_done", concurrency=2)
    assert [r.score for r in results.results] == [1.0, 1.0]
    assert results.results[0].agent_output == "wrote done"


async def test_a_host_agent_reaches_its_run_through_the_mcp_config_it_is_given(backend: LocalBackend) -> None:
    agent = f"host:{sys.executable} {HERE / 'agents_for_tests.py'}"
    results = await run(backend, await suite(backend, 1), agent)
    [attempt] = results.results
    assert attempt.agent_output.strip().endswith("host agent done"), attempt.agent_output
    assert attempt.score == 1.0 and "+create the file done (task-0)" in attempt.diff


async def test_errors_leave_the_benchmark_run_open_and_resume_reruns_only_them(backend: LocalBackend) -> None:
    benchmark = await suite(backend, 3)
    runner = SuiteRun(backend, SuiteOptions(agent=parse_agent("oracle")))
    await runner.start(benchmark)
    await backend.archive_scenario(benchmark.scenario_ids[1])  # its run cannot start
    first = await runner.run()
    assert not first.complete and first.summary is not None and first.summary.errors == 1
    assert "archived" in (first.results[1].error or "")
    assert (await backend.get_benchmark_run(first.benchmark_run_id)).state == "running"
    await backend.unarchive_scenario(benchmark.scenario_ids[1])
    runner = SuiteRun(backend, SuiteOptions(agent=parse_agent("oracle")))
    await runner.resume(first.benchmark_run_id)
    second = await runner.run()
    assert second.complete and [r.score for r in second.results] == [1.0, 1.0, 1.0]
    assert [r.run_id for r in second.results][::2] == [r.run_id for r in first.results][::2]  # kept, not re-run
    assert (await backend.get_benchmark_run(first.benchmark_run_id)).state == "completed"


async def test_cancelling_a_run_shuts_every_devbox_down(backend: LocalBackend) -> None:
    benchmark = await suite(backend, 4)
    runner = SuiteRun(backend, SuiteOptions(agent=parse_agent("command:sleep 60"), concurrency=2))
    await runner.start(benchmark)
    with anyio.move_on_after(2):
        await runner.run()
    assert await running_devboxes(backend) == []
    kept = await load_results(backend, runner.benchmark_run.id if runner.benchmark_run else "")
    assert kept is not None and not kept.complete and len(kept.results) <= 2
    assert (await backend.get_benchmark_run(kept.benchmark_run_id)).state == "running"


async def test_targets_are_benchmarks_by_id_or_name_or_scenarios(backend: LocalBackend) -> None:
    benchmark = await suite(backend, 2)
    assert (await resolve_benchmark(backend, [benchmark.id])).id == benchmark.id
    assert (await resolve_benchmark(backend, ["suite"])).id == benchmark.id
    extra = await trivial(backend, "extra")
    made = await resolve_benchmark(backend, [benchmark.id, extra.id])
    assert made.scenario_ids == [*benchmark.scenario_ids, extra.id]
    with pytest.raises(Exception, match="no benchmark"):
        await resolve_benchmark(backend, ["nothing-like-it"])
