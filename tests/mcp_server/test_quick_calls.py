"""Quick calls over streamable HTTP (quick_calls.py): which POSTs the JSON-configured manager
answers, and, over a real server on 127.0.0.1, that the calls left to the streaming manager still
report progress and stop when their client goes away."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.http import MCP_PATH, http_app
from scenario_mcp.mcp_server.quick_calls import QUICK_TOOLS, is_quick
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.models import DevboxCreateParameters
from tests.rest.server import serve_app

from .helpers import Progress, ok

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
QUICK = frozenset(name.encode() for name in QUICK_TOOLS)


def routing(version: str | None, method: str, name: str | None = None) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", b"application/json"), (b"mcp-method", method.encode())]
    if version is not None:
        headers.append((b"mcp-protocol-version", version.encode()))
    if name is not None:
        headers.append((b"mcp-name", name.encode()))
    return headers


def test_quick_tools_are_the_ones_that_answer_at_once() -> None:
    assert {"get_devbox", "get_scenario", "list_runs", "read_devbox_file"} <= QUICK_TOOLS
    # Each of these may report progress, wait, or run as an operation a disconnect cancels.
    assert not {"execute_on_devbox", "create_devbox", "score_run", "get_run", "run_scenario"} & QUICK_TOOLS


def test_is_quick_reads_the_routing_headers() -> None:
    assert is_quick(routing(MODERN, "tools/call", "get_devbox"), QUICK)
    assert is_quick(routing(MODERN, "tools/list"), QUICK)
    assert is_quick(routing(MODERN, "resources/read"), QUICK)
    assert not is_quick(routing(MODERN, "tools/call", "execute_on_devbox"), QUICK)
    assert not is_quick(routing(MODERN, "tools/call"), QUICK)  # no name: the SDK says what is wrong
    assert not is_quick(routing(MODERN, "subscriptions/listen"), QUICK)
    assert not is_quick(routing("2025-11-25", "tools/call", "get_devbox"), QUICK)  # a handshake session
    assert not is_quick(routing(None, "tools/call", "get_devbox"), QUICK)
    assert not is_quick(routing("2099-01-01", "tools/call", "get_devbox"), QUICK)  # the SDK rejects it


def modern_call(request_id: int, tool: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {
            "name": tool,
            "arguments": arguments,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    }
    headers = {
        # JSON only: the streaming manager refuses a POST that cannot take an event stream (406).
        "Accept": "application/json",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": tool,
    }
    return body, headers


async def test_quick_calls_are_answered_as_json_the_rest_by_the_streaming_manager(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters(name="quick"))
    async with (
        serve_app(http_app(build_server(backend), "http", host="127.0.0.1", token=None), lifespan=True) as url,
        httpx2.AsyncClient(base_url=url, timeout=30) as http,
    ):
        body, headers = modern_call(1, "get_devbox", {"devbox_id": box.id})
        quick = await http.post(MCP_PATH, json=body, headers=headers)
        assert quick.status_code == 200 and quick.headers["content-type"] == "application/json", quick.text
        assert quick.json()["result"]["structuredContent"]["id"] == box.id

        body, headers = modern_call(2, "execute_on_devbox", {"devbox_id": box.id, "command": "true"})
        assert (await http.post(MCP_PATH, json=body, headers=headers)).status_code == 406

        # Headers that disagree with the body are refused by the SDK, whichever manager reads them.
        body, headers = modern_call(3, "execute_on_devbox", {"devbox_id": box.id, "command": "touch lied"})
        lying = await http.post(MCP_PATH, json=body, headers={**headers, "Mcp-Name": "get_devbox"})
        assert lying.status_code == 400 and "mcp-name header does not match" in lying.text, lying.text
    listing = await backend.execute(box.id, "ls lied 2>&1 || true")
    assert "No such file" in listing.stdout


async def test_long_calls_over_http_report_progress_and_stop_when_cancelled(backend: LocalBackend) -> None:
    async with (
        serve_app(http_app(build_server(backend), "http", host="127.0.0.1", token=None), lifespan=True) as url,
        Client(url + MCP_PATH) as client,
    ):
        box = (await ok(client, "create_devbox"))["id"]
        assert (await ok(client, "get_devbox", devbox_id=box))["id"] == box
        progress = Progress()
        result = await client.call_tool(
            "execute_on_devbox", {"devbox_id": box, "command": "sleep 2.5; echo done"}, progress_callback=progress
        )
        assert not result.is_error and (result.structured_content or {})["stdout"] == "done\n"
        assert progress.events and "still working" in (progress.events[0][2] or "")

        # A cancelled call closes its response stream; the server takes the command with it.
        with anyio.move_on_after(1):
            await client.call_tool("execute_on_devbox", {"devbox_id": box, "command": "touch started; sleep 30"})
        with anyio.fail_after(10):
            while "sleep 30" in (await ok(client, "execute_on_devbox", devbox_id=box, command="ps -eo args"))["stdout"]:
                await anyio.sleep(0.1)
