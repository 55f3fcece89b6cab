"""LocalBackend: the embedded engine. Wires the store, devboxes and scoring; reconciles on start."""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import shlex
import shutil
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..backend import InvalidRequestError, InvalidStateError, NotFoundError
from ..models import (
    COLLECTION_PATHS,
    BenchmarkCreateParameters,
    BenchmarkListView,
    BenchmarkRunListView,
    BenchmarkRunView,
    BenchmarkView,
    BlueprintBuildLogsListView,
    BlueprintCreateParameters,
    BlueprintListView,
    BlueprintView,
    CreateCustomScorerParameters,
    CustomScorer,
    DevboxCreateParameters,
    DevboxListView,
    DevboxLogsListView,
    DevboxSnapshotListView,
    DevboxSnapshotView,
    DevboxView,
    ExecutionOutputChunk,
    ExecutionView,
    LaunchParameters,
    MetadataKeysView,
    MetadataKind,
    MetadataValuesView,
    RunLogEntry,
    RunProfile,
    ScenarioCreateParameters,
    ScenarioListView,
    ScenarioRunListView,
    ScenarioRunState,
    ScenarioRunView,
    ScenarioScorersListView,
    ScenarioScorerView,
    ScenarioUpdateParameters,
    ScenarioValidationView,
    ScenarioView,
    ScoringContract,
    ScoringContractResultView,
    ScoringFunction,
    ScoringFunctionResultView,
    StartBenchmarkRunParameters,
    StartScenarioRunParameters,
    ValidationAttempt,
    new_id,
    normalise_weights,
    now_ms,
)
from ..validation import judge_validation
from .benchmarks import Benchmarks
from .commands import shell_argv
from .custom_scorers import CustomScorers
from .devboxes import DevboxManager
from .launcher import terminate
from .limits import remove_stale_spares
from .runs import check_transition
from .sandbox import LAUNCHER_SOCKET, Sandbox, SandboxError, SandboxSpec, check_host_support
from .scoring import score_result, scorer_program, unsupported_scorers, weighted_total
from .store import Store

log = logging.getLogger(__name__)

EXPIRY_INTERVAL = 5.0
MAX_LIST_LIMIT = 5000


def _lock_data_dir(data_dir: Path) -> int:
    """One engine per data dir: it alone writes the database and holds the devboxes' state."""
    fd = os.open(data_dir / "engine.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(
            f"another scenario-mcp engine is using the data dir {data_dir}; stop it, or give this one "
            "another --data-dir (or SCENARIO_MCP_DATA_DIR)"
        ) from None
    return fd


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequestError(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")
    return limit


class LocalBackend:
    """The embedded engine: SQLite under `data_dir`, devboxes as local sandboxes."""

    def __init__(self, data_dir: Path, *, sweep_interval: float = EXPIRY_INTERVAL) -> None:
        self.data_dir = data_dir
        self.sweep_interval = sweep_interval
        self.store: Store | None = None
        self._devboxes: DevboxManager | None = None
        self._tg: TaskGroup | None = None
        self._scoring: dict[str, anyio.CancelScope] = {}
        self._runs: dict[str, ScenarioRunView] = {}
        self._lock_file: int | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> LocalBackend:
        try:
            check_host_support()
        except SandboxError as exc:
            raise RuntimeError(str(exc)) from exc
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock_data_dir(self.data_dir)
        self.store = Store(self.data_dir / "scenario-mcp.sqlite3")
        self._devboxes = DevboxManager(self.store, self.data_dir)
        await anyio.to_thread.run_sync(self._devboxes.layers.ensure_base)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._devboxes.attach_task_group(self._tg)
        await self._reconcile()
        await anyio.to_thread.run_sync(self._clean_scoring_leftovers)
        await anyio.to_thread.run_sync(remove_stale_spares)
        self._tg.start_soon(self._expiry_loop)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._tg is not None and self.store is not None and self._devboxes is not None
        self._tg.cancel_scope.cancel()
        try:
            await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            # Whatever the tasks raised, the database and the data dir are let go.
            await self._devboxes.close()
            self.store.close()
            if self._lock_file is not None:
                os.close(self._lock_file)  # releases the lock
                self._lock_file = None

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
        for devbox_id in sorted(restored):
            run_id = (await self.devboxes.internal(devbox_id)).get("run_id")
            if run_id and await self._store.get("runs", run_id) is None:
                # The server died inside start_run, after the devbox and before the run: the run
                # was never acknowledged, so its devbox has no one to serve.
                log.info("devbox %s belongs to a run that was never started; shutting it down", devbox_id)
                await self.devboxes.shutdown(devbox_id)
                restored.discard(devbox_id)
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

    def _clean_scoring_leftovers(self) -> None:
        """Scorer sandboxes of a server that died mid-scoring have no record: end them by their
        launcher sockets and remove their directories (the runs themselves are scored again)."""
        scoring = self.data_dir / "scoring"
        if not scoring.exists():
            return
        for socket_path in scoring.glob(f"*/*/box/{LAUNCHER_SOCKET}"):
            terminate(socket_path)
        for leftover in scoring.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)

    async def _expiry_loop(self) -> None:
        while True:
            await anyio.sleep(self.sweep_interval)
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
        await self._check_custom_scorers_registered(params.scoring_contract)
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

    async def _check_custom_scorers_registered(self, contract: ScoringContract) -> None:
        for function in contract.scoring_function_parameters:
            scorer = function.scorer
            if (
                isinstance(scorer, CustomScorer)
                and await self.custom_scorers.by_type(scorer.custom_scorer_type) is None
            ):
                raise InvalidRequestError(
                    f"scoring function {function.name!r} names custom scorer type {scorer.custom_scorer_type!r}, "
                    "which is not registered; register it first (create_custom_scorer with that type and a bash script)"
                )

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

    async def update_scenario(self, scenario_id: str, params: ScenarioUpdateParameters) -> ScenarioView:
        scenario = await self.get_scenario(scenario_id)
        update: dict[str, Any] = {}
        for field in params.model_fields_set:
            value = getattr(params, field)
            if value is None:
                continue  # Runloop: omitted or null keeps the field
            if field == "environment_parameters":
                field = "environment"
            if field == "scoring_contract":
                unsupported = unsupported_scorers(value)
                if unsupported:
                    raise InvalidRequestError(f"the local engine cannot run these scorers: {', '.join(unsupported)}")
                await self._check_custom_scorers_registered(value)
                value = normalise_weights(value)
            # "" / [] / {} clear a field
            update[field] = None if value in ("", [], {}) and field not in ("metadata",) else value
        if update.get("name") is None and "name" in update:
            raise InvalidRequestError("name cannot be cleared")
        updated = ScenarioView.model_validate({**scenario.model_dump(), **update})
        await self._save_scenario(updated)
        return updated

    async def archive_scenario(self, scenario_id: str) -> ScenarioView:
        scenario = (await self.get_scenario(scenario_id)).model_copy(update={"status": "archived"})
        await self._save_scenario(scenario)
        return scenario

    async def unarchive_scenario(self, scenario_id: str) -> ScenarioView:
        scenario = (await self.get_scenario(scenario_id)).model_copy(update={"status": "active"})
        await self._save_scenario(scenario)
        return scenario

    async def validate_scenario(self, scenario_id: str) -> ScenarioValidationView:
        """The reference output must score 1.0 on a fresh devbox; the untouched environment below 1.0."""
        scenario = await self.get_scenario(scenario_id)
        gold = untouched = None

        async def attempt(apply: bool) -> ValidationAttempt:
            devbox = await self._environment_devbox(scenario, name=f"validate-{'gold' if apply else 'untouched'}")
            try:
                output = None
                if apply:
                    output = await self._apply_reference(scenario, devbox.id)
                result = await self._score_devbox(None, scenario, devbox.id)
                return ValidationAttempt(
                    devbox_id=devbox.id,
                    applied="reference_output" if apply else "nothing",
                    apply_output=output,
                    result=result,
                )
            except Exception as exc:
                return ValidationAttempt(
                    devbox_id=devbox.id, applied="reference_output" if apply else "nothing", error=str(exc)
                )
            finally:
                await self.devboxes.shutdown(devbox.id)

        if not scenario.reference_output:
            raise InvalidRequestError(
                f"scenario {scenario_id} has no reference_output to validate; set one with update_scenario "
                "(a unified diff, or commands that solve the task)"
            )
        async with anyio.create_task_group() as tg:

            async def run_gold() -> None:
                nonlocal gold
                gold = await attempt(True)

            async def run_untouched() -> None:
                nonlocal untouched
                untouched = await attempt(False)

            tg.start_soon(run_gold)
            tg.start_soon(run_untouched)
        assert gold is not None and untouched is not None
        return judge_validation(scenario, gold, untouched)

    async def _environment_devbox(
        self,
        scenario: ScenarioView,
        *,
        name: str,
        run_id: str | None = None,
        environment_variables: dict[str, str] | None = None,
        launch_parameters: LaunchParameters | None = None,
    ) -> DevboxView:
        env = scenario.environment
        devbox = await self.devboxes.create(
            DevboxCreateParameters(
                name=name,
                blueprint_id=env.blueprint_id if env else None,
                blueprint_name=env.blueprint_name if env else None,
                snapshot_id=env.snapshot_id if env else None,
                launch_parameters=launch_parameters or (env.launch_parameters if env else None),
                environment_variables=environment_variables or None,
            ),
            run_id=run_id,
        )
        workdir = scenario.working_directory
        made = await self.devboxes.execute(
            devbox.id,
            f"mkdir -p -- {shlex.quote(workdir)}",
            working_directory="/",
            log_source="setup",
        )
        if made.exit_status != 0:
            await self.devboxes.shutdown(devbox.id)
            raise InvalidRequestError(f"cannot create working directory {workdir}: {made.stderr}")
        return devbox

    async def _apply_reference(self, scenario: ScenarioView, devbox_id: str) -> str:
        reference = scenario.reference_output or ""
        if is_unified_diff(reference):
            await self.devboxes.write_bytes(devbox_id, ".scenario-reference.patch", reference.encode())
            command = (
                "(git apply --whitespace=nowarn /home/user/.scenario-reference.patch 2>/dev/null "
                "|| patch -p1 --forward < /home/user/.scenario-reference.patch); rc=$?; "
                "rm -f /home/user/.scenario-reference.patch; exit $rc"
            )
        else:
            command = reference
        result = await self.devboxes.execute(
            devbox_id,
            command,
            working_directory=scenario.working_directory,
            timeout_seconds=600,
            log_source="reference",
        )
        output = (result.stdout or "") + (result.stderr or "")
        if result.exit_status != 0:
            raise InvalidRequestError(f"applying the reference output exited {result.exit_status}: {output[-2000:]}")
        return output

    # --- runs ----------------------------------------------------------------------------------

    async def _save_run(self, run: ScenarioRunView) -> None:
        self._runs.pop(run.id, None)
        await self._store.put(
            "runs",
            run.id,
            run.model_dump(mode="json"),
            name=run.name,
            state=run.state,
            parent_id=run.scenario_id,
        )
        self._runs[run.id] = run

    async def start_run(self, params: StartScenarioRunParameters) -> ScenarioRunView:
        scenario = await self.get_scenario(params.scenario_id)
        if scenario.status != "active":
            raise InvalidStateError(f"scenario {scenario.id} is archived; unarchive it before starting a run")
        profile = params.run_profile or RunProfile()
        unsupported = [name for name in ("secrets", "mounts") if getattr(profile, name)]
        if unsupported:
            raise InvalidRequestError(
                f"runProfile.{unsupported[0]} is not supported by the local engine (it keeps no secrets and mounts "
                "nothing); pass values as runProfile.envVars instead"
            )
        env_vars = profile.envVars or {}
        missing = [name for name in scenario.required_environment_variables or [] if name not in env_vars]
        if missing:
            raise InvalidRequestError(
                f"scenario {scenario.id} requires environment variables {', '.join(missing)}; "
                "give them in runProfile.envVars"
            )
        run_id = new_id("run")
        devbox = await self._environment_devbox(
            scenario,
            name=f"run-{run_id}",
            run_id=run_id,
            environment_variables=env_vars,
            launch_parameters=profile.launchParameters,
        )
        run = ScenarioRunView(
            id=run_id,
            name=params.run_name,
            scenario_id=scenario.id,
            devbox_id=devbox.id,
            benchmark_run_id=params.benchmark_run_id,
            state=ScenarioRunState.RUNNING,
            metadata=params.metadata or {},
            purpose=profile.purpose,
        )
        await self._save_run(run)
        await self._store.add_log(run_id, now_ms(), "run", f"run started on devbox {devbox.id}")
        return run

    async def get_run(self, run_id: str) -> ScenarioRunView:
        cached = self._runs.get(run_id)  # the engine is the only writer of runs (see __aenter__)
        if cached is not None:
            return cached
        row = await self._store.get("runs", run_id)
        if row is None:
            raise NotFoundError("scenario run", run_id)
        run = ScenarioRunView.model_validate(row.data)
        self._runs[run_id] = run
        return run

    async def list_runs(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        scenario_id: str | None = None,
        state: str | None = None,
        benchmark_run_id: str | None = None,
    ) -> ScenarioRunListView:
        if state is not None and state not in {s.value for s in ScenarioRunState}:
            raise InvalidRequestError(
                f"unknown run state {state!r}; one of {', '.join(s.value for s in ScenarioRunState)}"
            )
        page = await self._store.list(
            "runs", limit=_limit(limit), starting_after=starting_after, parent_id=scenario_id, state=state
        )
        runs = [ScenarioRunView.model_validate(r.data) for r in page.rows]
        if benchmark_run_id is not None:
            runs = [r for r in runs if r.benchmark_run_id == benchmark_run_id]
        return ScenarioRunListView(
            runs=runs,
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

    async def _score_devbox(
        self, log_id: str | None, scenario: ScenarioView, devbox_id: str
    ) -> ScoringContractResultView:
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
                if log_id is None:
                    continue
                await self._store.add_log(
                    log_id,
                    now_ms(),
                    f"scorer:{function.name}",
                    f"state={result.state} score={result.score}\n{result.output}",
                )
        finally:
            # Off the scoring's critical path and the event loop (tens of ms for a pytest run's
            # caches); a server that dies first removes it on its next start.
            assert self._tg is not None
            self._tg.start_soon(partial(anyio.to_thread.run_sync, shutil.rmtree, work, True))
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
        custom_script = None
        if isinstance(function.scorer, CustomScorer):
            registered = await self.custom_scorers.by_type(function.scorer.custom_scorer_type)
            custom_script = registered.bash_script if registered else None
        try:
            program = scorer_program(function.scorer, scenario.working_directory, custom_script)
        except ValueError as exc:
            return ScoringFunctionResultView(
                scoring_function_name=function.name, score=0.0, output=f"[error] {exc}", state="error"
            )
        scorer_layer = work / "scorer-layer"
        for part in ("usr", "etc"):
            (scorer_layer / part).mkdir(parents=True, exist_ok=True)
        for path, contents in program.files.items():
            target = (scorer_layer / path.lstrip("/")).resolve()
            if not target.is_relative_to(scorer_layer.resolve()):
                raise InvalidRequestError(f"scorer file {path!r} escapes the scorer's directory")
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
                    env=program.env,
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

    async def blueprint_logs(self, blueprint_id: str) -> BlueprintBuildLogsListView:
        return await self.devboxes.blueprint_logs(blueprint_id)

    async def metadata_keys(self, kind: MetadataKind) -> MetadataKeysView:
        return MetadataKeysView(keys=await self._store.metadata_keys(_metadata_kind(kind)))

    async def metadata_values(self, kind: MetadataKind, key: str) -> MetadataValuesView:
        return MetadataValuesView(key=key, values=await self._store.metadata_values(_metadata_kind(kind), key))

    async def delete_blueprint(self, blueprint_id: str) -> None:
        name = (await self.devboxes.get_blueprint(blueprint_id)).name
        using = await self._active_scenarios_on(
            lambda env: env.get("blueprint_id") == blueprint_id or env.get("blueprint_name") == name
        )
        await self.devboxes.delete_blueprint(blueprint_id, using)

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
        shell_name: str | None = None,
    ) -> ExecutionView:
        await self._check_run_allows_work(devbox_id)
        return await self.devboxes.execute(
            devbox_id,
            command,
            timeout_seconds=timeout_seconds,
            working_directory=working_directory,
            shell_name=shell_name,
        )

    async def execute_async(
        self,
        devbox_id: str,
        command: str,
        *,
        timeout_seconds: float | None = None,
        working_directory: str | None = None,
        shell_name: str | None = None,
        attach_stdin: bool = False,
    ) -> ExecutionView:
        await self._check_run_allows_work(devbox_id)
        execution = await self.devboxes.start_execution(
            devbox_id,
            command,
            timeout_seconds=timeout_seconds,
            working_directory=working_directory,
            shell_name=shell_name,
            attach_stdin=attach_stdin,
        )
        return self.devboxes.execution_view(execution)

    async def get_execution(self, devbox_id: str, execution_id: str) -> ExecutionView:
        return await self.devboxes.get_execution(devbox_id, execution_id)

    async def wait_for_execution(
        self, devbox_id: str, execution_id: str, *, statuses: list[str] | None = None, timeout_seconds: float = 30
    ) -> ExecutionView:
        return await self.devboxes.wait_for_execution(devbox_id, execution_id, statuses or [], timeout_seconds)

    async def kill_execution(
        self, devbox_id: str, execution_id: str, *, kill_process_group: bool = True
    ) -> ExecutionView:
        execution = self.devboxes.live_execution(devbox_id, execution_id)
        execution.kill(process_group=kill_process_group)
        with anyio.move_on_after(5):
            await execution.done.wait()
        return self.devboxes.execution_view(execution)

    async def send_stdin(
        self, devbox_id: str, execution_id: str, *, text: str | None = None, signal: str | None = None
    ) -> ExecutionView:
        execution = self.devboxes.live_execution(devbox_id, execution_id)
        await execution.send_stdin(text, signal)
        return self.devboxes.execution_view(execution)

    async def execution_output(
        self, devbox_id: str, execution_id: str, *, stream: str = "stdout", offset: int = 0
    ) -> ExecutionOutputChunk:
        return await self.devboxes.output(devbox_id, execution_id, stream, offset)

    async def wait_for_devbox_status(
        self, devbox_id: str, statuses: list[str], *, timeout_seconds: float = 30
    ) -> DevboxView:
        return await self.devboxes.wait_for_status(devbox_id, statuses, timeout_seconds)

    async def suspend_devbox(self, devbox_id: str) -> DevboxView:
        return await self.devboxes.suspend(devbox_id)

    async def resume_devbox(self, devbox_id: str) -> DevboxView:
        return await self.devboxes.resume(devbox_id)

    async def update_devbox(
        self, devbox_id: str, *, name: str | None = None, metadata: dict[str, str] | None = None
    ) -> DevboxView:
        return await self.devboxes.update(devbox_id, name=name, metadata=metadata)

    async def keep_alive_devbox(self, devbox_id: str) -> DevboxView:
        return await self.devboxes.keep_alive(devbox_id)

    async def devbox_logs(self, devbox_id: str, *, execution_id: str | None = None) -> DevboxLogsListView:
        return await self.devboxes.devbox_logs(devbox_id, execution_id)

    async def list_blueprints(self, *, limit: int = 20, starting_after: str | None = None) -> BlueprintListView:
        page = await self._store.list("blueprints", limit=_limit(limit), starting_after=starting_after)
        return BlueprintListView(
            blueprints=[BlueprintView.model_validate(r.data) for r in page.rows],
            has_more=page.has_more,
            total_count=page.total_count,
        )

    async def _check_run_allows_work(self, devbox_id: str) -> None:
        run_id = (await self.devboxes.internal(devbox_id)).get("run_id")
        if run_id:
            run = await self.get_run(run_id)
            check_transition(run_id, run.state, "work")

    async def read_file(self, devbox_id: str, file_path: str) -> str:
        return await self.devboxes.read_file(devbox_id, file_path)

    async def download_file(self, devbox_id: str, path: str) -> bytes:
        return await self.devboxes.read_bytes(devbox_id, path)

    async def upload_file(self, devbox_id: str, path: str, data: bytes) -> None:
        await self._check_run_allows_work(devbox_id)
        await self.devboxes.write_bytes(devbox_id, path, data)

    async def list_files(self, devbox_id: str, path: str = ".") -> list[str]:
        return await self.devboxes.list_files(devbox_id, path)

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

    # --- benchmarks and custom scorers (see benchmarks.py, custom_scorers.py) -----------------

    @property
    def benchmarks(self) -> Benchmarks:
        return Benchmarks(self._store, self)

    @property
    def custom_scorers(self) -> CustomScorers:
        return CustomScorers(self._store)

    async def create_benchmark(self, params: BenchmarkCreateParameters) -> BenchmarkView:
        return await self.benchmarks.create(params)

    async def get_benchmark(self, benchmark_id: str) -> BenchmarkView:
        return await self.benchmarks.get(benchmark_id)

    async def list_benchmarks(self, *, limit: int = 20, starting_after: str | None = None) -> BenchmarkListView:
        return await self.benchmarks.list(limit=_limit(limit), starting_after=starting_after)

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
        self, *, limit: int = 20, starting_after: str | None = None, benchmark_id: str | None = None
    ) -> BenchmarkRunListView:
        return await self.benchmarks.list_runs(
            limit=_limit(limit), starting_after=starting_after, benchmark_id=benchmark_id
        )

    async def complete_benchmark_run(self, benchmark_run_id: str) -> BenchmarkRunView:
        return await self.benchmarks.complete_run(benchmark_run_id)

    async def cancel_benchmark_run(self, benchmark_run_id: str) -> BenchmarkRunView:
        return await self.benchmarks.cancel_run(benchmark_run_id)

    async def create_custom_scorer(self, params: CreateCustomScorerParameters) -> ScenarioScorerView:
        return await self.custom_scorers.create(params)

    async def get_custom_scorer(self, scorer_id: str) -> ScenarioScorerView:
        return await self.custom_scorers.get(scorer_id)

    async def list_custom_scorers(
        self, *, limit: int = 20, starting_after: str | None = None
    ) -> ScenarioScorersListView:
        return await self.custom_scorers.list(limit=_limit(limit), starting_after=starting_after)

    async def update_custom_scorer(self, scorer_id: str, params: CreateCustomScorerParameters) -> ScenarioScorerView:
        return await self.custom_scorers.update(scorer_id, params)

    async def list_snapshots(
        self, *, limit: int = 20, starting_after: str | None = None, devbox_id: str | None = None
    ) -> DevboxSnapshotListView:
        return await self.devboxes.list_snapshots(_limit(limit), starting_after, devbox_id)

    async def get_snapshot(self, snapshot_id: str) -> DevboxSnapshotView:
        return await self.devboxes.get_snapshot(snapshot_id)

    async def update_snapshot(
        self,
        snapshot_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        commit_message: str | None = None,
    ) -> DevboxSnapshotView:
        return await self.devboxes.update_snapshot(
            snapshot_id, name=name, metadata=metadata, commit_message=commit_message
        )

    async def delete_snapshot(self, snapshot_id: str) -> None:
        using = await self._active_scenarios_on(lambda env: env.get("snapshot_id") == snapshot_id)
        await self.devboxes.delete_snapshot(snapshot_id, using)

    async def _active_scenarios_on(self, environment_matches: Callable[[dict[str, Any]], bool]) -> list[str]:
        """The active scenarios whose environment matches: what a snapshot or blueprint must keep."""
        page = await self._store.list("scenarios", limit=100_000, state="active")
        return [r.id for r in page.rows if environment_matches(r.data.get("environment") or {})]


def _metadata_kind(kind: str) -> str:
    # The kind names a table: only the known ones reach SQL.
    if kind not in COLLECTION_PATHS:
        raise InvalidRequestError(f"unknown kind {kind!r}; use one of {', '.join(COLLECTION_PATHS)}")
    return kind


def is_unified_diff(text: str) -> bool:
    """A reference output that is a patch (git diff / diff -u) rather than commands."""
    lines = text.lstrip().splitlines()
    return bool(lines) and (
        lines[0].startswith("diff --git ")
        or any(a.startswith("--- ") and b.startswith("+++ ") for a, b in itertools.pairwise(lines))
    )
