"""The Backend operations a solver session is refused: authoring, and whatever lies outside the runs
it works in. SolverBackend (access.py) takes them from here and writes out the rest, so that each
method of the protocol is decided on in one of the two."""

from __future__ import annotations

from collections.abc import AsyncIterable

from ..backend import InvalidRequestError
from ..models import (
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
    ScenarioCreateParameters,
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
    TunnelConfig,
    TunnelView,
)


def refused(operation: str) -> InvalidRequestError:
    return InvalidRequestError(f"{operation} is not available to a solver session (the server runs --role solver)")


class AuthoringOnly:
    """Every Backend method a solver session may not call, each raising InvalidRequestError."""

    # --- scenarios: the reads are SolverBackend's, redacted ---------------------------------------

    async def create_scenario(self, params: ScenarioCreateParameters) -> ScenarioView:
        raise refused("create_scenario")

    async def update_scenario(self, scenario_id: str, params: ScenarioUpdateParameters) -> ScenarioView:
        raise refused("update_scenario")

    async def archive_scenario(self, scenario_id: str) -> ScenarioView:
        raise refused("archive_scenario")

    async def unarchive_scenario(self, scenario_id: str) -> ScenarioView:
        raise refused("unarchive_scenario")

    async def validate_scenario(self, scenario_id: str) -> ScenarioValidationView:
        raise refused("validate_scenario")

    # --- benchmarks, custom scorers, blueprints, metadata -----------------------------------------

    async def create_benchmark(self, params: BenchmarkCreateParameters) -> BenchmarkView:
        raise refused("create_benchmark")

    async def get_benchmark(self, benchmark_id: str) -> BenchmarkView:
        raise refused("get_benchmark")

    async def list_benchmarks(
        self, *, limit: int = 20, starting_after: str | None = None, name: str | None = None
    ) -> BenchmarkListView:
        raise refused("list_benchmarks")

    async def update_benchmark(self, benchmark_id: str, params: BenchmarkUpdateParameters) -> BenchmarkView:
        raise refused("update_benchmark")

    async def archive_benchmark(self, benchmark_id: str) -> BenchmarkView:
        raise refused("archive_benchmark")

    async def unarchive_benchmark(self, benchmark_id: str) -> BenchmarkView:
        raise refused("unarchive_benchmark")

    async def update_benchmark_scenarios(
        self, benchmark_id: str, *, add: list[str] | None = None, remove: list[str] | None = None
    ) -> BenchmarkView:
        raise refused("update_benchmark_scenarios")

    async def start_benchmark_run(self, params: StartBenchmarkRunParameters) -> BenchmarkRunView:
        raise refused("start_benchmark_run")

    async def get_benchmark_run(self, benchmark_run_id: str) -> BenchmarkRunView:
        raise refused("get_benchmark_run")

    async def list_benchmark_runs(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        benchmark_id: str | None = None,
        name: str | None = None,
        state: str | None = None,
    ) -> BenchmarkRunListView:
        raise refused("list_benchmark_runs")

    async def complete_benchmark_run(self, benchmark_run_id: str) -> BenchmarkRunView:
        raise refused("complete_benchmark_run")

    async def cancel_benchmark_run(self, benchmark_run_id: str) -> BenchmarkRunView:
        raise refused("cancel_benchmark_run")

    async def create_custom_scorer(self, params: CreateCustomScorerParameters) -> ScenarioScorerView:
        raise refused("create_custom_scorer")

    async def get_custom_scorer(self, scorer_id: str) -> ScenarioScorerView:
        raise refused("get_custom_scorer")

    async def list_custom_scorers(
        self, *, limit: int = 20, starting_after: str | None = None
    ) -> ScenarioScorersListView:
        raise refused("list_custom_scorers")

    async def update_custom_scorer(self, scorer_id: str, params: CreateCustomScorerParameters) -> ScenarioScorerView:
        raise refused("update_custom_scorer")

    async def create_blueprint(self, params: BlueprintCreateParameters) -> BlueprintView:
        raise refused("create_blueprint")

    async def get_blueprint(self, blueprint_id: str) -> BlueprintView:
        raise refused("get_blueprint")

    async def wait_for_blueprint(self, blueprint_id: str, *, timeout_seconds: float = 1800) -> BlueprintView:
        raise refused("wait_for_blueprint")

    async def list_blueprints(
        self, *, limit: int = 20, starting_after: str | None = None, name: str | None = None
    ) -> BlueprintListView:
        raise refused("list_blueprints")

    async def blueprint_logs(self, blueprint_id: str) -> BlueprintBuildLogsListView:
        raise refused("blueprint_logs")

    async def delete_blueprint(self, blueprint_id: str) -> None:
        raise refused("delete_blueprint")

    async def metadata_keys(self, kind: MetadataKind) -> MetadataKeysView:
        raise refused("metadata_keys")

    async def metadata_values(self, kind: MetadataKind, key: str) -> MetadataValuesView:
        raise refused("metadata_values")

    # --- devboxes: a solver's devbox is its run's, and so is its lifecycle ------------------------

    async def create_devbox(self, params: DevboxCreateParameters) -> DevboxView:
        raise refused("create_devbox")

    async def list_devboxes(
        self, *, limit: int = 20, starting_after: str | None = None, status: str | None = None
    ) -> DevboxListView:
        raise InvalidRequestError("list_devboxes is not available to a solver session; get_run shows your devbox")

    async def wait_for_devbox_status(
        self, devbox_id: str, statuses: list[str], *, timeout_seconds: float = 30
    ) -> DevboxView:
        raise refused("wait_for_devbox_status")

    async def shutdown_devbox(self, devbox_id: str) -> DevboxView:
        raise refused("shutdown_devbox")

    async def suspend_devbox(self, devbox_id: str) -> DevboxView:
        raise refused("suspend_devbox")

    async def resume_devbox(self, devbox_id: str) -> DevboxView:
        raise refused("resume_devbox")

    async def keep_alive_devbox(self, devbox_id: str) -> DevboxView:
        raise refused("keep_alive_devbox")

    async def update_devbox(
        self, devbox_id: str, *, name: str | None = None, metadata: dict[str, str] | None = None
    ) -> DevboxView:
        raise refused("update_devbox")

    async def devbox_logs(
        self, devbox_id: str, *, execution_id: str | None = None, shell_name: str | None = None
    ) -> DevboxLogsListView:
        raise refused("devbox_logs")

    async def devbox_usage(self, devbox_id: str) -> DevboxResourceUsageView:
        raise refused("devbox_usage")

    # --- snapshots --------------------------------------------------------------------------------

    async def snapshot_disk(
        self,
        devbox_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        commit_message: str | None = None,
    ) -> DevboxSnapshotView:
        raise refused("snapshot_disk")

    async def list_snapshots(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        devbox_id: str | None = None,
        source_blueprint_id: str | None = None,
        metadata: dict[str, list[str]] | None = None,
    ) -> DevboxSnapshotListView:
        raise refused("list_snapshots")

    async def get_snapshot(self, snapshot_id: str) -> DevboxSnapshotView:
        raise refused("get_snapshot")

    async def update_snapshot(
        self,
        snapshot_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        commit_message: str | None = None,
    ) -> DevboxSnapshotView:
        raise refused("update_snapshot")

    async def delete_snapshot(self, snapshot_id: str) -> None:
        raise refused("delete_snapshot")

    # --- storage objects (build contexts), network policies, tunnels ------------------------------

    async def create_object(self, params: ObjectCreateParameters) -> ObjectView:
        raise refused("create_object")

    async def get_object(self, object_id: str) -> ObjectView:
        raise refused("get_object")

    async def list_objects(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        name: str | None = None,
        content_type: str | None = None,
        state: str | None = None,
        search: str | None = None,
    ) -> ObjectListView:
        raise refused("list_objects")

    async def upload_object(self, object_id: str, content: bytes | AsyncIterable[bytes]) -> None:
        raise refused("upload_object")

    async def complete_object(self, object_id: str) -> ObjectView:
        raise refused("complete_object")

    async def object_download_url(
        self, object_id: str, *, duration_seconds: int = DEFAULT_DOWNLOAD_SECONDS
    ) -> ObjectDownloadURLView:
        raise refused("object_download_url")

    async def download_object(self, object_id: str) -> bytes:
        raise refused("download_object")

    async def delete_object(self, object_id: str) -> ObjectView:
        raise refused("delete_object")

    async def create_network_policy(self, params: NetworkPolicyCreateParameters) -> NetworkPolicyView:
        raise refused("create_network_policy")

    async def get_network_policy(self, policy_id: str) -> NetworkPolicyView:
        raise refused("get_network_policy")

    async def list_network_policies(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        name: str | None = None,
        policy_id: str | None = None,
    ) -> NetworkPolicyListView:
        raise refused("list_network_policies")

    async def update_network_policy(self, policy_id: str, params: NetworkPolicyUpdateParameters) -> NetworkPolicyView:
        raise refused("update_network_policy")

    async def delete_network_policy(self, policy_id: str) -> NetworkPolicyView:
        raise refused("delete_network_policy")

    async def enable_tunnel(self, devbox_id: str, config: TunnelConfig | None = None) -> TunnelView:
        raise refused("enable_tunnel")

    async def remove_tunnel(self, devbox_id: str) -> None:
        raise refused("remove_tunnel")

    # --- secrets (a solver's devbox gets the values its run names, never the list) ----------------

    async def create_secret(self, params: SecretCreateParameters) -> SecretView:
        raise refused("create_secret")

    async def get_secret(self, name: str) -> SecretView:
        raise refused("get_secret")

    async def list_secrets(self, *, limit: int = 20, starting_after: str | None = None) -> SecretListView:
        raise refused("list_secrets")

    async def update_secret(self, name: str, params: SecretUpdateParameters) -> SecretView:
        raise refused("update_secret")

    async def delete_secret(self, name: str) -> SecretView:
        raise refused("delete_secret")

    # --- agents -----------------------------------------------------------------------------------

    async def create_agent(self, params: AgentCreateParameters) -> AgentView:
        raise refused("create_agent")

    async def get_agent(self, agent_id: str) -> AgentView:
        raise refused("get_agent")

    async def wait_for_agent(self, agent_id: str, *, timeout_seconds: float = 1800) -> AgentView:
        raise refused("wait_for_agent")

    async def list_agents(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        name: str | None = None,
        version: str | None = None,
        search: str | None = None,
    ) -> AgentListView:
        raise refused("list_agents")

    async def agent_logs(self, agent_id: str) -> AgentBuildLogsListView:
        raise refused("agent_logs")

    async def delete_agent(self, agent_id: str) -> None:
        raise refused("delete_agent")
