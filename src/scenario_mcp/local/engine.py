"""LocalBackend: the embedded engine. Wires the store, devboxes and scoring; reconciles on start."""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..backend import InvalidRequestError, InvalidStateError, NotFoundError
from ..models import (
    BlueprintCreateParameters,
    BlueprintView,
    DevboxCreateParameters,
    DevboxListView,
    DevboxSnapshotView,
    DevboxView,
    ExecutionView,
    RunLogEntry,
    ScenarioCreateParameters,
    ScenarioListView,
    ScenarioRunListView,
    ScenarioRunState,
    ScenarioRunView,
    ScenarioView,
    ScoringContractResultView,
    ScoringFunction,
    ScoringFunctionResultView,
    StartScenarioRunParameters,
    new_id,
    normalise_weights,
    now_ms,
)
from .devboxes import DevboxManager, shell_argv
from .runs import check_transition
from .sandbox import Sandbox, SandboxError, SandboxSpec, check_host_support
from .scoring import score_result, scorer_program, unsupported_scorers, weighted_total
from .store import Store

log = logging.getLogger(__name__)

EXPIRY_INTERVAL = 5.0
MAX_LIST_LIMIT = 5000


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequestError(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")
    return limit


class LocalBackend:
    """The embedded engine: SQLite under `data_dir`, devboxes as local sandboxes."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.store: Store | None = None
        self._devboxes: DevboxManager | None = None
        self._tg: TaskGroup | None = None
        self._scoring: dict[str, anyio.CancelScope] = {}

    # --- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> LocalBackend:
        try:
            check_host_support()
        except SandboxError as exc:
            raise RuntimeError(str(exc)) from exc
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.data_dir / "scenario-mcp.sqlite3")
        self._devboxes = DevboxManager(self.store, self.data_dir)
        await anyio.to_thread.run_sync(self._devboxes.layers.ensure_base)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        await self._reconcile()
        self._tg.start_soon(self._expiry_loop)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._tg is not None and self.store is not None and self._devboxes is not None
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(exc_type, exc, tb)
        await self._devboxes.close()
        self.store.close()

    @property
    def devboxes(self) -> DevboxManager:
        assert self._devboxes is not None, "use LocalBackend as an async context manager"
        return self._devboxes

    @property
    def _store(self) -> Store:
        assert self.store is not None, "use LocalBackend as an async context manager"
        return self.store

    async def _reconcile(self) -> None:
        restored = set(await self.devboxes.reconcile())
        page = await self._store.list("runs", limit=100_000, state="scoring")
        for row in page.rows:
            run = ScenarioRunView.model_validate(row.data)
            if run.devbox_id in restored:
                log.info("run %s was scoring when the server stopped; scoring it again", run.id)
                self._start_scoring(run.id)
            else:
                await self._save_run(
                    run.model_copy(
                        update={
                            "state": ScenarioRunState.FAILED,
                            "failure_reason": "the server stopped while scoring and the devbox did not survive",
                        }
                    )
                )

    async def _expiry_loop(self) -> None:
        while True:
            await anyio.sleep(EXPIRY_INTERVAL)
            try:
                await self.devboxes.expire()
                await self._timeout_runs_of_dead_devboxes()
            except Exception:
                log.exception("keep-alive sweep failed")

    async def _timeout_runs_of_dead_devboxes(self) -> None:
        page = await self._store.list("runs", limit=100_000, state=["running", "scored"])
        for row in page.rows:
            run = ScenarioRunView.model_validate(row.data)
            box = await self.devboxes.get(run.devbox_id)
            if box.shutdown_reason == "keep_alive_timeout":
                await self._save_run(run.model_copy(update={"state": ScenarioRunState.TIMEOUT}))

    # --- scenarios -----------------------------------------------------------------------------

    async def create_scenario(self, params: ScenarioCreateParameters) -> ScenarioView:
        unsupported = unsupported_scorers(params.scoring_contract)
        if unsupported:
            raise InvalidRequestError(
                "the local engine cannot run these scorers: "
                + ", ".join(unsupported)
                + "; use bash_script_scorer, command_scorer, python_script_scorer or test_based_scorer"
            )
        env = params.environment_parameters
        if env is not None:
            # Fail now, not at start_run, when the environment names something that does not exist.
            if env.snapshot_id and await self._store.get("snapshots", env.snapshot_id) is None:
                raise NotFoundError("snapshot", env.snapshot_id)
            if env.blueprint_id and await self._store.get("blueprints", env.blueprint_id) is None:
                raise NotFoundError("blueprint", env.blueprint_id)
            if env.working_directory and not env.working_directory.startswith("/"):
                raise InvalidRequestError(
                    f"working_directory must be absolute (e.g. /home/user/project), got {env.working_directory!r}"
                )
        view = ScenarioView(
            id=new_id("scenario"),
            name=params.name,
            input_context=params.input_context,
            scoring_contract=normalise_weights(params.scoring_contract),
            environment=env,
            reference_output=params.reference_output,
            metadata=params.metadata or {},
            required_environment_variables=params.required_environment_variables,
            required_secret_names=params.required_secret_names,
            validation_type=params.validation_type,
            scorer_timeout_sec=params.scorer_timeout_sec or 1800,
        )
        await self._save_scenario(view)
        return view

    async def _save_scenario(self, view: ScenarioView) -> None:
        await self._store.put("scenarios", view.id, view.model_dump(mode="json"), name=view.name, state=view.status)

    async def get_scenario(self, scenario_id: str) -> ScenarioView:
        row = await self._store.get("scenarios", scenario_id)
        if row is None:
            raise NotFoundError("scenario", scenario_id)
        return ScenarioView.model_validate(row.data)

    async def list_scenarios(
        self, *, limit: int = 20, starting_after: str | None = None, name: str | None = None
    ) -> ScenarioListView:
        page = await self._store.list("scenarios", limit=_limit(limit), starting_after=starting_after, name=name)
        return ScenarioListView(
            scenarios=[ScenarioView.model_validate(r.data) for r in page.rows],
            has_more=page.has_more,
            total_count=page.total_count,
        )

    # --- runs ----------------------------------------------------------------------------------

    async def _save_run(self, run: ScenarioRunView) -> None:
        await self._store.put(
            "runs",
            run.id,
            run.model_dump(mode="json"),
            name=run.name,
            state=run.state,
            parent_id=run.scenario_id,
        )

    async def start_run(self, params: StartScenarioRunParameters) -> ScenarioRunView:
        scenario = await self.get_scenario(params.scenario_id)
        if scenario.status != "active":
            raise InvalidStateError(f"scenario {scenario.id} is archived; unarchive it before starting a run")
        env = scenario.environment
        run_id = new_id("run")
        devbox = await self.devboxes.create(
            DevboxCreateParameters(
                name=f"run-{run_id}",
                blueprint_id=env.blueprint_id if env else None,
                blueprint_name=env.blueprint_name if env else None,
                snapshot_id=env.snapshot_id if env else None,
                launch_parameters=env.launch_parameters if env else None,
            ),
            run_id=run_id,
        )
        workdir = scenario.working_directory
        result = await self.devboxes.execute(
            devbox.id, f"mkdir -p -- '{workdir}'", working_directory="/", log_source="setup"
        )
        if result.exit_status != 0:
            await self.devboxes.shutdown(devbox.id)
            raise InvalidRequestError(f"cannot create working directory {workdir}: {result.stderr}")
        run = ScenarioRunView(
            id=run_id,
            name=params.run_name,
            scenario_id=scenario.id,
            devbox_id=devbox.id,
            benchmark_run_id=params.benchmark_run_id,
            state=ScenarioRunState.RUNNING,
            metadata=params.metadata or {},
        )
        await self._save_run(run)
        await self._store.add_log(run_id, now_ms(), "run", f"run started on devbox {devbox.id}")
        return run

    async def get_run(self, run_id: str) -> ScenarioRunView:
        row = await self._store.get("runs", run_id)
        if row is None:
            raise NotFoundError("scenario run", run_id)
        return ScenarioRunView.model_validate(row.data)

    async def list_runs(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        scenario_id: str | None = None,
        state: str | None = None,
    ) -> ScenarioRunListView:
        if state is not None and state not in {s.value for s in ScenarioRunState}:
            raise InvalidRequestError(
                f"unknown run state {state!r}; one of {', '.join(s.value for s in ScenarioRunState)}"
            )
        page = await self._store.list(
            "runs", limit=_limit(limit), starting_after=starting_after, parent_id=scenario_id, state=state
        )
        return ScenarioRunListView(
            runs=[ScenarioRunView.model_validate(r.data) for r in page.rows],
            has_more=page.has_more,
            total_count=page.total_count,
        )

    async def score_run(self, run_id: str) -> ScenarioRunView:
        run = await self.get_run(run_id)
        check_transition(run_id, run.state, "score")
        await self.devboxes.sandbox(run.devbox_id)  # a clear error now if the devbox is gone
        run = run.model_copy(update={"state": ScenarioRunState.SCORING})
        await self._save_run(run)
        self._start_scoring(run_id)
        return run

    def _start_scoring(self, run_id: str) -> None:
        assert self._tg is not None
        self._tg.start_soon(self._score, run_id)

    async def _score(self, run_id: str) -> None:
        with anyio.CancelScope() as scope:
            self._scoring[run_id] = scope
            try:
                run = await self.get_run(run_id)
                scenario = await self.get_scenario(run.scenario_id)
                result = await self._score_devbox(run_id, scenario, run.devbox_id)
                update: dict[str, Any] = {"state": ScenarioRunState.SCORED, "scoring_contract_result": result}
            except Exception as exc:
                log.exception("scoring run %s failed", run_id)
                update = {"state": ScenarioRunState.FAILED, "failure_reason": f"scoring failed: {exc}"}
            finally:
                self._scoring.pop(run_id, None)
            current = await self.get_run(run_id)
            if current.state == ScenarioRunState.SCORING:  # not canceled meanwhile
                await self._save_run(current.model_copy(update=update))
                await self._store.add_log(run_id, now_ms(), "run", f"run {update['state'].value}")

    async def _score_devbox(self, log_id: str, scenario: ScenarioView, devbox_id: str) -> ScoringContractResultView:
        """Score a devbox's working directory with the scenario's scorers, out of the agent's reach."""
        sandbox = await self.devboxes.sandbox(devbox_id)
        # Nothing of the agent's keeps running (or editing files) while scorers look.
        await sandbox.kill_all_but_init()
        layers = list((await self.devboxes.internal(devbox_id))["layers"])
        work = self.data_dir / "scoring" / uuid.uuid4().hex
        try:
            agent_layer = work / "agent"
            await self.devboxes.layers.subtree_layer(
                self.devboxes.boxes_dir / devbox_id / "upper", scenario.working_directory, agent_layer
            )
            results = []
            for function in scenario.scoring_contract.scoring_function_parameters:
                result = await self._run_scorer(scenario, function, layers, agent_layer, work / function.name)
                results.append(result)
                await self._store.add_log(
                    log_id,
                    now_ms(),
                    f"scorer:{function.name}",
                    f"state={result.state} score={result.score}\n{result.output}",
                )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return ScoringContractResultView(
            score=weighted_total(scenario.scoring_contract, results), scoring_function_results=results
        )

    async def _run_scorer(
        self,
        scenario: ScenarioView,
        function: ScoringFunction,
        layers: list[str],
        agent_layer: Path,
        work: Path,
    ) -> ScoringFunctionResultView:
        program = scorer_program(function.scorer, scenario.working_directory)
        scorer_layer = work / "scorer-layer"
        for part in ("usr", "etc"):
            (scorer_layer / part).mkdir(parents=True, exist_ok=True)
        for path, contents in program.files.items():
            target = scorer_layer / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(contents)
        spec = SandboxSpec(
            state_dir=work / "box",
            layers=(scorer_layer, agent_layer, *(self.devboxes.layers.path(layer) for layer in layers)),
            skeleton=self.devboxes.layers.skeleton,
            etc_mask=self.devboxes.layers.etc_mask,
            network=False,
            hostname="scorer",
        )
        sandbox = await Sandbox.start(spec)
        try:
            with open(work / "out", "w+b") as out, open(work / "err", "w+b") as err:
                code, timed_out = await sandbox.run(
                    shell_argv(scenario.working_directory, program.command),
                    stdout=out,
                    stderr=err,
                    timeout=scenario.scorer_timeout_sec,
                )
                out.seek(0)
                err.seek(0)
                stdout = out.read(1 << 20).decode(errors="replace")
                stderr = err.read(1 << 20).decode(errors="replace")
        finally:
            await sandbox.stop()
        return score_result(function.name, program, code, stdout, stderr, timed_out)

    async def complete_run(self, run_id: str) -> ScenarioRunView:
        run = await self.get_run(run_id)
        check_transition(run_id, run.state, "complete")
        await self.devboxes.shutdown(run.devbox_id)
        run = run.model_copy(update={"state": ScenarioRunState.COMPLETED, "duration_ms": now_ms() - run.start_time_ms})
        await self._save_run(run)
        await self._store.add_log(run_id, now_ms(), "run", "run completed; devbox shut down")
        return run

    async def cancel_run(self, run_id: str) -> ScenarioRunView:
        run = await self.get_run(run_id)
        check_transition(run_id, run.state, "cancel")
        scope = self._scoring.get(run_id)
        if scope is not None:
            scope.cancel()
        await self.devboxes.shutdown(run.devbox_id)
        run = run.model_copy(update={"state": ScenarioRunState.CANCELED, "duration_ms": now_ms() - run.start_time_ms})
        await self._save_run(run)
        await self._store.add_log(run_id, now_ms(), "run", "run canceled; devbox shut down")
        return run

    async def run_logs(self, run_id: str) -> list[RunLogEntry]:
        await self.get_run(run_id)
        return [
            RunLogEntry(timestamp_ms=ts, source=src, message=msg) for ts, src, msg in await self._store.logs(run_id)
        ]

    # --- blueprints and devboxes ---------------------------------------------------------------

    async def create_blueprint(self, params: BlueprintCreateParameters) -> BlueprintView:
        return await self.devboxes.create_blueprint(params)

    async def get_blueprint(self, blueprint_id: str) -> BlueprintView:
        return await self.devboxes.get_blueprint(blueprint_id)

    async def create_devbox(self, params: DevboxCreateParameters) -> DevboxView:
        return await self.devboxes.create(params)

    async def get_devbox(self, devbox_id: str) -> DevboxView:
        return await self.devboxes.get(devbox_id)

    async def list_devboxes(
        self, *, limit: int = 20, starting_after: str | None = None, status: str | None = None
    ) -> DevboxListView:
        page = await self._store.list("devboxes", limit=_limit(limit), starting_after=starting_after, state=status)
        return DevboxListView(
            devboxes=[DevboxView.model_validate(r.data) for r in page.rows],
            has_more=page.has_more,
            total_count=page.total_count,
        )

    async def shutdown_devbox(self, devbox_id: str) -> DevboxView:
        return await self.devboxes.shutdown(devbox_id)

    async def execute(
        self,
        devbox_id: str,
        command: str,
        *,
        timeout_seconds: float | None = None,
        working_directory: str | None = None,
    ) -> ExecutionView:
        await self._check_run_allows_work(devbox_id)
        return await self.devboxes.execute(
            devbox_id, command, timeout_seconds=timeout_seconds, working_directory=working_directory
        )

    async def _check_run_allows_work(self, devbox_id: str) -> None:
        run_id = (await self.devboxes.internal(devbox_id)).get("run_id")
        if run_id:
            run = await self.get_run(run_id)
            check_transition(run_id, run.state, "work")

    async def read_file(self, devbox_id: str, file_path: str) -> str:
        return await self.devboxes.read_file(devbox_id, file_path)

    async def write_file(self, devbox_id: str, file_path: str, contents: str) -> None:
        await self._check_run_allows_work(devbox_id)
        await self.devboxes.write_file(devbox_id, file_path, contents)

    async def snapshot_disk(
        self,
        devbox_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        commit_message: str | None = None,
    ) -> DevboxSnapshotView:
        return await self.devboxes.snapshot(devbox_id, name=name, metadata=metadata, commit_message=commit_message)
