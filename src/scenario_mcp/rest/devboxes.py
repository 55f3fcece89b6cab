"""Devboxes, executions, files, disk snapshots, logs and blueprints: Runloop's paths over a Backend."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from ..backend import Backend, BackendError, OperationTimeoutError
from ..models import (
    BlueprintCreateParameters,
    BlueprintListView,
    BlueprintView,
    DevboxCreateParameters,
    DevboxSnapshotListView,
    DevboxSnapshotView,
    DevboxStatus,
    ExecutionStatus,
    ExecutionView,
    Metadata,
)
from .common import (
    ApiError,
    body,
    error_body,
    json_response,
    model_response,
    page_of,
    path_param,
    query_bool,
    query_int,
    query_limit,
    query_str,
    scan,
)

# Runloop's long-poll bounds: a devbox status wait holds at most 30 s (10 s by default), an
# execution wait and `execute`'s optimistic wait at most 25 s.
DEVBOX_WAIT_MAX, DEVBOX_WAIT_DEFAULT = 30.0, 10.0
EXECUTION_WAIT_MAX = 25.0
DEFAULT_LAST_N = 100
# An output stream is held open this long, then ends with a 408 `error` event on which Runloop's
# SDK reconnects from the last offset it saw.
STREAM_MAX_SECONDS = 60.0
STREAM_KEEPALIVE_SECONDS = 15.0
MAX_UPLOAD_BYTES = 256 * 1024 * 1024
COMMAND_IDS_KEPT = 10_000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WaitForDevboxBody(_Body):
    statuses: list[DevboxStatus] = Field(min_length=1)
    timeout_seconds: float | None = Field(default=None, ge=0)


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


class ReadFileBody(_Body):
    file_path: str


class WriteFileBody(_Body):
    file_path: str
    contents: str


class DownloadFileBody(_Body):
    path: str


class DevboxUpdateBody(_Body):
    name: str | None = None
    metadata: Metadata | None = None


class SnapshotBody(_Body):
    name: str | None = None
    metadata: Metadata | None = None
    commit_message: str | None = None


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


def _sse(data: dict[str, object], event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def routes(backend: Backend) -> list[Route]:
    # execute's command_id makes a retried request idempotent: the same id, the same execution.
    command_ids: OrderedDict[tuple[str, str], str] = OrderedDict()

    # --- lifecycle -------------------------------------------------------------------------------

    async def create_devbox(request: Request) -> Response:
        return model_response(await backend.create_devbox(await body(request, DevboxCreateParameters, required=False)))

    async def list_devboxes(request: Request) -> Response:
        status = query_str(request, "status")
        if status is not None and status not in {s.value for s in DevboxStatus}:
            raise ApiError(400, f"unknown devbox status {status!r}; one of {', '.join(s.value for s in DevboxStatus)}")
        page = await backend.list_devboxes(
            limit=query_limit(request), starting_after=query_str(request, "starting_after"), status=status
        )
        if not query_bool(request, "include_total_count", True):
            page = page.model_copy(update={"total_count": None})
        return model_response(page)

    async def get_devbox(request: Request) -> Response:
        return model_response(await backend.get_devbox(path_param(request, "id")))

    async def update_devbox(request: Request) -> Response:
        update = await body(request, DevboxUpdateBody, required=False)
        view = await backend.update_devbox(path_param(request, "id"), name=update.name, metadata=update.metadata)
        return model_response(view)

    async def wait_for_status(request: Request) -> Response:
        wait = await body(request, WaitForDevboxBody)
        timeout = DEVBOX_WAIT_DEFAULT if wait.timeout_seconds is None else min(wait.timeout_seconds, DEVBOX_WAIT_MAX)
        view = await backend.wait_for_devbox_status(
            path_param(request, "id"), [s.value for s in wait.statuses], timeout_seconds=timeout
        )
        return model_response(view)

    async def shutdown(request: Request) -> Response:
        query_bool(request, "force", False)  # snapshots here finish before they answer: nothing to force
        return model_response(await backend.shutdown_devbox(path_param(request, "id")))

    async def suspend(request: Request) -> Response:
        return model_response(await backend.suspend_devbox(path_param(request, "id")))

    async def resume(request: Request) -> Response:
        return model_response(await backend.resume_devbox(path_param(request, "id")))

    async def keep_alive(request: Request) -> Response:
        return model_response(await backend.keep_alive_devbox(path_param(request, "id")))

    async def devbox_logs(request: Request) -> Response:
        logs = await backend.devbox_logs(path_param(request, "id"), execution_id=query_str(request, "execution_id"))
        return model_response(logs)

    # --- execution -------------------------------------------------------------------------------

    async def execute(request: Request) -> Response:
        devbox_id = path_param(request, "id")
        last_n = _last_n(request)
        run = await body(request, ExecuteBody)
        optimistic = (
            EXECUTION_WAIT_MAX if run.optimistic_timeout is None else min(run.optimistic_timeout, EXECUTION_WAIT_MAX)
        )
        key = (devbox_id, run.command_id) if run.command_id else None
        execution_id = command_ids.get(key) if key else None
        if execution_id is None:
            started = await backend.execute_async(devbox_id, run.command, shell_name=run.shell_name)
            execution_id = started.execution_id
            if key:
                command_ids[key] = execution_id
                while len(command_ids) > COMMAND_IDS_KEPT:
                    command_ids.popitem(last=False)
        try:
            view = await backend.wait_for_execution(
                devbox_id, execution_id, statuses=["completed"], timeout_seconds=optimistic
            )
        except OperationTimeoutError:
            # Still running: Runloop answers with the running execution, never kills it.
            view = await backend.get_execution(devbox_id, execution_id)
        return model_response(last_lines(view, last_n))

    async def execute_async(request: Request) -> Response:
        run = await body(request, ExecuteAsyncBody)
        view = await backend.execute_async(
            path_param(request, "id"), run.command, shell_name=run.shell_name, attach_stdin=bool(run.attach_stdin)
        )
        return model_response(view)

    async def execute_sync(request: Request) -> Response:
        run = await body(request, ExecuteSyncBody)
        view = await backend.execute(path_param(request, "id"), run.command, shell_name=run.shell_name)
        return json_response(
            {
                "devbox_id": view.devbox_id,
                "stdout": view.stdout or "",
                "stderr": view.stderr or "",
                "exit_status": view.exit_status if view.exit_status is not None else -1,
                "shell_name": view.shell_name,
            }
        )

    async def get_execution(request: Request) -> Response:
        view = await backend.get_execution(path_param(request, "devbox_id"), path_param(request, "execution_id"))
        return model_response(last_lines(view, _last_n(request)))

    async def wait_for_execution(request: Request) -> Response:
        last_n = _last_n(request)
        wait = await body(request, WaitForExecutionBody)
        timeout = EXECUTION_WAIT_MAX if wait.timeout_seconds is None else min(wait.timeout_seconds, EXECUTION_WAIT_MAX)
        view = await backend.wait_for_execution(
            path_param(request, "devbox_id"),
            path_param(request, "execution_id"),
            statuses=[s.value for s in wait.statuses],
            timeout_seconds=timeout,
        )
        return model_response(last_lines(view, last_n))

    async def kill_execution(request: Request) -> Response:
        kill = await body(request, KillBody, required=False)
        view = await backend.kill_execution(
            path_param(request, "devbox_id"),
            path_param(request, "execution_id"),
            kill_process_group=bool(kill.kill_process_group),
        )
        return model_response(last_lines(view, _last_n(request)))

    async def send_stdin(request: Request) -> Response:
        send = await body(request, SendStdinBody, required=False)
        if send.text is None and send.signal is None:
            raise ApiError(400, "give text to write to the execution's stdin, or a signal (EOF or INTERRUPT)")
        view = await backend.send_stdin(
            path_param(request, "devbox_id"), path_param(request, "execution_id"), text=send.text, signal=send.signal
        )
        return json_response({"devbox_id": view.devbox_id, "execution_id": view.execution_id, "success": True})

    def stream_route(stream: Literal["stdout", "stderr"]) -> Route:
        async def stream_updates(request: Request) -> Response:
            devbox_id, execution_id = path_param(request, "devbox_id"), path_param(request, "execution_id")
            offset = query_int(request, "offset", 0, minimum=0)
            await backend.get_execution(devbox_id, execution_id)  # a plain 404 before the stream opens

            async def events() -> AsyncIterator[bytes]:
                position, delay = offset, 0.01
                now = anyio.current_time()
                deadline, keepalive = now + STREAM_MAX_SECONDS, now + STREAM_KEEPALIVE_SECONDS
                while True:
                    try:
                        chunk = await backend.execution_output(devbox_id, execution_id, stream=stream, offset=position)
                    except BackendError as exc:
                        yield _sse(error_body(exc.status, exc.message), event="error")
                        return
                    if chunk.output:
                        # `offset` is where the next chunk starts: what a reconnecting client sends back.
                        yield _sse({"output": chunk.output, "offset": chunk.next_offset})
                        delay = 0.01
                    position = chunk.next_offset
                    if chunk.done:
                        return
                    now = anyio.current_time()
                    if now >= deadline:
                        yield _sse(
                            error_body(408, "stream held for its maximum time; reconnect from the last offset"),
                            event="error",
                        )
                        return
                    if now >= keepalive:
                        yield b": keep-alive\n\n"
                        keepalive = now + STREAM_KEEPALIVE_SECONDS
                    if not chunk.output:
                        await anyio.sleep(delay)
                        delay = min(delay * 2, 0.2)

            return StreamingResponse(
                events(),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            )

        return Route(
            f"/v1/devboxes/{{devbox_id}}/executions/{{execution_id}}/stream_{stream}_updates",
            stream_updates,
            methods=["GET"],
        )

    # --- files -----------------------------------------------------------------------------------

    async def read_file(request: Request) -> Response:
        read = await body(request, ReadFileBody)
        return PlainTextResponse(await backend.read_file(path_param(request, "id"), read.file_path))

    async def write_file(request: Request) -> Response:
        devbox_id = path_param(request, "id")
        write = await body(request, WriteFileBody)
        await backend.write_file(devbox_id, write.file_path, write.contents)
        return json_response({"devbox_id": devbox_id, "stdout": "", "stderr": "", "exit_status": 0, "shell_name": None})

    async def upload_file(request: Request) -> Response:
        devbox_id = path_param(request, "id")
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise ApiError(415, "upload_file takes multipart/form-data with fields `path` and `file`")
        async with request.form() as form:  # file parts spool to disk; other fields stay small
            path, upload = form.get("path"), form.get("file")
            if not isinstance(path, str) or not path:
                raise ApiError(
                    400, "path: required form field missing (where to write the file, relative to the home dir)"
                )
            if not isinstance(upload, UploadFile):
                raise ApiError(400, "file: required form field missing (the file's contents, as a file part)")
            data = await upload.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise ApiError(413, f"file is larger than {MAX_UPLOAD_BYTES} bytes")
        await backend.upload_file(devbox_id, path, data)
        return json_response({})

    async def download_file(request: Request) -> Response:
        download = await body(request, DownloadFileBody)
        data = await backend.download_file(path_param(request, "id"), download.path)
        return Response(data, media_type="application/octet-stream")

    # --- snapshots -------------------------------------------------------------------------------

    async def snapshot_disk(request: Request) -> Response:
        snap = await body(request, SnapshotBody, required=False)
        view = await backend.snapshot_disk(
            path_param(request, "id"), name=snap.name, metadata=snap.metadata, commit_message=snap.commit_message
        )
        return model_response(view)

    async def list_snapshots(request: Request) -> Response:
        limit, after = query_limit(request), query_str(request, "starting_after")
        devbox_id, blueprint_id = query_str(request, "devbox_id"), query_str(request, "source_blueprint_id")
        # metadata[key]=value, and metadata[key][in]=a,b for any of several values.
        wanted: dict[str, set[str]] = {}
        for name, value in request.query_params.multi_items():
            if name.startswith("metadata[") and name.endswith("]"):
                key = name[len("metadata[") : -1]
                if key.endswith("][in"):
                    wanted.setdefault(key[: -len("][in")], set()).update(value.split(","))
                else:
                    wanted.setdefault(key, set()).add(value)
        if blueprint_id is None and not wanted:
            page = await backend.list_snapshots(limit=limit, starting_after=after, devbox_id=devbox_id)
            return model_response(page)

        async def fetch(n: int, cursor: str | None) -> tuple[list[DevboxSnapshotView], bool]:
            p = await backend.list_snapshots(limit=n, starting_after=cursor, devbox_id=devbox_id)
            return p.snapshots, p.has_more

        found = [
            s
            for s in await scan(fetch)
            if (blueprint_id is None or s.source_blueprint_id == blueprint_id)
            and all(s.metadata.get(k) in values for k, values in wanted.items())
        ]
        window, has_more, total = page_of(found, limit=limit, starting_after=after)
        return model_response(DevboxSnapshotListView(snapshots=window, has_more=has_more, total_count=total))

    async def get_snapshot(request: Request) -> Response:
        return model_response(await backend.get_snapshot(path_param(request, "id")))

    async def update_snapshot(request: Request) -> Response:
        snap = await body(request, SnapshotBody, required=False)
        view = await backend.update_snapshot(
            path_param(request, "id"), name=snap.name, metadata=snap.metadata, commit_message=snap.commit_message
        )
        return model_response(view)

    async def snapshot_status(request: Request) -> Response:
        # Snapshots here are made before snapshot_disk_async answers: any that exists is complete.
        snapshot = await backend.get_snapshot(path_param(request, "id"))
        return json_response(
            {"status": "complete", "snapshot": snapshot.model_dump(mode="json"), "error_message": None}
        )

    async def delete_snapshot(request: Request) -> Response:
        await backend.delete_snapshot(path_param(request, "id"))
        return json_response({})

    # --- blueprints ------------------------------------------------------------------------------

    async def create_blueprint(request: Request) -> Response:
        return model_response(await backend.create_blueprint(await body(request, BlueprintCreateParameters)))

    async def list_blueprints(request: Request) -> Response:
        limit, after, name = query_limit(request), query_str(request, "starting_after"), query_str(request, "name")
        if name is None:
            return model_response(await backend.list_blueprints(limit=limit, starting_after=after))

        async def fetch(n: int, cursor: str | None) -> tuple[list[BlueprintView], bool]:
            p = await backend.list_blueprints(limit=n, starting_after=cursor)
            return p.blueprints, p.has_more

        found = [b for b in await scan(fetch) if b.name == name]
        window, has_more, total = page_of(found, limit=limit, starting_after=after)
        return model_response(BlueprintListView(blueprints=window, has_more=has_more, total_count=total))

    async def get_blueprint(request: Request) -> Response:
        return model_response(await backend.get_blueprint(path_param(request, "id")))

    async def blueprint_logs(request: Request) -> Response:
        return model_response(await backend.blueprint_logs(path_param(request, "id")))

    async def delete_blueprint(request: Request) -> Response:
        await backend.delete_blueprint(path_param(request, "id"))
        return json_response({})

    execution = "/v1/devboxes/{devbox_id}/executions/{execution_id}"
    return [
        Route("/v1/devboxes", create_devbox, methods=["POST"]),
        Route("/v1/devboxes", list_devboxes, methods=["GET"]),
        Route("/v1/devboxes/disk_snapshots", list_snapshots, methods=["GET"]),
        Route("/v1/devboxes/disk_snapshots/{id}", get_snapshot, methods=["GET"]),
        Route("/v1/devboxes/disk_snapshots/{id}", update_snapshot, methods=["POST"]),
        Route("/v1/devboxes/disk_snapshots/{id}/status", snapshot_status, methods=["GET"]),
        Route("/v1/devboxes/disk_snapshots/{id}/delete", delete_snapshot, methods=["POST"]),
        Route("/v1/devboxes/{id}", get_devbox, methods=["GET"]),
        Route("/v1/devboxes/{id}", update_devbox, methods=["POST"]),
        Route("/v1/devboxes/{id}/wait_for_status", wait_for_status, methods=["POST"]),
        Route("/v1/devboxes/{id}/shutdown", shutdown, methods=["POST"]),
        Route("/v1/devboxes/{id}/suspend", suspend, methods=["POST"]),
        Route("/v1/devboxes/{id}/resume", resume, methods=["POST"]),
        Route("/v1/devboxes/{id}/keep_alive", keep_alive, methods=["POST"]),
        Route("/v1/devboxes/{id}/logs", devbox_logs, methods=["GET"]),
        Route("/v1/devboxes/{id}/execute", execute, methods=["POST"]),
        Route("/v1/devboxes/{id}/execute_async", execute_async, methods=["POST"]),
        Route("/v1/devboxes/{id}/execute_sync", execute_sync, methods=["POST"]),
        Route(execution, get_execution, methods=["GET"]),
        Route(execution + "/wait_for_status", wait_for_execution, methods=["POST"]),
        Route(execution + "/kill", kill_execution, methods=["POST"]),
        Route(execution + "/send_std_in", send_stdin, methods=["POST"]),
        stream_route("stdout"),
        stream_route("stderr"),
        Route("/v1/devboxes/{id}/read_file_contents", read_file, methods=["POST"]),
        Route("/v1/devboxes/{id}/write_file_contents", write_file, methods=["POST"]),
        Route("/v1/devboxes/{id}/upload_file", upload_file, methods=["POST"]),
        Route("/v1/devboxes/{id}/download_file", download_file, methods=["POST"]),
        Route("/v1/devboxes/{id}/snapshot_disk", snapshot_disk, methods=["POST"]),
        Route("/v1/devboxes/{id}/snapshot_disk_async", snapshot_disk, methods=["POST"]),
        Route("/v1/blueprints", create_blueprint, methods=["POST"]),
        Route("/v1/blueprints", list_blueprints, methods=["GET"]),
        Route("/v1/blueprints/{id}", get_blueprint, methods=["GET"]),
        Route("/v1/blueprints/{id}/logs", blueprint_logs, methods=["GET"]),
        Route("/v1/blueprints/{id}/delete", delete_blueprint, methods=["POST"]),
    ]
