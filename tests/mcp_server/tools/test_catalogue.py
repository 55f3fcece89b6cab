"""The tool catalogue (tools/catalogue.py): each spec agrees with its handler, and which tools each session is
offered."""

from __future__ import annotations

import inspect
from typing import get_type_hints

import pytest

from scenario_mcp.mcp_server.tools import TOOLS, solver_tools
from scenario_mcp.mcp_server.tools.catalogue import (
    BENCHMARK_TOOLS,
    DEVBOX_TOOLS,
    EXECUTION_TOOLS,
    FILE_TOOLS,
    RUN_TOOLS,
    SCENARIO_TOOLS,
)
from scenario_mcp.mcp_server.tools.spec import Progress, ToolSpec

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
}


def test_names_are_unique_and_areas_make_the_whole_list_in_order() -> None:
    names = [spec.name for spec in TOOLS]
    assert len(names) == len(set(names)) == 36
    areas = (SCENARIO_TOOLS, DEVBOX_TOOLS, EXECUTION_TOOLS, FILE_TOOLS, RUN_TOOLS, BENCHMARK_TOOLS)
    assert tuple(spec for area in areas for spec in area) == TOOLS
    assert names[0] == "create_scenario" and names[-1] == "run_benchmark"


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
    assert hints["return"] is spec.output_model
    # A handler takes a progress reporter exactly when its spec says so (server.py passes one then).
    assert (len(parameters) == 3) is spec.progress
    if spec.progress:
        assert hints[parameters[2]] is Progress
        assert not spec.heartbeat  # a handler that reports its own progress needs no heartbeat


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
