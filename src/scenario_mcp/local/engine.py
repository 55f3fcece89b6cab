"""LocalBackend: the embedded engine. Holds the data dir, reconciles on start, sweeps expired
devboxes and objects, and wires the parts; each call is delegated to the part that owns its noun.

Errors do not cross the seam raw: whatever a sandbox could not do (SandboxError, from sandbox.py,
launcher.py, layers.py) reaches the caller as an EnvironmentUnavailableError saying what to do
(see `_sandbox_errors_as_backend_errors`).
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from types import TracebackType

import anyio
from anyio.abc import TaskGroup

from ..backend import BuildProgress, check_command_id
from ..models import (
    BlueprintBuildLogsListView,
    BlueprintCreateParameters,
    BlueprintListView,
    BlueprintView,
    DevboxCreateParameters,
    DevboxListView,
    DevboxLogsListView,
    DevboxResourceUsageView,
    DevboxSnapshotListView,
    DevboxSnapshotView,
    DevboxView,
    ExecutionOutputChunk,
    ExecutionView,
    MetadataKeysView,
    MetadataKind,
    MetadataValuesView,
    RunLogEntry,
    ScenarioCreateParameters,
    ScenarioListView,
    ScenarioRunListView,
    ScenarioRunView,
    ScenarioUpdateParameters,
    ScenarioValidationView,
    ScenarioView,
    StartScenarioRunParameters,
    TunnelConfig,
    TunnelView,
)
from ..reference_validation import validate_with_reference
from .agents import AgentCalls, Agents
from .benchmarks import BenchmarkCalls, Benchmarks
from .blueprints import Blueprints, default_blueprint_id
from .boundary import DataDirLock, check_limit, metadata_kind, sandbox_errors_as_backend_errors
from .custom_scorers import CustomScorerCalls, CustomScorers
from .devboxes import Devboxes
from .garbage import GRACE_SECONDS
from .launch import check_launch
from .layers import CollectReport
from .limits import remove_stale_spares
from .network_policies import NetworkPolicies, NetworkPolicyCalls
from .objects import ObjectCalls, Objects
from .parts import Parts
from .retention import DEFAULT_RETAIN_SECONDS, RETENTION_INTERVAL, RetentionReport, apply_retention
from .sandbox import SandboxError, check_host_support
from .scenarios import EnvironmentDevboxes
from .secrets import SecretCalls, Secrets
from .store import Store
from .trust import TrustSettings
from .usage import devbox_usage

log = logging.getLogger(__name__)

EXPIRY_INTERVAL = 5.0


class LocalBackend(ObjectCalls, NetworkPolicyCalls, AgentCalls, SecretCalls, BenchmarkCalls, CustomScorerCalls):
    """The embedded engine: SQLite under `data_dir`, devboxes as local sandboxes."""

    def __init__(
        self,
        data_dir: Path,
        *,
        sweep_interval: float = EXPIRY_INTERVAL,
        trust: TrustSettings | None = None,
        retain_seconds: float = DEFAULT_RETAIN_SECONDS,
        retention_sweeps: bool = True,
    ) -> None:
        self.data_dir = data_dir
        self.retain_seconds = retain_seconds
        # False for an engine opened to sweep once itself (`scenario-mcp gc`): a sweep of its own
        # at start would race that one and take what it should report.
        self.retention_sweeps = retention_sweeps
        self.trust = trust or TrustSettings()
        self.sweep_interval = sweep_interval
        self.store: Store | None = None
        self._parts: Parts | None = None
        self._tg: TaskGroup | None = None
        self._lock: DataDirLock | None = None
        self._benchmark_members = anyio.Lock()

    # --- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> LocalBackend:
        try:
            check_host_support()
        except SandboxError as exc:
            raise RuntimeError(str(exc)) from exc
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = DataDirLock(self.data_dir)
        try:
            self.store = Store(self.data_dir / "scenario-mcp.sqlite3")
            self._tg = anyio.create_task_group()
            await self._tg.__aenter__()
        except BaseException:
            self._release()
            raise
        try:
            self._parts = Parts(self.store, self.data_dir, self._tg, self.trust)
            await anyio.to_thread.run_sync(self.devboxes.layers.ensure_base)
            # Scorer sandboxes and directories of a dead server go before reconcile scores again.
            await anyio.to_thread.run_sync(self.parts.scoring.clean_leftovers)
            await self._reconcile()
            await anyio.to_thread.run_sync(remove_stale_spares)
        except BaseException as exc:
            # A start that fails lets the data dir go, or the next engine could not take it.
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._tg.start_soon(self._expiry_loop)
        if self.retention_sweeps:
            self._tg.start_soon(self._retention_loop)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._tg is not None and self.store is not None
        self._tg.cancel_scope.cancel()
        try:
            await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            # Whatever the tasks raised, the database and the data dir are let go.
            if self._parts is not None:
                await self._parts.devboxes.close()
            self._release()

    def _release(self) -> None:
        if self.store is not None:
            self.store.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @property
    def parts(self) -> Parts:
        assert self._parts is not None, "use LocalBackend as an async context manager"
        return self._parts

    @property
    def devboxes(self) -> Devboxes:
        return self.parts.devboxes

    @property
    def blueprints(self) -> Blueprints:
        return self.parts.blueprints

    @property
    def objects(self) -> Objects:
        return self.parts.objects

    @property
    def agents(self) -> Agents:
        return self.parts.agents

    @property
    def network_policies(self) -> NetworkPolicies:
        return self.parts.network_policies

    @property
    def secrets(self) -> Secrets:
        return self.parts.secrets

    @property
    def _store(self) -> Store:
        assert self.store is not None, "use LocalBackend as an async context manager"
        return self.store

    async def _reconcile(self) -> None:
        await self.blueprints.fail_interrupted()
        await self.agents.fail_interrupted()
        restored: set[str] = set(await self.devboxes.reconcile())
        for devbox_id in sorted(restored):
            run_id = (await self.devboxes.internal(devbox_id)).get("run_id")
            if run_id and await self._store.get("runs", run_id) is None:
                # The server died inside start_run, after the devbox and before the run: the run
                # was never acknowledged, so its devbox has no one to serve.
                log.info("devbox %s belongs to a run that was never started; shutting it down", devbox_id)
                await self.devboxes.shutdown(devbox_id)
                restored.discard(devbox_id)
        await self.parts.runs.reconcile(restored)

    async def _retention_loop(self) -> None:
        while True:
            try:
                report = await self.apply_retention()
                if report.devboxes or report.runs:
                    log.info("%s", report.summary())
            except Exception:
                log.exception("retention sweep failed")
            await anyio.sleep(RETENTION_INTERVAL)

    async def apply_retention(self, retain_seconds: float | None = None) -> RetentionReport:
        """Remove the outputs and logs of devboxes and runs that ended longer ago than the retention
        period (this engine's unless given); their rows stay."""
        retain = self.retain_seconds if retain_seconds is None else retain_seconds
        return await apply_retention(self._store, self.devboxes.boxes_dir, retain)

    async def _expiry_loop(self) -> None:
        while True:
            await anyio.sleep(self.sweep_interval)
            try:
                await self.devboxes.expire()
                await self.parts.runs.end_runs_of_ended_devboxes()
                await self.objects.expire()
            except Exception:
                log.exception("keep-alive sweep failed")

    # --- scenarios -----------------------------------------------------------------------------

    async def create_scenario(self, params: ScenarioCreateParameters) -> ScenarioView:
        return await self.parts.scenarios.create(params)

    async def get_scenario(self, scenario_id: str) -> ScenarioView:
        return await self.parts.scenarios.get(scenario_id)

    async def list_scenarios(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        name: str | None = None,
        benchmark_id: str | None = None,
        validation_type: str | None = None,
    ) -> ScenarioListView:
        members = None if benchmark_id is None else (await self.benchmarks.get(benchmark_id)).scenario_ids
        return await self.parts.scenarios.list(
            limit=check_limit(limit),
            starting_after=starting_after,
            name=name,
            ids=members,
            validation_type=validation_type,
        )

    async def update_scenario(self, scenario_id: str, params: ScenarioUpdateParameters) -> ScenarioView:
        return await self.parts.scenarios.update(scenario_id, params)

    async def archive_scenario(self, scenario_id: str) -> ScenarioView:
        return await self.parts.scenarios.set_status(scenario_id, "archived")

    async def unarchive_scenario(self, scenario_id: str) -> ScenarioView:
        return await self.parts.scenarios.set_status(scenario_id, "active")

    async def validate_scenario(self, scenario_id: str) -> ScenarioValidationView:
        return await validate_with_reference(
            self, scenario_id, EnvironmentDevboxes(self.parts.scenarios, self.parts.scoring)
        )

    # --- runs ----------------------------------------------------------------------------------

    async def start_run(self, params: StartScenarioRunParameters) -> ScenarioRunView:
        if params.benchmark_run_id is None:
            return await self.parts.runs.start(params)
        await self.benchmarks.check_joinable(params.benchmark_run_id)
        run = await self.parts.runs.start(params)
        await self.benchmarks.join(params.benchmark_run_id, run.id)
        return run

    async def get_run(self, run_id: str) -> ScenarioRunView:
        return await self.parts.runs.get(run_id)

    async def list_runs(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        scenario_id: str | None = None,
        state: str | None = None,
        benchmark_run_id: str | None = None,
        name: str | None = None,
    ) -> ScenarioRunListView:
        return await self.parts.runs.list(
            limit=check_limit(limit),
            starting_after=starting_after,
            scenario_id=scenario_id,
            state=state,
            benchmark_run_id=benchmark_run_id,
            name=name,
        )

    async def score_run(self, run_id: str) -> ScenarioRunView:
        return await self.parts.runs.score(run_id)

    async def complete_run(self, run_id: str) -> ScenarioRunView:
        return await self.parts.runs.complete(run_id)

    async def cancel_run(self, run_id: str) -> ScenarioRunView:
        return await self.parts.runs.cancel(run_id)

    async def run_logs(self, run_id: str) -> list[RunLogEntry]:
        return await self.parts.runs.logs(run_id)

    # --- blueprints, snapshots, metadata -------------------------------------------------------

    async def create_blueprint(self, params: BlueprintCreateParameters) -> BlueprintView:
        check_launch(params.launch_parameters)  # its devboxes could never start: say so now
        return await self.blueprints.create(params)

    async def get_blueprint(self, blueprint_id: str) -> BlueprintView:
        return await self.blueprints.get(blueprint_id)

    async def wait_for_blueprint(self, blueprint_id: str, *, timeout_seconds: float = 1800) -> BlueprintView:
        return await self.blueprints.wait(blueprint_id, timeout_seconds=timeout_seconds)

    async def blueprint_progress(self, blueprint_id: str, *, after: int = 0) -> list[BuildProgress] | None:
        return await self.blueprints.progress(blueprint_id, after=after)

    async def list_blueprints(
        self, *, limit: int = 20, starting_after: str | None = None, name: str | None = None
    ) -> BlueprintListView:
        return await self.blueprints.list(limit=check_limit(limit), starting_after=starting_after, name=name)

    async def blueprint_logs(self, blueprint_id: str) -> BlueprintBuildLogsListView:
        return await self.blueprints.logs(blueprint_id)

    async def delete_blueprint(self, blueprint_id: str) -> None:
        name = (await self.blueprints.get(blueprint_id)).name
        using = await self.parts.scenarios.on_environment(
            lambda env: env.get("blueprint_id") == blueprint_id or env.get("blueprint_name") == name
        )
        await self.blueprints.delete(blueprint_id, using)
        self.parts.garbage.collect_soon()

    async def snapshot_disk(
        self,
        devbox_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        commit_message: str | None = None,
    ) -> DevboxSnapshotView:
        return await self.parts.snapshots.create(devbox_id, name=name, metadata=metadata, commit_message=commit_message)

    async def list_snapshots(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        devbox_id: str | None = None,
        source_blueprint_id: str | None = None,
        metadata: dict[str, list[str]] | None = None,
    ) -> DevboxSnapshotListView:
        return await self.parts.snapshots.list(
            limit=check_limit(limit),
            starting_after=starting_after,
            devbox_id=devbox_id,
            source_blueprint_id=source_blueprint_id,
            metadata=metadata,
        )

    async def get_snapshot(self, snapshot_id: str) -> DevboxSnapshotView:
        return await self.parts.snapshots.get(snapshot_id)

    async def update_snapshot(
        self,
        snapshot_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        commit_message: str | None = None,
    ) -> DevboxSnapshotView:
        return await self.parts.snapshots.update(
            snapshot_id, name=name, metadata=metadata, commit_message=commit_message
        )

    async def delete_snapshot(self, snapshot_id: str) -> None:
        using = await self.parts.scenarios.on_environment(lambda env: env.get("snapshot_id") == snapshot_id)
        await self.parts.snapshots.delete(snapshot_id, using)
        self.parts.garbage.collect_soon()

    async def collect_garbage(self, *, grace_seconds: float = GRACE_SECONDS) -> CollectReport:
        """Free the layers and pulled images no blueprint, snapshot or live devbox stands on."""
        return await self.parts.garbage.collect(grace_seconds=grace_seconds)

    async def metadata_keys(self, kind: MetadataKind) -> MetadataKeysView:
        return MetadataKeysView(keys=await self._store.metadata_keys(metadata_kind(kind)))

    async def metadata_values(self, kind: MetadataKind, key: str) -> MetadataValuesView:
        return MetadataValuesView(key=key, values=await self._store.metadata_values(metadata_kind(kind), key))

    # --- the default environment ---------------------------------------------------------------

    async def prepare_default_environment(self) -> BlueprintView:
        return await self.blueprints.ensure_default()

    def default_environment_ready(self) -> bool:
        # Its layer is renamed into place whole, once built: a stat, no thread hop.
        return self.devboxes.layers.exists(default_blueprint_id())

    # --- devboxes ------------------------------------------------------------------------------

    async def create_devbox(self, params: DevboxCreateParameters) -> DevboxView:
        view = await self.devboxes.create(params)
        await self.parts.executions.run_launch_commands(view)
        if params.tunnel is not None:
            await self.parts.tunnels.enable(view.id, params.tunnel)
            view = await self.devboxes.get(view.id)
        return view

    # --- tunnels: a devbox's ports from the host (tunnels.py) -----------------------------------

    async def enable_tunnel(self, devbox_id: str, config: TunnelConfig | None = None) -> TunnelView:
        return await self.parts.tunnels.enable(devbox_id, config)

    async def remove_tunnel(self, devbox_id: str) -> None:
        await self.parts.tunnels.remove(devbox_id)

    async def tunnel_connect(self, tunnel_key: str, port: int, authorization: str | None) -> socket.socket:
        """A connection to a port of the devbox behind a tunnel (the REST server's tunnel host)."""
        return await self.parts.tunnels.connect(tunnel_key, port, authorization)

    async def get_devbox(self, devbox_id: str) -> DevboxView:
        return await self.devboxes.get(devbox_id)

    async def list_devboxes(
        self, *, limit: int = 20, starting_after: str | None = None, status: str | None = None
    ) -> DevboxListView:
        return await self.devboxes.list(limit=check_limit(limit), starting_after=starting_after, status=status)

    async def shutdown_devbox(self, devbox_id: str) -> DevboxView:
        return await self.devboxes.shutdown(devbox_id)

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

    # --- executions ----------------------------------------------------------------------------

    async def execute(
        self,
        devbox_id: str,
        command: str,
        *,
        timeout_seconds: float | None = None,
        working_directory: str | None = None,
        shell_name: str | None = None,
        command_id: str | None = None,
    ) -> ExecutionView:
        if command_id is not None:
            # Not tied to this caller: a retry with the same id waits for the same command.
            started = await self.execute_async(
                devbox_id,
                command,
                timeout_seconds=timeout_seconds,
                working_directory=working_directory,
                shell_name=shell_name,
                command_id=command_id,
            )
            return await self.parts.executions.result(devbox_id, started.execution_id)
        await self.parts.runs.check_allows_work(devbox_id)
        return await self.parts.executions.execute(
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
        command_id: str | None = None,
    ) -> ExecutionView:
        executions = self.parts.executions
        if command_id is None:
            await self.parts.runs.check_allows_work(devbox_id)
            execution = await executions.start(
                devbox_id,
                command,
                timeout_seconds=timeout_seconds,
                working_directory=working_directory,
                shell_name=shell_name,
                attach_stdin=attach_stdin,
            )
            return executions.view(execution)
        check_command_id(command_id, attach_stdin)
        async with executions.command(devbox_id, command_id) as known:
            if known is not None:
                return await executions.get(devbox_id, known)
            await self.parts.runs.check_allows_work(devbox_id)
            execution = await executions.start(
                devbox_id,
                command,
                timeout_seconds=timeout_seconds,
                working_directory=working_directory,
                shell_name=shell_name,
                command_id=command_id,
            )
        return executions.view(execution)

    async def get_execution(self, devbox_id: str, execution_id: str) -> ExecutionView:
        return await self.parts.executions.get(devbox_id, execution_id)

    async def wait_for_execution(
        self, devbox_id: str, execution_id: str, *, statuses: list[str] | None = None, timeout_seconds: float = 30
    ) -> ExecutionView:
        return await self.parts.executions.wait(devbox_id, execution_id, statuses or [], timeout_seconds)

    async def kill_execution(
        self, devbox_id: str, execution_id: str, *, kill_process_group: bool = True
    ) -> ExecutionView:
        return await self.parts.executions.kill(devbox_id, execution_id, process_group=kill_process_group)

    async def send_stdin(
        self, devbox_id: str, execution_id: str, *, text: str | None = None, signal: str | None = None
    ) -> ExecutionView:
        return await self.parts.executions.send_stdin(devbox_id, execution_id, text, signal)

    async def execution_output(
        self, devbox_id: str, execution_id: str, *, stream: str = "stdout", offset: int = 0
    ) -> ExecutionOutputChunk:
        return await self.parts.executions.output(devbox_id, execution_id, stream, offset)

    async def devbox_logs(
        self, devbox_id: str, *, execution_id: str | None = None, shell_name: str | None = None
    ) -> DevboxLogsListView:
        return await self.parts.executions.devbox_logs(devbox_id, execution_id, shell_name)

    async def devbox_usage(self, devbox_id: str) -> DevboxResourceUsageView:
        devboxes = self.parts.devboxes
        view = await devboxes.get(devbox_id)
        ended = view.status.value in ("shutdown", "failure")
        cgroups = None if ended else devboxes.cgroups(devbox_id)
        upper = devboxes.boxes_dir / devbox_id / "upper"
        return await anyio.to_thread.run_sync(devbox_usage, view, cgroups, upper)

    # --- files ---------------------------------------------------------------------------------

    async def read_file(self, devbox_id: str, file_path: str) -> str:
        return await self.parts.files.read_text(devbox_id, file_path)

    async def download_file(self, devbox_id: str, path: str) -> bytes:
        return await self.parts.files.download(devbox_id, path)

    async def upload_file(self, devbox_id: str, path: str, data: bytes) -> None:
        await self.parts.runs.check_allows_work(devbox_id)
        await self.parts.files.upload(devbox_id, path, data)

    async def write_file(self, devbox_id: str, file_path: str, contents: str) -> None:
        await self.parts.runs.check_allows_work(devbox_id)
        await self.parts.files.write_text(devbox_id, file_path, contents)

    async def list_files(self, devbox_id: str, path: str = ".") -> list[str]:
        return await self.parts.files.list(devbox_id, path)

    # --- benchmarks and custom scorers: their calls in BenchmarkCalls, CustomScorerCalls -------

    @property
    def benchmarks(self) -> Benchmarks:
        return Benchmarks(self._store, self, self._benchmark_members)

    @property
    def custom_scorers(self) -> CustomScorers:
        return self.parts.custom_scorers


sandbox_errors_as_backend_errors(LocalBackend)
