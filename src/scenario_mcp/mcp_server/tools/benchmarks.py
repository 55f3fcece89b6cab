"""Benchmarks: group scenarios, and run them: start a run of each, or drive an agent through all
of them (the benchmark runner, harness/runner.py) reporting progress per attempt."""

from __future__ import annotations

from ...backend import Backend, InvalidRequestError
from ...harness.agents import parse_agent
from ...harness.results import AttemptResult
from ...harness.runner import SuiteOptions, SuiteRun, default_concurrency
from ...models import (
    BenchmarkCreateParameters,
    BenchmarkRunView,
    BenchmarkView,
    StartBenchmarkRunParameters,
)
from .agents import runloop_mounts
from .inputs import CreateBenchmarkInput, RunBenchmarkInput
from .shapes import runloop_shape
from .spec import Progress


async def create_benchmark(backend: Backend, params: CreateBenchmarkInput) -> BenchmarkView:
    given = runloop_shape(params.model_dump(exclude_none=True))
    return await backend.create_benchmark(BenchmarkCreateParameters.model_validate(given))


async def run_benchmark(backend: Backend, params: RunBenchmarkInput, progress: Progress) -> BenchmarkRunView:
    mounts = runloop_mounts(getattr(params, "mounts", None))  # an input of the agents toolset
    if params.agent is None:
        if mounts:
            raise InvalidRequestError(
                "mounts go into the runs an agent drives: give agent (e.g. command:CMD), or start each run "
                "with start_run(mounts)"
            )
        given = runloop_shape(
            params.model_dump(exclude_none=True, exclude={"wait_seconds", "agent", "attempts", "concurrency", "mounts"})
        )
        return await backend.start_benchmark_run(StartBenchmarkRunParameters.model_validate(given))
    try:
        agent = parse_agent(params.agent, allowed=("oracle", "nop", "command"))
    except ValueError as exc:
        raise InvalidRequestError(f"agent: {exc}") from None
    benchmark = await backend.get_benchmark(params.benchmark_id)
    total = len(benchmark.scenario_ids) * params.attempts
    scores: list[float] = []

    async def report(result: AttemptResult) -> None:
        scores.append(result.value)
        outcome = f"error: {result.error}" if result.error else f"score {result.score}"
        await progress(
            len(scores),
            total,
            f"{result.scenario_name} #{result.attempt}: {outcome} (mean so far {sum(scores) / len(scores):.3f})",
        )

    options = SuiteOptions(
        agent=agent,
        concurrency=params.concurrency or default_concurrency(),
        attempts=params.attempts,
        run_name=params.run_name,
        metadata=runloop_shape(params.model_dump(include={"metadata"}, exclude_none=True)).get("metadata", {}),
        mounts=mounts or [],
    )
    runner = SuiteRun(backend, options, on_result=report)
    await runner.start(benchmark)
    suite = await runner.run()
    return await backend.get_benchmark_run(suite.benchmark_run_id)
