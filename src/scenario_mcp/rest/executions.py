"""Executions: run a command (waiting, in the background, or Runloop's legacy sync call), read,
wait for, kill and feed one, and stream its output as server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..backend import Backend, BackendError, OperationTimeoutError
from ..models import ExecutionStatus, ExecutionView
from .common import (
    STREAM_KEEPALIVE_SECONDS,
    ApiError,
    RouteTable,
    backend,
    body,
    error_body,
    json_response,
    model_response,
    path_param,
    query_int,
    sse_event,
)

# Runloop's long-poll bound: an execution wait and `execute`'s optimistic wait hold at most 25 s.
EXECUTION_WAIT_MAX = 25.0
DEFAULT_LAST_N = 100
# An output stream is held open this long, then ends with a 408 `error` event on which Runloop's
# SDK reconnects from the last offset it saw.
STREAM_MAX_SECONDS = 60.0

Stream = Literal["stdout", "stderr"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WaitForExecutionBody(_Body):
    statuses: list[ExecutionStatus] = Field(min_length=1)
    timeout_seconds: float | None = Field(default=None, ge=0)


class ExecuteBody(_Body):
    command: str
    command_id: str | None = None
    shell_name: str | None = None
    optimistic_timeout: float | None = Field(default=None, ge=0)


class ExecuteAsyncBody(_Body):
    command: str
    shell_name: str | None = None
    attach_stdin: bool | None = None


class ExecuteSyncBody(_Body):
    command: str
    shell_name: str | None = None


class KillBody(_Body):
    kill_process_group: bool | None = None


class SendStdinBody(_Body):
    text: str | None = None
    signal: Literal["EOF", "INTERRUPT"] | None = None


def last_lines(view: ExecutionView, last_n: int) -> ExecutionView:
    """Only the last `last_n` lines of each stream inline, as Runloop returns them."""
    update: dict[str, object] = {}
    for stream in ("stdout", "stderr"):
        text = getattr(view, stream)
        if not text:
            continue
        lines = text.splitlines(keepends=True)
        if len(lines) > last_n:
            update[stream] = "".join(lines[-last_n:]) if last_n else ""
            update[f"{stream}_truncated"] = True
    return view.model_copy(update=update) if update else view


def _last_n(request: Request) -> int:
    return query_int(request, "last_n", DEFAULT_LAST_N, minimum=0)


def _ids(request: Request) -> tuple[str, str]:
    return path_param(request, "devbox_id"), path_param(request, "execution_id")


async def execute(request: Request) -> Response:
    devbox_id, last_n = path_param(request, "id"), _last_n(request)
    run = await body(request, ExecuteBody)
    optimistic = min(
        EXECUTION_WAIT_MAX if run.optimistic_timeout is None else run.optimistic_timeout, EXECUTION_WAIT_MAX
    )
    # The backend keeps what a command_id started: a retried request is the same execution.
    started = await backend(request).execute_async(
        devbox_id, run.command, shell_name=run.shell_name, command_id=run.command_id or None
    )
    execution_id = started.execution_id
    try:
        view = await backend(request).wait_for_execution(
            devbox_id, execution_id, statuses=["completed"], timeout_seconds=optimistic
        )
    except OperationTimeoutError:
        # Still running: Runloop answers with the running execution, never kills it.
        view = await backend(request).get_execution(devbox_id, execution_id)
    return model_response(last_lines(view, last_n))


async def execute_async(request: Request) -> Response:
    run = await body(request, ExecuteAsyncBody)
    view = await backend(request).execute_async(
        path_param(request, "id"), run.command, shell_name=run.shell_name, attach_stdin=bool(run.attach_stdin)
    )
    return model_response(view)


async def execute_sync(request: Request) -> Response:
    run = await body(request, ExecuteSyncBody)
    view = await backend(request).execute(path_param(request, "id"), run.command, shell_name=run.shell_name)
    exit_status = view.exit_status if view.exit_status is not None else -1
    return json_response(
        {
            "devbox_id": view.devbox_id,
            "stdout": view.stdout or "",
            "stderr": view.stderr or "",
            "exit_status": exit_status,
            "shell_name": view.shell_name,
        }
    )


async def get_execution(request: Request) -> Response:
    view = await backend(request).get_execution(*_ids(request))
    return model_response(last_lines(view, _last_n(request)))


async def wait_for_execution(request: Request) -> Response:
    last_n = _last_n(request)
    wait = await body(request, WaitForExecutionBody)
    timeout = EXECUTION_WAIT_MAX if wait.timeout_seconds is None else min(wait.timeout_seconds, EXECUTION_WAIT_MAX)
    view = await backend(request).wait_for_execution(
        *_ids(request), statuses=[s.value for s in wait.statuses], timeout_seconds=timeout
    )
    return model_response(last_lines(view, last_n))


async def kill_execution(request: Request) -> Response:
    kill = await body(request, KillBody, required=False)
    view = await backend(request).kill_execution(*_ids(request), kill_process_group=bool(kill.kill_process_group))
    return model_response(last_lines(view, _last_n(request)))


async def send_stdin(request: Request) -> Response:
    send = await body(request, SendStdinBody, required=False)
    if send.text is None and send.signal is None:
        raise ApiError(400, "give text to write to the execution's stdin, or a signal (EOF or INTERRUPT)")
    view = await backend(request).send_stdin(*_ids(request), text=send.text, signal=send.signal)
    return json_response({"devbox_id": view.devbox_id, "execution_id": view.execution_id, "success": True})


async def _output_events(
    backend: Backend, devbox_id: str, execution_id: str, stream: Stream, offset: int
) -> AsyncIterator[bytes]:
    position, delay = offset, 0.01
    now = anyio.current_time()
    deadline, keepalive = now + STREAM_MAX_SECONDS, now + STREAM_KEEPALIVE_SECONDS
    while True:
        try:
            chunk = await backend.execution_output(devbox_id, execution_id, stream=stream, offset=position)
        except BackendError as exc:
            yield sse_event(error_body(exc.status, exc.message), event="error")
            return
        if chunk.output:
            # `offset` is where the next chunk starts: what a reconnecting client sends back.
            yield sse_event({"output": chunk.output, "offset": chunk.next_offset})
            delay = 0.01
        position = chunk.next_offset
        if chunk.done:
            return
        now = anyio.current_time()
        if now >= deadline:
            yield sse_event(
                error_body(408, "stream held for its maximum time; reconnect from the last offset"), event="error"
            )
            return
        if now >= keepalive:
            yield b": keep-alive\n\n"
            keepalive = now + STREAM_KEEPALIVE_SECONDS
        if not chunk.output:
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.2)


async def stream_updates(request: Request, stream: Stream) -> Response:
    devbox_id, execution_id = _ids(request)
    offset = query_int(request, "offset", 0, minimum=0)
    await backend(request).get_execution(devbox_id, execution_id)  # a plain 404 before the stream opens
    return StreamingResponse(
        _output_events(backend(request), devbox_id, execution_id, stream, offset),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


EXECUTION = "/v1/devboxes/{devbox_id}/executions/{execution_id}"
ROUTES: RouteTable = [
    ("POST", "/v1/devboxes/{id}/execute", execute),
    ("POST", "/v1/devboxes/{id}/execute_async", execute_async),
    ("POST", "/v1/devboxes/{id}/execute_sync", execute_sync),
    ("GET", EXECUTION, get_execution),
    ("POST", EXECUTION + "/wait_for_status", wait_for_execution),
    ("POST", EXECUTION + "/kill", kill_execution),
    ("POST", EXECUTION + "/send_std_in", send_stdin),
    ("GET", EXECUTION + "/stream_stdout_updates", partial(stream_updates, stream="stdout")),
    ("GET", EXECUTION + "/stream_stderr_updates", partial(stream_updates, stream="stderr")),
]
