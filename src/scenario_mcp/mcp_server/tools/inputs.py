"""The tools' pydantic input models and the result models that are not Runloop views.

Field descriptions here are what an MCP client reads in each tool's input schema.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ...conventions import (
    DEFAULT_EXEC_TIMEOUT,
    DEFAULT_LIST_LIMIT,
    HOME,
    MAX_COMMIT_MESSAGE,
    MAX_EXEC_TIMEOUT,
    MAX_LIST_LIMIT,
    SHELL_NAME_PATTERN,
)
from ...models import (
    BlueprintCreateParameters,
    DevboxStatus,
    ExecutionView,
    ScenarioRunState,
    ScenarioRunView,
    ScenarioUpdateParameters,
    StartBenchmarkRunParameters,
    ValidationType,
)

MAX_WAIT_SECONDS = 3600


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


_STARTING_AFTER = "Cursor: the id of the last item of the previous page (pass it while `has_more` is true)."
_LIMIT = f"Page size (1-{MAX_LIST_LIMIT})."


# --- scenarios ------------------------------------------------------------------------------------


class ScenarioIdInput(_Input):
    scenario_id: str = Field(description="The scenario's id (scn_...).")


class UpdateScenarioInput(ScenarioUpdateParameters):
    scenario_id: str = Field(description="The scenario to update (scn_...).")


class ListScenariosInput(_Input):
    name: str | None = Field(default=None, description="Only scenarios with exactly this name.")
    limit: int = Field(default=DEFAULT_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT, description=_LIMIT)
    starting_after: str | None = Field(default=None, description=_STARTING_AFTER)
    benchmark_id: str | None = Field(default=None, description="Only scenarios of this benchmark (bmd_...).")
    validation_type: ValidationType | None = Field(
        default=None, description="Only scenarios with this validation type."
    )


# --- runs -----------------------------------------------------------------------------------------


class RunIdInput(_Input):
    run_id: str = Field(description="The scenario run's id (scr_...).")


class StartRunInput(_Input):
    scenario_id: str = Field(description="The scenario to run (scn_...).")
    run_name: str | None = Field(default=None, description="Display name of the run.")
    metadata: dict[str, str] | None = Field(default=None, description="Labels to attach to the run.")


class ListRunsInput(_Input):
    scenario_id: str | None = Field(default=None, description="Only runs of this scenario.")
    state: ScenarioRunState | None = Field(default=None, description="Only runs in this state.")
    benchmark_run_id: str | None = Field(default=None, description="Only runs of this benchmark run.")
    limit: int = Field(default=DEFAULT_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT, description=_LIMIT)
    starting_after: str | None = Field(default=None, description=_STARTING_AFTER)
    name: str | None = Field(default=None, description="Only runs with exactly this name.")


class ScoreRunInput(_Input):
    run_id: str = Field(description="The run to score (scr_...); it must be `running` or `scored`.")
    wait: bool = Field(
        default=False,
        description="Wait until scoring ends (`scored` or `failed`), reporting progress, instead of returning "
        "at once in `scoring`.",
    )
    timeout_seconds: float = Field(
        default=600,
        gt=0,
        le=MAX_WAIT_SECONDS,
        description="With wait: stop waiting after this long and return the run as it is (scoring goes on).",
    )


class RunScenarioInput(_Input):
    scenario_id: str = Field(description="The scenario to run (scn_...).")
    command: str | None = Field(
        default=None,
        min_length=1,
        description="A bash command that acts as the agent: it runs in the run's devbox, in the scenario's working "
        "directory, before scoring (e.g. `python solve.py` or `git apply fix.patch`). Omit it to score the "
        "untouched environment.",
    )
    command_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        le=MAX_EXEC_TIMEOUT,
        description=f"Kill the command after this long; default {DEFAULT_EXEC_TIMEOUT:g}.",
    )
    scoring_timeout_seconds: float = Field(
        default=1800, gt=0, le=2 * MAX_WAIT_SECONDS, description="Give up waiting for the score after this long."
    )
    run_name: str | None = Field(default=None, description="Display name of the run.")
    metadata: dict[str, str] | None = Field(default=None, description="Labels to attach to the run.")


class RunScenarioResult(BaseModel):
    run: ScenarioRunView = Field(description="The run at the end: `completed` with its score, or `failed`.")
    execution: ExecutionView | None = Field(default=None, description="The command's result, when one was given.")
    score: float | None = Field(default=None, description="The run's final score in [0, 1], when it was scored.")


# --- blueprints and devboxes ----------------------------------------------------------------------


class DevboxIdInput(_Input):
    devbox_id: str = Field(description="The devbox's id (dbx_...).")


class ListDevboxesInput(_Input):
    status: DevboxStatus | None = Field(default=None, description="Only devboxes in this status.")
    limit: int = Field(default=DEFAULT_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT, description=_LIMIT)
    starting_after: str | None = Field(default=None, description=_STARTING_AFTER)


class CreateBlueprintInput(BlueprintCreateParameters):
    build_context_path: str | None = Field(
        default=None,
        description="A directory on the server's machine to use as the Dockerfile's build context (what COPY "
        "and ADD read), as an absolute path. Only under the directories the server allows (--allow-dir).",
    )


class BlueprintIdInput(_Input):
    blueprint_id: str = Field(description="The blueprint's id (bpt_...).")


class ListBlueprintsInput(_Input):
    limit: int = Field(default=DEFAULT_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT, description=_LIMIT)
    starting_after: str | None = Field(default=None, description=_STARTING_AFTER)
    name: str | None = Field(default=None, description="Only blueprints with exactly this name.")


class SnapshotDevboxInput(_Input):
    devbox_id: str = Field(description="The running devbox to snapshot (dbx_...).")
    name: str | None = Field(default=None, description="A name for the snapshot.")
    metadata: dict[str, str] | None = Field(default=None, description="Labels to attach to the snapshot.")
    commit_message: str | None = Field(
        default=None, max_length=MAX_COMMIT_MESSAGE, description="What this snapshot holds."
    )


# --- execution ------------------------------------------------------------------------------------


_DEVBOX = "The devbox to run in (dbx_...); a run's devbox is `devbox_id` in get_run/start_run."
_WORKDIR = f"Directory to run in; default {HOME}. Relative paths are under {HOME}."
_SHELL = (
    "Optional named shell: commands with the same shell_name run one at a time, in order, like a terminal "
    "(the working directory and exported variables carry over)."
)


class ExecuteInput(_Input):
    devbox_id: str = Field(description=_DEVBOX)
    command: str = Field(min_length=1, description="A bash command line, e.g. `pytest -q` or `cat setup.py`.")
    timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        le=MAX_EXEC_TIMEOUT,
        description=f"Kill the command (and its process group) after this long; default {DEFAULT_EXEC_TIMEOUT:g}.",
    )
    working_directory: str | None = Field(default=None, description=_WORKDIR)
    shell_name: str | None = Field(default=None, pattern=f"^{SHELL_NAME_PATTERN}$", description=_SHELL)


class ExecuteAsyncInput(ExecuteInput):
    attach_stdin: bool = Field(
        default=False, description="Keep the command's stdin open for send_execution_stdin (e.g. an interactive REPL)."
    )


class ExecutionIdInput(_Input):
    devbox_id: str = Field(description="The devbox the execution runs in (dbx_...).")
    execution_id: str = Field(description="The execution's id (exe_...), from execute_async.")


class GetExecutionInput(ExecutionIdInput):
    wait_seconds: float = Field(
        default=0,
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="Wait up to this long for the execution to complete (0: return its status at once).",
    )


class SendStdinInput(ExecutionIdInput):
    text: str | None = Field(default=None, description="Text to write to the command's stdin (add `\\n` for Enter).")
    signal: Literal["EOF", "INTERRUPT"] | None = Field(
        default=None, description="After the text: EOF closes stdin; INTERRUPT sends Ctrl-C (SIGINT) to the command."
    )


class ExecutionOutputInput(ExecutionIdInput):
    stream: Literal["stdout", "stderr"] = Field(default="stdout", description="Which stream to read.")
    offset: int = Field(default=0, ge=0, description="Byte offset to read from; pass the previous `next_offset`.")


# --- files ----------------------------------------------------------------------------------------


class ReadFileInput(_Input):
    devbox_id: str = Field(description="The devbox (dbx_...).")
    file_path: str = Field(description="Path relative to /home/user (or absolute inside it).")


class WriteFileInput(_Input):
    devbox_id: str = Field(description="The devbox (dbx_...).")
    file_path: str = Field(description="Path relative to /home/user (or absolute inside it); parents are created.")
    contents: str = Field(description="The whole new text of the file (UTF-8).")


class ListFilesInput(_Input):
    devbox_id: str = Field(description="The devbox (dbx_...).")
    path: str = Field(default=".", description="Directory relative to /home/user (or absolute inside it).")


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


class RunBenchmarkInput(StartBenchmarkRunParameters):
    pass
