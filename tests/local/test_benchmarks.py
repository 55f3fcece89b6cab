"""Benchmarks on the real engine: definitions, and runs over every scenario at once."""

from __future__ import annotations

import anyio
import pytest

from scenario_mcp.backend import InvalidRequestError, InvalidStateError, NotFoundError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import (
    BashScriptScorer,
    BenchmarkCreateParameters,
    InputContext,
    ScenarioCreateParameters,
    ScenarioView,
    ScoringContract,
    ScoringFunction,
    StartBenchmarkRunParameters,
)

pytestmark = pytest.mark.anyio


async def scenario(backend: LocalBackend, name: str, score: str = "1.0") -> ScenarioView:
    return await backend.create_scenario(
        ScenarioCreateParameters(
            name=name,
            input_context=InputContext(problem_statement=f"task {name}"),
            scoring_contract=ScoringContract(
                scoring_function_parameters=[
                    ScoringFunction(name="fixed", weight=1, scorer=BashScriptScorer(bash_script=f"echo {score}"))
                ]
            ),
        )
    )


async def test_definitions_keep_unique_scenarios_and_refuse_unknown_ones(backend: LocalBackend) -> None:
    a, b = await scenario(backend, "a"), await scenario(backend, "b")
    benchmark = await backend.create_benchmark(BenchmarkCreateParameters(name="bench", scenario_ids=[a.id, b.id, a.id]))
    assert benchmark.scenario_ids == [a.id, b.id]
    with pytest.raises(NotFoundError):
        await backend.create_benchmark(BenchmarkCreateParameters(name="bad", scenario_ids=["scn_missing"]))
    updated = await backend.update_benchmark_scenarios(benchmark.id, add=[b.id], remove=[a.id])
    assert updated.scenario_ids == [b.id]
    assert (await backend.get_benchmark(benchmark.id)).scenario_ids == [b.id]


async def test_an_archived_benchmark_is_unlisted_and_cannot_run(backend: LocalBackend) -> None:
    a = await scenario(backend, "a")
    benchmark = await backend.create_benchmark(BenchmarkCreateParameters(name="bench", scenario_ids=[a.id]))
    await backend.archive_benchmark(benchmark.id)
    assert benchmark.id not in [b.id for b in (await backend.list_benchmarks()).benchmarks]
    with pytest.raises(InvalidStateError, match="archived"):
        await backend.start_benchmark_run(StartBenchmarkRunParameters(benchmark_id=benchmark.id))
    await backend.unarchive_benchmark(benchmark.id)
    assert benchmark.id in [b.id for b in (await backend.list_benchmarks()).benchmarks]


async def test_a_run_needs_scenarios_all_active(backend: LocalBackend) -> None:
    empty = await backend.create_benchmark(BenchmarkCreateParameters(name="empty"))
    with pytest.raises(InvalidRequestError, match="no scenarios"):
        await backend.start_benchmark_run(StartBenchmarkRunParameters(benchmark_id=empty.id))
    a = await scenario(backend, "a")
    benchmark = await backend.create_benchmark(BenchmarkCreateParameters(name="bench", scenario_ids=[a.id]))
    await backend.archive_scenario(a.id)
    with pytest.raises(InvalidStateError, match=a.id):
        await backend.start_benchmark_run(StartBenchmarkRunParameters(benchmark_id=benchmark.id))
    assert (await backend.list_runs()).total_count == 0


async def test_completing_a_run_scores_the_mean_and_completes_its_scenario_runs(backend: LocalBackend) -> None:
    scored, unscored = await scenario(backend, "scored"), await scenario(backend, "unscored")
    benchmark = await backend.create_benchmark(
        BenchmarkCreateParameters(name="bench", scenario_ids=[scored.id, unscored.id])
    )
    run = await backend.start_benchmark_run(StartBenchmarkRunParameters(benchmark_id=benchmark.id, run_name="r"))
    scenario_runs = (await backend.list_runs(benchmark_run_id=run.id)).runs
    assert sorted(r.scenario_id for r in scenario_runs) == sorted([scored.id, unscored.id])
    assert all(r.state == "running" and r.name and r.name.startswith("r: ") for r in scenario_runs)
    to_score = next(r for r in scenario_runs if r.scenario_id == scored.id)
    await backend.score_run(to_score.id)
    with anyio.fail_after(60):
        while (await backend.get_run(to_score.id)).state == "scoring":
            await anyio.sleep(0.05)
    done = await backend.complete_benchmark_run(run.id)
    assert done.state == "completed" and done.score == 0.5  # the unscored run counts as 0.0
    for scenario_run in scenario_runs:
        assert (await backend.get_run(scenario_run.id)).state == "completed"
        assert (await backend.get_devbox(scenario_run.devbox_id)).status == "shutdown"
    with pytest.raises(InvalidStateError, match="only a `running` benchmark run"):
        await backend.cancel_benchmark_run(run.id)


async def test_canceling_a_run_cancels_its_scenario_runs(backend: LocalBackend) -> None:
    a, b = await scenario(backend, "a"), await scenario(backend, "b")
    benchmark = await backend.create_benchmark(BenchmarkCreateParameters(name="bench", scenario_ids=[a.id, b.id]))
    run = await backend.start_benchmark_run(StartBenchmarkRunParameters(benchmark_id=benchmark.id))
    canceled = await backend.cancel_benchmark_run(run.id)
    assert canceled.state == "canceled" and canceled.score is None
    for scenario_run in (await backend.list_runs(benchmark_run_id=run.id)).runs:
        assert scenario_run.state == "canceled"
    assert [r.id for r in (await backend.list_benchmark_runs(benchmark_id=benchmark.id)).runs] == [run.id]
