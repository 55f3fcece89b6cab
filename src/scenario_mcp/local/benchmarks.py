"""Benchmarks on the local engine: named sets of scenarios, and runs over all of them at once.

A benchmark run starts one scenario run per scenario, each carrying the benchmark run's id, or
(`start_scenario_runs=false`, for a runner that starts them a few at a time) none: every scenario
run started with a running benchmark run's id joins it. Its state is `running` until it is
completed or canceled; completing it completes every scenario run still open and sets its score
to the mean of its scenario runs' scores (a run never scored counts as 0.0, as Runloop computes
it: sum of scenario scores / number of scenario runs).
"""

from __future__ import annotations

import builtins
import logging
from typing import Literal, Protocol

import anyio

from ..backend import BackendError, InvalidRequestError, InvalidStateError, NotFoundError
from ..models import (
    BenchmarkCreateParameters,
    BenchmarkListView,
    BenchmarkRunListView,
    BenchmarkRunView,
    BenchmarkUpdateParameters,
    BenchmarkView,
    ScenarioRunState,
    ScenarioRunView,
    ScenarioView,
    StartBenchmarkRunParameters,
    StartScenarioRunParameters,
    new_id,
    now_ms,
)
from .boundary import check_limit
from .store import Store, Table

log = logging.getLogger(__name__)

BENCHMARKS: Table = "benchmarks"
BENCHMARK_RUNS: Table = "benchmark_runs"
_DONE = {"complete": "completed", "cancel": "canceled", "join": "joined"}


class ScenarioRuns(Protocol):
    """What a benchmark needs of the engine: scenarios and their runs."""

    async def get_scenario(self, scenario_id: str) -> ScenarioView: ...
    async def start_run(self, params: StartScenarioRunParameters) -> ScenarioRunView: ...
    async def get_run(self, run_id: str) -> ScenarioRunView: ...
    async def complete_run(self, run_id: str) -> ScenarioRunView: ...
    async def cancel_run(self, run_id: str) -> ScenarioRunView: ...


# Fields a benchmark update may name only with the values the benchmark already has.
FIXED_FIELDS = ("name", "metadata", "description", "required_environment_variables", "required_secret_names")


def _unique(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


class Benchmarks:
    def __init__(self, store: Store, runs: ScenarioRuns, members_lock: anyio.Lock | None = None) -> None:
        self.store = store
        self.runs = runs
        # Runs joining one benchmark run at once each add to the same list: one at a time.
        self.members_lock = members_lock or anyio.Lock()

    # --- definitions ---------------------------------------------------------------------------

    async def _save(self, view: BenchmarkView) -> None:
        await self.store.put(BENCHMARKS, view.id, view.model_dump(mode="json"), name=view.name, state=view.status)

    async def _check_scenarios(self, scenario_ids: builtins.list[str]) -> None:
        for scenario_id in scenario_ids:
            await self.runs.get_scenario(scenario_id)  # NotFoundError names the missing one

    async def create(self, params: BenchmarkCreateParameters) -> BenchmarkView:
        scenario_ids = _unique(params.scenario_ids or [])
        await self._check_scenarios(scenario_ids)
        view = BenchmarkView(
            id=new_id("benchmark"),
            name=params.name,
            scenario_ids=scenario_ids,
            metadata=params.metadata or {},
            description=params.description,
        )
        await self._save(view)
        return view

    async def get(self, benchmark_id: str) -> BenchmarkView:
        row = await self.store.get(BENCHMARKS, benchmark_id)
        if row is None:
            raise NotFoundError("benchmark", benchmark_id)
        return BenchmarkView.model_validate(row.data)

    async def list(
        self, *, limit: int, starting_after: str | None = None, name: str | None = None
    ) -> BenchmarkListView:
        # As Runloop lists them: an archived benchmark is left out (get it by id).
        page = await self.store.list(BENCHMARKS, limit=limit, starting_after=starting_after, state="active", name=name)
        return BenchmarkListView(
            benchmarks=[BenchmarkView.model_validate(r.data) for r in page.rows],
            has_more=page.has_more,
            total_count=page.total_count,
        )

    async def set_status(self, benchmark_id: str, status: Literal["active", "archived"]) -> BenchmarkView:
        view = (await self.get(benchmark_id)).model_copy(update={"status": status})
        await self._save(view)
        return view

    async def update_scenarios(
        self, benchmark_id: str, *, add: builtins.list[str] | None = None, remove: builtins.list[str] | None = None
    ) -> BenchmarkView:
        view = await self.get(benchmark_id)
        to_add = _unique(add or [])
        await self._check_scenarios(to_add)
        removed = set(remove or [])
        scenario_ids = _unique([s for s in [*view.scenario_ids, *to_add] if s not in removed])
        view = view.model_copy(update={"scenario_ids": scenario_ids})
        await self._save(view)
        return view

    async def update(self, benchmark_id: str, params: BenchmarkUpdateParameters) -> BenchmarkView:
        """Runloop's whole-benchmark update: here only its scenario_ids may change (the other
        fields only to the values they have), as the difference to the current list."""
        current = await self.get(benchmark_id)
        unsupported = [
            field
            for field in FIXED_FIELDS
            if getattr(params, field) is not None and getattr(params, field) != getattr(current, field, None)
        ]
        if unsupported:
            raise InvalidRequestError(
                f"updating {', '.join(unsupported)} of a benchmark is not supported by this scenario-mcp engine; "
                "only its scenario_ids can change (or use POST /v1/benchmarks/{id}/scenarios)"
            )
        if params.scenario_ids is None:
            return current
        wanted = _unique(params.scenario_ids)
        return await self.update_scenarios(
            benchmark_id,
            add=[s for s in wanted if s not in current.scenario_ids],
            remove=[s for s in current.scenario_ids if s not in wanted],
        )

    # --- runs ----------------------------------------------------------------------------------

    async def _save_run(self, run: BenchmarkRunView, scenario_run_ids: builtins.list[str] | None = None) -> None:
        await self.store.put(
            BENCHMARK_RUNS,
            run.id,
            run.model_dump(mode="json"),
            internal=None if scenario_run_ids is None else {"scenario_run_ids": scenario_run_ids},
            name=run.name,
            state=run.state,
            parent_id=run.benchmark_id,
        )

    async def _scenario_run_ids(self, benchmark_run_id: str) -> builtins.list[str]:
        row = await self.store.get(BENCHMARK_RUNS, benchmark_run_id)
        if row is None:
            raise NotFoundError("benchmark run", benchmark_run_id)
        return list(row.internal.get("scenario_run_ids", []))

    async def start_run(self, params: StartBenchmarkRunParameters) -> BenchmarkRunView:
        benchmark = await self.get(params.benchmark_id)
        if benchmark.status != "active":
            raise InvalidStateError(f"benchmark {benchmark.id} is archived; unarchive it to run it")
        if not benchmark.scenario_ids:
            raise InvalidRequestError(
                f"benchmark {benchmark.id} has no scenarios; add some with update_benchmark_scenarios first"
            )
        scenarios = [await self.runs.get_scenario(s) for s in benchmark.scenario_ids]
        archived = [s.id for s in scenarios if s.status != "active"]
        if archived:
            raise InvalidStateError(
                f"benchmark {benchmark.id} includes archived scenarios ({', '.join(archived)}); "
                "unarchive or remove them before starting a run"
            )
        run = BenchmarkRunView(
            id=new_id("benchmark_run"),
            benchmark_id=benchmark.id,
            name=params.run_name,
            state="running",
            metadata=params.metadata or {},
        )
        started: builtins.list[str] = []
        await self._save_run(run, started)
        if params.start_scenario_runs is False:
            return run
        try:
            for scenario in scenarios:
                scenario_run = await self.runs.start_run(  # joins the benchmark run (join)
                    StartScenarioRunParameters(
                        scenario_id=scenario.id,
                        run_name=f"{params.run_name or benchmark.name}: {scenario.name}",
                        benchmark_run_id=run.id,
                        metadata=params.metadata,
                    )
                )
                started.append(scenario_run.id)
        except BaseException:
            # All or nothing: a benchmark run that could not start all its scenarios is failed, and
            # the devboxes of the runs that did start are not left running.
            for run_id in started:
                try:
                    await self.runs.cancel_run(run_id)
                except BackendError:
                    log.exception("could not cancel scenario run %s of failed benchmark run %s", run_id, run.id)
            failed = run.model_copy(update={"state": "failed", "duration_ms": now_ms() - run.start_time_ms})
            await self._save_run(failed)
            raise
        return run

    async def check_joinable(self, benchmark_run_id: str) -> None:
        """A scenario run may name only a running benchmark run."""
        await self._open_run(benchmark_run_id, "join")

    async def join(self, benchmark_run_id: str, scenario_run_id: str) -> None:
        """A scenario run started with this benchmark run's id is one of its runs."""
        async with self.members_lock:
            row = await self.store.get(BENCHMARK_RUNS, benchmark_run_id)
            if row is None:
                raise NotFoundError("benchmark run", benchmark_run_id)
            members = list(row.internal.get("scenario_run_ids", []))
            if scenario_run_id not in members:
                members.append(scenario_run_id)
                await self._save_run(BenchmarkRunView.model_validate(row.data), members)

    async def get_run(self, benchmark_run_id: str) -> BenchmarkRunView:
        row = await self.store.get(BENCHMARK_RUNS, benchmark_run_id)
        if row is None:
            raise NotFoundError("benchmark run", benchmark_run_id)
        return BenchmarkRunView.model_validate(row.data)

    async def list_runs(
        self,
        *,
        limit: int,
        starting_after: str | None = None,
        benchmark_id: str | None = None,
        name: str | None = None,
        state: str | None = None,
    ) -> BenchmarkRunListView:
        page = await self.store.list(
            BENCHMARK_RUNS, limit=limit, starting_after=starting_after, parent_id=benchmark_id, name=name, state=state
        )
        return BenchmarkRunListView(
            runs=[BenchmarkRunView.model_validate(r.data) for r in page.rows],
            has_more=page.has_more,
            total_count=page.total_count,
        )

    async def scenario_runs(self, benchmark_run_id: str) -> builtins.list[ScenarioRunView]:
        return [await self.runs.get_run(run_id) for run_id in await self._scenario_run_ids(benchmark_run_id)]

    async def _open_run(self, benchmark_run_id: str, action: str) -> BenchmarkRunView:
        run = await self.get_run(benchmark_run_id)
        if run.state != "running":
            raise InvalidStateError(
                f"cannot {action} benchmark run {run.id}: it is `{run.state}`, and only a `running` benchmark run "
                f"can be {_DONE[action]}; start a new one with start_benchmark_run"
            )
        return run

    async def complete_run(self, benchmark_run_id: str) -> BenchmarkRunView:
        run = await self._open_run(benchmark_run_id, "complete")
        scenario_runs = await self.scenario_runs(run.id)
        scoring = [r.id for r in scenario_runs if r.state == ScenarioRunState.SCORING]
        if scoring:
            raise InvalidStateError(
                f"cannot complete benchmark run {run.id} while scenario runs are scoring ({', '.join(scoring)}); "
                "wait until they are `scored`"
            )
        final: builtins.list[ScenarioRunView] = []
        for scenario_run in scenario_runs:
            if scenario_run.state in (ScenarioRunState.RUNNING, ScenarioRunState.SCORED):
                scenario_run = await self.runs.complete_run(scenario_run.id)
            final.append(scenario_run)
        scores = [r.scoring_contract_result.score if r.scoring_contract_result else 0.0 for r in final]
        run = run.model_copy(
            update={
                "state": "completed",
                "score": sum(scores) / len(scores) if scores else None,
                "duration_ms": now_ms() - run.start_time_ms,
            }
        )
        await self._save_run(run)
        return run

    async def cancel_run(self, benchmark_run_id: str) -> BenchmarkRunView:
        run = await self._open_run(benchmark_run_id, "cancel")
        for scenario_run in await self.scenario_runs(run.id):
            if scenario_run.state in (ScenarioRunState.RUNNING, ScenarioRunState.SCORING, ScenarioRunState.SCORED):
                await self.runs.cancel_run(scenario_run.id)
        run = run.model_copy(update={"state": "canceled", "duration_ms": now_ms() - run.start_time_ms})
        await self._save_run(run)
        return run


class BenchmarkCalls:
    """LocalBackend's benchmark calls (the Backend protocol's), each handed to its `benchmarks`."""

    @property
    def benchmarks(self) -> Benchmarks:
        raise NotImplementedError  # LocalBackend's own

    async def create_benchmark(self, params: BenchmarkCreateParameters) -> BenchmarkView:
        return await self.benchmarks.create(params)

    async def get_benchmark(self, benchmark_id: str) -> BenchmarkView:
        return await self.benchmarks.get(benchmark_id)

    async def list_benchmarks(
        self, *, limit: int = 20, starting_after: str | None = None, name: str | None = None
    ) -> BenchmarkListView:
        return await self.benchmarks.list(limit=check_limit(limit), starting_after=starting_after, name=name)

    async def update_benchmark(self, benchmark_id: str, params: BenchmarkUpdateParameters) -> BenchmarkView:
        return await self.benchmarks.update(benchmark_id, params)

    async def archive_benchmark(self, benchmark_id: str) -> BenchmarkView:
        return await self.benchmarks.set_status(benchmark_id, "archived")

    async def unarchive_benchmark(self, benchmark_id: str) -> BenchmarkView:
        return await self.benchmarks.set_status(benchmark_id, "active")

    async def update_benchmark_scenarios(
        self, benchmark_id: str, *, add: list[str] | None = None, remove: list[str] | None = None
    ) -> BenchmarkView:
        return await self.benchmarks.update_scenarios(benchmark_id, add=add, remove=remove)

    async def start_benchmark_run(self, params: StartBenchmarkRunParameters) -> BenchmarkRunView:
        return await self.benchmarks.start_run(params)

    async def get_benchmark_run(self, benchmark_run_id: str) -> BenchmarkRunView:
        return await self.benchmarks.get_run(benchmark_run_id)

    async def list_benchmark_runs(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        benchmark_id: str | None = None,
        name: str | None = None,
        state: str | None = None,
    ) -> BenchmarkRunListView:
        return await self.benchmarks.list_runs(
            limit=check_limit(limit), starting_after=starting_after, benchmark_id=benchmark_id, name=name, state=state
        )

    async def complete_benchmark_run(self, benchmark_run_id: str) -> BenchmarkRunView:
        return await self.benchmarks.complete_run(benchmark_run_id)

    async def cancel_benchmark_run(self, benchmark_run_id: str) -> BenchmarkRunView:
        return await self.benchmarks.cancel_run(benchmark_run_id)
