"""Scenario runs: start, read, score (optionally waiting, with progress), finish, and run_scenario."""

from __future__ import annotations

import anyio

from ...backend import Backend, BackendError, OperationTimeoutError
from ...models import (
    TERMINAL_RUN_STATES,
    ExecutionView,
    RunProfile,
    ScenarioRunListView,
    ScenarioRunState,
    ScenarioRunView,
    StartScenarioRunParameters,
)
from .agents import runloop_mounts
from .inputs import (
    GetRunInput,
    ListRunsInput,
    RunIdInput,
    RunScenarioInput,
    RunScenarioResult,
    ScoreRunInput,
    StartRunInput,
)
from .spec import Progress, Unfinished
from .waiting import poll

POLL_INTERVAL = 0.1
STILL_SCORING = "still scoring: call get_run(run_id, wait_seconds=...) to wait for its score"


def _start(params: StartRunInput | RunScenarioInput, scenario_id: str) -> StartScenarioRunParameters:
    """A run's start, with the mounts the input has (an input of the agents toolset)."""
    mounts = runloop_mounts(getattr(params, "mounts", None))
    return StartScenarioRunParameters(
        scenario_id=scenario_id,
        run_name=params.run_name,
        run_profile=RunProfile(mounts=mounts) if mounts else None,
    )


async def start_run(backend: Backend, params: StartRunInput) -> ScenarioRunView:
    return await backend.start_run(_start(params, params.scenario_id))


async def get_run(backend: Backend, params: GetRunInput) -> ScenarioRunView | Unfinished:
    run = await poll(
        lambda: backend.get_run(params.run_id), lambda r: r.state != ScenarioRunState.SCORING, params.wait_seconds
    )
    return Unfinished(run, STILL_SCORING) if run.state == ScenarioRunState.SCORING else run


async def list_runs(backend: Backend, params: ListRunsInput) -> ScenarioRunListView:
    return await backend.list_runs(
        limit=params.limit,
        starting_after=params.starting_after,
        scenario_id=params.scenario_id,
        state=params.state.value if params.state else None,
        benchmark_run_id=params.benchmark_run_id,
    )


async def wait_until_scored(
    backend: Backend, run: ScenarioRunView, progress: Progress, *, timeout_seconds: float, step: float = 0
) -> ScenarioRunView:
    """Poll a `scoring` run until it is not, reporting elapsed time; returns it as it is at the bound."""
    started = anyio.current_time()
    reported = 0  # progress must increase: the first report comes after a whole second
    with anyio.move_on_after(timeout_seconds):
        while run.state == ScenarioRunState.SCORING:
            await anyio.sleep(POLL_INTERVAL)
            run = await backend.get_run(run.id)
            elapsed = int(anyio.current_time() - started)
            if elapsed > reported:
                reported = elapsed
                await progress(step + elapsed / (elapsed + 30), None, f"scoring {run.id}: {elapsed} s")
    return run


async def score_run(backend: Backend, params: ScoreRunInput, progress: Progress) -> ScenarioRunView | Unfinished:
    """Start scoring, then wait at most `wait_seconds` for the score."""
    run = await backend.score_run(params.run_id)
    if params.wait_seconds > 0:
        await progress(0, 1, f"scoring {run.id}")
        run = await wait_until_scored(backend, run, progress, timeout_seconds=params.wait_seconds)
    if run.state == ScenarioRunState.SCORING:
        return Unfinished(run, STILL_SCORING)
    await progress(1, 1, f"{run.id} is {run.state.value}")
    return run


async def complete_run(backend: Backend, params: RunIdInput) -> ScenarioRunView:
    return await backend.complete_run(params.run_id)


async def cancel_run(backend: Backend, params: RunIdInput) -> ScenarioRunView:
    return await backend.cancel_run(params.run_id)


RUN_SCENARIO_STEPS = 5


async def run_scenario(backend: Backend, params: RunScenarioInput, progress: Progress) -> RunScenarioResult:
    """start -> (command) -> score -> wait for `scored` -> complete, one progress step each.

    Cancelled or failing part-way, the run is canceled so no devbox is left behind.
    """
    total = RUN_SCENARIO_STEPS
    scenario = await backend.get_scenario(params.scenario_id)
    run = await backend.start_run(_start(params, scenario.id))
    await progress(1, total, f"started run {run.id} on devbox {run.devbox_id}")
    execution: ExecutionView | None = None
    finished = False
    try:
        if params.command is not None:
            execution = await backend.execute(
                run.devbox_id,
                params.command,
                timeout_seconds=params.command_timeout_seconds,
                working_directory=scenario.working_directory,
            )
            await progress(2, total, f"command exited {execution.exit_status}")
        else:
            await progress(2, total, "no command: scoring the untouched environment")
        run = await backend.score_run(run.id)
        await progress(3, total, f"scoring {run.id}")
        run = await wait_until_scored(backend, run, progress, timeout_seconds=params.scoring_timeout_seconds, step=3)
        if run.state == ScenarioRunState.SCORING:
            raise OperationTimeoutError(
                f"run {run.id} was still scoring after {params.scoring_timeout_seconds:g} s; it was canceled. "
                "Raise scoring_timeout_seconds, or drive the run with start_run/score_run/get_run yourself"
            )
        score = run.scoring_contract_result.score if run.scoring_contract_result else None
        scored = f" with score {score}" if score is not None else ""
        await progress(4, total, f"{run.id} is {run.state.value}{scored}")
        if run.state == ScenarioRunState.SCORED:
            run = await backend.complete_run(run.id)
            await progress(5, total, f"completed {run.id}")
        finished = True
        return RunScenarioResult(run=run, execution=execution, score=score)
    finally:
        if not finished:
            await _cancel_quietly(backend, run.id)


async def _cancel_quietly(backend: Backend, run_id: str) -> None:
    with anyio.CancelScope(shield=True):
        try:
            current = await backend.get_run(run_id)
            if current.state not in TERMINAL_RUN_STATES:
                await backend.cancel_run(run_id)
        except BackendError:
            pass
