"""Devboxes: create, list, read, update, wait for a status, the lifecycle verbs, and their logs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..backend import Backend, BackendError
from ..models import DevboxCreateParameters, DevboxStatus, Metadata
from .common import (
    STREAM_KEEPALIVE_SECONDS,
    RouteTable,
    backend,
    body,
    error_body,
    json_response,
    model_response,
    path_param,
    query_bool,
    query_limit,
    query_str,
    sse_event,
)

# Runloop's long-poll bounds: a devbox status wait holds at most 30 s, 10 s by default.
DEVBOX_WAIT_MAX, DEVBOX_WAIT_DEFAULT = 30.0, 10.0


class WaitForDevboxBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    statuses: list[DevboxStatus] = Field(min_length=1)
    timeout_seconds: float | None = Field(default=None, ge=0)


class DevboxUpdateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    metadata: Metadata | None = None


async def create_devbox(request: Request) -> Response:
    params = await body(request, DevboxCreateParameters, required=False)
    return model_response(await backend(request).create_devbox(params))


async def create_and_await_running(request: Request) -> Response:
    """SDK 1.32's `devboxes.create_and_await_running` posts here (not in the OpenAPI): a create
    answered once the devbox runs."""
    params = await body(request, DevboxCreateParameters, required=False)
    engine = backend(request)
    created = await engine.create_devbox(params)
    return model_response(await engine.wait_for_devbox_status(created.id, ["running", "failure", "shutdown"]))


async def list_devboxes(request: Request) -> Response:
    page = await backend(request).list_devboxes(
        limit=query_limit(request),
        starting_after=query_str(request, "starting_after"),
        status=query_str(request, "status"),
    )
    if not query_bool(request, "include_total_count", True):
        page = page.model_copy(update={"total_count": None})
    return model_response(page)


async def get_devbox(request: Request) -> Response:
    return model_response(await backend(request).get_devbox(path_param(request, "id")))


async def update_devbox(request: Request) -> Response:
    update = await body(request, DevboxUpdateBody, required=False)
    view = await backend(request).update_devbox(path_param(request, "id"), name=update.name, metadata=update.metadata)
    return model_response(view)


async def wait_for_status(request: Request) -> Response:
    wait = await body(request, WaitForDevboxBody)
    timeout = DEVBOX_WAIT_DEFAULT if wait.timeout_seconds is None else min(wait.timeout_seconds, DEVBOX_WAIT_MAX)
    view = await backend(request).wait_for_devbox_status(
        path_param(request, "id"), [s.value for s in wait.statuses], timeout_seconds=timeout
    )
    return model_response(view)


async def shutdown(request: Request) -> Response:
    query_bool(request, "force", False)  # snapshots here finish before they answer: nothing to force
    return model_response(await backend(request).shutdown_devbox(path_param(request, "id")))


async def suspend(request: Request) -> Response:
    return model_response(await backend(request).suspend_devbox(path_param(request, "id")))


async def resume(request: Request) -> Response:
    return model_response(await backend(request).resume_devbox(path_param(request, "id")))


async def keep_alive(request: Request) -> Response:
    await backend(request).keep_alive_devbox(path_param(request, "id"))
    return json_response({})  # Runloop's EmptyRecord


async def devbox_logs(request: Request) -> Response:
    logs = await backend(request).devbox_logs(
        path_param(request, "id"),
        execution_id=query_str(request, "execution_id"),
        shell_name=query_str(request, "shell_name"),
    )
    return model_response(logs)


async def devbox_usage(request: Request) -> Response:
    return model_response(await backend(request).devbox_usage(path_param(request, "id")))


# How often a log tail looks for new entries.
TAIL_POLL_SECONDS = 0.2
ENDED = ("shutdown", "failure")


async def _log_events(
    engine: Backend, devbox_id: str, execution_id: str | None, shell_name: str | None
) -> AsyncIterator[bytes]:
    """Each log entry as an SSE event: the past ones, then new ones as they come (an execution's
    entry again once it finishes, with its exit code), until the devbox ends or the client leaves."""
    sent: set[tuple[str | None, int | None, int]] = set()
    keepalive = anyio.current_time() + STREAM_KEEPALIVE_SECONDS
    while True:
        try:
            ended = (await engine.get_devbox(devbox_id)).status.value in ENDED
            logs = (await engine.devbox_logs(devbox_id, execution_id=execution_id, shell_name=shell_name)).logs
        except BackendError as exc:
            yield sse_event(error_body(exc.status, exc.message), event="error")
            return
        for entry in logs:
            key = (entry.cmd_id, entry.exit_code, entry.timestamp_ms)
            if key not in sent:
                sent.add(key)
                yield sse_event(entry.model_dump())
        if ended:  # its status was read before its logs: nothing comes after those
            return
        if anyio.current_time() >= keepalive:
            yield b": keep-alive\n\n"
            keepalive = anyio.current_time() + STREAM_KEEPALIVE_SECONDS
        await anyio.sleep(TAIL_POLL_SECONDS)


async def tail_devbox_logs(request: Request) -> Response:
    devbox_id = path_param(request, "id")
    await backend(request).get_devbox(devbox_id)  # a plain 404 before the stream opens
    return StreamingResponse(
        _log_events(backend(request), devbox_id, query_str(request, "execution_id"), query_str(request, "shell_name")),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


ROUTES: RouteTable = [
    ("POST", "/v1/devboxes", create_devbox),
    ("POST", "/v1/devboxes/create_and_await_running", create_and_await_running),
    ("GET", "/v1/devboxes", list_devboxes),
    ("GET", "/v1/devboxes/{id}", get_devbox),
    ("POST", "/v1/devboxes/{id}", update_devbox),
    ("POST", "/v1/devboxes/{id}/wait_for_status", wait_for_status),
    ("POST", "/v1/devboxes/{id}/shutdown", shutdown),
    ("POST", "/v1/devboxes/{id}/suspend", suspend),
    ("POST", "/v1/devboxes/{id}/resume", resume),
    ("POST", "/v1/devboxes/{id}/keep_alive", keep_alive),
    ("GET", "/v1/devboxes/{id}/logs", devbox_logs),
    ("GET", "/v1/devboxes/{id}/logs/tail", tail_devbox_logs),
    ("GET", "/v1/devboxes/{id}/usage", devbox_usage),
]
