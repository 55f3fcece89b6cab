"""`scenario-mcp serve --backend remote` as a subprocess over stdio, driving this project's REST API
(a real uvicorn server on 127.0.0.1 in the test) through RemoteBackend: the seed workflow to 1.0."""

from __future__ import annotations

import os
import sys
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from scenario_mcp.local.engine import LocalBackend

from .server import TOKEN, serve_rest

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

FAILING = "def add(a, b):\n    return a - b\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
FIX = "sed -i 's/a - b/a + b/' tests/test_example.py"


async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


def remote_server(url: str, api_key: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "scenario_mcp", "serve", "--backend", "remote", "--log-level", "WARNING"],
        env={"RUNLOOP_BASE_URL": url, "RUNLOOP_API_KEY": api_key, "PATH": os.environ.get("PATH", "")},
    )


async def test_seed_workflow_over_stdio_on_the_remote_backend(backend: LocalBackend) -> None:
    async with serve_rest(backend) as url, Client(remote_server(url, TOKEN)) as client:
        box = await ok(client, "create_devbox")
        await ok(client, "write_devbox_file", devbox_id=box["id"], file_path="tests/test_example.py", contents=FAILING)
        snap = await ok(client, "snapshot_devbox", devbox_id=box["id"])
        await ok(client, "shutdown_devbox", devbox_id=box["id"])
        scenario = await ok(
            client,
            "create_scenario",
            name="seed",
            input_context={"problem_statement": "Fix the failing test."},
            environment_parameters={"snapshot_id": snap["id"]},
            scoring_contract={
                "scoring_function_parameters": [
                    {
                        "name": "pytest",
                        "weight": 1.0,
                        "scorer": {"type": "bash_script_scorer", "bash_script": "pytest -q && echo 1.0 || echo 0.0"},
                    }
                ]
            },
            reference_output=FIX,
        )
        run = await ok(client, "start_run", scenario_id=scenario["id"])
        fixed = await ok(client, "execute_on_devbox", devbox_id=run["devbox_id"], command=FIX)
        assert fixed["exit_status"] == 0, fixed
        await ok(client, "score_run", run_id=run["id"])
        with anyio.fail_after(60):
            while (run := await ok(client, "get_run", run_id=run["id"]))["state"] in ("running", "scoring"):
                await anyio.sleep(0.05)
        assert run["state"] == "scored", run
        done = await ok(client, "complete_run", run_id=run["id"])
        assert done["state"] == "completed"
        assert done["scoring_contract_result"]["score"] == 1.0

        # The engine behind the API saw it all: the same run, completed, on the local engine.
        assert (await backend.get_run(run["id"])).state == "completed"

        # A remote error reaches the agent as a tool error with the remote status and message.
        missing = await client.call_tool("get_run", {"run_id": "scr_nope"})
        assert missing.is_error
        text = " ".join(getattr(part, "text", "") for part in missing.content)
        assert "scr_nope" in text and "404" in text


async def test_remote_backend_reports_a_bad_token(backend: LocalBackend) -> None:
    async with serve_rest(backend) as url, Client(remote_server(url, "wrong-token")) as client:
        result = await client.call_tool("list_scenarios", {})
        assert result.is_error
        text = " ".join(getattr(part, "text", "") for part in result.content)
        assert "401" in text and "invalid bearer token" in text
