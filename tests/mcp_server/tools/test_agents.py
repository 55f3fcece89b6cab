"""The agent tools and the mounts of start_run, run_scenario and create_devbox, through a real
in-memory mcp.Client over a real LocalBackend (the `agents` toolset)."""

from __future__ import annotations

import pytest
from mcp import Client

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.models import ObjectCreateParameters
from tests.local.test_agents import HELLO, tarball

from ..helpers import error_text, ok, seed_scenario, seed_snapshot

pytestmark = pytest.mark.anyio

AUTHOR_TOOLSETS = ["scenarios", "devboxes", "runs", "executions", "files", "agents"]


async def uploaded_agent(backend: LocalBackend) -> str:
    view = await backend.create_object(ObjectCreateParameters(name="hello.tgz", content_type="tgz"))
    await backend.upload_object(view.id, tarball({"bin/hello": (HELLO, 0o755)}))
    return (await backend.complete_object(view.id)).id


async def test_install_an_agent_and_mount_it_into_runs(backend: LocalBackend) -> None:
    object_id = await uploaded_agent(backend)
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    async with Client(build_server(backend, toolsets=AUTHOR_TOOLSETS)) as client:
        missing = await error_text(client, "create_agent", name="x", source_type="pip", wait_seconds=0)
        assert "package_name" in missing
        agent = await ok(
            client, "create_agent", name="hello", source_type="object", object_id=object_id, wait_seconds=60
        )
        assert agent["status"] == "build_complete" and agent["id"].startswith("agt_")
        assert [a["id"] for a in (await ok(client, "list_agents", name="hel"))["agents"]] == [agent["id"]]
        logs = (await ok(client, "get_agent_logs", agent_id=agent["id"]))["logs"]
        assert any("unpacked" in entry["message"] for entry in logs)

        mounts = [
            {"type": "agent_mount", "agent_name": "hello", "agent_path": "/opt/hello"},
            {"type": "file_mount", "target": "NOTES.md", "content": "use hello\n"},
        ]
        result = await ok(
            client,
            "run_scenario",
            scenario_id=scenario.id,
            command="hello > greeting.txt && cat NOTES.md greeting.txt",
            mounts=mounts,
            wait_seconds=120,
        )
        assert result["execution"]["stdout"] == "use hello\nhello from /opt/hello/bin\n"
        assert result["run"]["state"] == "completed"

        run = await ok(client, "start_run", scenario_id=scenario.id, mounts=mounts[:1])
        done = await ok(client, "execute_on_devbox", devbox_id=run["devbox_id"], command="command -v hello")
        assert done["stdout"] == "/opt/hello/bin/hello\n"
        bad = [{"type": "agent_mount", "agent_name": "hello", "agent_path": "/opt/../etc"}]
        assert "`..`" in await error_text(client, "start_run", scenario_id=scenario.id, mounts=bad)
        incomplete = [{"type": "object_mount", "object_id": object_id}]
        assert "mounts[0] (object_mount): object_path" in await error_text(client, "create_devbox", mounts=incomplete)
        await ok(client, "cancel_run", run_id=run["id"])
        assert (await ok(client, "delete_agent", agent_id=agent["id"]))["id"] == agent["id"]


async def test_a_solver_mounts_agents_and_files_only(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    async with Client(build_server(backend, role="solver", toolsets=["scenarios", "runs", "agents"])) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "create_agent" not in names and "start_run" in names
        clone = [{"type": "code_mount", "repo_name": "https://example.com/x.git"}]
        assert "cannot start a run with a code_mount" in await error_text(
            client, "start_run", scenario_id=scenario.id, mounts=clone
        )
        note = [{"type": "file_mount", "target": "NOTES.md", "content": "mine"}]
        run = await ok(client, "start_run", scenario_id=scenario.id, mounts=note)
        assert run["state"] == "running"
