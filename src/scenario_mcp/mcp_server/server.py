"""build_server(backend, role=, run_id=): the MCP server over any Backend."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import SubscribeRequestParams, SubscriptionsListenRequestParams, UnsubscribeRequestParams
from pydantic import BaseModel, Field, ValidationError

from .. import __version__
from ..backend import Backend, BackendError
from ..input_errors import validation_message
from .access import Role, SolverBackend
from .completions import register_completions
from .host_dirs import HostDirs
from .notifications import CountingBus, RunNotifier
from .prompts import register_prompts
from .resources import ResourceLister, adjust_mime_types, register_resources
from .tools import TOOLS, Progress, ToolSpec, solver_tools

HEARTBEAT_SECONDS = 2.0
T = TypeVar("T")

INSTRUCTIONS = """\
scenario-mcp gives you scenarios: a task, a sandboxed Linux devbox to work in, and weighted scorers.
Solving: start_run(scenario_id) -> read scenario://{scenario_id}/problem_statement (or the solve_scenario prompt)
-> work in the run's devbox with execute_on_devbox / read_devbox_file / write_devbox_file / list_devbox_files
(files under /home/user) -> score_run(run_id, wait=true) -> keep working and score again, or complete_run(run_id).
run_scenario does start, command, score and complete in one call.
Authoring (author role; see the author_scenario prompt): create_devbox, set it up, snapshot_devbox, then
create_scenario on that snapshot with weighted scorers and a reference_output, then validate_scenario.
"""

SOLVER_INSTRUCTIONS = """\
scenario-mcp, solver session: you solve scenarios in sandboxed devboxes; scorers and reference solutions are hidden.
start_run(scenario_id) (unless this session is pinned to a run) -> read scenario://{scenario_id}/problem_statement
or the solve_scenario prompt -> work in the run's devbox with execute_on_devbox / read_devbox_file /
write_devbox_file / list_devbox_files -> score_run(run_id, wait=true) -> improve and score again, or complete_run.
"""


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
) -> MCPServer[Any]:
    """The MCP server over `backend`. A solver (optionally pinned to `run_id`) sees no authoring
    tool and no reference output, scorer body or (unless allowed) scorer output anywhere.
    `open_world`: the backend reaches beyond this machine (a remote API), and the tools say so.
    `host_dirs`: the directories of this machine a caller may name as a build context (none by default)."""
    if run_id is not None and role != "solver":
        raise ValueError("run_id pins a solver session; use role='solver'")
    specs: list[ToolSpec]
    if role == "solver":
        backend = SolverBackend(backend, pinned_run_id=run_id)
        specs = solver_tools(pinned=run_id is not None)
    else:
        specs = list(TOOLS)
    bus = CountingBus()
    notifier = RunNotifier(backend, bus)
    server = ScenarioServer(
        ResourceLister(backend, pinned_run_id=run_id),
        name="scenario-mcp",
        title="Scenarios for AI agents",
        instructions=SOLVER_INSTRUCTIONS if role == "solver" else INSTRUCTIONS,
        version=__version__,
        subscriptions=bus,
        lifespan=lambda _app: notifier.running(),
    )
    for spec in specs:
        _register_tool(server, backend, spec, notifier, open_world=open_world, host_dirs=host_dirs or HostDirs())
    register_resources(server, backend)
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


def _register_tool(
    server: MCPServer[Any],
    backend: Backend,
    spec: ToolSpec,
    notifier: RunNotifier,
    *,
    open_world: bool,
    host_dirs: HostDirs,
) -> None:
    extra: dict[str, Any] = {"host_dirs": host_dirs} if spec.host_dirs else {}

    async def call(ctx: Context, **arguments: Any) -> BaseModel:
        try:
            params = spec.input_model.model_validate(arguments)
        except ValidationError as exc:
            raise ToolError(f"invalid arguments for {spec.name}: {validation_message(exc)}") from exc

        async def report(done: float, total: float | None = None, message: str | None = None) -> None:
            await ctx.report_progress(done, total, message)

        progress: Progress = report
        try:
            if spec.progress:
                result = await spec.handler(backend, params, progress, **extra)
            elif spec.heartbeat:
                result = await _with_heartbeat(progress, lambda: spec.handler(backend, params, **extra))
            else:
                result = await spec.handler(backend, params, **extra)
        except BackendError as exc:
            raise ToolError(exc.message) from exc
        await notifier.observe_result(result)
        if spec.lists_change:
            await notifier.lists_changed()
        return result

    # The SDK derives the tool's input schema from the signature: publish the input model's fields
    # (with their constraints), and the Context parameter it injects.
    call.__signature__ = _signature(spec.input_model, spec.output_model)  # type: ignore[attr-defined]
    call.__annotations__ = {"ctx": Context, "return": spec.output_model}
    call.__name__ = spec.name
    server.add_tool(
        call,
        name=spec.name,
        title=spec.title,
        description=spec.description,
        annotations=spec.annotations.model_copy(update={"open_world_hint": open_world}),
        structured_output=True,
    )


async def _with_heartbeat(progress: Progress, work: Callable[[], Awaitable[T]]) -> T:
    """Run `work`, reporting elapsed seconds every HEARTBEAT_SECONDS so a client sees it is alive."""

    async def beat() -> None:
        elapsed = 0.0
        while True:
            await anyio.sleep(HEARTBEAT_SECONDS)
            elapsed += HEARTBEAT_SECONDS
            await progress(elapsed, None, f"still working: {elapsed:g} s")

    outcome: list[T] = []
    error: list[Exception] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(beat)
        try:
            outcome.append(await work())
        except Exception as exc:
            error.append(exc)
        finally:
            tg.cancel_scope.cancel()
    if error:
        raise error[0]
    return outcome[0]


def _signature(model: type[BaseModel], output: type[BaseModel]) -> inspect.Signature:
    parameters = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    for name, field in model.model_fields.items():
        annotation: Any = Annotated.__class_getitem__(  # type: ignore[attr-defined]
            (field.annotation, *field.metadata, Field(description=field.description))
        )
        default = inspect.Parameter.empty if field.is_required() else field.get_default(call_default_factory=True)
        parameters.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
        )
    return inspect.Signature(parameters, return_annotation=output)
