"""The secret tools through a real in-memory mcp.Client over a real LocalBackend: an author stores a
value that no tool result or resource shows again; a solver session can neither list nor read secrets."""

from __future__ import annotations

import json

import pytest
from mcp import Client

from scenario_mcp.backend import InvalidRequestError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.access import SolverBackend
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.models import DevboxCreateParameters, RunProfile, SecretCreateParameters, StartScenarioRunParameters

from ..helpers import error_text, ok, seed_scenario, seed_snapshot

pytestmark = pytest.mark.anyio

VALUE = "sk-mcp-0d9e8f7a6b5c4d3e"


async def test_an_author_stores_a_secret_no_result_or_resource_shows(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    async with Client(build_server(backend, toolsets=["scenarios", "runs", "executions", "secrets"])) as client:
        created = await ok(client, "create_secret", name="MODEL_KEY", value=VALUE)
        assert created["name"] == "MODEL_KEY" and "value" not in created
        listed = await ok(client, "list_secrets")
        assert [s["name"] for s in listed["secrets"]] == ["MODEL_KEY"]
        assert "exists already" in await error_text(client, "create_secret", name="MODEL_KEY", value="x")
        run = await backend.start_run(
            StartScenarioRunParameters(
                scenario_id=scenario.id, run_profile=RunProfile(secrets={"OPENAI_API_KEY": "MODEL_KEY"})
            )
        )
        done = await ok(client, "execute_on_devbox", devbox_id=run.devbox_id, command="echo $OPENAI_API_KEY")
        assert done["stdout"] == "[secret MODEL_KEY]\n"
        seen = [json.dumps(await ok(client, "get_run", run_id=run.id)), json.dumps(listed), json.dumps(created)]
        for resource in [f"run://{run.id}", f"run://{run.id}/logs"]:
            seen.extend(getattr(block, "text", "") for block in (await client.read_resource(resource)).contents)
        assert not [text for text in seen if VALUE in text]


async def test_a_solver_can_neither_list_nor_give_secrets(backend: LocalBackend) -> None:
    await backend.create_secret(SecretCreateParameters(name="MODEL_KEY", value=VALUE))
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    async with Client(build_server(backend, role="solver", toolsets=["all"])) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert not names & {"create_secret", "list_secrets"}
        assert "list_secrets" in await error_text(client, "list_secrets")
    # Under the tools, the solver's backend refuses too: no listing, and no run that names a secret.
    solver = SolverBackend(backend)
    with pytest.raises(InvalidRequestError, match="list_secrets"):
        await solver.list_secrets()
    with pytest.raises(InvalidRequestError, match="cannot give a run secrets"):
        await solver.start_run(
            StartScenarioRunParameters(scenario_id=scenario.id, run_profile=RunProfile(secrets={"K": "MODEL_KEY"}))
        )


async def test_open_devbox_port_gives_the_url_and_header_of_a_tunnel(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters())
    async with Client(build_server(backend, toolsets=["tunnels"])) as client:
        opened = await ok(client, "open_devbox_port", devbox_id=box.id, port=3000)
        key = opened["tunnel_key"]
        assert opened["host"] == f"3000-{key}.localhost" and opened["url"] == f"http://3000-{key}.localhost:8080/"
        token = (await backend.get_devbox(box.id)).tunnel.auth_token  # type: ignore[union-attr]
        assert opened["headers"] == {"X-Runloop-Tunnel-Authorization": f"Bearer {token}"}
        again = await ok(client, "open_devbox_port", devbox_id=box.id, port=5173)
        assert again["tunnel_key"] == key  # one tunnel per devbox, every port
