"""The tool catalogue: every tool, by toolset, in the order tools/list shows them, with its title,
description, models, handler and annotations; which toolsets a session starts with, and which
tools a solver session is offered.

Descriptions say what a model needs to choose and call a tool, and no more: every byte here is
carried by every turn of every agent conversation (scripts/tool_budget.py measures them). The
rest is in the docs:// resource and the prompts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import get_args

from pydantic import BaseModel

from ...models import (
    AgentBuildLogsListView,
    AgentListView,
    AgentView,
    BenchmarkRunView,
    BenchmarkView,
    BlueprintBuildLogsListView,
    BlueprintListView,
    BlueprintView,
    DevboxListView,
    DevboxSnapshotView,
    DevboxView,
    ExecutionOutputChunk,
    ExecutionView,
    ScenarioListView,
    ScenarioRunListView,
    ScenarioRunView,
    ScenarioValidationView,
    ScenarioView,
    SecretListView,
    SecretView,
)
from .agents import create_agent, delete_agent, get_agent, get_agent_logs, list_agents
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
    AgentIdInput,
    BlueprintIdInput,
    CreateAgentInput,
    CreateBenchmarkInput,
    CreateBlueprintInput,
    CreateDevboxInput,
    CreateDevboxMountsInput,
    CreateScenarioInput,
    CreateSecretInput,
    DevboxIdInput,
    DirectoryListing,
    ExecuteAsyncInput,
    ExecuteInput,
    ExecutionIdInput,
    ExecutionOutputInput,
    ExportScenarioInput,
    FileContents,
    FileWritten,
    GetAgentInput,
    GetBlueprintInput,
    GetExecutionInput,
    GetRunInput,
    ImportScenariosInput,
    ListAgentsInput,
    ListBlueprintsInput,
    ListDevboxesInput,
    ListFilesInput,
    ListRunsInput,
    ListScenariosInput,
    ListSecretsInput,
    OpenDevboxPortInput,
    OpenDevboxPortView,
    ReadFileInput,
    RunBenchmarkInput,
    RunBenchmarkMountsInput,
    RunIdInput,
    RunScenarioInput,
    RunScenarioMountsInput,
    RunScenarioResult,
    ScenarioIdInput,
    ScoreRunInput,
    SendStdinInput,
    SnapshotDevboxInput,
    StartRunInput,
    StartRunMountsInput,
    UpdateScenarioInput,
    ValidateScenarioInput,
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
from .secrets import create_secret, list_secrets
from .spec import READ, Toolset, ToolSpec, hints
from .tasks import ExportScenarioView, ImportScenariosView, export_scenario, import_scenarios
from .tunnels import open_devbox_port

SCENARIO_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "create_scenario",
        "Create scenario",
        "Create a scenario: a task, an environment (a snapshot or blueprint), weighted scorers (scripts print a "
        "score in [0, 1] last) and a hidden reference_output.",
        CreateScenarioInput,
        ScenarioView,
        create_scenario,
        hints(),
        "scenarios",
        authoring=True,
        lists_change=True,
    ),
    ToolSpec(
        "update_scenario",
        "Update scenario",
        'Change the given fields of a scenario (as in create_scenario); "" or [] clears one.',
        UpdateScenarioInput,
        ScenarioView,
        update_scenario,
        hints(idempotent=True),
        "scenarios",
        authoring=True,
    ),
    ToolSpec(
        "get_scenario",
        "Get scenario",
        "A scenario: its problem statement, environment and scorers.",
        ScenarioIdInput,
        ScenarioView,
        get_scenario,
        READ,
        "scenarios",
    ),
    ToolSpec(
        "list_scenarios",
        "List scenarios",
        "List scenarios, newest first.",
        ListScenariosInput,
        ScenarioListView,
        list_scenarios,
        READ,
        "scenarios",
    ),
    ToolSpec(
        "archive_scenario",
        "Archive scenario",
        "Archive a scenario: no new run starts until unarchive_scenario.",
        ScenarioIdInput,
        ScenarioView,
        archive_scenario,
        hints(destructive=True, idempotent=True),
        "scenarios",
        authoring=True,
    ),
    ToolSpec(
        "unarchive_scenario",
        "Unarchive scenario",
        "Make an archived scenario active again.",
        ScenarioIdInput,
        ScenarioView,
        unarchive_scenario,
        hints(idempotent=True),
        "scenarios",
        authoring=True,
    ),
    ToolSpec(
        "validate_scenario",
        "Validate scenario",
        "Check the scorers: the reference_output must score 1.0, the untouched environment less.",
        ValidateScenarioInput,
        ScenarioValidationView,
        validate_scenario,
        hints(read_only=True, idempotent=True),
        "scenarios",
        authoring=True,
        bounded=True,
        pending=lambda p: {"scenario_id": p.scenario_id},
    ),
)

BLUEPRINT_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "create_blueprint",
        "Create blueprint",
        "Build a reusable environment, with network: a dockerfile, then file_mounts and system_setup_commands. "
        "Answers `queued` (or, with wait_seconds, waits that long for the build, with progress): wait with "
        "get_blueprint, then use its id in devboxes and scenarios.",
        CreateBlueprintInput,
        BlueprintView,
        create_blueprint,
        hints(),
        "blueprints",
        authoring=True,
        host_dirs=True,
        progress=True,
        waits=True,
    ),
    ToolSpec(
        "get_blueprint",
        "Get blueprint",
        "A blueprint and its build status (queued, building, build_complete, failed); with wait_seconds, waits "
        "for the build, with progress (bytes of the image pulled, steps done).",
        GetBlueprintInput,
        BlueprintView,
        get_blueprint,
        READ,
        "blueprints",
        authoring=True,
        progress=True,
        waits=True,
    ),
    ToolSpec(
        "get_blueprint_logs",
        "Blueprint build logs",
        "A blueprint's build log, one entry per step.",
        BlueprintIdInput,
        BlueprintBuildLogsListView,
        get_blueprint_logs,
        READ,
        "blueprints",
        authoring=True,
    ),
    ToolSpec(
        "list_blueprints",
        "List blueprints",
        "List blueprints, newest first.",
        ListBlueprintsInput,
        BlueprintListView,
        list_blueprints,
        READ,
        "blueprints",
        authoring=True,
    ),
)

DEVBOX_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "create_devbox",
        "Create devbox",
        "Start a sandboxed Linux devbox (default: Python 3 with pytest). Work in /home/user; no network unless asked.",
        CreateDevboxInput,
        DevboxView,
        create_devbox,
        hints(),
        "devboxes",
        authoring=True,
        bounded=True,
        pending=lambda p: {"status": "queued"},
    ),
    ToolSpec(
        "get_devbox",
        "Get devbox",
        "A devbox and its status.",
        DevboxIdInput,
        DevboxView,
        get_devbox,
        READ,
        "devboxes",
    ),
    ToolSpec(
        "list_devboxes",
        "List devboxes",
        "List devboxes, newest first.",
        ListDevboxesInput,
        DevboxListView,
        list_devboxes,
        READ,
        "devboxes",
        authoring=True,
    ),
    ToolSpec(
        "shutdown_devbox",
        "Shut down devbox",
        "Stop a devbox and discard its disk (snapshot it first to keep it).",
        DevboxIdInput,
        DevboxView,
        shutdown_devbox,
        hints(destructive=True, idempotent=True),
        "devboxes",
        authoring=True,
    ),
    ToolSpec(
        "suspend_devbox",
        "Suspend devbox",
        "Freeze a devbox's processes until resume_devbox.",
        DevboxIdInput,
        DevboxView,
        suspend_devbox,
        hints(),
        "devboxes",
        authoring=True,
    ),
    ToolSpec(
        "resume_devbox",
        "Resume devbox",
        "Thaw a suspended devbox.",
        DevboxIdInput,
        DevboxView,
        resume_devbox,
        hints(),
        "devboxes",
        authoring=True,
    ),
    ToolSpec(
        "snapshot_devbox",
        "Snapshot devbox disk",
        "Save a devbox's disk changes as a snapshot (a scenario's environment).",
        SnapshotDevboxInput,
        DevboxSnapshotView,
        snapshot_devbox,
        hints(),
        "devboxes",
        authoring=True,
        bounded=True,
        pending=lambda p: {"source_devbox_id": p.devbox_id},
    ),
)

EXECUTION_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "execute_on_devbox",
        "Run a command on a devbox",
        "Run a bash command in a devbox: exit_status, stdout, stderr. Background processes keep running.",
        ExecuteInput,
        ExecutionView,
        execute_on_devbox,
        hints(),
        "executions",
        bounded=True,
        pending=lambda p: {"devbox_id": p.devbox_id, "status": "running"},
    ),
    ToolSpec(
        "execute_async",
        "Start a command on a devbox",
        "Start a bash command and return its execution_id at once.",
        ExecuteAsyncInput,
        ExecutionView,
        execute_async,
        hints(),
        "executions",
    ),
    ToolSpec(
        "get_execution",
        "Get execution",
        "An execution's status and, once completed, its output.",
        GetExecutionInput,
        ExecutionView,
        get_execution,
        READ,
        "executions",
        waits=True,
    ),
    ToolSpec(
        "read_execution_output",
        "Read execution output",
        "Read an execution's output from a byte offset, until done.",
        ExecutionOutputInput,
        ExecutionOutputChunk,
        read_execution_output,
        READ,
        "executions",
    ),
    ToolSpec(
        "send_execution_stdin",
        "Send input to an execution",
        "Write to the stdin of an execution started with attach_stdin.",
        SendStdinInput,
        ExecutionView,
        send_execution_stdin,
        hints(),
        "executions",
    ),
    ToolSpec(
        "kill_execution",
        "Kill execution",
        "Kill a running execution.",
        ExecutionIdInput,
        ExecutionView,
        kill_execution,
        hints(destructive=True, idempotent=True),
        "executions",
    ),
)

FILE_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "read_devbox_file",
        "Read a devbox file",
        "Read a text file from a devbox.",
        ReadFileInput,
        FileContents,
        read_devbox_file,
        READ,
        "files",
    ),
    ToolSpec(
        "write_devbox_file",
        "Write a devbox file",
        "Create or replace a text file in a devbox.",
        WriteFileInput,
        FileWritten,
        write_devbox_file,
        hints(idempotent=True),
        "files",
    ),
    ToolSpec(
        "list_devbox_files",
        "List a devbox directory",
        "List a devbox directory.",
        ListFilesInput,
        DirectoryListing,
        list_devbox_files,
        READ,
        "files",
    ),
)

RUN_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "start_run",
        "Start scenario run",
        "Start a run of a scenario in its own devbox; the task is resource scenario://{scenario_id}/problem_statement.",
        StartRunInput,
        ScenarioRunView,
        start_run,
        hints(),
        "runs",
        pinned=False,
        bounded=True,
        pending=lambda p: {"scenario_id": p.scenario_id},
        lists_change=True,
    ),
    ToolSpec(
        "get_run",
        "Get scenario run",
        "A run's state (running, scoring, scored, completed, ...) and score.",
        GetRunInput,
        ScenarioRunView,
        get_run,
        READ,
        "runs",
        waits=True,
    ),
    ToolSpec(
        "list_runs",
        "List scenario runs",
        "List runs, newest first.",
        ListRunsInput,
        ScenarioRunListView,
        list_runs,
        READ,
        "runs",
    ),
    ToolSpec(
        "score_run",
        "Score scenario run",
        "Score a run's devbox (its processes stop first); score again later, or complete_run.",
        ScoreRunInput,
        ScenarioRunView,
        score_run,
        hints(),
        "runs",
        progress=True,
        waits=True,
    ),
    ToolSpec(
        "complete_run",
        "Complete scenario run",
        "Make a run's score final; its devbox is shut down.",
        RunIdInput,
        ScenarioRunView,
        complete_run,
        hints(destructive=True),
        "runs",
    ),
    ToolSpec(
        "cancel_run",
        "Cancel scenario run",
        "Abandon a run; its devbox is shut down.",
        RunIdInput,
        ScenarioRunView,
        cancel_run,
        hints(destructive=True),
        "runs",
    ),
    ToolSpec(
        "run_scenario",
        "Run a scenario end to end",
        "Start a run, run `command` in it, score and complete it, in one call.",
        RunScenarioInput,
        RunScenarioResult,
        run_scenario,
        hints(),
        "runs",
        pinned=False,
        progress=True,
        bounded=True,
        lists_change=True,
    ),
)

BENCHMARK_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "create_benchmark",
        "Create benchmark",
        "Group scenarios into a benchmark.",
        CreateBenchmarkInput,
        BenchmarkView,
        create_benchmark,
        hints(),
        "benchmarks",
        authoring=True,
    ),
    ToolSpec(
        "run_benchmark",
        "Run benchmark",
        "Start a run of each scenario of a benchmark; with an agent, run them all to a score "
        "(results: resource benchmark-run://{id}).",
        RunBenchmarkInput,
        BenchmarkRunView,
        run_benchmark,
        hints(),
        "benchmarks",
        authoring=True,
        progress=True,
        bounded=True,
        pending=lambda p: {"benchmark_id": p.benchmark_id},
        lists_change=True,
    ),
)

TASK_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "import_scenarios",
        "Import task directories",
        "Create or update scenarios from Harbor or Terminal-Bench task dirs on the server's machine (builds their "
        "environments); an unchanged task changes nothing.",
        ImportScenariosInput,
        ImportScenariosView,
        import_scenarios,
        hints(idempotent=True),
        "tasks",
        authoring=True,
        bounded=True,
        host_dirs=True,
        lists_change=True,
    ),
    ToolSpec(
        "export_scenario",
        "Export scenario as a Harbor task",
        "Write an imported scenario as a Harbor task dir (under --allow-dir), or return its files.",
        ExportScenarioInput,
        ExportScenarioView,
        export_scenario,
        hints(),
        "tasks",
        authoring=True,
        host_dirs=True,
    ),
)

AGENT_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "create_agent",
        "Create agent",
        "Install an agent once (npm or pip package, git repo, uploaded archive), to mount into devboxes and runs "
        "(mounts: agent_mount). Waits wait_seconds; then get_agent.",
        CreateAgentInput,
        AgentView,
        create_agent,
        hints(),
        "agents",
        authoring=True,
        waits=True,
    ),
    ToolSpec(
        "get_agent",
        "Get agent",
        "An agent and its install status (queued, building, build_complete, failed).",
        GetAgentInput,
        AgentView,
        get_agent,
        READ,
        "agents",
        authoring=True,
        waits=True,
    ),
    ToolSpec(
        "get_agent_logs",
        "Agent install logs",
        "An agent's install log, one entry per step.",
        AgentIdInput,
        AgentBuildLogsListView,
        get_agent_logs,
        READ,
        "agents",
        authoring=True,
    ),
    ToolSpec(
        "list_agents",
        "List agents",
        "List agents, newest first.",
        ListAgentsInput,
        AgentListView,
        list_agents,
        READ,
        "agents",
        authoring=True,
    ),
    ToolSpec(
        "delete_agent",
        "Delete agent",
        "Delete an agent; devboxes that mount it keep it until they end.",
        AgentIdInput,
        AgentView,
        delete_agent,
        hints(destructive=True),
        "agents",
        authoring=True,
    ),
)

SECRET_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "create_secret",
        "Create secret",
        "Store a value (an API key) encrypted under a name; devboxes and runs get it as an env var "
        "(REST secrets / runProfile.secrets). The value is never shown again.",
        CreateSecretInput,
        SecretView,
        create_secret,
        hints(),
        "secrets",
        authoring=True,
    ),
    ToolSpec(
        "list_secrets",
        "List secrets",
        "List secrets by name, newest first (no values).",
        ListSecretsInput,
        SecretListView,
        list_secrets,
        READ,
        "secrets",
        authoring=True,
    ),
)

TUNNEL_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "open_devbox_port",
        "Open devbox port",
        "Make a port of a devbox reachable from this machine (a server an agent started): the URL through "
        "the REST API server's tunnel host, and the header to send when authenticated.",
        OpenDevboxPortInput,
        OpenDevboxPortView,
        open_devbox_port,
        hints(idempotent=True),
        "tunnels",
        authoring=True,
    ),
)

# With the agents toolset, these tools take `mounts` too (inputs.py: their fields cost every turn).
WITH_MOUNTS: dict[str, type[BaseModel]] = {
    "create_devbox": CreateDevboxMountsInput,
    "start_run": StartRunMountsInput,
    "run_scenario": RunScenarioMountsInput,
    "run_benchmark": RunBenchmarkMountsInput,
}

# The order tools/list shows them in.
TOOLS: tuple[ToolSpec, ...] = (
    *SCENARIO_TOOLS,
    *BLUEPRINT_TOOLS,
    *DEVBOX_TOOLS,
    *EXECUTION_TOOLS,
    *FILE_TOOLS,
    *RUN_TOOLS,
    *BENCHMARK_TOOLS,
    *TASK_TOOLS,
    *AGENT_TOOLS,
    *SECRET_TOOLS,
    *TUNNEL_TOOLS,
)

TOOLSETS: tuple[Toolset, ...] = get_args(Toolset)
# What each role needs for the seed workflow (author: make a devbox, set it up, snapshot it, create
# and validate a scenario, run it; solver: find the task (a tool, for clients without resources),
# start, work, score, complete).
DEFAULT_TOOLSETS: dict[str, tuple[Toolset, ...]] = {
    "author": ("scenarios", "devboxes", "executions", "files", "runs"),
    "solver": ("scenarios", "runs", "executions", "files"),
}


def parse_toolsets(names: Iterable[str] | None, role: str) -> frozenset[Toolset]:
    """The toolsets named (`all` for every one; none named: the role's default); raises ValueError
    naming the known ones for an unknown name."""
    if names is None:
        return frozenset(DEFAULT_TOOLSETS[role])
    chosen: set[Toolset] = set()
    for name in names:
        if name == "all":
            chosen.update(TOOLSETS)
        elif name in TOOLSETS:
            chosen.add(name)
        else:
            raise ValueError(f"unknown toolset {name!r}; known: {', '.join(TOOLSETS)} or all")
    return frozenset(chosen)


def solver_tools(*, pinned: bool) -> list[ToolSpec]:
    return [spec for spec in TOOLS if not spec.authoring and (spec.pinned or not pinned)]


def tools_for(role: str, toolsets: frozenset[Toolset], *, pinned: bool = False) -> list[ToolSpec]:
    """The tools a session of `role` is offered from `toolsets`, in the catalogue's order."""
    offered = solver_tools(pinned=pinned) if role == "solver" else list(TOOLS)
    chosen = [spec for spec in offered if spec.toolset in toolsets]
    if "agents" in toolsets:
        chosen = [
            dataclasses.replace(spec, input_model=WITH_MOUNTS[spec.name]) if spec.name in WITH_MOUNTS else spec
            for spec in chosen
        ]
    return chosen
