"""Blueprints, devboxes, the commands run in them and their files."""

from __future__ import annotations

import anyio.to_thread

from ...backend import Backend, InvalidRequestError, OperationTimeoutError
from ...models import (
    BUILD_ENDED,
    BlueprintBuildLogsListView,
    BlueprintCreateParameters,
    BlueprintListView,
    BlueprintView,
    DevboxCreateParameters,
    DevboxListView,
    DevboxSnapshotView,
    DevboxView,
    ExecutionOutputChunk,
    ExecutionStatus,
    ExecutionView,
    ObjectContext,
    ObjectCreateParameters,
)
from ..host_dirs import HostDirs, pack_directory
from .agents import runloop_mounts
from .inputs import (
    BlueprintIdInput,
    CreateBlueprintInput,
    CreateDevboxInput,
    DevboxIdInput,
    DirectoryListing,
    ExecuteAsyncInput,
    ExecuteInput,
    ExecutionIdInput,
    ExecutionOutputInput,
    FileContents,
    FileWritten,
    GetBlueprintInput,
    GetExecutionInput,
    ListBlueprintsInput,
    ListDevboxesInput,
    ListFilesInput,
    ReadFileInput,
    SendStdinInput,
    SnapshotDevboxInput,
    WriteFileInput,
)
from .shapes import runloop_shape
from .spec import Progress, Unfinished
from .waiting import wait_for_build

# --- blueprints and devboxes -----------------------------------------------------------------------

CONTEXT_TTL_MS = 24 * 3600 * 1000  # a packed build context is kept a day: long enough for its build


async def create_blueprint(
    backend: Backend, params: CreateBlueprintInput, progress: Progress, *, host_dirs: HostDirs
) -> BlueprintView | Unfinished:
    """Start the build (and, with wait_seconds, wait for it, reporting its progress); a build
    context named by path is packed and uploaded as an object first."""
    given = params.model_dump(
        exclude_none=True, exclude={"build_context_path", "build_context_object_id", "wait_seconds"}
    )
    blueprint = BlueprintCreateParameters.model_validate(runloop_shape(given))
    if params.build_context_object_id is not None:
        blueprint = blueprint.model_copy(
            update={"build_context": ObjectContext(object_id=params.build_context_object_id)}
        )
    if params.build_context_path is not None:
        if params.build_context_object_id is not None:
            raise InvalidRequestError("give build_context_path or build_context_object_id, not both")
        directory = host_dirs.resolve(params.build_context_path)
        archive = await anyio.to_thread.run_sync(pack_directory, directory)
        uploaded = await backend.create_object(
            ObjectCreateParameters(name=f"{params.name}-build-context", content_type="tgz", ttl_ms=CONTEXT_TTL_MS)
        )
        await backend.upload_object(uploaded.id, archive)
        await backend.complete_object(uploaded.id)
        blueprint = blueprint.model_copy(update={"build_context": ObjectContext(object_id=uploaded.id)})
    view = await backend.create_blueprint(blueprint)
    if params.wait_seconds <= 0:
        return view  # `queued`, at once, as Runloop answers
    return await _built(backend, view.id, params.wait_seconds, progress)


async def get_blueprint(backend: Backend, params: GetBlueprintInput, progress: Progress) -> BlueprintView | Unfinished:
    return await _built(backend, params.blueprint_id, params.wait_seconds, progress)


async def _built(
    backend: Backend, blueprint_id: str, wait_seconds: float, progress: Progress
) -> BlueprintView | Unfinished:
    view = await wait_for_build(backend, blueprint_id, wait_seconds, progress)
    if view.status in BUILD_ENDED:
        return view
    return Unfinished(view, f"still {view.status}: call get_blueprint with wait_seconds to wait for it")


async def get_blueprint_logs(backend: Backend, params: BlueprintIdInput) -> BlueprintBuildLogsListView:
    return await backend.blueprint_logs(params.blueprint_id)


async def list_blueprints(backend: Backend, params: ListBlueprintsInput) -> BlueprintListView:
    return await backend.list_blueprints(limit=params.limit, starting_after=params.starting_after, name=params.name)


async def create_devbox(backend: Backend, params: CreateDevboxInput) -> DevboxView:
    given = params.model_dump(exclude_none=True, exclude={"wait_seconds", "mounts"})
    request = DevboxCreateParameters.model_validate(runloop_shape(given))
    mounts = runloop_mounts(getattr(params, "mounts", None))  # an input of the agents toolset
    return await backend.create_devbox(request.model_copy(update={"mounts": mounts}) if mounts else request)


async def get_devbox(backend: Backend, params: DevboxIdInput) -> DevboxView:
    return await backend.get_devbox(params.devbox_id)


async def list_devboxes(backend: Backend, params: ListDevboxesInput) -> DevboxListView:
    status = params.status.value if params.status else None
    return await backend.list_devboxes(limit=params.limit, starting_after=params.starting_after, status=status)


async def shutdown_devbox(backend: Backend, params: DevboxIdInput) -> DevboxView:
    return await backend.shutdown_devbox(params.devbox_id)


async def suspend_devbox(backend: Backend, params: DevboxIdInput) -> DevboxView:
    return await backend.suspend_devbox(params.devbox_id)


async def resume_devbox(backend: Backend, params: DevboxIdInput) -> DevboxView:
    return await backend.resume_devbox(params.devbox_id)


async def snapshot_devbox(backend: Backend, params: SnapshotDevboxInput) -> DevboxSnapshotView:
    metadata = None if params.metadata is None else {pair.key: pair.value for pair in params.metadata}
    return await backend.snapshot_disk(
        params.devbox_id, name=params.name, metadata=metadata, commit_message=params.commit_message
    )


# --- execution -------------------------------------------------------------------------------------


async def execute_on_devbox(backend: Backend, params: ExecuteInput) -> ExecutionView:
    return await backend.execute(
        params.devbox_id,
        params.command,
        timeout_seconds=params.timeout_seconds,
        working_directory=params.working_directory,
        shell_name=params.shell_name,
    )


async def execute_async(backend: Backend, params: ExecuteAsyncInput) -> ExecutionView:
    return await backend.execute_async(
        params.devbox_id,
        params.command,
        timeout_seconds=params.timeout_seconds,
        working_directory=params.working_directory,
        shell_name=params.shell_name,
        attach_stdin=params.attach_stdin,
    )


async def get_execution(backend: Backend, params: GetExecutionInput) -> ExecutionView | Unfinished:
    if params.wait_seconds <= 0:
        view = await backend.get_execution(params.devbox_id, params.execution_id)
    else:
        try:
            view = await backend.wait_for_execution(
                params.devbox_id, params.execution_id, statuses=["completed"], timeout_seconds=params.wait_seconds
            )
        except OperationTimeoutError:
            # Still running is an answer, not an error: the caller sees `running` and may wait again.
            view = await backend.get_execution(params.devbox_id, params.execution_id)
    if view.status == ExecutionStatus.COMPLETED:
        return view
    return Unfinished(view, f"still {view.status.value}: call get_execution with wait_seconds to wait for it")


async def kill_execution(backend: Backend, params: ExecutionIdInput) -> ExecutionView:
    return await backend.kill_execution(params.devbox_id, params.execution_id)


async def send_execution_stdin(backend: Backend, params: SendStdinInput) -> ExecutionView:
    return await backend.send_stdin(params.devbox_id, params.execution_id, text=params.text, signal=params.signal)


async def read_execution_output(backend: Backend, params: ExecutionOutputInput) -> ExecutionOutputChunk:
    return await backend.execution_output(
        params.devbox_id, params.execution_id, stream=params.stream, offset=params.offset
    )


# --- files -----------------------------------------------------------------------------------------


async def read_devbox_file(backend: Backend, params: ReadFileInput) -> FileContents:
    contents = await backend.read_file(params.devbox_id, params.file_path)
    return FileContents(file_path=params.file_path, contents=contents)


async def write_devbox_file(backend: Backend, params: WriteFileInput) -> FileWritten:
    await backend.write_file(params.devbox_id, params.file_path, params.contents)
    return FileWritten(file_path=params.file_path, bytes_written=len(params.contents.encode("utf-8")))


async def list_devbox_files(backend: Backend, params: ListFilesInput) -> DirectoryListing:
    entries = await backend.list_files(params.devbox_id, params.path)
    return DirectoryListing(devbox_id=params.devbox_id, path=params.path, entries=entries)
