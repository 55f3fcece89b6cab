"""Agents the runner's tests drive: a Python agent (`module:function`) and a host agent's program."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio


async def write_done(run: Any, client: Any) -> str:
    """Solve the trivial task through the solver tools, as any MCP agent would."""
    result = await client.call_tool(
        "write_devbox_file", {"devbox_id": run.devbox_id, "file_path": "done", "contents": f"by {run.id}\n"}
    )
    assert not result.is_error, result
    return "wrote done"


async def sleep_forever(run: Any, client: Any) -> None:
    await anyio.sleep(3600)


async def _host_agent() -> None:
    """A host agent: reads the MCP config it was given, connects, and solves the task."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    config = json.loads(Path(os.environ["SCENARIO_MCP_CONFIG"]).read_text())["mcpServers"]["scenario-mcp"]
    problem = Path(os.environ["SCENARIO_PROBLEM_STATEMENT_FILE"]).read_text()
    devbox_id = os.environ["SCENARIO_DEVBOX_ID"]
    async with (
        httpx2.AsyncClient(headers=config["headers"]) as http,
        Client(streamable_http_client(config["url"], http_client=http)) as client,
    ):
        run = await client.call_tool("get_run", {"run_id": os.environ["SCENARIO_RUN_ID"]})
        assert not run.is_error, run
        result = await client.call_tool(
            "write_devbox_file", {"devbox_id": devbox_id, "file_path": "done", "contents": problem}
        )
        assert not result.is_error, result
    print("host agent done")


if __name__ == "__main__":
    sys.exit(anyio.run(_host_agent))
