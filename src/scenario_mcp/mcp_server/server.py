"""build_server(backend, role=, run_id=, toolsets=): the MCP server over any Backend."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from mcp.server import MCPServer
from mcp.types import SubscribeRequestParams, SubscriptionsListenRequestParams, UnsubscribeRequestParams

from .. import __version__
from ..backend import Backend
from .access import Role, SolverBackend
from .completions import register_completions
from .docs import register_docs
from .host_dirs import HostDirs
from .notifications import CountingBus, RunNotifier
from .operations import Operations
from .prompts import register_prompts
from .registration import ToolRunner
from .resources import ResourceLister, adjust_mime_types, register_resources
from .tools import parse_toolsets, tools_for

WAITING = """\
No call blocks for long: a tool whose work takes longer than its wait_seconds (default 4) answers with the current
state and a `message` naming the tool to call to wait (often: the same call again, which never starts the work twice).
Free maps (metadata, environment_variables) are lists of {key, value}. Reference: resource docs://scenario-mcp/tools.
"""

INSTRUCTIONS = (
    """\
scenario-mcp gives you scenarios: a task, a sandboxed Linux devbox to work in, and weighted scorers.
Solving: start_run(scenario_id) -> read scenario://{scenario_id}/problem_statement (or the solve_scenario prompt)
-> work in the run's devbox with execute_on_devbox / read_devbox_file / write_devbox_file / list_devbox_files
(files under /home/user) -> score_run(run_id) -> keep working and score again, or complete_run(run_id).
run_scenario does start, command, score and complete in one call.
Authoring (author role; see the author_scenario prompt): create_devbox, set it up, snapshot_devbox, then
create_scenario on that snapshot with weighted scorers and a reference_output, then validate_scenario.
"""
    + WAITING
)

SOLVER_INSTRUCTIONS = (
    """\
scenario-mcp, solver session: you solve scenarios in sandboxed devboxes; scorers and reference solutions are hidden.
start_run(scenario_id) (unless this session is pinned to a run) -> read scenario://{scenario_id}/problem_statement
or the solve_scenario prompt -> work in the run's devbox with execute_on_devbox / read_devbox_file /
write_devbox_file / list_devbox_files -> score_run(run_id) -> improve and score again, or complete_run.
"""
    + WAITING
)


class ScenarioServer(MCPServer[Any]):
    """MCPServer whose resources/list shows the engine's scenarios and runs, and whose devbox file
    resources carry the MIME type of the file they read."""

    def __init__(self, lister: ResourceLister, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lister = lister

    async def list_resources(self) -> Any:
        return await self._lister.resources()

    async def read_resource(self, uri: Any, context: Any = None) -> Any:
        return adjust_mime_types(str(uri), await super().read_resource(uri, context))


def build_server(
    backend: Backend,
    *,
    role: Role = "author",
    run_id: str | None = None,
    open_world: bool = False,
    conformance_fixtures: bool = False,
    host_dirs: HostDirs | None = None,
    toolsets: Iterable[str] | None = None,
) -> MCPServer[Any]:
    """The MCP server over `backend`. A solver (optionally pinned to `run_id`) sees no authoring
    tool and no reference output, scorer body or (unless allowed) scorer output anywhere.
    `open_world`: the backend reaches beyond this machine (a remote API), and the tools say so.
    `host_dirs`: the directories of this machine a caller may name as a build context (none by default).
    `toolsets`: which groups of tools to offer (catalogue.TOOLSETS, or "all"); none named: what the
    role needs for the seed workflow. Raises ValueError for an unknown toolset."""
    if run_id is not None and role != "solver":
        raise ValueError("run_id pins a solver session; use role='solver'")
    specs = tools_for(role, parse_toolsets(toolsets, role), pinned=run_id is not None)
    engine = backend
    if role == "solver":
        backend = SolverBackend(backend, pinned_run_id=run_id)
    bus = CountingBus()
    notifier = RunNotifier(backend, bus)
    operations = Operations()

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        async with notifier.running(), operations.running():
            yield

    server = ScenarioServer(
        ResourceLister(backend, pinned_run_id=run_id),
        name="scenario-mcp",
        title="Scenarios for AI agents",
        instructions=SOLVER_INSTRUCTIONS if role == "solver" else INSTRUCTIONS,
        version=__version__,
        subscriptions=bus,
        lifespan=lifespan,
    )
    runner = ToolRunner(backend, notifier, operations, host_dirs=host_dirs or HostDirs(), engine=engine)
    for spec in specs:
        runner.register(server, spec, open_world=open_world)
    register_resources(server, backend)
    register_docs(server)
    register_prompts(server, backend, role=role)
    register_completions(server, backend, role=role)
    if conformance_fixtures:
        _register_conformance_fixtures(server)
    # Change notifications in both eras: legacy resources/subscribe, and the current era's
    # subscriptions/listen (served by the SDK; the notifier notes which runs to watch).
    lowlevel = server._lowlevel_server
    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, notifier.subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, notifier.unsubscribe)
    lowlevel.add_request_handler("subscriptions/listen", SubscriptionsListenRequestParams, notifier.listen)
    return server


def _register_conformance_fixtures(server: MCPServer[Any]) -> None:
    """The resource template the official conformance suite reads by a fixed URI
    (`resources-templates-read`): served only with `--conformance-fixtures`, for that suite."""

    @server.resource(
        "test://template/{id}/data",
        name="conformance_template",
        description="Fixture for the MCP conformance suite; not part of scenario-mcp's surface.",
        mime_type="application/json",
    )
    def conformance_template(id: str) -> str:
        return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})
