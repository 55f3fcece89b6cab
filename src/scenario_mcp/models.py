"""Runloop-shaped models: the one vocabulary every layer speaks.

Field names, enums, states and id prefixes follow Runloop's public API (1.x wire format), so a
view produced by the local engine serialises to exactly what Runloop's REST API returns.
"""

from __future__ import annotations

import posixpath
import secrets
import time
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .conventions import HOME

ID_PREFIXES = {
    "scenario": "scn",
    "run": "scr",
    "scorer": "sco",
    "benchmark": "bmd",
    "benchmark_run": "bmr",
    "devbox": "dbx",
    "snapshot": "snp",
    "blueprint": "bpt",
    "execution": "exe",
}

DEFAULT_WORKING_DIRECTORY = HOME
DEFAULT_SCORER_TIMEOUT_SEC = 1800
DEFAULT_KEEP_ALIVE_SECONDS = 3600
MAX_KEEP_ALIVE_SECONDS = 172_800


def new_id(kind: str) -> str:
    """A Runloop-style id: the kind's prefix and 24 random characters."""
    return f"{ID_PREFIXES[kind]}_{secrets.token_hex(12)}"


def now_ms() -> int:
    return int(time.time() * 1000)


def given(**values: Any) -> dict[str, Any]:
    """The values that were given (not None): a request body, a query, or a partial update."""
    return {name: value for name, value in values.items() if value is not None}


class _Model(BaseModel):
    # Input bodies reject unknown fields so a typo is an error, not a silent no-op.
    model_config = ConfigDict(extra="forbid")


Metadata = dict[str, str]


# ---------------------------------------------------------------------------------------------
# Scorers: a discriminated union on `type`.


class BashScriptScorer(_Model):
    type: Literal["bash_script_scorer"] = "bash_script_scorer"
    bash_script: str = Field(description="Bash script that prints the score (a float in [0, 1]) last.")


class CommandScorer(_Model):
    type: Literal["command_scorer"] = "command_scorer"
    command: str = Field(description="Command whose exit status is the score: 0 gives 1.0, anything else 0.0.")


class PythonScriptScorer(_Model):
    type: Literal["python_script_scorer"] = "python_script_scorer"
    python_script: str = Field(description="Python script that prints the score (a float in [0, 1]) last.")
    requirements_contents: str | None = None
    python_version_constraint: str | None = None


def _relative_inside(path: str) -> str:
    """A path relative to a directory that stays inside it (no `..`, not absolute)."""
    normal = posixpath.normpath(path)
    if not path or path.startswith("/") or normal == ".." or normal.startswith("../") or "\x00" in path:
        raise ValueError(f"{path!r} must be a relative path inside the working directory (no `..`, not absolute)")
    return normal


class TestFile(_Model):
    file_path: str = Field(description="Path relative to the working directory.")
    file_contents: str

    __test__ = False  # not a pytest class

    @field_validator("file_path")
    @classmethod
    def _inside(cls, value: str) -> str:
        return _relative_inside(value)


class TestBasedScorer(_Model):
    type: Literal["test_based_scorer"] = "test_based_scorer"
    test_command: str = Field(description="Command that runs the tests, e.g. `pytest -q`.")
    test_files: list[TestFile] = Field(default_factory=list)

    __test__ = False  # not a pytest class


class AstGrepScorer(_Model):
    type: Literal["ast_grep_scorer"] = "ast_grep_scorer"
    pattern: str
    search_directory: str
    lang: str | None = None


class CustomScorer(_Model):
    type: Literal["custom_scorer"] = "custom_scorer"
    custom_scorer_type: str
    scorer_params: dict[str, Any] | None = None


Scorer = Annotated[
    BashScriptScorer | CommandScorer | PythonScriptScorer | TestBasedScorer | AstGrepScorer | CustomScorer,
    Field(discriminator="type"),
]


class ScoringFunction(_Model):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]+$", description="Name; letters, digits, `_` and `-` only.")
    weight: float = Field(gt=0, description="Positive weight; weights are normalised to sum to 1.0.")
    scorer: Scorer


class ScoringContract(_Model):
    scoring_function_parameters: list[ScoringFunction] = Field(min_length=1)

    @field_validator("scoring_function_parameters")
    @classmethod
    def _unique_names(cls, functions: list[ScoringFunction]) -> list[ScoringFunction]:
        names = [f.name for f in functions]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"scoring function names must be unique; repeated: {', '.join(duplicates)}")
        return functions


def normalise_weights(contract: ScoringContract) -> ScoringContract:
    """Scale positive weights to sum to 1.0, as Runloop's scenario builders do."""
    total = sum(f.weight for f in contract.scoring_function_parameters)
    return ScoringContract(
        scoring_function_parameters=[
            f.model_copy(update={"weight": f.weight / total}) for f in contract.scoring_function_parameters
        ]
    )


# ---------------------------------------------------------------------------------------------
# Scenarios


class InputContext(_Model):
    problem_statement: str = Field(min_length=1)
    additional_context: Any | None = None


class LaunchParameters(BaseModel):
    # Runloop has many more launch knobs (resource sizes, architecture, ...); keep the ones this
    # engine honours typed and let the rest through untouched.
    model_config = ConfigDict(extra="allow")

    keep_alive_time_seconds: int | None = Field(default=None, gt=0, le=MAX_KEEP_ALIVE_SECONDS)
    launch_commands: list[str] | None = None
    custom_gb_memory: int | None = Field(default=None, gt=0, le=64, description="Memory limit in GiB.")
    custom_disk_size: int | None = Field(default=None, gt=0, le=64, description="Disk cap in GiB.")
    network: bool | None = Field(
        default=None, description="scenario-mcp extension: give the devbox network access (off by default)."
    )


class ScenarioEnvironment(_Model):
    blueprint_id: str | None = None
    blueprint_name: str | None = None
    snapshot_id: str | None = None
    working_directory: str | None = None
    launch_parameters: LaunchParameters | None = None

    @field_validator("working_directory")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return value
        if not value.startswith("/") or "\x00" in value or ".." in value.split("/"):
            raise ValueError(
                f"working_directory must be an absolute path without `..` (e.g. /home/user/project), got {value!r}"
            )
        return posixpath.normpath(value)


class ValidationType(StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    FORWARD = "FORWARD"
    REVERSE = "REVERSE"
    EVALUATION = "EVALUATION"


class ScenarioCreateParameters(_Model):
    name: str = Field(min_length=1)
    input_context: InputContext
    scoring_contract: ScoringContract
    environment_parameters: ScenarioEnvironment | None = None
    reference_output: str | None = None
    metadata: Metadata | None = None
    required_environment_variables: list[str] | None = None
    required_secret_names: list[str] | None = None
    validation_type: ValidationType | None = None
    scorer_timeout_sec: int | None = Field(default=None, gt=0)


class ScenarioView(BaseModel):
    id: str
    name: str
    input_context: InputContext
    scoring_contract: ScoringContract
    environment: ScenarioEnvironment | None = None
    reference_output: str | None = None
    metadata: Metadata = Field(default_factory=dict)
    required_environment_variables: list[str] | None = None
    required_secret_names: list[str] | None = None
    validation_type: ValidationType | None = None
    scorer_timeout_sec: int = DEFAULT_SCORER_TIMEOUT_SEC
    status: Literal["active", "archived"] = "active"
    is_public: bool = False
    create_time_ms: int = Field(default_factory=now_ms)

    @property
    def working_directory(self) -> str:
        env = self.environment
        return (env.working_directory if env and env.working_directory else None) or DEFAULT_WORKING_DIRECTORY


class ScenarioListView(BaseModel):
    scenarios: list[ScenarioView]
    has_more: bool
    total_count: int | None = None


# ---------------------------------------------------------------------------------------------
# Scenario runs


class ScenarioRunState(StrEnum):
    RUNNING = "running"
    SCORING = "scoring"
    SCORED = "scored"
    COMPLETED = "completed"
    CANCELED = "canceled"
    TIMEOUT = "timeout"
    FAILED = "failed"


TERMINAL_RUN_STATES = frozenset(
    {ScenarioRunState.COMPLETED, ScenarioRunState.CANCELED, ScenarioRunState.TIMEOUT, ScenarioRunState.FAILED}
)


class ScoringFunctionResultView(BaseModel):
    scoring_function_name: str
    score: float
    output: str
    state: Literal["unknown", "complete", "error"]


class ScoringContractResultView(BaseModel):
    score: float
    scoring_function_results: list[ScoringFunctionResultView]


class RunProfile(_Model):
    """Runtime configuration of a run; camelCase on the wire, as Runloop has it."""

    purpose: str | None = None
    envVars: dict[str, str] | None = None
    secrets: dict[str, str] | None = None
    launchParameters: LaunchParameters | None = None
    mounts: list[dict[str, Any]] | None = None


class StartScenarioRunParameters(_Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    scenario_id: str
    run_name: str | None = None
    benchmark_run_id: str | None = None
    metadata: Metadata | None = None
    run_profile: RunProfile | None = Field(default=None, alias="runProfile")


class ScenarioRunView(BaseModel):
    id: str
    name: str | None = None
    scenario_id: str
    devbox_id: str
    benchmark_run_id: str | None = None
    state: ScenarioRunState
    metadata: Metadata = Field(default_factory=dict)
    scoring_contract_result: ScoringContractResultView | None = None
    start_time_ms: int = Field(default_factory=now_ms)
    duration_ms: int | None = None
    purpose: str | None = None
    failure_reason: str | None = Field(
        default=None, description="scenario-mcp extension: why the run failed, when it did."
    )


class ScenarioRunListView(BaseModel):
    runs: list[ScenarioRunView]
    has_more: bool
    total_count: int | None = None


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


class DevboxCreateParameters(_Model):
    name: str | None = None
    blueprint_id: str | None = None
    blueprint_name: str | None = None
    snapshot_id: str | None = None
    environment_variables: dict[str, str] | None = None
    launch_parameters: LaunchParameters | None = None
    metadata: Metadata | None = None


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


class BlueprintView(BaseModel):
    id: str
    name: str
    status: Literal["queued", "provisioning", "building", "failed", "build_complete"]
    create_time_ms: int
    build_finish_time_ms: int | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    failure_reason: str | None = None
    build_log: str | None = Field(default=None, description="scenario-mcp extension: the build's output, capped.")


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


class BlueprintCreateParameters(_Model):
    name: str = Field(min_length=1)
    system_setup_commands: list[str] = Field(default_factory=list)
    base_blueprint_id: str | None = None
    base_blueprint_name: str | None = None


class RunLogEntry(BaseModel):
    """One timestamped entry in a run's logs: an execution or a scorer's output."""

    timestamp_ms: int
    source: str
    message: str


class ScenarioUpdateParameters(_Model):
    """Patch-like: omitted or null keeps a field; `""`/`[]`/`{}` clears it (Runloop's convention)."""

    name: str | None = None
    input_context: InputContext | None = None
    scoring_contract: ScoringContract | None = None
    environment_parameters: ScenarioEnvironment | None = None
    reference_output: str | None = None
    metadata: Metadata | None = None
    required_environment_variables: list[str] | None = None
    required_secret_names: list[str] | None = None
    validation_type: ValidationType | None = None
    scorer_timeout_sec: int | None = Field(default=None, gt=0)


class ValidationAttempt(BaseModel):
    """One side of a reference validation: the score a fresh devbox got, and each scorer's result."""

    devbox_id: str
    applied: str = Field(description="What was applied before scoring: `reference_output` or `nothing`.")
    apply_output: str | None = None
    result: ScoringContractResultView | None = None
    error: str | None = None


class ScenarioValidationView(BaseModel):
    """scenario-mcp extension: does the reference output prove the scorers right?"""

    scenario_id: str
    valid: bool
    verdict: str
    gold: ValidationAttempt = Field(description="The reference output applied to a fresh devbox: must score 1.0.")
    untouched: ValidationAttempt = Field(description="The untouched environment: must score below 1.0.")
    validation_type: ValidationType | None = None
    forward: bool | None = Field(default=None, description="FORWARD check: the reference output scores 1.0.")
    reverse: bool | None = Field(default=None, description="REVERSE check: the untouched environment scores below 1.0.")


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


# ---------------------------------------------------------------------------------------------
# Benchmarks and custom scorers


class BenchmarkCreateParameters(_Model):
    name: str = Field(min_length=1)
    scenario_ids: list[str] | None = None
    metadata: Metadata | None = None
    description: str | None = None
    required_environment_variables: list[str] | None = None
    required_secret_names: list[str] | None = None


class BenchmarkUpdateParameters(_Model):
    """Runloop's update of a whole benchmark: what is given replaces what the benchmark has."""

    name: str | None = None
    scenario_ids: list[str] | None = None
    metadata: Metadata | None = None
    description: str | None = None
    required_environment_variables: list[str] | None = None
    required_secret_names: list[str] | None = None


class BenchmarkView(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: str
    name: str
    scenario_ids: list[str] = Field(default_factory=list, alias="scenarioIds")
    metadata: Metadata = Field(default_factory=dict)
    description: str | None = None
    status: Literal["active", "archived"] = "active"
    is_public: bool = False


class BenchmarkListView(BaseModel):
    benchmarks: list[BenchmarkView]
    has_more: bool
    total_count: int | None = None


class StartBenchmarkRunParameters(_Model):
    benchmark_id: str
    run_name: str | None = None
    metadata: Metadata | None = None


class BenchmarkRunView(BaseModel):
    id: str
    benchmark_id: str
    name: str | None = None
    state: Literal["running", "canceled", "completed", "failed"]
    score: float | None = None
    start_time_ms: int = Field(default_factory=now_ms)
    duration_ms: int | None = None
    metadata: Metadata = Field(default_factory=dict)
    purpose: str | None = None


class BenchmarkRunListView(BaseModel):
    runs: list[BenchmarkRunView]
    has_more: bool
    total_count: int | None = None


class CreateCustomScorerParameters(_Model):
    type: str = Field(pattern=r"^[a-zA-Z0-9_-]+$", description="The name scenarios use as `custom_scorer_type`.")
    bash_script: str


class ScenarioScorerView(BaseModel):
    id: str
    type: str
    bash_script: str


class ScenarioScorersListView(BaseModel):
    scorers: list[ScenarioScorerView]
    has_more: bool
    total_count: int | None = None
