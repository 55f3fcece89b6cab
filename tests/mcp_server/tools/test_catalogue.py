"""The tool catalogue (tools/catalogue.py, toolsets/): each spec agrees with its handler, which toolset each
tool is in, and which tools each session is offered."""

from __future__ import annotations

import inspect
from typing import get_type_hints

import pytest

from scenario_mcp.mcp_server.tools import DEFAULT_TOOLSETS, TOOLS, TOOLSETS, parse_toolsets, solver_tools, tools_for
from scenario_mcp.mcp_server.tools.spec import Progress, ToolSpec, Unfinished
from scenario_mcp.mcp_server.tools.toolsets.agents import AGENT_TOOLS
from scenario_mcp.mcp_server.tools.toolsets.benchmarks import BENCHMARK_TOOLS
from scenario_mcp.mcp_server.tools.toolsets.blueprints import BLUEPRINT_TOOLS
from scenario_mcp.mcp_server.tools.toolsets.devboxes import DEVBOX_TOOLS
from scenario_mcp.mcp_server.tools.toolsets.executions import EXECUTION_TOOLS
from scenario_mcp.mcp_server.tools.toolsets.files import FILE_TOOLS
from scenario_mcp.mcp_server.tools.toolsets.runs import RUN_TOOLS
from scenario_mcp.mcp_server.tools.toolsets.scenarios import SCENARIO_TOOLS
from scenario_mcp.mcp_server.tools.toolsets.secrets import SECRET_TOOLS
from scenario_mcp.mcp_server.tools.toolsets.tasks import TASK_TOOLS
from scenario_mcp.mcp_server.tools.toolsets.tunnels import TUNNEL_TOOLS

AUTHORING = {
    "create_scenario",
    "update_scenario",
    "archive_scenario",
    "unarchive_scenario",
    "validate_scenario",
    "create_blueprint",
    "get_blueprint",
    "get_blueprint_logs",
    "list_blueprints",
    "create_devbox",
    "list_devboxes",
    "shutdown_devbox",
    "suspend_devbox",
    "resume_devbox",
    "snapshot_devbox",
    "create_benchmark",
    "run_benchmark",
    "import_scenarios",
    "export_scenario",
    "create_agent",
    "get_agent",
    "get_agent_logs",
    "list_agents",
    "delete_agent",
    "create_secret",
    "list_secrets",
    "open_devbox_port",
}


def test_names_are_unique_and_areas_make_the_whole_list_in_order() -> None:
    names = [spec.name for spec in TOOLS]
    assert len(names) == len(set(names)) == 46
    areas = (
        SCENARIO_TOOLS,
        BLUEPRINT_TOOLS,
        DEVBOX_TOOLS,
        EXECUTION_TOOLS,
        FILE_TOOLS,
        RUN_TOOLS,
        BENCHMARK_TOOLS,
        TASK_TOOLS,
        AGENT_TOOLS,
        SECRET_TOOLS,
        TUNNEL_TOOLS,
    )
    assert tuple(spec for area in areas for spec in area) == TOOLS
    assert names[0] == "create_scenario" and names[-1] == "open_devbox_port"
    # Each area is one toolset.
    assert [{spec.toolset for spec in area} for area in areas] == [
        {"scenarios"},
        {"blueprints"},
        {"devboxes"},
        {"executions"},
        {"files"},
        {"runs"},
        {"benchmarks"},
        {"tasks"},
        {"agents"},
        {"secrets"},
        {"tunnels"},
    ]


@pytest.mark.parametrize("spec", TOOLS, ids=lambda spec: spec.name)
def test_each_spec_matches_its_handler(spec: ToolSpec) -> None:
    assert spec.handler.__name__ == spec.name
    assert inspect.iscoroutinefunction(spec.handler)
    hints = get_type_hints(spec.handler)
    signature = inspect.signature(spec.handler).parameters
    parameters = [name for name, p in signature.items() if p.kind is not p.KEYWORD_ONLY]
    # A handler takes the server's allowed host directories exactly when its spec says so.
    assert ("host_dirs" in signature) is spec.host_dirs
    assert hints[parameters[1]] is spec.input_model
    # A handler that may answer in an unfinished state says so in its type, and its spec too.
    assert hints["return"] == (spec.output_model | Unfinished if spec.waits else spec.output_model)
    # A handler takes a progress reporter exactly when its spec says so (server.py passes one then).
    assert (len(parameters) == 3) is spec.progress
    if spec.progress:
        assert hints[parameters[2]] is Progress
    # A bounded tool takes the caller's bound; so does one that waits itself.
    if spec.bounded or spec.waits:
        assert "wait_seconds" in spec.input_model.model_fields
    assert not (spec.bounded and spec.waits)  # the server bounds it, or it bounds itself


def test_toolsets_default_to_the_seed_workflow_of_each_role() -> None:
    assert TOOLSETS == (
        "scenarios",
        "devboxes",
        "runs",
        "files",
        "executions",
        "benchmarks",
        "blueprints",
        "tasks",
        "agents",
        "secrets",
        "tunnels",
    )
    author = {spec.name for spec in tools_for("author", parse_toolsets(None, "author"))}
    seed = {"create_devbox", "write_devbox_file", "execute_on_devbox", "snapshot_devbox", "create_scenario"}
    assert seed | {"validate_scenario", "start_run", "score_run", "get_run", "complete_run"} <= author
    assert not author & {"create_blueprint", "run_benchmark", "import_scenarios", "export_scenario"}
    solver = {spec.name for spec in tools_for("solver", parse_toolsets(None, "solver"))}
    assert {"start_run", "execute_on_devbox", "read_devbox_file", "score_run", "complete_run"} <= solver
    assert parse_toolsets(["all"], "solver") == frozenset(TOOLSETS)
    assert [s.name for s in tools_for("author", parse_toolsets(["all"], "author"))] == [s.name for s in TOOLS]
    assert DEFAULT_TOOLSETS["solver"] == ("scenarios", "runs", "executions", "files")
    with pytest.raises(ValueError, match="unknown toolset 'devbox'; known: scenarios, devboxes"):
        parse_toolsets(["devbox"], "author")


def test_solver_sessions_are_offered_no_authoring_tool() -> None:
    assert {spec.name for spec in TOOLS if spec.authoring} == AUTHORING
    unpinned = {spec.name for spec in solver_tools(pinned=False)}
    pinned = {spec.name for spec in solver_tools(pinned=True)}
    assert unpinned == {spec.name for spec in TOOLS} - AUTHORING
    # Pinned to one run, a solver starts no other.
    assert pinned == unpinned - {"start_run", "run_scenario"}
    # Both keep the catalogue's order.
    order = [spec.name for spec in TOOLS]
    assert [spec.name for spec in solver_tools(pinned=True)] == [name for name in order if name in pinned]


def test_the_agents_toolset_gives_the_starting_tools_mounts() -> None:
    takes_mounts = {"create_devbox", "start_run", "run_scenario", "run_benchmark"}
    for role in ("author", "solver"):
        plain = tools_for(role, parse_toolsets([*DEFAULT_TOOLSETS[role], "devboxes", "benchmarks"], role))
        assert not [s.name for s in plain if "mounts" in s.input_model.model_fields]
        with_agents = tools_for(
            role, parse_toolsets([*DEFAULT_TOOLSETS[role], "agents", "devboxes", "benchmarks"], role)
        )
        mounting = {s.name for s in with_agents if "mounts" in s.input_model.model_fields}
        assert mounting == (takes_mounts if role == "author" else takes_mounts - {"create_devbox", "run_benchmark"})
