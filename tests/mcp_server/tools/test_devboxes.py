"""The blueprint, devbox, execution and file tools (tools/devboxes.py): through a real in-memory
mcp.Client over a real LocalBackend, and the functions called directly."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import BlobResourceContents, TextResourceContents

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.host_dirs import HostDirs
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.mcp_server.tools.devboxes import (
    create_devbox,
    execute_async,
    execute_on_devbox,
    get_execution,
    kill_execution,
    list_devbox_files,
    list_devboxes,
    read_devbox_file,
    shutdown_devbox,
    write_devbox_file,
)
from scenario_mcp.mcp_server.tools.inputs import (
    CreateDevboxInput,
    DevboxIdInput,
    DirectoryListing,
    ExecuteAsyncInput,
    ExecuteInput,
    ExecutionIdInput,
    FileContents,
    FileWritten,
    GetExecutionInput,
    ListDevboxesInput,
    ListFilesInput,
    ReadFileInput,
    WriteFileInput,
)
from scenario_mcp.mcp_server.tools.spec import Unfinished
from scenario_mcp.models import DevboxStatus, ExecutionView

from ...local.oci_registry import Pusher, busybox_layer, directory, file, make_tar
from ..helpers import Progress, error_text, ok

pytestmark = pytest.mark.anyio


async def test_devbox_tools_and_files(backend: LocalBackend) -> None:
    async with Client(build_server(backend, toolsets=["all"])) as client:
        box = await ok(client, "create_devbox", name="files")
        listed = await ok(client, "list_devboxes", status="running")
        assert box["id"] in [d["id"] for d in listed["devboxes"]]
        await ok(client, "write_devbox_file", devbox_id=box["id"], file_path="pkg/mod.py", contents="X = 1\n")
        await ok(client, "execute_on_devbox", devbox_id=box["id"], command="printf '\\x00\\xff\\x01' > pkg/data.bin")
        entries = (await ok(client, "list_devbox_files", devbox_id=box["id"]))["entries"]
        assert "pkg/" in entries
        inside = await ok(client, "list_devbox_files", devbox_id=box["id"], path="pkg")
        assert inside["entries"] == ["data.bin", "mod.py"]

        text = await client.read_resource(f"devbox://{box['id']}/files/pkg/mod.py")
        assert isinstance(text.contents[0], TextResourceContents)
        assert text.contents[0].text == "X = 1\n" and text.contents[0].mime_type == "text/x-python"
        blob = await client.read_resource(f"devbox://{box['id']}/files/pkg/data.bin")
        assert isinstance(blob.contents[0], BlobResourceContents)
        assert base64.b64decode(blob.contents[0].blob) == b"\x00\xff\x01"
        with pytest.raises(MCPError, match=r"missing\.py"):
            await client.read_resource(f"devbox://{box['id']}/files/pkg/missing.py")
        with pytest.raises(MCPError):
            await client.read_resource(f"devbox://{box['id']}/files/../../etc/shadow")

        assert (await ok(client, "suspend_devbox", devbox_id=box["id"]))["status"] == "suspended"
        refused = await client.call_tool("execute_on_devbox", {"devbox_id": box["id"], "command": "true"})
        assert refused.is_error and "suspended" in str(refused.content)
        assert (await ok(client, "resume_devbox", devbox_id=box["id"]))["status"] == "running"

        snap = await ok(client, "snapshot_devbox", devbox_id=box["id"], name="with-files", commit_message="files")
        assert snap["source_devbox_id"] == box["id"]
        gone = await ok(client, "shutdown_devbox", devbox_id=box["id"])
        assert gone["status"] == "shutdown"
        assert (await ok(client, "get_devbox", devbox_id=box["id"]))["status"] == "shutdown"
        blueprints = await ok(client, "list_blueprints")
        assert blueprints["blueprints"], "the default blueprint is listed"


async def test_async_executions_stdin_kill_and_output(backend: LocalBackend) -> None:
    async with Client(build_server(backend, toolsets=["all"])) as client:
        box = (await ok(client, "create_devbox"))["id"]
        started = await ok(
            client,
            "execute_async",
            devbox_id=box,
            command="read line; echo got $line; cat > /dev/null",
            attach_stdin=True,
        )
        assert started["status"] == "running"
        exe = started["execution_id"]
        await ok(client, "send_execution_stdin", devbox_id=box, execution_id=exe, text="hello\n", signal="EOF")
        done = await ok(client, "get_execution", devbox_id=box, execution_id=exe, wait_seconds=20)
        assert done["status"] == "completed" and done["exit_status"] == 0 and done["stdout"] == "got hello\n"
        chunk = await ok(client, "read_execution_output", devbox_id=box, execution_id=exe)
        assert chunk["output"] == "got hello\n"

        sleeper = (await ok(client, "execute_async", devbox_id=box, command="sleep 60"))["execution_id"]
        still = await ok(client, "get_execution", devbox_id=box, execution_id=sleeper, wait_seconds=0.2)
        assert still["status"] == "running"  # a bounded wait is an answer, not an error
        killed = await ok(client, "kill_execution", devbox_id=box, execution_id=sleeper)
        final = await ok(client, "get_execution", devbox_id=box, execution_id=sleeper, wait_seconds=10)
        assert final["status"] == "completed" and final["exit_status"] != 0, (killed, final)

        await ok(client, "execute_on_devbox", devbox_id=box, command="cd /tmp && export V=7", shell_name="term")
        shell = await ok(client, "execute_on_devbox", devbox_id=box, command="echo $PWD $V", shell_name="term")
        assert shell["stdout"].strip() == "/tmp 7"
        assert "shell_name" in await error_text(
            client, "execute_on_devbox", devbox_id=box, command="true", shell_name="a b"
        )


async def test_file_and_execution_functions_directly(backend: LocalBackend) -> None:
    box = await create_devbox(backend, CreateDevboxInput(name="direct"))
    written = await write_devbox_file(
        backend, WriteFileInput(devbox_id=box.id, file_path="notes/greeting.txt", contents="héllo\n")
    )
    assert written == FileWritten(file_path="notes/greeting.txt", bytes_written=7)  # UTF-8 bytes, not characters
    read = await read_devbox_file(backend, ReadFileInput(devbox_id=box.id, file_path="notes/greeting.txt"))
    assert read == FileContents(file_path="notes/greeting.txt", contents="héllo\n")
    listing = await list_devbox_files(backend, ListFilesInput(devbox_id=box.id, path="notes"))
    assert listing == DirectoryListing(devbox_id=box.id, path="notes", entries=["greeting.txt"])
    running = await list_devboxes(backend, ListDevboxesInput(status=DevboxStatus.RUNNING))
    assert box.id in [d.id for d in running.devboxes]

    sleeper = await execute_async(backend, ExecuteAsyncInput(devbox_id=box.id, command="sleep 30"))
    waited = GetExecutionInput(devbox_id=box.id, execution_id=sleeper.execution_id, wait_seconds=0.2)
    still = await get_execution(backend, waited)  # the bounded wait ran out: an answer, saying how to wait more
    assert isinstance(still, Unfinished) and isinstance(still.current, ExecutionView)
    assert still.current.status == "running" and "get_execution" in still.message
    await kill_execution(backend, ExecutionIdInput(devbox_id=box.id, execution_id=sleeper.execution_id))
    done = await get_execution(backend, waited.model_copy(update={"wait_seconds": 10}))
    assert isinstance(done, ExecutionView) and done.status == "completed" and done.exit_status == 137

    shell = ExecuteInput(devbox_id=box.id, command="cat notes/greeting.txt", working_directory="/home/user")
    assert (await execute_on_devbox(backend, shell)).stdout == "héllo\n"
    assert (await shutdown_devbox(backend, DevboxIdInput(devbox_id=box.id))).status == "shutdown"


# --- blueprints from Dockerfiles -------------------------------------------------------------------


async def test_create_blueprint_packs_an_allowed_build_context_and_builds_it(
    backend: LocalBackend, registry: Pusher, tmp_path: Path
) -> None:
    registry.image("mcp/busybox", "1", [busybox_layer()], config={"Env": ["PATH=/bin"]})
    allowed = tmp_path / "projects"
    context = allowed / "task" / "environment"
    (context / "files").mkdir(parents=True)
    (context / "files" / "greeting.txt").write_text("hello from the context\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (allowed / "escape").symlink_to(outside)
    dockerfile = f"FROM {registry.address}/mcp/busybox:1\nCOPY files /files\n"
    async with Client(build_server(backend, host_dirs=HostDirs.of([str(allowed)]), toolsets=["all"])) as client:
        queued = await ok(
            client, "create_blueprint", name="from-mcp", dockerfile=dockerfile, build_context_path=str(context)
        )
        assert queued["status"] == "queued"  # at once: the build runs after the answer
        with anyio.fail_after(120):
            while (got := await ok(client, "get_blueprint", blueprint_id=queued["id"]))["status"] not in (
                "build_complete",
                "failed",
            ):
                await anyio.sleep(0.05)
        assert got["status"] == "build_complete", got.get("failure_message")
        logs = await ok(client, "get_blueprint_logs", blueprint_id=queued["id"])
        assert any(entry["message"].startswith("line 2: COPY files /files") for entry in logs["logs"])
        box = await ok(client, "create_devbox", blueprint_id=queued["id"])
        seen = await ok(client, "execute_on_devbox", devbox_id=box["id"], command="cat /files/greeting.txt")
        assert seen["stdout"] == "hello from the context\n"

        # Only under the allowed directories, whatever the path's spelling.
        for refused in (str(outside), str(allowed / "escape"), str(allowed / "task" / ".." / ".."), "relative/dir"):
            message = await error_text(
                client, "create_blueprint", name="x", dockerfile=dockerfile, build_context_path=refused
            )
            assert "--allow-dir" in message or "absolute" in message, message
    async with Client(build_server(backend, toolsets=["all"])) as closed:  # none allowed: HTTP's default
        message = await error_text(
            closed, "create_blueprint", name="x", dockerfile=dockerfile, build_context_path=str(context)
        )
        assert "reads no directory of its host" in message


async def test_waiting_for_a_build_reports_the_pull_in_bytes_and_the_steps_increasing(
    backend: LocalBackend, registry: Pusher
) -> None:
    # A layer of incompressible bytes: its pull is reported in MiB before any step is done.
    payload = make_tar([directory("data"), file("data/blob", os.urandom(3 << 20))])
    registry.image("mcp/progress", "1", [busybox_layer(), payload], config={"Env": ["PATH=/bin"]})
    image = f"{registry.address}/mcp/progress:1"
    async with Client(build_server(backend, toolsets=["all"])) as client:
        progress = Progress()
        built = await client.call_tool(
            "create_blueprint",
            {
                "name": "progress",
                "dockerfile": f"FROM {image}\nRUN echo a > /a\nRUN echo b > /b\n",
                "wait_seconds": 120,
            },
            progress_callback=progress,
        )
        assert not built.is_error and (built.structured_content or {})["status"] == "build_complete", built.content
        progress.assert_increasing()
        assert {total for _, total, _ in progress.events} == {2}  # two steps make layers
        pulled = [(done, message) for done, _, message in progress.events if "MiB" in (message or "")]
        assert pulled and all(0 < done < 1 for done, _ in pulled), progress.events  # within the first step
        assert any("of 3.0 MiB" in (message or "") or "MiB)" in (message or "") for _, message in pulled)
        steps = [message for _, _, message in progress.events if (message or "").startswith("step ")]
        assert steps == ["step 1 of 2 done: line 2: RUN echo a > /a", "step 2 of 2 done: line 3: RUN echo b > /b"]
        assert progress.events[-1][:2] == (2, 2)

        # get_blueprint's wait follows a build the same way, from its first report.
        queued = await ok(client, "create_blueprint", name="later", dockerfile=f"FROM {image}\nRUN echo c > /c\n")
        assert queued["status"] == "queued"
        followed = Progress()
        result = await client.call_tool(
            "get_blueprint", {"blueprint_id": queued["id"], "wait_seconds": 120}, progress_callback=followed
        )
        assert (result.structured_content or {})["status"] == "build_complete"
        followed.assert_increasing()
        assert [m for _, _, m in followed.events if (m or "").startswith("step ")] == [
            "step 1 of 1 done: line 2: RUN echo c > /c"
        ]
        assert followed.events[-1][:2] == (1, 1)


async def test_a_build_context_path_is_refused_over_http_unless_allowed(tmp_path: Path) -> None:
    from scenario_mcp.cli import build_parser
    from scenario_mcp.cli.servers import allowed_host_dirs

    stdio = build_parser().parse_args(["serve"])
    assert allowed_host_dirs("stdio", stdio).allowed == (Path(os.getcwd()).resolve(),)
    http = build_parser().parse_args(["serve", "--transport", "http"])
    assert allowed_host_dirs("http", http).allowed == ()
    named = build_parser().parse_args(
        ["serve", "--transport", "http", "--allow-dir", str(tmp_path), "--allow-dir", "/srv"]
    )
    assert allowed_host_dirs("http", named).allowed == (tmp_path.resolve(), Path("/srv").resolve())
