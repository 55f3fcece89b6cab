"""End to end over HTTP: `scenario-mcp serve --transport http|sse` as a subprocess on 127.0.0.1, real
`mcp.Client`s in both protocol eras, and the guard (Host 421, Origin 403, bearer token 401)."""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import ResourceUpdatedNotification

from scenario_mcp.local.engine import LocalBackend

from .conftest import seed_default_blueprint
from .mcp_server.helpers import FIX, error_text, ok, seed_scenario, seed_snapshot

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@asynccontextmanager
async def serving(data_dir: Path, *args: str) -> AsyncIterator[str]:
    """Run `scenario-mcp serve` with `args` on a free port; yield the URL it prints on stderr."""
    log = data_dir.parent / f"serve-{len(list(data_dir.parent.glob('serve-*')))}.log"
    with open(log, "wb") as stderr:
        process = await anyio.open_process(
            [sys.executable, "-m", "scenario_mcp", "serve", "--data-dir", str(data_dir), "--port", "0", *args],
            stdin=None,
            stdout=None,
            stderr=stderr,
        )
        try:
            with anyio.fail_after(30):
                while not (found := re.search(r"serving .* on (http://\S+)", log.read_text())):
                    assert process.returncode is None, log.read_text()
                    await anyio.sleep(0.05)
            yield found.group(1)
        finally:
            process.terminate()
            with anyio.move_on_after(10):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


async def seeded_data_dir(tmp_path: Path, cache: Path) -> tuple[Path, str]:
    """A data dir with the default blueprint and one scenario (made here, then served by the subprocess)."""
    data_dir = tmp_path / "data"
    async with LocalBackend(data_dir) as engine:
        await seed_default_blueprint(engine, cache)
        scenario = await seed_scenario(engine, await seed_snapshot(engine))
    return data_dir, scenario.id


async def test_streamable_http_serves_both_eras(tmp_path: Path, default_blueprint_cache: Path) -> None:
    data_dir, scenario_id = await seeded_data_dir(tmp_path, default_blueprint_cache)
    async with serving(data_dir, "--transport", "http") as url:
        assert url.endswith("/mcp")
        # The current, stateless era: the seed workflow in one call, with progress over HTTP.
        async with Client(url) as client:
            assert client.protocol_version >= "2026"
            steps: list[float] = []

            async def progress(done: float, total: float | None, message: str | None) -> None:
                steps.append(done)

            result = await client.call_tool(
                "run_scenario", {"scenario_id": scenario_id, "command": FIX}, progress_callback=progress
            )
            assert not result.is_error, result.content
            assert result.structured_content is not None and result.structured_content["score"] == 1.0
            assert [s for s in steps if s == int(s)] == [1, 2, 3, 4, 5]

        # The legacy handshake that desktop clients still send, with resource subscriptions.
        updates: list[str] = []

        async def on_message(message: Any) -> None:
            if isinstance(message, ResourceUpdatedNotification):
                updates.append(str(message.params.uri))

        async with Client(url, mode="legacy", message_handler=on_message) as client:
            assert client.protocol_version < "2026"
            statement = await client.read_resource(f"scenario://{scenario_id}/problem_statement")
            assert "calc.add" in "".join(getattr(c, "text", "") for c in statement.contents)
            run = await ok(client, "start_run", scenario_id=scenario_id)
            with pytest.warns(MCPDeprecationWarning):
                await client.subscribe_resource(f"run://{run['id']}")
            await ok(client, "score_run", run_id=run["id"], wait_seconds=60)
            with anyio.fail_after(10):
                while updates.count(f"run://{run['id']}") < 2:
                    await anyio.sleep(0.05)
            assert "not found" in await error_text(client, "get_run", run_id="scr_nope")
            await ok(client, "cancel_run", run_id=run["id"])


async def test_http_guard_host_origin_and_token(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with serving(data_dir, "--transport", "http") as url, httpx2.AsyncClient() as http:
        port = url.split(":")[2].split("/")[0]
        bad_host = await http.post(url, json=INITIALIZE, headers={**MCP_HEADERS, "Host": f"evil.example:{port}"})
        assert bad_host.status_code == 421
        bad_origin = await http.post(url, json=INITIALIZE, headers={**MCP_HEADERS, "Origin": "http://evil.example"})
        assert bad_origin.status_code == 403
        good = await http.post(url, json=INITIALIZE, headers={**MCP_HEADERS, "Origin": f"http://localhost:{port}"})
        assert good.status_code == 200

    token = "s3cret-token"
    async with serving(data_dir, "--transport", "http", "--token", token) as url, httpx2.AsyncClient() as http:
        missing = await http.post(url, json=INITIALIZE, headers=MCP_HEADERS)
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        wrong = await http.post(url, json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        in_query = await http.post(f"{url}?token={token}", json=INITIALIZE, headers=MCP_HEADERS)
        assert in_query.status_code == 401  # tokens are never taken from the URL
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as authed,
            Client(streamable_http_client(url, http_client=authed)) as client,
        ):
            assert "get_scenario" in {t.name for t in (await client.list_tools()).tools}


async def test_refuses_non_loopback_without_token(tmp_path: Path) -> None:
    result = await anyio.run_process(
        [sys.executable, "-m", "scenario_mcp", "serve", "--transport", "http", "--host", "0.0.0.0"],
        check=False,
        stdin=None,
    )
    assert result.returncode == 2
    assert b"--token" in result.stderr and b"SCENARIO_MCP_TOKEN" in result.stderr


async def test_legacy_sse_transport(tmp_path: Path, default_blueprint_cache: Path) -> None:
    data_dir, scenario_id = await seeded_data_dir(tmp_path, default_blueprint_cache)
    async with serving(data_dir, "--transport", "sse", "--role", "solver") as url, httpx2.AsyncClient() as http:
        assert url.endswith("/sse")
        port = url.split(":")[2].split("/")[0]
        refused = await http.get(url, headers={"Host": f"evil.example:{port}"})
        assert refused.status_code == 421
        async with Client(sse_client(url), mode="legacy") as client:
            assert client.protocol_version < "2026"
            assert "not found" in await error_text(client, "get_run", run_id="scr_nope")
        async with Client(sse_client(url)) as client:
            assert client.protocol_version >= "2026"
            tools = {t.name for t in (await client.list_tools()).tools}
            assert "run_scenario" in tools and "create_scenario" not in tools
            scenario = await ok(client, "get_scenario", scenario_id=scenario_id)
            assert scenario["reference_output"] is None
            done = await ok(client, "run_scenario", scenario_id=scenario_id, command=FIX)
            assert done["score"] == 1.0
