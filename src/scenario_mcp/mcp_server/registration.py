"""How a tool spec becomes an MCP tool: the schemas it publishes, one validation of its arguments,
its bounded wait, its answer.

The SDK would derive a tool's input schema from a function signature and validate the arguments
into a model of its own before the tool validates them again; it would validate the result
against the output model and dump it twice. Here the published schemas are schema.py's (strict
inputs, shallow outputs), the arguments reach the tool as they came and are validated once, into
the tool's input model, and the answer is dumped once: the per-call cost is the engine's, not
this layer's (benchmarks/bench_mcp.py measures it).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, ConfigDict, ValidationError

from ..backend import Backend, BackendError, DefaultEnvironment
from ..input_errors import validation_message
from .host_dirs import HostDirs
from .notifications import RunNotifier
from .operations import Operation, Operations, operation_key
from .tools import Progress, ToolSpec, Unfinished
from .tools.schema import input_schema, output_schema


class _Arguments(ArgModelBase):
    """The SDK's argument model for every tool: it passes the arguments through as they came."""

    model_config = ConfigDict(extra="allow")

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.__pydantic_extra__ or {})}


class ToolRunner:
    """What every tool of one server shares: its backend, notifier, operations and host dirs."""

    def __init__(
        self,
        backend: Backend,
        notifier: RunNotifier,
        operations: Operations,
        *,
        host_dirs: HostDirs,
        engine: Backend | None = None,
    ) -> None:
        self.backend = backend
        self.notifier = notifier
        self.operations = operations
        self.host_dirs = host_dirs
        self.engine = engine or backend  # the backend itself, under a solver's access checks

    def register(self, server: MCPServer[Any], spec: ToolSpec, *, open_world: bool) -> None:
        async def call(ctx: Context, arguments: dict[str, Any]) -> CallToolResult:
            return await self.call(spec, ctx, arguments)

        tool = server._tool_manager.add_tool(
            call,
            name=spec.name,
            title=spec.title,
            description=spec.description,
            annotations=spec.annotations.model_copy(update={"open_world_hint": open_world}),
            structured_output=False,
        )
        tool.parameters = input_schema(spec.input_model)
        tool.fn_metadata.arg_model = _Arguments
        tool.fn_metadata.output_schema = output_schema(spec.output_model, waits=spec.bounded or spec.waits)

    async def call(self, spec: ToolSpec, ctx: Context, arguments: dict[str, Any]) -> CallToolResult:
        try:
            params = spec.input_model.model_validate(arguments)
        except ValidationError as exc:
            raise ToolError(f"invalid arguments for {spec.name}: {validation_message(exc, spec.input_model)}") from exc

        async def report(done: float, total: float | None = None, message: str | None = None) -> None:
            await ctx.report_progress(done, total, message)

        try:
            if spec.bounded:
                answer = await self._bounded(spec, params, arguments, report)
            else:
                answer = await self._run(spec, params, report)
        except BackendError as exc:
            raise ToolError(exc.message) from exc
        except ValidationError as exc:
            # The flat input fits the schema but not the engine's model once assembled (a scorer
            # of one type without its script, say): the caller's to fix, said as such.
            raise ToolError(f"invalid arguments for {spec.name}: {validation_message(exc)}") from exc
        result = answer.current if isinstance(answer, Unfinished) else answer
        if isinstance(result, BaseModel):
            await self.notifier.observe_result(result)
            if spec.lists_change:
                await self.notifier.lists_changed()
        return _answer(answer)

    def _run(self, spec: ToolSpec, params: BaseModel, progress: Progress) -> Awaitable[BaseModel | Unfinished]:
        extra: dict[str, Any] = {"host_dirs": self.host_dirs} if spec.host_dirs else {}
        if spec.progress:
            return spec.handler(self.backend, params, progress, **extra)
        return spec.handler(self.backend, params, **extra)

    async def _bounded(
        self, spec: ToolSpec, params: BaseModel, arguments: dict[str, Any], progress: Progress
    ) -> BaseModel | Unfinished | dict[str, Any]:
        async def work(report: Progress) -> BaseModel:
            result = await self._run(spec, params, report)
            return result.current if isinstance(result, Unfinished) else result

        wait_seconds = float(getattr(params, "wait_seconds", 0))
        key = operation_key(spec.name, arguments)
        operation = await self.operations.call(key, work, wait_seconds, progress, heartbeat=not spec.progress)
        if operation.done.is_set():
            return operation.outcome()
        return {**spec.pending(params), "message": self._still_working(spec, operation)}

    def _still_working(self, spec: ToolSpec, operation: Operation) -> str:
        elapsed = anyio.current_time() - operation.started
        doing = f" ({operation.last_message})" if operation.last_message else ""
        environment = ""
        if isinstance(self.engine, DefaultEnvironment) and not self.engine.default_environment_ready():
            environment = " The default environment (Python with pytest, built once per data dir) is still being built."
        return (
            f"{spec.name} is still working after {elapsed:.0f} s{doing}.{environment} Call {spec.name} again with "
            "the same arguments to wait for it: the work goes on meanwhile and is not started twice."
        )


def _answer(answer: BaseModel | Unfinished | dict[str, Any]) -> CallToolResult:
    if isinstance(answer, Unfinished):
        data = {**answer.current.model_dump(mode="json", by_alias=True), "message": answer.message}
    elif isinstance(answer, BaseModel):
        data = answer.model_dump(mode="json", by_alias=True)
    else:
        data = answer
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(data))], structured_content=data)
