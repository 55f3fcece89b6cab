"""Scenario runs on the local engine: a state machine (which action is allowed from which state)
over start, work, score, complete and cancel; scoring runs in the background (scoring.py)."""

from __future__ import annotations

import builtins
import logging
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..backend import BackendError, InvalidRequestError, InvalidStateError, NotFoundError
from ..models import (
    RunLogEntry,
    RunProfile,
    ScenarioRunListView,
    ScenarioRunView,
    StartScenarioRunParameters,
    new_id,
    now_ms,
)
from ..models import ScenarioRunState as RunState
from .devboxes import Devboxes
from .scenarios import Scenarios
from .scoring import Scoring
from .store import Store

log = logging.getLogger(__name__)

ALLOWED: dict[str, frozenset[RunState]] = {
    # Self-evaluation loops score, keep working, and score again: `scored` may be scored again.
    "score": frozenset({RunState.RUNNING, RunState.SCORED}),
    "complete": frozenset({RunState.RUNNING, RunState.SCORED}),
    "cancel": frozenset({RunState.RUNNING, RunState.SCORING, RunState.SCORED}),
    "work": frozenset({RunState.RUNNING, RunState.SCORED}),
}

HINTS: dict[RunState, str] = {
    RunState.SCORING: "wait until get_run shows `scored`",
    RunState.COMPLETED: "the run is over; start a new run with start_run",
    RunState.CANCELED: "the run was canceled; start a new run with start_run",
    RunState.FAILED: "the run failed (see failure_reason); start a new run with start_run",
    RunState.TIMEOUT: "the run timed out; start a new run with start_run",
}

ENDED = frozenset({RunState.COMPLETED, RunState.CANCELED, RunState.FAILED, RunState.TIMEOUT})


def check_transition(run_id: str, state: RunState, action: str) -> None:
    """Raise InvalidStateError naming the state when `action` is not allowed from it."""
    if state in ALLOWED[action]:
        return
    allowed = ", ".join(sorted(s.value for s in ALLOWED[action]))
    hint = HINTS.get(state, "")
    raise InvalidStateError(
        f"cannot {action} run {run_id}: it is `{state.value}`; {action} is allowed only when the run is "
        f"{allowed}" + (f" ({hint})" if hint else "")
    )


def _check_profile(profile: RunProfile, required_env: builtins.list[str], scenario_id: str) -> None:
    env_vars = {**(profile.envVars or {}), **(profile.secrets or {})}
    missing = [name for name in required_env if name not in env_vars]
    if missing:
        raise InvalidRequestError(
            f"scenario {scenario_id} requires environment variables {', '.join(missing)}; "
            "give them in runProfile.envVars or runProfile.secrets"
        )


class Runs:
    def __init__(self, store: Store, devboxes: Devboxes, scenarios: Scenarios, scoring: Scoring) -> None:
        self.store = store
        self.devboxes = devboxes
        self.scenarios = scenarios
        self.scoring = scoring
        self._scoring: dict[str, anyio.CancelScope] = {}
        # Runs that have not ended; this is the only writer of runs (one engine per data dir).
        self._runs: dict[str, ScenarioRunView] = {}
        self._tg: TaskGroup | None = None

    def attach_task_group(self, tg: TaskGroup) -> None:
        self._tg = tg

    async def _save(self, run: ScenarioRunView) -> None:
        self._runs.pop(run.id, None)
        await self.store.put(
            "runs",
            run.id,
            run.model_dump(mode="json"),
            name=run.name,
            state=run.state,
            parent_id=run.scenario_id,
        )
        if run.state not in ENDED:
            self._runs[run.id] = run

    async def start(self, params: StartScenarioRunParameters) -> ScenarioRunView:
        scenario = await self.scenarios.get(params.scenario_id)
        if scenario.status != "active":
            raise InvalidStateError(f"scenario {scenario.id} is archived; unarchive it before starting a run")
        profile = params.run_profile or RunProfile()
        _check_profile(profile, scenario.required_environment_variables or [], scenario.id)
        run_id = new_id("run")
        devbox = await self.scenarios.environment_devbox(
            scenario,
            name=f"run-{run_id}",
            run_id=run_id,
            environment_variables=profile.envVars or {},
            secrets=profile.secrets or {},
            launch_parameters=profile.launchParameters,
            mounts=profile.mounts,
        )
        run = ScenarioRunView(
            id=run_id,
            name=params.run_name,
            scenario_id=scenario.id,
            devbox_id=devbox.id,
            benchmark_run_id=params.benchmark_run_id,
            state=RunState.RUNNING,
            metadata=params.metadata or {},
            purpose=profile.purpose,
        )
        await self._save(run)
        await self.store.add_log(run_id, now_ms(), "run", f"run started on devbox {devbox.id}")
        return run

    async def get(self, run_id: str) -> ScenarioRunView:
        cached = self._runs.get(run_id)
        if cached is not None:
            return cached
        row = await self.store.get("runs", run_id)
        if row is None:
            raise NotFoundError("scenario run", run_id)
        run = ScenarioRunView.model_validate(row.data)
        if run.state not in ENDED:
            self._runs[run_id] = run
        return run

    async def list(
        self,
        *,
        limit: int,
        starting_after: str | None,
        scenario_id: str | None,
        state: str | None,
        benchmark_run_id: str | None,
        name: str | None = None,
    ) -> ScenarioRunListView:
        if state is not None and state not in {s.value for s in RunState}:
            raise InvalidRequestError(f"unknown run state {state!r}; one of {', '.join(s.value for s in RunState)}")
        page = await self.store.list(
            "runs",
            limit=limit,
            starting_after=starting_after,
            parent_id=scenario_id,
            state=state,
            name=name,
            data_fields={"benchmark_run_id": benchmark_run_id},
        )
        runs = [ScenarioRunView.model_validate(r.data) for r in page.rows]
        return ScenarioRunListView(runs=runs, has_more=page.has_more, total_count=page.total_count)

    async def check_allows_work(self, devbox_id: str) -> None:
        """A run's devbox takes work only while the run does (running or scored)."""
        run_id = (await self.devboxes.internal(devbox_id)).get("run_id")
        if run_id:
            run = await self.get(run_id)
            check_transition(run_id, run.state, "work")

    # --- scoring -------------------------------------------------------------------------------

    async def score(self, run_id: str) -> ScenarioRunView:
        run = await self.get(run_id)
        check_transition(run_id, run.state, "score")
        await self.devboxes.sandbox(run.devbox_id)  # a clear error now if the devbox is gone
        run = run.model_copy(update={"state": RunState.SCORING})
        await self._save(run)
        self._start_scoring(run_id)
        return run

    def _start_scoring(self, run_id: str) -> None:
        assert self._tg is not None, "the engine's task group is not running"
        self._tg.start_soon(self._score, run_id)

    async def _score(self, run_id: str) -> None:
        with anyio.CancelScope() as scope:
            self._scoring[run_id] = scope
            try:
                run = await self.get(run_id)
                scenario = await self.scenarios.get(run.scenario_id)
                result = await self.scoring.score_devbox(run_id, scenario, run.devbox_id)
                update: dict[str, Any] = {"state": RunState.SCORED, "scoring_contract_result": result}
            except Exception as exc:
                log.exception("scoring run %s failed", run_id)
                update = {"state": RunState.FAILED, "failure_reason": f"scoring failed: {exc}"}
            finally:
                self._scoring.pop(run_id, None)
            current = await self.get(run_id)
            if current.state == RunState.SCORING:  # not canceled meanwhile
                try:
                    await self._save(current.model_copy(update=update))
                    await self.store.add_log(run_id, now_ms(), "run", f"run {update['state'].value}")
                except BackendError as exc:  # a full disk: still `scoring`, scored again at the next start
                    log.error("run %s: its score could not be stored: %s", run_id, exc.message)

    # --- the end -------------------------------------------------------------------------------

    async def complete(self, run_id: str) -> ScenarioRunView:
        run = await self.get(run_id)
        check_transition(run_id, run.state, "complete")
        await self.devboxes.shutdown(run.devbox_id)
        run = run.model_copy(update={"state": RunState.COMPLETED, "duration_ms": now_ms() - run.start_time_ms})
        await self._save(run)
        await self.store.add_log(run_id, now_ms(), "run", "run completed; devbox shut down")
        return run

    async def cancel(self, run_id: str) -> ScenarioRunView:
        run = await self.get(run_id)
        check_transition(run_id, run.state, "cancel")
        scope = self._scoring.get(run_id)
        if scope is not None:
            scope.cancel()
        await self.devboxes.shutdown(run.devbox_id)
        run = run.model_copy(update={"state": RunState.CANCELED, "duration_ms": now_ms() - run.start_time_ms})
        await self._save(run)
        await self.store.add_log(run_id, now_ms(), "run", "run canceled; devbox shut down")
        return run

    async def logs(self, run_id: str) -> builtins.list[RunLogEntry]:
        await self.get(run_id)
        return [RunLogEntry(timestamp_ms=ts, source=src, message=msg) for ts, src, msg in await self.store.logs(run_id)]

    # --- after a restart, and on the keep-alive sweep ------------------------------------------

    async def reconcile(self, restored_devboxes: set[str]) -> None:
        """Runs caught scoring by a restart: scored again when their devbox survived, else failed."""
        page = await self.store.list("runs", limit=100_000, state="scoring")
        for row in page.rows:
            run = ScenarioRunView.model_validate(row.data)
            if run.devbox_id in restored_devboxes:
                log.info("run %s was scoring when the server stopped; scoring it again", run.id)
                self._start_scoring(run.id)
            else:
                await self._save(
                    run.model_copy(
                        update={
                            "state": RunState.FAILED,
                            "failure_reason": "the server stopped while scoring and the devbox did not survive",
                        }
                    )
                )

    async def end_runs_of_ended_devboxes(self) -> None:
        """Runs whose devbox reached its keep-alive time time out; runs whose devbox failed fail."""
        page = await self.store.list("runs", limit=100_000, state=["running", "scored"])
        for row in page.rows:
            run = ScenarioRunView.model_validate(row.data)
            box = await self.devboxes.get(run.devbox_id)
            if box.shutdown_reason == "keep_alive_timeout":
                await self._save(run.model_copy(update={"state": RunState.TIMEOUT}))
            elif box.status == "failure":
                reason = f"its devbox {box.id} failed: {box.failure_message or box.failure_reason}"
                await self._save(
                    run.model_copy(
                        update={
                            "state": RunState.FAILED,
                            "failure_reason": reason,
                            "duration_ms": now_ms() - run.start_time_ms,
                        }
                    )
                )
                await self.store.add_log(run.id, now_ms(), "run", f"run failed: {reason}")
