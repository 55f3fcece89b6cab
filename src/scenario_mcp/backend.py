"""The Backend protocol: the one seam between the surfaces (MCP, REST) and an engine."""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from .models import (
    DEFAULT_DOWNLOAD_SECONDS,
    AgentBuildLogsListView,
    AgentCreateParameters,
    AgentListView,
    AgentView,
    BenchmarkCreateParameters,
    BenchmarkListView,
    BenchmarkRunListView,
    BenchmarkRunView,
    BenchmarkUpdateParameters,
    BenchmarkView,
    BlueprintBuildLogsListView,
    BlueprintCreateParameters,
    BlueprintListView,
    BlueprintView,
    CreateCustomScorerParameters,
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
    NetworkPolicyCreateParameters,
    NetworkPolicyListView,
    NetworkPolicyUpdateParameters,
    NetworkPolicyView,
    ObjectCreateParameters,
    ObjectDownloadURLView,
    ObjectListView,
    ObjectView,
    RunLogEntry,
    ScenarioCreateParameters,
    ScenarioListView,
    ScenarioRunListView,
    ScenarioRunView,
    ScenarioScorersListView,
    ScenarioScorerView,
    ScenarioUpdateParameters,
    ScenarioValidationView,
    ScenarioView,
    SecretCreateParameters,
    SecretListView,
    SecretUpdateParameters,
    SecretView,
    StartBenchmarkRunParameters,
    StartScenarioRunParameters,
    TunnelConfig,
    TunnelView,
)


class BackendError(Exception):
    """An error the caller can act on. `status` is the HTTP status Runloop would give."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestError(BackendError):
    status = 400


class NotFoundError(BackendError):
    status = 404

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident!r} not found; check the id (list them to see which exist)")
        self.kind = kind
        self.ident = ident


class InvalidStateError(BackendError):
    """The call is not allowed in the object's current state."""

    status = 409


class OperationTimeoutError(BackendError):
    status = 408


class AccessDeniedError(BackendError):
    """A credential that does not open this (a presigned URL's token or signature)."""

    status = 403


class PayloadTooLargeError(BackendError):
    status = 413


class EnvironmentUnavailableError(BackendError):
    """The engine cannot do this on this machine (no sandbox, no network for a build, ...)."""

    status = 503


class DataDirFullError(EnvironmentUnavailableError):
    """The disk of the engine's data dir is full: nothing was stored."""

    status = 507


def check_command_id(command_id: str, attach_stdin: bool) -> None:
    """Runloop's `execute` takes a command_id but no stdin, so no backend pairs the two."""
    if not command_id:
        raise InvalidRequestError("command_id is empty; give a unique id (a UUIDv7) or none")
    if attach_stdin:
        raise InvalidRequestError(
            "attach_stdin cannot be combined with command_id; leave command_id out to attach stdin"
        )


class Backend(Protocol):
    """Everything the MCP surface and the REST API may ask of an engine, in Runloop's terms.

    Implementations: local.engine.LocalBackend (embedded) and remote.RemoteBackend (any
    Runloop-compatible REST API). Errors are BackendError subclasses.

    Lists are newest first; every filter given must match (None: no filter). A `command_id` makes
    starting a command idempotent: the same id on the same devbox is the same execution, also
    after an engine restart.
    """

    # scenarios
    async def create_scenario(self, params: ScenarioCreateParameters) -> ScenarioView: ...
    async def get_scenario(self, scenario_id: str) -> ScenarioView: ...
    async def list_scenarios(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        name: str | None = None,
        benchmark_id: str | None = None,
        validation_type: str | None = None,
    ) -> ScenarioListView: ...
    async def update_scenario(self, scenario_id: str, params: ScenarioUpdateParameters) -> ScenarioView: ...
    async def archive_scenario(self, scenario_id: str) -> ScenarioView: ...
    async def unarchive_scenario(self, scenario_id: str) -> ScenarioView: ...
    async def validate_scenario(self, scenario_id: str) -> ScenarioValidationView: ...

    # runs
    async def start_run(self, params: StartScenarioRunParameters) -> ScenarioRunView: ...
    async def get_run(self, run_id: str) -> ScenarioRunView: ...
    async def list_runs(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        scenario_id: str | None = None,
        state: str | None = None,
        benchmark_run_id: str | None = None,
        name: str | None = None,
    ) -> ScenarioRunListView: ...
    async def score_run(self, run_id: str) -> ScenarioRunView: ...
    async def complete_run(self, run_id: str) -> ScenarioRunView: ...
    async def cancel_run(self, run_id: str) -> ScenarioRunView: ...
    async def run_logs(self, run_id: str) -> list[RunLogEntry]: ...

    # benchmarks
    async def create_benchmark(self, params: BenchmarkCreateParameters) -> BenchmarkView: ...
    async def get_benchmark(self, benchmark_id: str) -> BenchmarkView: ...
    async def list_benchmarks(
        self, *, limit: int = 20, starting_after: str | None = None, name: str | None = None
    ) -> BenchmarkListView: ...
    async def update_benchmark(self, benchmark_id: str, params: BenchmarkUpdateParameters) -> BenchmarkView: ...
    async def archive_benchmark(self, benchmark_id: str) -> BenchmarkView: ...
    async def unarchive_benchmark(self, benchmark_id: str) -> BenchmarkView: ...
    async def update_benchmark_scenarios(
        self, benchmark_id: str, *, add: list[str] | None = None, remove: list[str] | None = None
    ) -> BenchmarkView: ...
    async def start_benchmark_run(self, params: StartBenchmarkRunParameters) -> BenchmarkRunView: ...
    async def get_benchmark_run(self, benchmark_run_id: str) -> BenchmarkRunView: ...
    async def list_benchmark_runs(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        benchmark_id: str | None = None,
        name: str | None = None,
        state: str | None = None,
    ) -> BenchmarkRunListView: ...
    async def complete_benchmark_run(self, benchmark_run_id: str) -> BenchmarkRunView: ...
    async def cancel_benchmark_run(self, benchmark_run_id: str) -> BenchmarkRunView: ...

    # custom scorers
    async def create_custom_scorer(self, params: CreateCustomScorerParameters) -> ScenarioScorerView: ...
    async def get_custom_scorer(self, scorer_id: str) -> ScenarioScorerView: ...
    async def list_custom_scorers(
        self, *, limit: int = 20, starting_after: str | None = None
    ) -> ScenarioScorersListView: ...
    async def update_custom_scorer(
        self, scorer_id: str, params: CreateCustomScorerParameters
    ) -> ScenarioScorerView: ...

    # blueprints
    async def create_blueprint(self, params: BlueprintCreateParameters) -> BlueprintView:
        """Start a build; the answer is `queued` (Runloop's way): poll it or wait_for_blueprint."""
        ...

    async def get_blueprint(self, blueprint_id: str) -> BlueprintView: ...
    async def wait_for_blueprint(self, blueprint_id: str, *, timeout_seconds: float = 1800) -> BlueprintView:
        """The blueprint once its build has ended (build_complete or failed)."""
        ...

    async def list_blueprints(
        self, *, limit: int = 20, starting_after: str | None = None, name: str | None = None
    ) -> BlueprintListView: ...
    async def blueprint_logs(self, blueprint_id: str) -> BlueprintBuildLogsListView: ...
    async def delete_blueprint(self, blueprint_id: str) -> None: ...

    # agents: installed once, then mounted into devboxes (DevboxCreateParameters.mounts)
    async def create_agent(self, params: AgentCreateParameters) -> AgentView:
        """Start its install; the answer is `queued` (the local engine's): poll it or wait_for_agent."""
        ...

    async def get_agent(self, agent_id: str) -> AgentView: ...
    async def wait_for_agent(self, agent_id: str, *, timeout_seconds: float = 1800) -> AgentView:
        """The agent once its install has ended (build_complete or failed)."""
        ...

    async def list_agents(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        name: str | None = None,
        version: str | None = None,
        search: str | None = None,
    ) -> AgentListView: ...
    async def agent_logs(self, agent_id: str) -> AgentBuildLogsListView: ...
    async def delete_agent(self, agent_id: str) -> None: ...

    # network policies: what egress a devbox gets (launch_parameters.network_policy_id)
    async def create_network_policy(self, params: NetworkPolicyCreateParameters) -> NetworkPolicyView: ...
    async def get_network_policy(self, policy_id: str) -> NetworkPolicyView: ...
    async def list_network_policies(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        name: str | None = None,
        policy_id: str | None = None,
    ) -> NetworkPolicyListView: ...
    async def update_network_policy(
        self, policy_id: str, params: NetworkPolicyUpdateParameters
    ) -> NetworkPolicyView: ...
    async def delete_network_policy(self, policy_id: str) -> NetworkPolicyView: ...

    # tunnels: every port of a devbox from outside, at `{port}-{tunnel_key}` under the tunnel host
    async def enable_tunnel(self, devbox_id: str, config: TunnelConfig | None = None) -> TunnelView: ...
    async def remove_tunnel(self, devbox_id: str) -> None: ...

    # secrets: values given to devboxes by name (DevboxCreateParameters.secrets); never shown back
    async def create_secret(self, params: SecretCreateParameters) -> SecretView: ...
    async def get_secret(self, name: str) -> SecretView: ...
    async def list_secrets(self, *, limit: int = 20, starting_after: str | None = None) -> SecretListView: ...
    async def update_secret(self, name: str, params: SecretUpdateParameters) -> SecretView: ...
    async def delete_secret(self, name: str) -> SecretView: ...

    # metadata: which keys the objects of a kind carry, and the values of one
    async def metadata_keys(self, kind: MetadataKind) -> MetadataKeysView: ...
    async def metadata_values(self, kind: MetadataKind, key: str) -> MetadataValuesView: ...

    # devboxes
    async def create_devbox(self, params: DevboxCreateParameters) -> DevboxView: ...
    async def get_devbox(self, devbox_id: str) -> DevboxView: ...
    async def list_devboxes(
        self, *, limit: int = 20, starting_after: str | None = None, status: str | None = None
    ) -> DevboxListView: ...
    async def wait_for_devbox_status(
        self, devbox_id: str, statuses: list[str], *, timeout_seconds: float = 30
    ) -> DevboxView: ...
    async def shutdown_devbox(self, devbox_id: str) -> DevboxView: ...
    async def suspend_devbox(self, devbox_id: str) -> DevboxView: ...
    async def resume_devbox(self, devbox_id: str) -> DevboxView: ...
    async def keep_alive_devbox(self, devbox_id: str) -> DevboxView: ...
    async def update_devbox(
        self, devbox_id: str, *, name: str | None = None, metadata: dict[str, str] | None = None
    ) -> DevboxView: ...
    async def devbox_logs(
        self, devbox_id: str, *, execution_id: str | None = None, shell_name: str | None = None
    ) -> DevboxLogsListView: ...
    async def devbox_usage(self, devbox_id: str) -> DevboxResourceUsageView: ...

    # execution
    async def execute(
        self,
        devbox_id: str,
        command: str,
        *,
        timeout_seconds: float | None = None,
        working_directory: str | None = None,
        shell_name: str | None = None,
        command_id: str | None = None,
    ) -> ExecutionView: ...
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
    ) -> ExecutionView: ...
    async def get_execution(self, devbox_id: str, execution_id: str) -> ExecutionView: ...
    async def wait_for_execution(
        self, devbox_id: str, execution_id: str, *, statuses: list[str] | None = None, timeout_seconds: float = 30
    ) -> ExecutionView: ...
    async def kill_execution(
        self, devbox_id: str, execution_id: str, *, kill_process_group: bool = True
    ) -> ExecutionView: ...
    async def send_stdin(
        self, devbox_id: str, execution_id: str, *, text: str | None = None, signal: str | None = None
    ) -> ExecutionView: ...
    async def execution_output(
        self, devbox_id: str, execution_id: str, *, stream: str = "stdout", offset: int = 0
    ) -> ExecutionOutputChunk: ...

    # files: text under /home/user (paths relative to it); bytes anywhere in the devbox (relative: to /home/user)
    async def read_file(self, devbox_id: str, file_path: str) -> str: ...
    async def write_file(self, devbox_id: str, file_path: str, contents: str) -> None: ...
    async def upload_file(self, devbox_id: str, path: str, data: bytes) -> None: ...
    async def download_file(self, devbox_id: str, path: str) -> bytes: ...
    async def list_files(self, devbox_id: str, path: str = ".") -> list[str]: ...

    # snapshots
    async def snapshot_disk(
        self,
        devbox_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        commit_message: str | None = None,
    ) -> DevboxSnapshotView: ...
    async def list_snapshots(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        devbox_id: str | None = None,
        source_blueprint_id: str | None = None,
        metadata: dict[str, list[str]] | None = None,
    ) -> DevboxSnapshotListView: ...
    async def get_snapshot(self, snapshot_id: str) -> DevboxSnapshotView: ...
    async def update_snapshot(
        self,
        snapshot_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        commit_message: str | None = None,
    ) -> DevboxSnapshotView: ...
    async def delete_snapshot(self, snapshot_id: str) -> None: ...

    # storage objects (build contexts): create, PUT the bytes to `upload_url` (or upload_object),
    # complete, then read. `upload_object` and `download_object` move the bytes without HTTP.
    async def create_object(self, params: ObjectCreateParameters) -> ObjectView: ...
    async def get_object(self, object_id: str) -> ObjectView: ...
    async def list_objects(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        name: str | None = None,
        content_type: str | None = None,
        state: str | None = None,
        search: str | None = None,
    ) -> ObjectListView: ...
    async def upload_object(self, object_id: str, content: bytes | AsyncIterable[bytes]) -> None: ...
    async def complete_object(self, object_id: str) -> ObjectView: ...
    async def object_download_url(
        self, object_id: str, *, duration_seconds: int = DEFAULT_DOWNLOAD_SECONDS
    ) -> ObjectDownloadURLView: ...
    async def download_object(self, object_id: str) -> bytes: ...
    async def delete_object(self, object_id: str) -> ObjectView: ...


@runtime_checkable
class DefaultEnvironment(Protocol):
    """A backend whose devboxes without a blueprint or snapshot stand on an environment it builds
    itself, once (the local engine: a Python venv with pytest, which takes PyPI and seconds)."""

    async def prepare_default_environment(self) -> BlueprintView:
        """Build it unless it is built; raises EnvironmentUnavailableError when it cannot be."""
        ...

    def default_environment_ready(self) -> bool:
        """Whether it is known to be built (no devbox on it would wait for it)."""
        ...


@dataclass(frozen=True)
class BuildProgress:
    """One report of how far a blueprint's build is: `done` of `total` steps (an image's pull is a
    fraction of the step it belongs to, by bytes), what it is doing, and its place in the build's
    sequence of reports (`seq`, from 1). `done` never goes down from one report to the next."""

    seq: int
    done: float
    total: float
    message: str


@runtime_checkable
class BuildProgressSource(Protocol):
    """A backend that can tell how a build under way goes (the local engine), as it goes: the MCP
    tools that wait for a blueprint turn it into progress notifications."""

    async def blueprint_progress(self, blueprint_id: str, *, after: int = 0) -> list[BuildProgress] | None:
        """The build's reports after the `after`-th, waiting until there is one; None when no
        build of it is under way here (it ended, or was never this engine's)."""
        ...


@runtime_checkable
class ObjectTransfers(Protocol):
    """A backend that keeps object content itself (the local engine), and so answers the presigned
    URLs it hands out as paths: the REST API serving it answers them through these two calls. A
    backend without them (the remote one) hands out URLs that its own server answers."""

    async def receive_object_upload(
        self, object_id: str, token: str, chunks: AsyncIterable[bytes], *, size: int | None = None
    ) -> None:
        """Store an upload made to the object's `upload_url`, which carried `token`; `size` is the
        one the request declared, if it did (checked before any byte is read)."""
        ...

    async def object_download_path(self, object_id: str, expires: int, signature: str) -> Path:
        """The content a presigned download URL (`expires`, `signature`) opens, on disk."""
        ...
