"""Devboxes, their executions, logs and snapshots, and the blueprints they start from."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .base import MAX_KEEP_ALIVE_SECONDS, Metadata, _Model
from .mounts import Mount

Architecture = Literal["x86_64", "arm64"]
ResourceSize = Literal["X_SMALL", "SMALL", "MEDIUM", "LARGE", "X_LARGE", "XX_LARGE", "CUSTOM_SIZE"]
CUSTOM_SIZE_FIELDS = ("custom_cpu_cores", "custom_gb_memory", "custom_disk_size")


class UserParameters(BaseModel):
    username: str = Field(min_length=1, description="Who commands run as (a name in the devbox's /etc/passwd).")
    uid: int = Field(ge=0, le=65535, description="That user's uid (used when the name is not in /etc/passwd).")


class LaunchParameters(BaseModel):
    # Runloop has more launch knobs; keep the ones this engine honours typed and let the rest
    # through untouched.
    model_config = ConfigDict(extra="allow")

    keep_alive_time_seconds: int | None = Field(default=None, gt=0, le=MAX_KEEP_ALIVE_SECONDS)
    launch_commands: list[str] | None = None
    architecture: Architecture | None = Field(
        default=None, description="The devbox's CPU architecture; the local engine runs only its host's."
    )
    resource_size_request: ResourceSize | None = Field(
        default=None,
        description="A preset size (X_SMALL … XX_LARGE), or CUSTOM_SIZE with custom_cpu_cores and custom_gb_memory.",
    )
    # SDK 1.32 and the OpenAPI say an integer, SDK 3.x a float (Runloop allows half a core): take both.
    custom_cpu_cores: int | float | None = Field(default=None, gt=0, le=16, description="CPU cores (CUSTOM_SIZE).")
    custom_gb_memory: int | None = Field(default=None, gt=0, le=64, description="Memory limit in GiB.")
    custom_disk_size: int | None = Field(default=None, gt=0, le=64, description="Disk cap in GiB.")
    network: bool | None = Field(
        default=None, description="scenario-mcp extension: give the devbox network access (off by default)."
    )
    user_parameters: UserParameters | None = Field(
        default=None, description="Who the devbox's commands run as (root when absent, or the image's USER)."
    )
    network_policy_id: str | None = Field(
        default=None,
        description="A network policy (npo_...) saying what egress the devbox gets: all, none, or only to named "
        "hosts. Without one, `network` decides (off by default).",
    )

    @model_validator(mode="after")
    def _sizes_agree(self) -> LaunchParameters:
        """Runloop's rule: the custom_* fields go with CUSTOM_SIZE, which needs CPU and memory. A
        custom_* field without any size request is this engine's older spelling of CUSTOM_SIZE."""
        size = self.resource_size_request
        if size == "CUSTOM_SIZE":
            missing = [f for f in ("custom_cpu_cores", "custom_gb_memory") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"resource_size_request CUSTOM_SIZE needs {' and '.join(missing)}")
        elif size is not None:
            given = [f for f in CUSTOM_SIZE_FIELDS if getattr(self, f) is not None]
            if given:
                raise ValueError(
                    f"{given[0]} goes with resource_size_request CUSTOM_SIZE, not {size}; "
                    "ask for CUSTOM_SIZE or leave the custom fields out"
                )
        return self


# ---------------------------------------------------------------------------------------------
# Devboxes, executions, snapshots, blueprints


class DevboxStatus(StrEnum):
    QUEUED = "queued"
    PROVISIONING = "provisioning"
    INITIALIZING = "initializing"
    RUNNING = "running"
    SUSPENDING = "suspending"
    SUSPENDED = "suspended"
    RESUMING = "resuming"
    FAILURE = "failure"
    SHUTDOWN = "shutdown"


class DevboxStateTransition(BaseModel):
    status: DevboxStatus
    transition_time_ms: int


class TunnelConfig(_Model):
    """A V2 tunnel: every port of the devbox at `{port}-{tunnel_key}` under the tunnel host."""

    auth_mode: Literal["open", "authenticated", "public"] | None = Field(
        default=None,
        description="open (or public): anyone who knows the URL; authenticated: with the view's auth_token as "
        "`X-Runloop-Tunnel-Authorization: Bearer TOKEN`.",
    )
    http_keep_alive: bool | None = None
    wake_on_http: bool | None = None


class TunnelView(BaseModel):
    tunnel_key: str
    auth_mode: Literal["open", "authenticated"]
    auth_token: str | None = None
    create_time_ms: int
    http_keep_alive: bool = True
    wake_on_http: bool = False


class DevboxCreateParameters(_Model):
    name: str | None = None
    blueprint_id: str | None = None
    blueprint_name: str | None = None
    snapshot_id: str | None = None
    environment_variables: dict[str, str] | None = None
    secrets: dict[str, str] | None = Field(
        default=None,
        description="Environment variable name -> secret name: the secret's value in every command's environment.",
    )
    launch_parameters: LaunchParameters | None = None
    metadata: Metadata | None = None
    mounts: list[Mount] | None = Field(
        default=None, description="Agents, objects, files and code the devbox starts with (models/mounts.py)."
    )
    tunnel: TunnelConfig | None = Field(default=None, description="A tunnel made as the devbox starts.")


class DevboxView(BaseModel):
    id: str
    name: str | None = None
    status: DevboxStatus
    create_time_ms: int
    end_time_ms: int | None = None
    blueprint_id: str | None = None
    snapshot_id: str | None = None
    metadata: Metadata = Field(default_factory=dict)
    failure_reason: Literal["out_of_memory", "out_of_disk", "execution_failed", "health_check_failed"] | None = None
    shutdown_reason: Literal["api_shutdown", "keep_alive_timeout", "entrypoint_exit", "idle", "ttl_expired"] | None = (
        None
    )
    launch_parameters: LaunchParameters = Field(default_factory=LaunchParameters)
    capabilities: list[str] = Field(default_factory=list)
    state_transitions: list[DevboxStateTransition] = Field(default_factory=list)
    isolation: str = Field(
        default="namespaces",
        description="scenario-mcp extension: how the devbox is isolated from the host.",
    )
    limits: list[str] = Field(
        default_factory=list, description="scenario-mcp extension: the resource limits this engine enforces."
    )
    failure_message: str | None = Field(
        default=None, description="scenario-mcp extension: human-readable reason for `failure`."
    )
    tunnel: TunnelView | None = None


class DevboxListView(BaseModel):
    devboxes: list[DevboxView]
    has_more: bool
    total_count: int | None = None


class ExecutionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"


class ExecutionView(BaseModel):
    devbox_id: str
    execution_id: str
    status: ExecutionStatus
    exit_status: int | None = None
    stdout: str | None = None
    stderr: str | None = None
    stdout_truncated: bool | None = None
    stderr_truncated: bool | None = None
    shell_name: str | None = None


class DevboxSnapshotView(BaseModel):
    id: str
    name: str | None = None
    create_time_ms: int
    metadata: Metadata = Field(default_factory=dict)
    source_devbox_id: str
    source_blueprint_id: str | None = None
    commit_message: str | None = None
    size_bytes: int | None = None


BlueprintStatus = Literal["queued", "provisioning", "building", "failed", "build_complete"]
BUILD_ENDED: tuple[BlueprintStatus, ...] = ("build_complete", "failed")
BlueprintFailureReason = Literal["out_of_memory", "out_of_disk", "build_failed"]


class BlueprintView(BaseModel):
    id: str
    name: str
    status: BlueprintStatus
    state: Literal["created", "deleted"] = "created"
    create_time_ms: int
    build_finish_time_ms: int | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    base_blueprint_id: str | None = None
    metadata: Metadata = Field(default_factory=dict)
    failure_reason: BlueprintFailureReason | None = None
    failure_message: str | None = Field(
        default=None, description="scenario-mcp extension: what went wrong, for a `failed` build."
    )
    build_log: str | None = Field(default=None, description="scenario-mcp extension: the build's output, capped.")
    image_config: dict[str, Any] | None = Field(
        default=None,
        description="scenario-mcp extension: a Dockerfile blueprint's image configuration (env, working_dir, "
        "user, cmd, entrypoint, exposed_ports, labels). Env, working_dir and user apply to every command of its "
        "devboxes; cmd and entrypoint are kept, not run.",
    )

    @model_validator(mode="before")
    @classmethod
    def _free_text_reason(cls, data: Any) -> Any:
        """Records stored before failure_reason was Runloop's enum hold the message there."""
        reason = data.get("failure_reason") if isinstance(data, dict) else None
        if reason is not None and reason not in get_args(BlueprintFailureReason):
            data = {**data, "failure_reason": "build_failed", "failure_message": data.get("failure_message") or reason}
        return data


MetadataKind = Literal["scenarios", "benchmarks", "blueprints", "snapshots", "devboxes"]
# Where Runloop's API lists each kind (its metadata listings are under `…/metadata/keys`).
COLLECTION_PATHS: dict[MetadataKind, str] = {
    "scenarios": "/v1/scenarios",
    "benchmarks": "/v1/benchmarks",
    "blueprints": "/v1/blueprints",
    "snapshots": "/v1/devboxes/disk_snapshots",
    "devboxes": "/v1/devboxes",
}


class MetadataKeysView(BaseModel):
    keys: list[str]


class MetadataValuesView(BaseModel):
    key: str
    values: list[str]


class BlueprintBuildLog(BaseModel):
    level: str
    timestamp_ms: int
    message: str


class BlueprintBuildLogsListView(BaseModel):
    blueprint_id: str
    logs: list[BlueprintBuildLog]


class ObjectContext(_Model):
    """A build context carried by an uploaded object (a tgz of the context directory)."""

    type: Literal["object"] = "object"
    object_id: str = Field(min_length=1)


class BlueprintCreateParameters(_Model):
    name: str = Field(min_length=1)
    dockerfile: str | None = Field(
        default=None, description="A Dockerfile to build the environment from (its FROM image, its steps)."
    )
    build_context: ObjectContext | None = Field(
        default=None, description="The files COPY and ADD read: an uploaded object holding a tgz of them."
    )
    build_args: dict[str, str] | None = Field(default=None, description="Values for the Dockerfile's ARGs.")
    secrets: dict[str, str] | None = Field(
        default=None,
        description="Environment variable name -> secret name: the value in the build's commands (RUN steps, "
        "system_setup_commands), never in its layers or logs.",
    )
    file_mounts: dict[str, str] | None = Field(
        default=None, description="Files to write (absolute path -> contents) after the Dockerfile, before setup."
    )
    system_setup_commands: list[str] = Field(default_factory=list)
    base_blueprint_id: str | None = None
    base_blueprint_name: str | None = None
    launch_parameters: LaunchParameters | None = Field(
        default=None, description="Defaults for devboxes made from this blueprint."
    )
    metadata: Metadata | None = None


# ---------------------------------------------------------------------------------------------
# Executions (async), devbox logs


class DevboxLogView(BaseModel):
    level: str = "info"
    source: str
    timestamp_ms: int
    cmd: str | None = None
    cmd_id: str | None = None
    exit_code: int | None = None
    message: str | None = None


class DevboxLogsListView(BaseModel):
    logs: list[DevboxLogView]


class DevboxResourceUsageView(BaseModel):
    """Runloop's resource usage of a devbox, with what the engine measured (scenario-mcp extensions:
    null when the devbox has ended or the machine gives no such figure)."""

    id: str
    total_active_seconds: int
    total_elapsed_seconds: int
    vcpu_seconds: int
    memory_gb_seconds: int
    disk_gb_seconds: int
    start_time_ms: int
    end_time_ms: int | None = None
    status: str
    cpu_seconds_used: float | None = Field(
        default=None, description="scenario-mcp extension: CPU time its cgroup used."
    )
    memory_peak_bytes: int | None = Field(
        default=None, description="scenario-mcp extension: the peak memory of its cgroup."
    )
    disk_bytes_used: int | None = Field(default=None, description="scenario-mcp extension: its writable layer's size.")


class ExecutionOutputChunk(BaseModel):
    """A slice of an execution's stdout or stderr, from a byte offset (for streaming)."""

    execution_id: str
    stream: Literal["stdout", "stderr"]
    offset: int
    output: str
    next_offset: int
    done: bool = Field(description="True when the execution has completed and nothing follows next_offset.")


class DevboxSnapshotListView(BaseModel):
    snapshots: list[DevboxSnapshotView]
    has_more: bool
    total_count: int | None = None


class BlueprintListView(BaseModel):
    blueprints: list[BlueprintView]
    has_more: bool
    total_count: int | None = None
