"""Runs changing state notify clients that listen: `resources/subscribe` on the legacy wire,
`subscriptions/listen` on the current one. Scoring ends in the engine's background, so the
`scoring -> scored` notification comes from the server watching, not from a tool call."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.subscriptions import ResourceUpdated
from mcp.types import ResourceUpdatedNotification

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.models import StartScenarioRunParameters

from .helpers import FIX, ok, seed_scenario, seed_snapshot

pytestmark = pytest.mark.anyio


async def started_run(backend: LocalBackend) -> Any:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    run = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    await backend.execute(run.devbox_id, FIX)
    return run


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
async def test_legacy_subscribers_hear_every_state_change(backend: LocalBackend) -> None:
    run = await started_run(backend)
    updates: list[str] = []
    scored = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            updates.append(str(message.params.uri))
            if (await backend.get_run(run.id)).state == "scored":
                scored.set()

    async with Client(build_server(backend), mode="legacy", message_handler=on_message) as client:
        assert client.server_capabilities.resources and client.server_capabilities.resources.subscribe
        await client.subscribe_resource(f"run://{run.id}")
        await ok(client, "score_run", run_id=run.id, wait_seconds=0)  # running -> scoring: reported by the call
        with anyio.fail_after(30):
            await scored.wait()  # scoring -> scored: found by the server's watcher
        assert updates.count(f"run://{run.id}") >= 2, updates
        await client.unsubscribe_resource(f"run://{run.id}")
        count = len(updates)
        await ok(client, "complete_run", run_id=run.id)
        await anyio.sleep(0.6)
        assert len(updates) == count, "no notifications after unsubscribing"
        with pytest.raises(Exception, match="not found"):
            await client.subscribe_resource("run://scr_nope")


async def test_listen_streams_hear_every_state_change(backend: LocalBackend) -> None:
    run = await started_run(backend)
    async with Client(build_server(backend)) as client:
        assert client.server_capabilities.resources and client.server_capabilities.resources.subscribe
        seen: list[str] = []
        async with client.listen(resource_subscriptions=[f"run://{run.id}", f"run://{run.id}/logs"]) as events:
            await ok(client, "score_run", run_id=run.id, wait_seconds=0)
            with anyio.fail_after(30):
                async for event in events:
                    assert isinstance(event, ResourceUpdated)
                    seen.append(event.uri)
                    if (await ok(client, "get_run", run_id=run.id))[
                        "state"
                    ] == "scored" and event.uri == f"run://{run.id}":
                        break
            await ok(client, "complete_run", run_id=run.id)
            with anyio.fail_after(10):
                async for event in events:
                    if event.uri == f"run://{run.id}":
                        break
        assert f"run://{run.id}/logs" in seen
        assert (await ok(client, "get_run", run_id=run.id))["state"] == "completed"
