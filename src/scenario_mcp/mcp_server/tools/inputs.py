"""The tools' input models and the result models that are not Runloop views.

Field descriptions here are what a model reads in each tool's input schema, on every turn: they
say what a caller needs to fill the field and no more (the docs:// resource and the prompts carry
the rest). Nested parts and free maps take the strict shapes of shapes.py.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ...conventions import (
    DEFAULT_EXEC_TIMEOUT,
    DEFAULT_LIST_LIMIT,
    MAX_COMMIT_MESSAGE,
    MAX_EXEC_TIMEOUT,
    MAX_LIST_LIMIT,
    SHELL_NAME_PATTERN,
)
from ...models import DevboxStatus, ExecutionView, ScenarioRunState, ScenarioRunView
from .shapes import (
    EnvironmentInput,
    InputContextInput,
    LaunchInput,
    MountInput,
    Pairs,
    ScoringContractInput,
)

MAX_WAIT_SECONDS = 3600
DEFAULT_WAIT_SECONDS = 4.0


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _wait(default: float = DEFAULT_WAIT_SECONDS) -> Any:
    return Field(
        default=default,
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="Max seconds to wait.",
    )


def _limit() -> Any:
    return Field(default=DEFAULT_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT)


# --- scenarios ------------------------------------------------------------------------------------


class ScenarioIdInput(_Input):
    scenario_id: str


class ValidateScenarioInput(_Input):
    scenario_id: str
    wait_seconds: float = _wait()


class CreateScenarioInput(_Input):
    name: str = Field(min_length=1)
    input_context: InputContextInput
    scoring_contract: ScoringContractInput
    environment_parameters: EnvironmentInput | None = None
    reference_output: str | None = Field(default=None, description="Bash that solves the task.")
    metadata: Pairs | None = None
    scorer_timeout_sec: int | None = Field(default=None, gt=0)


class UpdateScenarioInput(_Input):
    # Patch-like: omitted or null keeps a field; "" or [] clears it. (A docstring would be published.)
    scenario_id: str
    name: str | None = None
    input_context: InputContextInput | None = None
    scoring_contract: ScoringContractInput | None = None
    environment_parameters: EnvironmentInput | None = None
    reference_output: str | None = None
    metadata: Pairs | None = None
    scorer_timeout_sec: int | None = Field(default=None, gt=0)


class ListScenariosInput(_Input):
    name: str | None = Field(default=None, description="Exact name.")
    limit: int = _limit()
    starting_after: str | None = None
    benchmark_id: str | None = None


# --- runs -----------------------------------------------------------------------------------------


class RunIdInput(_Input):
    run_id: str


class GetRunInput(_Input):
    run_id: str
    wait_seconds: float = _wait(0)


class StartRunInput(_Input):
    scenario_id: str
    run_name: str | None = None
    wait_seconds: float = _wait()


class ListRunsInput(_Input):
    scenario_id: str | None = None
    state: ScenarioRunState | None = None
    benchmark_run_id: str | None = None
    limit: int = _limit()
    starting_after: str | None = None


class ScoreRunInput(_Input):
    run_id: str
    wait_seconds: float = _wait()


class RunScenarioInput(_Input):
    scenario_id: str
    command: str | None = Field(
        default=None, min_length=1, description="Bash run in the working directory before scoring; omit for none."
    )
    command_timeout_seconds: float | None = Field(default=None, gt=0, le=MAX_EXEC_TIMEOUT)
    scoring_timeout_seconds: float = Field(default=1800, gt=0, le=2 * MAX_WAIT_SECONDS)
    run_name: str | None = None
    wait_seconds: float = _wait()


# With the agents toolset, the tools that start a devbox take `mounts` too: fields every turn
# carries, which a session that mounts nothing does not pay for (catalogue.tools_for).
MountsField = Field(default=None, description="Agents, objects, files, code to mount (one `type` each).")


class StartRunMountsInput(StartRunInput):
    mounts: list[MountInput] | None = MountsField


class RunScenarioMountsInput(RunScenarioInput):
    mounts: list[MountInput] | None = MountsField


class RunScenarioResult(BaseModel):
    run: ScenarioRunView = Field(description="The run at the end: `completed` with its score, or `failed`.")
    execution: ExecutionView | None = Field(default=None, description="The command's result, when one was given.")
    score: float | None = Field(default=None, description="The run's final score in [0, 1], when it was scored.")


# --- blueprints and devboxes ----------------------------------------------------------------------


class DevboxIdInput(_Input):
    devbox_id: str


class CreateDevboxInput(_Input):
    name: str | None = None
    blueprint_id: str | None = None
    snapshot_id: str | None = None
    environment_variables: Pairs | None = None
    launch_parameters: LaunchInput | None = None
    metadata: Pairs | None = None
    wait_seconds: float = _wait()


class CreateDevboxMountsInput(CreateDevboxInput):
    mounts: list[MountInput] | None = MountsField


class ListDevboxesInput(_Input):
    status: DevboxStatus | None = None
    limit: int = _limit()
    starting_after: str | None = None


class CreateBlueprintInput(_Input):
    name: str = Field(min_length=1)
    dockerfile: str | None = None
    build_context_path: str | None = Field(
        default=None, description="Absolute dir on the server's machine (under --allow-dir) for COPY/ADD."
    )
    build_context_object_id: str | None = Field(
        default=None, min_length=1, description="Or: an uploaded tgz object (obj_...)."
    )
    build_args: Pairs | None = None
    file_mounts: Pairs | None = Field(default=None, description="{key: absolute path, value: contents}.")
    system_setup_commands: list[str] | None = None
    base_blueprint_id: str | None = None
    base_blueprint_name: str | None = None
    launch_parameters: LaunchInput | None = None
    metadata: Pairs | None = None
    wait_seconds: float = _wait(0)


class BlueprintIdInput(_Input):
    blueprint_id: str


class GetBlueprintInput(_Input):
    blueprint_id: str
    wait_seconds: float = _wait(0)


class ListBlueprintsInput(_Input):
    limit: int = _limit()
    starting_after: str | None = None
    name: str | None = None


class SnapshotDevboxInput(_Input):
    devbox_id: str
    name: str | None = None
    metadata: Pairs | None = None
    commit_message: str | None = Field(default=None, max_length=MAX_COMMIT_MESSAGE)
    wait_seconds: float = _wait()


# --- execution ------------------------------------------------------------------------------------


class _CommandInput(_Input):
    devbox_id: str
    command: str = Field(min_length=1)
    timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        le=MAX_EXEC_TIMEOUT,
        description=f"Kill it after this long (default {DEFAULT_EXEC_TIMEOUT:g}).",
    )
    working_directory: str | None = None
    shell_name: str | None = Field(
        default=None, pattern=f"^{SHELL_NAME_PATTERN}$", description="Same name: run in order, keep cwd and env."
    )


class ExecuteInput(_CommandInput):
    wait_seconds: float = _wait()


class ExecuteAsyncInput(_CommandInput):
    attach_stdin: bool = Field(default=False, description="Keep stdin open for send_execution_stdin.")


class ExecutionIdInput(_Input):
    devbox_id: str
    execution_id: str


class GetExecutionInput(ExecutionIdInput):
    wait_seconds: float = _wait(0)


class SendStdinInput(ExecutionIdInput):
    text: str | None = None
    signal: Literal["EOF", "INTERRUPT"] | None = None


class ExecutionOutputInput(ExecutionIdInput):
    stream: Literal["stdout", "stderr"] = "stdout"
    offset: int = Field(default=0, ge=0)


# --- files ----------------------------------------------------------------------------------------

# Paths are relative to /home/user (the server's instructions and its docs say so once).


class ReadFileInput(_Input):
    devbox_id: str
    file_path: str


class WriteFileInput(_Input):
    devbox_id: str
    file_path: str
    contents: str


class ListFilesInput(_Input):
    devbox_id: str
    path: str = "."


class FileContents(BaseModel):
    file_path: str
    contents: str


class FileWritten(BaseModel):
    file_path: str
    bytes_written: int


class DirectoryListing(BaseModel):
    devbox_id: str
    path: str
    entries: list[str] = Field(description="Names in the directory; subdirectories end with `/`.")


# --- benchmarks -----------------------------------------------------------------------------------


class CreateBenchmarkInput(_Input):
    name: str = Field(min_length=1)
    scenario_ids: list[str] | None = None
    metadata: Pairs | None = None
    description: str | None = None


class RunBenchmarkInput(_Input):
    benchmark_id: str
    agent: str | None = Field(
        default=None,
        description="oracle, nop or command:CMD (run in each devbox): drive every run to its score. "
        "Omit to only start the runs.",
    )
    attempts: int = Field(default=1, ge=1, le=100, description="With an agent: attempts per scenario.")
    concurrency: int | None = Field(default=None, ge=1, le=256, description="With an agent: runs at once.")
    run_name: str | None = None
    metadata: Pairs | None = None
    wait_seconds: float = _wait()


class RunBenchmarkMountsInput(RunBenchmarkInput):
    mounts: list[MountInput] | None = Field(
        default=None, description="With an agent: mounted into every run's devbox (agent_mount: its bin on PATH)."
    )


class ImportScenariosInput(_Input):
    paths: list[str] = Field(
        min_length=1,
        description="Absolute dirs on the server's machine (under --allow-dir): Harbor or Terminal-Bench task "
        "dirs, or dirs of them.",
    )
    wait_seconds: float = _wait()


class ExportScenarioInput(_Input):
    scenario_id: str
    directory: str | None = Field(
        default=None, description="New or empty absolute dir under --allow-dir; omitted: the files returned inline."
    )


# --- agents ---------------------------------------------------------------------------------------


class CreateAgentInput(_Input):
    name: str = Field(min_length=1)
    version: str | None = Field(default=None, description="npm/pip: the package version; git: a ref.")
    source_type: Literal["npm", "pip", "git", "object"]
    package_name: str | None = Field(default=None, description="npm or pip.")
    registry_url: str | None = None
    repository: str | None = Field(default=None, description="git: its URL.")
    object_id: str | None = Field(default=None, description="object: an uploaded tar or tgz.")
    agent_setup: list[str] | None = Field(default=None, description="Commands run after the install.")
    wait_seconds: float = _wait()


class AgentIdInput(_Input):
    agent_id: str


class GetAgentInput(_Input):
    agent_id: str
    wait_seconds: float = _wait(0)


class ListAgentsInput(_Input):
    name: str | None = Field(default=None, description="Part of the name.")
    version: str | None = Field(default=None, description="A version, or `latest`.")
    limit: int = _limit()
    starting_after: str | None = None


# --- secrets --------------------------------------------------------------------------------------


class CreateSecretInput(_Input):
    name: str = Field(description="Letters, digits, underscores; devboxes and runs name it (secrets: ENV -> name).")
    value: str = Field(description="Kept encrypted; no tool or view shows it again.")


class ListSecretsInput(_Input):
    limit: int = _limit()
    starting_after: str | None = None


# --- tunnels --------------------------------------------------------------------------------------


class OpenDevboxPortInput(_Input):
    devbox_id: str
    port: int = Field(ge=1, le=65535, description="The port a server in the devbox listens on.")
    authenticated: bool = Field(default=True, description="Require the returned header (else anyone with the URL).")


class OpenDevboxPortView(BaseModel):
    devbox_id: str
    port: int
    tunnel_key: str
    host: str = Field(description="`{port}-{tunnel_key}.localhost`: the tunnel host's name for this port.")
    url: str = Field(description="The URL through this engine's REST API server (`scenario-mcp api`).")
    headers: dict[str, str] = Field(description="Headers to send (the tunnel's token when authenticated).")
