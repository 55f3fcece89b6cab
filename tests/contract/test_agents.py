"""Agents and mounts, the same assertions on both backends (the remote one over Runloop's
/v1/agents and devbox create's `mounts`): an object agent installed, listed, mounted with a file
beside it, its failed twin's logs, bad mounts refused, delete."""

from __future__ import annotations

import pytest

from scenario_mcp.backend import Backend, InvalidRequestError, NotFoundError
from scenario_mcp.models import AgentCreateParameters, DevboxCreateParameters, ObjectCreateParameters
from tests.local.test_agents import HELLO, tarball

pytestmark = pytest.mark.anyio


async def object_source(engine: Backend, setup: list[str]) -> dict[str, object]:
    view = await engine.create_object(ObjectCreateParameters(name="agent.tgz", content_type="tgz"))
    await engine.upload_object(view.id, tarball({"bin/hello": (HELLO, 0o755)}))
    await engine.complete_object(view.id)
    return {"type": "object", "object": {"object_id": view.id, "agent_setup": setup}}


async def test_agent_lifecycle_and_mounts(engine: Backend) -> None:
    source = await object_source(engine, ["echo ready > ready"])
    created = await engine.create_agent(AgentCreateParameters.model_validate({"name": "hello", "source": source}))
    assert created.id.startswith("agt_") and created.name == "hello" and not created.is_public
    agent = await engine.wait_for_agent(created.id, timeout_seconds=120)
    assert agent.status == "build_complete" and agent.source is not None and agent.source.type == "object"
    assert any("installed" in entry.message for entry in (await engine.agent_logs(agent.id)).logs)
    assert [a.id for a in (await engine.list_agents(name="hel", limit=5)).agents] == [agent.id]
    assert (await engine.list_agents(search=agent.id)).total_count == 1

    box = await engine.create_devbox(
        DevboxCreateParameters.model_validate(
            {
                "mounts": [
                    {"type": "agent_mount", "agent_name": "hello", "agent_path": "/home/user/hello"},
                    {"type": "file_mount", "target": "task.md", "content": "say hello\n"},
                ]
            }
        )
    )
    done = await engine.execute(box.id, "hello && cat hello/ready task.md")
    assert (done.exit_status, done.stdout) == (0, "hello from /home/user/hello/bin\nready\nsay hello\n")
    await engine.shutdown_devbox(box.id)

    failing = await engine.create_agent(
        AgentCreateParameters.model_validate(
            {"name": "broken", "source": await object_source(engine, ["echo missing-dependency >&2; false"])}
        )
    )
    failed = await engine.wait_for_agent(failing.id, timeout_seconds=120)
    assert failed.status == "failed" and failed.failure_message and "missing-dependency" in failed.failure_message

    with pytest.raises(InvalidRequestError, match="absolute"):
        await engine.create_devbox(
            DevboxCreateParameters.model_validate(
                {"mounts": [{"type": "agent_mount", "agent_id": agent.id, "agent_path": "../../etc"}]}
            )
        )
    await engine.delete_agent(agent.id)
    with pytest.raises(NotFoundError):
        await engine.get_agent(agent.id)
