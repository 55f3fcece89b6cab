"""The tool catalogue: every tool, by area, in the order tools/list shows them, with its title,
description, models, handler and annotations; and which of them a solver session is offered."""

from __future__ import annotations

from ...models import (
    BenchmarkCreateParameters,
    BenchmarkRunView,
    BenchmarkView,
    BlueprintBuildLogsListView,
    BlueprintListView,
    BlueprintView,
    DevboxCreateParameters,
    DevboxListView,
    DevboxSnapshotView,
    DevboxView,
    ExecutionOutputChunk,
    ExecutionView,
    ScenarioCreateParameters,
    ScenarioListView,
    ScenarioRunListView,
    ScenarioRunView,
    ScenarioValidationView,
    ScenarioView,
)
from .benchmarks import create_benchmark, run_benchmark
from .devboxes import (
    create_blueprint,
    create_devbox,
    execute_async,
    execute_on_devbox,
    get_blueprint,
    get_blueprint_logs,
    get_devbox,
    get_execution,
    kill_execution,
    list_blueprints,
    list_devbox_files,
    list_devboxes,
    read_devbox_file,
    read_execution_output,
    resume_devbox,
    send_execution_stdin,
    shutdown_devbox,
    snapshot_devbox,
    suspend_devbox,
    write_devbox_file,
)
from .inputs import (
    BlueprintIdInput,
    CreateBlueprintInput,
    DevboxIdInput,
    DirectoryListing,
    ExecuteAsyncInput,
    ExecuteInput,
    ExecutionIdInput,
    ExecutionOutputInput,
    FileContents,
    FileWritten,
    GetExecutionInput,
    ListBlueprintsInput,
    ListDevboxesInput,
    ListFilesInput,
    ListRunsInput,
    ListScenariosInput,
    ReadFileInput,
    RunBenchmarkInput,
    RunIdInput,
    RunScenarioInput,
    RunScenarioResult,
    ScenarioIdInput,
    ScoreRunInput,
    SendStdinInput,
    SnapshotDevboxInput,
    StartRunInput,
    UpdateScenarioInput,
    WriteFileInput,
)
from .runs import cancel_run, complete_run, get_run, list_runs, run_scenario, score_run, start_run
from .scenarios import (
    archive_scenario,
    create_scenario,
    get_scenario,
    list_scenarios,
    unarchive_scenario,
    update_scenario,
    validate_scenario,
)
from .spec import READ, ToolSpec, hints

SCENARIO_TOOLS: tuple[ToolSpec, ...] = (
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
        hints(),
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
        hints(idempotent=True),
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
        hints(destructive=True, idempotent=True),
        authoring=True,
    ),
    ToolSpec(
        "unarchive_scenario",
        "Unarchive scenario",
        "Make an archived scenario active again so runs can start.",
        ScenarioIdInput,
        ScenarioView,
        unarchive_scenario,
        hints(idempotent=True),
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
        hints(read_only=True, idempotent=True),
        authoring=True,
        heartbeat=True,
    ),
)

DEVBOX_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "create_blueprint",
        "Create blueprint",
        "Build a reusable environment, once, with network: from a `dockerfile` (its FROM image from any registry, "
        "its steps; COPY/ADD read `build_context_path`, a directory on the server's machine the server allows), "
        "then `file_mounts` and `system_setup_commands`; or from `system_setup_commands` alone on the default "
        "environment. Answers at once with status `queued`: poll get_blueprint until `build_complete` (then name "
        "it by `blueprint_id` in devboxes and scenarios) or `failed` (see `failure_message`, and get_blueprint_logs: "
        "one entry per step, with its Dockerfile line).",
        CreateBlueprintInput,
        BlueprintView,
        create_blueprint,
        hints(),
        authoring=True,
        host_dirs=True,
    ),
    ToolSpec(
        "get_blueprint",
        "Get blueprint",
        "A blueprint: its build `status` (queued, building, build_complete, failed), `failure_message` and the end "
        "of its build log.",
        BlueprintIdInput,
        BlueprintView,
        get_blueprint,
        READ,
        authoring=True,
    ),
    ToolSpec(
        "get_blueprint_logs",
        "Blueprint build logs",
        "A blueprint's build log: one entry per step (a Dockerfile step with its line, a file mount, a setup "
        "command), with its output; pull progress too.",
        BlueprintIdInput,
        BlueprintBuildLogsListView,
        get_blueprint_logs,
        READ,
        authoring=True,
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
        hints(),
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
        hints(destructive=True, idempotent=True),
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
        hints(),
        authoring=True,
    ),
    ToolSpec(
        "resume_devbox",
        "Resume devbox",
        "Thaw a suspended devbox: its processes carry on where they stopped.",
        DevboxIdInput,
        DevboxView,
        resume_devbox,
        hints(),
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
        hints(),
        authoring=True,
        heartbeat=True,
    ),
)

EXECUTION_TOOLS: tuple[ToolSpec, ...] = (
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
        hints(),
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
        hints(),
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
        hints(),
    ),
    ToolSpec(
        "kill_execution",
        "Kill execution",
        "Kill a running execution and its process group; it completes with exit_status 137.",
        ExecutionIdInput,
        ExecutionView,
        kill_execution,
        hints(destructive=True, idempotent=True),
    ),
)

FILE_TOOLS: tuple[ToolSpec, ...] = (
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
        hints(idempotent=True),
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
)

RUN_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "start_run",
        "Start scenario run",
        "Start a run of a scenario: provisions its devbox and returns the run in state `running`. Read the task from "
        "the resource scenario://{scenario_id}/problem_statement (or the solve_scenario prompt), work in the run's "
        "`devbox_id`, then call score_run.",
        StartRunInput,
        ScenarioRunView,
        start_run,
        hints(),
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
        hints(),
        progress=True,
    ),
    ToolSpec(
        "complete_run",
        "Complete scenario run",
        "Finish a run (usually once `scored`): its devbox is shut down and the score is final.",
        RunIdInput,
        ScenarioRunView,
        complete_run,
        hints(destructive=True),
    ),
    ToolSpec(
        "cancel_run",
        "Cancel scenario run",
        "Abandon a run: its devbox is shut down and the run ends `canceled`.",
        RunIdInput,
        ScenarioRunView,
        cancel_run,
        hints(destructive=True),
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
        hints(),
        pinned=False,
        progress=True,
        lists_change=True,
    ),
)

BENCHMARK_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "create_benchmark",
        "Create benchmark",
        "Group scenarios into a benchmark (`name`, `scenario_ids`); run_benchmark starts a run of each.",
        BenchmarkCreateParameters,
        BenchmarkView,
        create_benchmark,
        hints(),
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
        hints(),
        authoring=True,
        heartbeat=True,
        lists_change=True,
    ),
)

# The order tools/list shows them in.
TOOLS: tuple[ToolSpec, ...] = (
    *SCENARIO_TOOLS,
    *DEVBOX_TOOLS,
    *EXECUTION_TOOLS,
    *FILE_TOOLS,
    *RUN_TOOLS,
    *BENCHMARK_TOOLS,
)


def solver_tools(*, pinned: bool) -> list[ToolSpec]:
    return [spec for spec in TOOLS if not spec.authoring and (spec.pinned or not pinned)]
