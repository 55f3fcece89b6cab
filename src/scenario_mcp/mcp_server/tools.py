"""The MCP tools: one pydantic input model and one pure async function per tool.

Each function takes the Backend and its input model and returns a Runloop-shaped view; server.py
registers them. Tests call these functions directly as well as through a real MCP client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp.types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from ..backend import Backend
from ..models import (
    BlueprintCreateParameters,
    BlueprintView,
    DevboxCreateParameters,
    DevboxSnapshotView,
    DevboxView,
    ExecutionView,
    ScenarioCreateParameters,
    ScenarioListView,
    ScenarioRunListView,
    ScenarioRunView,
    ScenarioView,
    StartScenarioRunParameters,
)


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScenarioIdInput(_Input):
    scenario_id: str = Field(description="The scenario's id (scn_...).")


class ListScenariosInput(_Input):
    name: str | None = Field(default=None, description="Only scenarios with exactly this name.")
    limit: int = Field(default=20, ge=1, le=5000, description="Page size.")
    starting_after: str | None = Field(default=None, description="Id of the last item of the previous page.")


class RunIdInput(_Input):
    run_id: str = Field(description="The scenario run's id (scr_...).")


class StartRunInput(_Input):
    scenario_id: str = Field(description="The scenario to run (scn_...).")
    run_name: str | None = Field(default=None, description="Display name of the run.")
    metadata: dict[str, str] | None = Field(default=None, description="Labels to attach to the run.")


class ListRunsInput(_Input):
    scenario_id: str | None = Field(default=None, description="Only runs of this scenario.")
    state: str | None = Field(default=None, description="Only runs in this state (running, scored, ...).")
    limit: int = Field(default=20, ge=1, le=5000, description="Page size.")
    starting_after: str | None = Field(default=None, description="Id of the last item of the previous page.")


class DevboxIdInput(_Input):
    devbox_id: str = Field(description="The devbox's id (dbx_...).")


class SnapshotDevboxInput(_Input):
    devbox_id: str = Field(description="The running devbox to snapshot (dbx_...).")
    name: str | None = Field(default=None, description="A name for the snapshot.")
    metadata: dict[str, str] | None = Field(default=None, description="Labels to attach to the snapshot.")
    commit_message: str | None = Field(default=None, max_length=1000, description="What this snapshot holds.")


class ExecuteInput(_Input):
    devbox_id: str = Field(description="The devbox to run in (dbx_...); a run's devbox is in get_run's `devbox_id`.")
    command: str = Field(min_length=1, description="A bash command line, e.g. `pytest -q` or `cat setup.py`.")
    timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="Kill the command (and its process group) after this long; default 120.",
    )
    working_directory: str | None = Field(
        default=None,
        description="Directory to run in; default /home/user. Relative paths are under /home/user.",
    )


class ReadFileInput(_Input):
    devbox_id: str = Field(description="The devbox (dbx_...).")
    file_path: str = Field(description="Path relative to /home/user (or absolute inside it).")


class WriteFileInput(_Input):
    devbox_id: str = Field(description="The devbox (dbx_...).")
    file_path: str = Field(description="Path relative to /home/user (or absolute inside it); parents are created.")
    contents: str = Field(description="The whole new text of the file (UTF-8).")


class FileContents(BaseModel):
    file_path: str
    contents: str


class FileWritten(BaseModel):
    file_path: str
    bytes_written: int


# --- tool functions ------------------------------------------------------------------------------


async def create_scenario(backend: Backend, params: ScenarioCreateParameters) -> ScenarioView:
    return await backend.create_scenario(params)


async def get_scenario(backend: Backend, params: ScenarioIdInput) -> ScenarioView:
    return await backend.get_scenario(params.scenario_id)


async def list_scenarios(backend: Backend, params: ListScenariosInput) -> ScenarioListView:
    return await backend.list_scenarios(limit=params.limit, starting_after=params.starting_after, name=params.name)


async def create_blueprint(backend: Backend, params: BlueprintCreateParameters) -> BlueprintView:
    return await backend.create_blueprint(params)


async def create_devbox(backend: Backend, params: DevboxCreateParameters) -> DevboxView:
    return await backend.create_devbox(params)


async def get_devbox(backend: Backend, params: DevboxIdInput) -> DevboxView:
    return await backend.get_devbox(params.devbox_id)


async def shutdown_devbox(backend: Backend, params: DevboxIdInput) -> DevboxView:
    return await backend.shutdown_devbox(params.devbox_id)


async def snapshot_devbox(backend: Backend, params: SnapshotDevboxInput) -> DevboxSnapshotView:
    return await backend.snapshot_disk(
        params.devbox_id, name=params.name, metadata=params.metadata, commit_message=params.commit_message
    )


async def start_run(backend: Backend, params: StartRunInput) -> ScenarioRunView:
    return await backend.start_run(
        StartScenarioRunParameters(scenario_id=params.scenario_id, run_name=params.run_name, metadata=params.metadata)
    )


async def get_run(backend: Backend, params: RunIdInput) -> ScenarioRunView:
    return await backend.get_run(params.run_id)


async def list_runs(backend: Backend, params: ListRunsInput) -> ScenarioRunListView:
    return await backend.list_runs(
        limit=params.limit,
        starting_after=params.starting_after,
        scenario_id=params.scenario_id,
        state=params.state,
    )


async def score_run(backend: Backend, params: RunIdInput) -> ScenarioRunView:
    return await backend.score_run(params.run_id)


async def complete_run(backend: Backend, params: RunIdInput) -> ScenarioRunView:
    return await backend.complete_run(params.run_id)


async def cancel_run(backend: Backend, params: RunIdInput) -> ScenarioRunView:
    return await backend.cancel_run(params.run_id)


async def execute_on_devbox(backend: Backend, params: ExecuteInput) -> ExecutionView:
    return await backend.execute(
        params.devbox_id,
        params.command,
        timeout_seconds=params.timeout_seconds,
        working_directory=params.working_directory,
    )


async def read_devbox_file(backend: Backend, params: ReadFileInput) -> FileContents:
    contents = await backend.read_file(params.devbox_id, params.file_path)
    return FileContents(file_path=params.file_path, contents=contents)


async def write_devbox_file(backend: Backend, params: WriteFileInput) -> FileWritten:
    await backend.write_file(params.devbox_id, params.file_path, params.contents)
    return FileWritten(file_path=params.file_path, bytes_written=len(params.contents.encode("utf-8")))


# --- the catalogue -------------------------------------------------------------------------------

Handler = Callable[[Backend, Any], Awaitable[BaseModel]]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    handler: Handler
    annotations: ToolAnnotations
    authoring: bool = False  # hidden from solver sessions


def _hints(*, read_only: bool = False, destructive: bool = False, idempotent: bool = False) -> ToolAnnotations:
    # openWorldHint is false: the local engine touches nothing outside this machine.
    return ToolAnnotations(
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=False,
    )


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "create_scenario",
        "Create scenario",
        "Create a scenario from Runloop's scenario create body: `name`, `input_context.problem_statement`, "
        "`scoring_contract.scoring_function_parameters` (each {name, weight > 0, scorer}; scorer types "
        "bash_script_scorer, command_scorer, python_script_scorer, test_based_scorer), optional "
        "`environment_parameters` {snapshot_id | blueprint_id, working_directory}, `reference_output`, `metadata`. "
        "Weights are normalised to sum 1.0.",
        ScenarioCreateParameters,
        ScenarioView,
        create_scenario,
        _hints(),
        authoring=True,
    ),
    ToolSpec(
        "get_scenario",
        "Get scenario",
        "Get a scenario by id: its problem statement, environment and scoring contract.",
        ScenarioIdInput,
        ScenarioView,
        get_scenario,
        _hints(read_only=True, idempotent=True),
    ),
    ToolSpec(
        "list_scenarios",
        "List scenarios",
        "List scenarios, newest first; page with `starting_after` set to the last id while `has_more`.",
        ListScenariosInput,
        ScenarioListView,
        list_scenarios,
        _hints(read_only=True, idempotent=True),
    ),
    ToolSpec(
        "create_blueprint",
        "Create blueprint",
        "Build a reusable environment: `system_setup_commands` run once, with network, in a fresh devbox; "
        "the result is cached as a read-only layer that devboxes and scenarios name by `blueprint_id`. "
        "Waits for the build; check `status` (build_complete or failed with `failure_reason`).",
        BlueprintCreateParameters,
        BlueprintView,
        create_blueprint,
        _hints(),
        authoring=True,
    ),
    ToolSpec(
        "create_devbox",
        "Create devbox",
        "Start a sandboxed Linux devbox from a blueprint or snapshot (default: Python 3 with pip and pytest). "
        "Work happens in /home/user. No network unless `launch_parameters.network` is true.",
        DevboxCreateParameters,
        DevboxView,
        create_devbox,
        _hints(),
        authoring=True,
    ),
    ToolSpec(
        "get_devbox",
        "Get devbox",
        "Get a devbox's status (running, shutdown, failure with failure_reason) and state transitions.",
        DevboxIdInput,
        DevboxView,
        get_devbox,
        _hints(read_only=True, idempotent=True),
    ),
    ToolSpec(
        "shutdown_devbox",
        "Shut down devbox",
        "Stop a devbox: every process in it is killed and its disk changes are discarded (snapshot first to keep "
        "them). A run's devbox is shut down by complete_run or cancel_run instead.",
        DevboxIdInput,
        DevboxView,
        shutdown_devbox,
        _hints(destructive=True, idempotent=True),
        authoring=True,
    ),
    ToolSpec(
        "snapshot_devbox",
        "Snapshot devbox disk",
        "Freeze a running devbox's disk changes into a snapshot; scenarios use it as `environment_parameters."
        "snapshot_id`. The devbox keeps running.",
        SnapshotDevboxInput,
        DevboxSnapshotView,
        snapshot_devbox,
        _hints(),
        authoring=True,
    ),
    ToolSpec(
        "start_run",
        "Start scenario run",
        "Start a run of a scenario: provisions its devbox and returns the run in state `running`. Read the task "
        "from the resource scenario://{scenario_id}/problem_statement, work in the run's `devbox_id`, then call "
        "score_run.",
        StartRunInput,
        ScenarioRunView,
        start_run,
        _hints(),
    ),
    ToolSpec(
        "get_run",
        "Get scenario run",
        "Get a run's state (running, scoring, scored, completed, canceled, failed, timeout) and score.",
        RunIdInput,
        ScenarioRunView,
        get_run,
        _hints(read_only=True, idempotent=True),
    ),
    ToolSpec(
        "list_runs",
        "List scenario runs",
        "List runs, newest first, optionally of one scenario or in one state.",
        ListRunsInput,
        ScenarioRunListView,
        list_runs,
        _hints(read_only=True, idempotent=True),
    ),
    ToolSpec(
        "score_run",
        "Score scenario run",
        "Score the run's devbox now. Returns at once in state `scoring`; poll get_run until `scored` "
        "(or `failed`). Stops the devbox's processes first. A scored run may keep working and be scored again.",
        RunIdInput,
        ScenarioRunView,
        score_run,
        _hints(),
    ),
    ToolSpec(
        "complete_run",
        "Complete scenario run",
        "Finish a run (usually after `scored`): its devbox is shut down and the score is final.",
        RunIdInput,
        ScenarioRunView,
        complete_run,
        _hints(destructive=True),
    ),
    ToolSpec(
        "cancel_run",
        "Cancel scenario run",
        "Abandon a run: its devbox is shut down and the run ends `canceled`.",
        RunIdInput,
        ScenarioRunView,
        cancel_run,
        _hints(destructive=True),
    ),
    ToolSpec(
        "execute_on_devbox",
        "Run a command on a devbox",
        "Run a bash command in a devbox and wait for it: returns exit_status, stdout and stderr (each capped at "
        "64 KiB inline; *_truncated says so). Background processes (`cmd &`) keep running for later commands. "
        "Killed after timeout_seconds (default 120) with exit_status 124.",
        ExecuteInput,
        ExecutionView,
        execute_on_devbox,
        _hints(),
    ),
    ToolSpec(
        "read_devbox_file",
        "Read a devbox file",
        "Read a UTF-8 text file from a devbox, by path relative to /home/user.",
        ReadFileInput,
        FileContents,
        read_devbox_file,
        _hints(read_only=True, idempotent=True),
    ),
    ToolSpec(
        "write_devbox_file",
        "Write a devbox file",
        "Write (create or replace) a UTF-8 text file in a devbox, by path relative to /home/user; parent "
        "directories are created.",
        WriteFileInput,
        FileWritten,
        write_devbox_file,
        _hints(idempotent=True),
    ),
)
