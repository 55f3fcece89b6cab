"""The MCP tools: one pydantic input model and one pure async function per tool.

Each function takes the Backend and its input model (and, for the long ones, a progress reporter)
and returns a Runloop-shaped view; server.py registers them. Tests call these functions directly
as well as through a real MCP client. A solver session hands them a SolverBackend (access.py), so
the functions themselves know nothing of roles.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import anyio
from mcp.types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from ..backend import Backend, BackendError, OperationTimeoutError
from ..models import (
    TERMINAL_RUN_STATES,
    BenchmarkCreateParameters,
    BenchmarkRunView,
    BenchmarkView,
    BlueprintCreateParameters,
    BlueprintListView,
    BlueprintView,
    DevboxCreateParameters,
    DevboxListView,
    DevboxSnapshotView,
    DevboxStatus,
    DevboxView,
    ExecutionOutputChunk,
    ExecutionView,
    ScenarioCreateParameters,
    ScenarioListView,
    ScenarioRunListView,
    ScenarioRunState,
    ScenarioRunView,
    ScenarioUpdateParameters,
    ScenarioValidationView,
    ScenarioView,
    StartBenchmarkRunParameters,
    StartScenarioRunParameters,
)

POLL_INTERVAL = 0.1
MAX_WAIT_SECONDS = 3600


class Progress(Protocol):
    async def __call__(self, done: float, total: float | None = None, message: str | None = None) -> None: ...


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


_STARTING_AFTER = "Cursor: the id of the last item of the previous page (pass it while `has_more` is true)."
_LIMIT = "Page size (1-5000)."


# --- input models ---------------------------------------------------------------------------------


class ScenarioIdInput(_Input):
    scenario_id: str = Field(description="The scenario's id (scn_...).")


class UpdateScenarioInput(ScenarioUpdateParameters):
    scenario_id: str = Field(description="The scenario to update (scn_...).")


class ListScenariosInput(_Input):
    name: str | None = Field(default=None, description="Only scenarios with exactly this name.")
    limit: int = Field(default=20, ge=1, le=5000, description=_LIMIT)
    starting_after: str | None = Field(default=None, description=_STARTING_AFTER)


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
    limit: int = Field(default=20, ge=1, le=5000, description=_LIMIT)
    starting_after: str | None = Field(default=None, description=_STARTING_AFTER)


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
        default=None, gt=0, le=MAX_WAIT_SECONDS, description="Kill the command after this long; default 120."
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


class DevboxIdInput(_Input):
    devbox_id: str = Field(description="The devbox's id (dbx_...).")


class ListDevboxesInput(_Input):
    status: DevboxStatus | None = Field(default=None, description="Only devboxes in this status.")
    limit: int = Field(default=20, ge=1, le=5000, description=_LIMIT)
    starting_after: str | None = Field(default=None, description=_STARTING_AFTER)


class ListBlueprintsInput(_Input):
    limit: int = Field(default=20, ge=1, le=5000, description=_LIMIT)
    starting_after: str | None = Field(default=None, description=_STARTING_AFTER)


class SnapshotDevboxInput(_Input):
    devbox_id: str = Field(description="The running devbox to snapshot (dbx_...).")
    name: str | None = Field(default=None, description="A name for the snapshot.")
    metadata: dict[str, str] | None = Field(default=None, description="Labels to attach to the snapshot.")
    commit_message: str | None = Field(default=None, max_length=1000, description="What this snapshot holds.")


_DEVBOX = "The devbox to run in (dbx_...); a run's devbox is `devbox_id` in get_run/start_run."
_WORKDIR = "Directory to run in; default /home/user. Relative paths are under /home/user."
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
        le=MAX_WAIT_SECONDS,
        description="Kill the command (and its process group) after this long; default 120.",
    )
    working_directory: str | None = Field(default=None, description=_WORKDIR)
    shell_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description=_SHELL)


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


class RunBenchmarkInput(StartBenchmarkRunParameters):
    pass


# --- tool functions: scenarios ---------------------------------------------------------------------


async def create_scenario(backend: Backend, params: ScenarioCreateParameters) -> ScenarioView:
    return await backend.create_scenario(params)


async def update_scenario(backend: Backend, params: UpdateScenarioInput) -> ScenarioView:
    fields = {name: getattr(params, name) for name in params.model_fields_set if name != "scenario_id"}
    return await backend.update_scenario(params.scenario_id, ScenarioUpdateParameters(**fields))


async def get_scenario(backend: Backend, params: ScenarioIdInput) -> ScenarioView:
    return await backend.get_scenario(params.scenario_id)


async def list_scenarios(backend: Backend, params: ListScenariosInput) -> ScenarioListView:
    return await backend.list_scenarios(limit=params.limit, starting_after=params.starting_after, name=params.name)


async def archive_scenario(backend: Backend, params: ScenarioIdInput) -> ScenarioView:
    return await backend.archive_scenario(params.scenario_id)


async def unarchive_scenario(backend: Backend, params: ScenarioIdInput) -> ScenarioView:
    return await backend.unarchive_scenario(params.scenario_id)


async def validate_scenario(backend: Backend, params: ScenarioIdInput) -> ScenarioValidationView:
    return await backend.validate_scenario(params.scenario_id)


# --- blueprints and devboxes -----------------------------------------------------------------------


async def create_blueprint(backend: Backend, params: BlueprintCreateParameters) -> BlueprintView:
    return await backend.create_blueprint(params)


async def list_blueprints(backend: Backend, params: ListBlueprintsInput) -> BlueprintListView:
    return await backend.list_blueprints(limit=params.limit, starting_after=params.starting_after)


async def create_devbox(backend: Backend, params: DevboxCreateParameters) -> DevboxView:
    return await backend.create_devbox(params)


async def get_devbox(backend: Backend, params: DevboxIdInput) -> DevboxView:
    return await backend.get_devbox(params.devbox_id)


async def list_devboxes(backend: Backend, params: ListDevboxesInput) -> DevboxListView:
    status = params.status.value if params.status else None
    return await backend.list_devboxes(limit=params.limit, starting_after=params.starting_after, status=status)


async def shutdown_devbox(backend: Backend, params: DevboxIdInput) -> DevboxView:
    return await backend.shutdown_devbox(params.devbox_id)


async def suspend_devbox(backend: Backend, params: DevboxIdInput) -> DevboxView:
    return await backend.suspend_devbox(params.devbox_id)


async def resume_devbox(backend: Backend, params: DevboxIdInput) -> DevboxView:
    return await backend.resume_devbox(params.devbox_id)


async def snapshot_devbox(backend: Backend, params: SnapshotDevboxInput) -> DevboxSnapshotView:
    return await backend.snapshot_disk(
        params.devbox_id, name=params.name, metadata=params.metadata, commit_message=params.commit_message
    )


# --- execution -------------------------------------------------------------------------------------


async def execute_on_devbox(backend: Backend, params: ExecuteInput) -> ExecutionView:
    return await backend.execute(
        params.devbox_id,
        params.command,
        timeout_seconds=params.timeout_seconds,
        working_directory=params.working_directory,
        shell_name=params.shell_name,
    )


async def execute_async(backend: Backend, params: ExecuteAsyncInput) -> ExecutionView:
    return await backend.execute_async(
        params.devbox_id,
        params.command,
        timeout_seconds=params.timeout_seconds,
        working_directory=params.working_directory,
        shell_name=params.shell_name,
        attach_stdin=params.attach_stdin,
    )


async def get_execution(backend: Backend, params: GetExecutionInput) -> ExecutionView:
    if params.wait_seconds <= 0:
        return await backend.get_execution(params.devbox_id, params.execution_id)
    try:
        return await backend.wait_for_execution(
            params.devbox_id, params.execution_id, statuses=["completed"], timeout_seconds=params.wait_seconds
        )
    except OperationTimeoutError:
        # Still running is an answer, not an error: the caller sees `running` and may wait again.
        return await backend.get_execution(params.devbox_id, params.execution_id)


async def kill_execution(backend: Backend, params: ExecutionIdInput) -> ExecutionView:
    return await backend.kill_execution(params.devbox_id, params.execution_id)


async def send_execution_stdin(backend: Backend, params: SendStdinInput) -> ExecutionView:
    return await backend.send_stdin(params.devbox_id, params.execution_id, text=params.text, signal=params.signal)


async def read_execution_output(backend: Backend, params: ExecutionOutputInput) -> ExecutionOutputChunk:
    return await backend.execution_output(
        params.devbox_id, params.execution_id, stream=params.stream, offset=params.offset
    )


# --- files -----------------------------------------------------------------------------------------


async def read_devbox_file(backend: Backend, params: ReadFileInput) -> FileContents:
    contents = await backend.read_file(params.devbox_id, params.file_path)
    return FileContents(file_path=params.file_path, contents=contents)


async def write_devbox_file(backend: Backend, params: WriteFileInput) -> FileWritten:
    await backend.write_file(params.devbox_id, params.file_path, params.contents)
    return FileWritten(file_path=params.file_path, bytes_written=len(params.contents.encode("utf-8")))


async def list_devbox_files(backend: Backend, params: ListFilesInput) -> DirectoryListing:
    entries = await backend.list_files(params.devbox_id, params.path)
    return DirectoryListing(devbox_id=params.devbox_id, path=params.path, entries=entries)


# --- runs ------------------------------------------------------------------------------------------


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
        state=params.state.value if params.state else None,
        benchmark_run_id=params.benchmark_run_id,
    )


async def wait_until_scored(
    backend: Backend, run: ScenarioRunView, progress: Progress, *, timeout_seconds: float, step: float = 0
) -> ScenarioRunView:
    """Poll a `scoring` run until it is not, reporting elapsed time; returns it as it is at the bound."""
    started = anyio.current_time()
    reported = 0  # progress must increase: the first report comes after a whole second
    with anyio.move_on_after(timeout_seconds):
        while run.state == ScenarioRunState.SCORING:
            await anyio.sleep(POLL_INTERVAL)
            run = await backend.get_run(run.id)
            elapsed = int(anyio.current_time() - started)
            if elapsed > reported:
                reported = elapsed
                await progress(step + elapsed / (elapsed + 30), None, f"scoring {run.id}: {elapsed} s")
    return run


async def score_run(backend: Backend, params: ScoreRunInput, progress: Progress) -> ScenarioRunView:
    run = await backend.score_run(params.run_id)
    if not params.wait:
        return run
    await progress(0, 1, f"scoring {run.id}")
    run = await wait_until_scored(backend, run, progress, timeout_seconds=params.timeout_seconds)
    if run.state != ScenarioRunState.SCORING:
        await progress(1, 1, f"{run.id} is {run.state.value}")
    return run


async def complete_run(backend: Backend, params: RunIdInput) -> ScenarioRunView:
    return await backend.complete_run(params.run_id)


async def cancel_run(backend: Backend, params: RunIdInput) -> ScenarioRunView:
    return await backend.cancel_run(params.run_id)


RUN_SCENARIO_STEPS = 5


async def run_scenario(backend: Backend, params: RunScenarioInput, progress: Progress) -> RunScenarioResult:
    """start -> (command) -> score -> wait for `scored` -> complete, one progress step each.

    Cancelled or failing part-way, the run is canceled so no devbox is left behind.
    """
    total = RUN_SCENARIO_STEPS
    scenario = await backend.get_scenario(params.scenario_id)
    run = await backend.start_run(
        StartScenarioRunParameters(scenario_id=scenario.id, run_name=params.run_name, metadata=params.metadata)
    )
    await progress(1, total, f"started run {run.id} on devbox {run.devbox_id}")
    execution: ExecutionView | None = None
    finished = False
    try:
        if params.command is not None:
            execution = await backend.execute(
                run.devbox_id,
                params.command,
                timeout_seconds=params.command_timeout_seconds,
                working_directory=scenario.working_directory,
            )
            await progress(2, total, f"command exited {execution.exit_status}")
        else:
            await progress(2, total, "no command: scoring the untouched environment")
        run = await backend.score_run(run.id)
        await progress(3, total, f"scoring {run.id}")
        run = await wait_until_scored(backend, run, progress, timeout_seconds=params.scoring_timeout_seconds, step=3)
        if run.state == ScenarioRunState.SCORING:
            raise OperationTimeoutError(
                f"run {run.id} was still scoring after {params.scoring_timeout_seconds:g} s; it was canceled. "
                "Raise scoring_timeout_seconds, or drive the run with start_run/score_run/get_run yourself"
            )
        score = run.scoring_contract_result.score if run.scoring_contract_result else None
        scored = f" with score {score}" if score is not None else ""
        await progress(4, total, f"{run.id} is {run.state.value}{scored}")
        if run.state == ScenarioRunState.SCORED:
            run = await backend.complete_run(run.id)
            await progress(5, total, f"completed {run.id}")
        finished = True
        return RunScenarioResult(run=run, execution=execution, score=score)
    finally:
        if not finished:
            await _cancel_quietly(backend, run.id)


async def _cancel_quietly(backend: Backend, run_id: str) -> None:
    with anyio.CancelScope(shield=True):
        try:
            current = await backend.get_run(run_id)
            if current.state not in TERMINAL_RUN_STATES:
                await backend.cancel_run(run_id)
        except BackendError:
            pass


# --- benchmarks ------------------------------------------------------------------------------------


async def create_benchmark(backend: Backend, params: BenchmarkCreateParameters) -> BenchmarkView:
    return await backend.create_benchmark(params)


async def run_benchmark(backend: Backend, params: RunBenchmarkInput) -> BenchmarkRunView:
    return await backend.start_benchmark_run(
        StartBenchmarkRunParameters(
            benchmark_id=params.benchmark_id, run_name=params.run_name, metadata=params.metadata
        )
    )


# --- the catalogue ---------------------------------------------------------------------------------

Handler = Callable[..., Awaitable[BaseModel]]


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
    pinned: bool = True  # offered to a solver pinned to one run (--run)
    progress: bool = False  # the handler takes a Progress reporter as its third argument
    heartbeat: bool = False  # may take long: the server reports elapsed time while it runs
    lists_change: bool = False  # creates something that resources/list shows


def _hints(*, read_only: bool = False, destructive: bool = False, idempotent: bool = False) -> ToolAnnotations:
    # openWorldHint is false: the local engine touches nothing outside this machine (build_server
    # sets it true over a remote backend).
    return ToolAnnotations(
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=False,
    )


READ = _hints(read_only=True, idempotent=True)

TOOLS: tuple[ToolSpec, ...] = (
    # --- scenarios
    ToolSpec(
        "create_scenario",
        "Create scenario",
        "Create a scenario from Runloop's scenario create body: `name`, `input_context.problem_statement`, "
        "`scoring_contract.scoring_function_parameters` (each {name, weight > 0, scorer}; scorer types "
        "bash_script_scorer and python_script_scorer print a score in [0, 1] last, command_scorer scores its exit "
        "status, test_based_scorer writes `test_files` and runs `test_command`), optional `environment_parameters` "
        "{snapshot_id | blueprint_id, working_directory}, `reference_output` (a bash command that solves the task; "
        "validate_scenario checks it), `metadata`. Weights are normalised to sum 1.0.",
        ScenarioCreateParameters,
        ScenarioView,
        create_scenario,
        _hints(),
        authoring=True,
        lists_change=True,
    ),
    ToolSpec(
        "update_scenario",
        "Update scenario",
        "Change fields of a scenario: give `scenario_id` and only the fields to change (same shapes as "
        'create_scenario); omitted or null keeps a field, "" / [] / {} clears it. Runs already started keep '
        "the scenario they started with.",
        UpdateScenarioInput,
        ScenarioView,
        update_scenario,
        _hints(idempotent=True),
        authoring=True,
    ),
    ToolSpec(
        "get_scenario",
        "Get scenario",
        "Get a scenario by id: its problem statement, environment and scoring contract. (Solvers see scorer names, "
        "types and weights, not their contents or the reference output.)",
        ScenarioIdInput,
        ScenarioView,
        get_scenario,
        READ,
    ),
    ToolSpec(
        "list_scenarios",
        "List scenarios",
        "List scenarios, newest first, optionally only those with an exact `name`; page with `starting_after` set "
        "to the last id while `has_more` is true.",
        ListScenariosInput,
        ScenarioListView,
        list_scenarios,
        READ,
    ),
    ToolSpec(
        "archive_scenario",
        "Archive scenario",
        "Archive a scenario: it stays readable and its runs keep their scores, but no new run can start until "
        "unarchive_scenario.",
        ScenarioIdInput,
        ScenarioView,
        archive_scenario,
        _hints(destructive=True, idempotent=True),
        authoring=True,
    ),
    ToolSpec(
        "unarchive_scenario",
        "Unarchive scenario",
        "Make an archived scenario active again so runs can start.",
        ScenarioIdInput,
        ScenarioView,
        unarchive_scenario,
        _hints(idempotent=True),
        authoring=True,
    ),
    ToolSpec(
        "validate_scenario",
        "Validate scenario",
        "Prove a scenario's scorers right: apply its reference_output on a fresh devbox (must score 1.0) and score "
        "the untouched environment (must score below 1.0). Returns `valid`, a `verdict` and each side's per-scorer "
        "results; fix the scorers or reference with update_scenario and validate again. Takes as long as two "
        "scorings.",
        ScenarioIdInput,
        ScenarioValidationView,
        validate_scenario,
        _hints(read_only=True, idempotent=True),
        authoring=True,
        heartbeat=True,
    ),
    # --- blueprints and devboxes
    ToolSpec(
        "create_blueprint",
        "Create blueprint",
        "Build a reusable environment: `system_setup_commands` run once, with network, in a fresh devbox; the result "
        "is cached as a read-only layer that devboxes and scenarios name by `blueprint_id`. Waits for the build; "
        "check `status` (build_complete, or failed with `failure_reason` and `build_log`).",
        BlueprintCreateParameters,
        BlueprintView,
        create_blueprint,
        _hints(),
        authoring=True,
        heartbeat=True,
    ),
    ToolSpec(
        "list_blueprints",
        "List blueprints",
        "List built environments (blueprints), newest first.",
        ListBlueprintsInput,
        BlueprintListView,
        list_blueprints,
        READ,
        authoring=True,
    ),
    ToolSpec(
        "create_devbox",
        "Create devbox",
        "Start a sandboxed Linux devbox from a blueprint or snapshot (default: Python 3 with pip and pytest). Work "
        "happens in /home/user. No network unless `launch_parameters.network` is true. Set up an environment here, "
        "then snapshot_devbox it for a scenario.",
        DevboxCreateParameters,
        DevboxView,
        create_devbox,
        _hints(),
        authoring=True,
        heartbeat=True,
    ),
    ToolSpec(
        "get_devbox",
        "Get devbox",
        "Get a devbox's status (running, shutdown, failure with failure_reason) and state transitions.",
        DevboxIdInput,
        DevboxView,
        get_devbox,
        READ,
    ),
    ToolSpec(
        "list_devboxes",
        "List devboxes",
        "List devboxes, newest first, optionally in one status (e.g. running).",
        ListDevboxesInput,
        DevboxListView,
        list_devboxes,
        READ,
        authoring=True,
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
        "suspend_devbox",
        "Suspend devbox",
        "Freeze every process of a running devbox (memory and disk are kept) until resume_devbox; a suspended "
        "devbox runs no commands.",
        DevboxIdInput,
        DevboxView,
        suspend_devbox,
        _hints(),
        authoring=True,
    ),
    ToolSpec(
        "resume_devbox",
        "Resume devbox",
        "Thaw a suspended devbox: its processes carry on where they stopped.",
        DevboxIdInput,
        DevboxView,
        resume_devbox,
        _hints(),
        authoring=True,
    ),
    ToolSpec(
        "snapshot_devbox",
        "Snapshot devbox disk",
        "Freeze a running devbox's disk changes into a snapshot; scenarios use it as "
        "`environment_parameters.snapshot_id`. The devbox keeps running.",
        SnapshotDevboxInput,
        DevboxSnapshotView,
        snapshot_devbox,
        _hints(),
        authoring=True,
        heartbeat=True,
    ),
    # --- execution
    ToolSpec(
        "execute_on_devbox",
        "Run a command on a devbox",
        "Run a bash command in a devbox and wait for it: returns exit_status, stdout and stderr (each capped at "
        "64 KiB inline; *_truncated says so, and read_execution_output pages the rest). Background processes "
        "(`cmd &`) keep running for later commands. Killed after timeout_seconds (default 120) with exit_status "
        "124. For long or interactive commands use execute_async.",
        ExecuteInput,
        ExecutionView,
        execute_on_devbox,
        _hints(),
        heartbeat=True,
    ),
    ToolSpec(
        "execute_async",
        "Start a command on a devbox",
        "Start a bash command in a devbox and return at once with its `execution_id` (status running). Then "
        "get_execution (optionally waiting), read_execution_output, send_execution_stdin (with attach_stdin) or "
        "kill_execution.",
        ExecuteAsyncInput,
        ExecutionView,
        execute_async,
        _hints(),
    ),
    ToolSpec(
        "get_execution",
        "Get execution",
        "Get an execution's status and, once completed, its exit_status and output. With wait_seconds, wait up to "
        "that long for it to complete first (it is returned still `running` if it has not).",
        GetExecutionInput,
        ExecutionView,
        get_execution,
        READ,
        heartbeat=True,
    ),
    ToolSpec(
        "read_execution_output",
        "Read execution output",
        "Read a running or completed execution's stdout or stderr from a byte offset (up to 64 KiB per call); call "
        "again with `next_offset` until `done`.",
        ExecutionOutputInput,
        ExecutionOutputChunk,
        read_execution_output,
        READ,
    ),
    ToolSpec(
        "send_execution_stdin",
        "Send input to an execution",
        "Write text to a running execution's stdin (it must have been started by execute_async with "
        "attach_stdin=true), then optionally close stdin (EOF) or interrupt it (Ctrl-C).",
        SendStdinInput,
        ExecutionView,
        send_execution_stdin,
        _hints(),
    ),
    ToolSpec(
        "kill_execution",
        "Kill execution",
        "Kill a running execution and its process group; it completes with exit_status 137.",
        ExecutionIdInput,
        ExecutionView,
        kill_execution,
        _hints(destructive=True, idempotent=True),
    ),
    # --- files
    ToolSpec(
        "read_devbox_file",
        "Read a devbox file",
        "Read a UTF-8 text file from a devbox, by path relative to /home/user.",
        ReadFileInput,
        FileContents,
        read_devbox_file,
        READ,
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
    ToolSpec(
        "list_devbox_files",
        "List a devbox directory",
        "List the names in a devbox directory (relative to /home/user; default the home itself); subdirectories "
        "end with `/`.",
        ListFilesInput,
        DirectoryListing,
        list_devbox_files,
        READ,
    ),
    # --- runs
    ToolSpec(
        "start_run",
        "Start scenario run",
        "Start a run of a scenario: provisions its devbox and returns the run in state `running`. Read the task from "
        "the resource scenario://{scenario_id}/problem_statement (or the solve_scenario prompt), work in the run's "
        "`devbox_id`, then call score_run.",
        StartRunInput,
        ScenarioRunView,
        start_run,
        _hints(),
        pinned=False,
        heartbeat=True,
        lists_change=True,
    ),
    ToolSpec(
        "get_run",
        "Get scenario run",
        "Get a run's state (running, scoring, scored, completed, canceled, failed, timeout), its devbox and its "
        "score with each scoring function's result.",
        RunIdInput,
        ScenarioRunView,
        get_run,
        READ,
    ),
    ToolSpec(
        "list_runs",
        "List scenario runs",
        "List runs, newest first, optionally of one scenario, in one state or of one benchmark run; page with "
        "`starting_after`.",
        ListRunsInput,
        ScenarioRunListView,
        list_runs,
        READ,
    ),
    ToolSpec(
        "score_run",
        "Score scenario run",
        "Score the run's devbox now (its processes are stopped first). By default returns at once in state "
        "`scoring`: poll get_run until `scored` (or `failed`). With wait=true it waits, reporting progress, up to "
        "timeout_seconds. A scored run may keep working and be scored again; complete_run makes the score final.",
        ScoreRunInput,
        ScenarioRunView,
        score_run,
        _hints(),
        progress=True,
    ),
    ToolSpec(
        "complete_run",
        "Complete scenario run",
        "Finish a run (usually once `scored`): its devbox is shut down and the score is final.",
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
        "run_scenario",
        "Run a scenario end to end",
        "The whole run in one call: start a run, run `command` (if given) in its devbox's working directory, score, "
        "wait for `scored`, complete. Reports progress at each step and returns the completed run with its score. "
        "Cancelling the call cancels the run.",
        RunScenarioInput,
        RunScenarioResult,
        run_scenario,
        _hints(),
        pinned=False,
        progress=True,
        lists_change=True,
    ),
    # --- benchmarks
    ToolSpec(
        "create_benchmark",
        "Create benchmark",
        "Group scenarios into a benchmark (`name`, `scenario_ids`); run_benchmark starts a run of each.",
        BenchmarkCreateParameters,
        BenchmarkView,
        create_benchmark,
        _hints(),
        authoring=True,
    ),
    ToolSpec(
        "run_benchmark",
        "Run benchmark",
        "Start a benchmark run: one scenario run per scenario of the benchmark, each with its own devbox (see them "
        "with list_runs(benchmark_run_id=...)); score and complete each run as usual.",
        RunBenchmarkInput,
        BenchmarkRunView,
        run_benchmark,
        _hints(),
        authoring=True,
        heartbeat=True,
        lists_change=True,
    ),
)

TOOLS_BY_NAME: dict[str, ToolSpec] = {spec.name: spec for spec in TOOLS}


def solver_tools(*, pinned: bool) -> list[ToolSpec]:
    return [spec for spec in TOOLS if not spec.authoring and (spec.pinned or not pinned)]
