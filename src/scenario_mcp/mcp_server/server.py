"""build_server(backend): the MCP server over any Backend."""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from pydantic import BaseModel, Field, ValidationError

from .. import __version__
from ..backend import Backend, BackendError, NotFoundError
from .tools import TOOLS, ToolSpec

Role = Literal["author", "solver"]

INSTRUCTIONS = """\
scenario-mcp gives you scenarios: a task, a sandboxed Linux devbox to work in, and scorers.
Solving: start_run(scenario_id) -> read scenario://{scenario_id}/problem_statement -> work in the run's
devbox with execute_on_devbox / read_devbox_file / write_devbox_file (files under /home/user) ->
score_run(run_id) -> poll get_run until `scored` -> complete_run(run_id).
Authoring: create_devbox, set it up, snapshot_devbox, then create_scenario on that snapshot with
weighted scorers and a reference_output.
"""


def build_server(backend: Backend, *, role: Role = "author") -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer(
        name="scenario-mcp",
        title="Scenarios for AI agents",
        instructions=INSTRUCTIONS,
        version=__version__,
    )
    for spec in TOOLS:
        if role == "solver" and spec.authoring:
            continue
        _register_tool(server, backend, spec)
    _register_resources(server, backend)
    return server


def _register_tool(server: MCPServer[Any], backend: Backend, spec: ToolSpec) -> None:
    async def call(**arguments: Any) -> BaseModel:
        try:
            params = spec.input_model.model_validate(arguments)
        except ValidationError as exc:
            raise ToolError(f"invalid arguments for {spec.name}: {_validation_message(exc)}") from exc
        try:
            return await spec.handler(backend, params)
        except BackendError as exc:
            raise ToolError(exc.message) from exc

    # The SDK derives the tool's input schema from the signature: publish the input model's fields.
    call.__signature__ = _signature(spec.input_model, spec.output_model)  # type: ignore[attr-defined]
    call.__name__ = spec.name
    server.add_tool(
        call,
        name=spec.name,
        title=spec.title,
        description=spec.description,
        annotations=spec.annotations,
        structured_output=True,
    )


def _signature(model: type[BaseModel], output: type[BaseModel]) -> inspect.Signature:
    parameters = []
    for name, field in model.model_fields.items():
        annotation = Annotated[field.annotation, Field(description=field.description)]  # type: ignore[name-defined]
        default = inspect.Parameter.empty if field.is_required() else field.get_default(call_default_factory=True)
        parameters.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
        )
    return inspect.Signature(parameters, return_annotation=output)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "(body)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _register_resources(server: MCPServer[Any], backend: Backend) -> None:
    @server.resource(
        "scenario://{scenario_id}/problem_statement",
        name="problem_statement",
        title="Scenario problem statement",
        description="The task text of a scenario, with its additional context.",
        mime_type="text/markdown",
    )
    async def problem_statement(scenario_id: str) -> str:
        try:
            scenario = await backend.get_scenario(scenario_id)
        except NotFoundError as exc:
            raise ResourceNotFoundError(exc.message) from exc
        text = scenario.input_context.problem_statement
        extra = scenario.input_context.additional_context
        if extra:
            text += f"\n\n## Additional context\n\n{extra}"
        return text + f"\n\n(Work in {scenario.working_directory} on your run's devbox.)\n"

    @server.resource(
        "run://{run_id}",
        name="run",
        title="Scenario run",
        description="A run's state and score, as JSON.",
        mime_type="application/json",
    )
    async def run_view(run_id: str) -> str:
        try:
            run = await backend.get_run(run_id)
        except NotFoundError as exc:
            raise ResourceNotFoundError(exc.message) from exc
        return run.model_dump_json(indent=2)

    @server.resource(
        "run://{run_id}/logs",
        name="run_logs",
        title="Scenario run logs",
        description="Every execution and scorer output of a run, in order, each with its timestamp and source.",
        mime_type="text/plain",
    )
    async def run_logs(run_id: str) -> str:
        try:
            entries = await backend.run_logs(run_id)
        except NotFoundError as exc:
            raise ResourceNotFoundError(exc.message) from exc
        return "\n".join(f"[{_iso(e.timestamp_ms)}] {e.source}\n{e.message}\n" for e in entries)


def _iso(timestamp_ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
