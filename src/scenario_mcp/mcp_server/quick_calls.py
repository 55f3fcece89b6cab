"""Quick calls over streamable HTTP: answered by the SDK's session manager configured for JSON.

Configured for streams (`json_response=False`, which progress needs), the SDK gives every
current-era (2026-07-28) POST a notification channel, a task watching for the client's
disconnect and a deferral window, and still answers it as plain JSON when nothing was sent before
its result. Configured for JSON, it serves the request inline and writes the result: about 0.2 ms
of server CPU less per call, a tenth of a back-to-back call (benchmarks/bench_mcp.py, figure e).

A quick call sends nothing before its result and ends in milliseconds, so the streaming machinery
buys it nothing: a tool that reports no progress, never waits and never runs as an operation
(`ToolSpec.quick`), or a listing or read. This era's routing headers (`Mcp-Method`, `Mcp-Name`)
say which call a POST is before its body is read, and the SDK refuses a POST whose headers
disagree with its body, so no header can route a long call here. Everything else (the handshake
era and its sessions, GET and DELETE, calls that may report progress or take long) goes to the
streaming manager; both serve the same MCP server.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from mcp.server import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.inbound import MCP_METHOD_HEADER, MCP_NAME_HEADER, MCP_PROTOCOL_VERSION_HEADER
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.types import ASGIApp, Receive, Scope, Send

from .tools import TOOLS

# Requests other than tools/call that only read what the engine has: nothing to report on the way.
QUICK_METHODS = frozenset(
    {
        "tools/list",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "prompts/list",
        "prompts/get",
        "completion/complete",
    }
)
QUICK_TOOLS = frozenset(spec.name for spec in TOOLS if spec.quick)

_VERSION = MCP_PROTOCOL_VERSION_HEADER.encode()
_METHOD = MCP_METHOD_HEADER.encode()
_NAME = MCP_NAME_HEADER.encode()
_MODERN = frozenset(version.encode() for version in MODERN_PROTOCOL_VERSIONS)
_QUICK_METHODS = frozenset(method.encode() for method in QUICK_METHODS)
_TOOLS_CALL = b"tools/call"


def is_quick(headers: Collection[tuple[bytes, bytes]], quick_tools: frozenset[bytes]) -> bool:
    """Whether a POST's routing headers name a current-era quick call (ASGI's raw, lower-case headers)."""
    routing = {name: value for name, value in headers if name in (_VERSION, _METHOD, _NAME)}
    if routing.get(_VERSION) not in _MODERN:
        return False
    method = routing.get(_METHOD)
    if method == _TOOLS_CALL:
        return routing.get(_NAME) in quick_tools
    return method in _QUICK_METHODS


class QuickCalls:
    """ASGI app: a quick call POSTed to `path` goes to the JSON-configured manager, the rest to `app`.

    On the lifespan, the JSON manager runs around `app`'s own (the server's lifespan is entered
    once by each manager; its notifier and operations are made to be entered more than once).
    """

    def __init__(
        self,
        app: ASGIApp,
        server: MCPServer[Any],
        *,
        path: str,
        security: TransportSecuritySettings,
        quick_tools: Collection[str] = QUICK_TOOLS,
    ) -> None:
        self.app = app
        self.path = path
        self.quick_tools = frozenset(name.encode() for name in quick_tools)
        self.manager = StreamableHTTPSessionManager(
            app=server._lowlevel_server, json_response=True, security_settings=security
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            async with self.manager.run():
                await self.app(scope, receive, send)
        elif (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == self.path
            and is_quick(scope["headers"], self.quick_tools)
        ):
            await self.manager.handle_request(scope, receive, send)
        else:
            await self.app(scope, receive, send)
