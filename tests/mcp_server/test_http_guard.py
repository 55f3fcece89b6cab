"""The HTTP guard's rules (`scenario_mcp.http_guard`): straight on the ASGI middleware, then over
real servers on 127.0.0.1 for both surfaces it guards, the MCP transport and the REST API."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from scenario_mcp.cli import build_parser
from scenario_mcp.cli.servers import serve_usage_error
from scenario_mcp.http_guard import BindRefused, HttpGuard, check_bind, is_loopback, token_from_env
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.http import MCP_PATH, http_app
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.rest import build_rest_app
from tests.rest.server import serve_app

pytestmark = pytest.mark.anyio


async def status(guard: HttpGuard, headers: dict[str, str]) -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/mcp",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    await guard(scope, receive, send)
    return int(sent[0]["status"])


async def passthrough(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def test_loopback_bind_accepts_loopback_names_only() -> None:
    guard = HttpGuard(passthrough, bind_host="127.0.0.1", token=None)
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "localhost"):
        assert await status(guard, {"host": host}) == 200, host
    assert await status(guard, {"host": "evil.example:8000"}) == 421
    assert await status(guard, {}) == 421
    assert await status(guard, {"host": "localhost:1", "origin": "http://localhost:3000"}) == 200
    assert await status(guard, {"host": "localhost:1", "origin": "https://evil.example"}) == 403
    assert await status(guard, {"host": "localhost:1", "origin": "null"}) == 403


async def test_token_is_checked_after_host_and_origin() -> None:
    guard = HttpGuard(passthrough, bind_host="127.0.0.1", token="t0k")
    assert await status(guard, {"host": "localhost:1"}) == 401
    assert await status(guard, {"host": "localhost:1", "authorization": "Bearer wrong"}) == 401
    assert await status(guard, {"host": "localhost:1", "authorization": "Basic t0k"}) == 401
    assert await status(guard, {"host": "localhost:1", "authorization": "Bearer t0k"}) == 200
    assert await status(guard, {"host": "localhost:1", "authorization": "bearer t0k"}) == 200
    assert await status(guard, {"host": "evil.example", "authorization": "Bearer t0k"}) == 421


async def test_specific_and_wildcard_binds() -> None:
    specific = HttpGuard(passthrough, bind_host="192.0.2.7", token="t")
    assert await status(specific, {"host": "192.0.2.7:8000", "authorization": "Bearer t"}) == 200
    assert await status(specific, {"host": "other.example", "authorization": "Bearer t"}) == 421
    wildcard = HttpGuard(passthrough, bind_host="0.0.0.0", token="t")
    assert await status(wildcard, {"host": "mcp.internal:8000", "authorization": "Bearer t"}) == 200
    assert await status(wildcard, {"host": "mcp.internal:8000"}) == 401


def test_binding_off_loopback_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.7") and not is_loopback("example.com")
    # One rule for both surfaces: the REST API's old check took `127.evil.example` for loopback.
    assert is_loopback("127.3.4.5") and is_loopback("LOCALHOST") and not is_loopback("127.evil.example")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "t")
    with pytest.raises(BindRefused, match="--token"):
        check_bind("0.0.0.0", None)

    monkeypatch.setenv("SCENARIO_MCP_TOKEN", "from-env")
    args = build_parser().parse_args(["serve", "--transport", "http", "--host", "0.0.0.0"])
    assert args.token == "from-env" and serve_usage_error(args) is None
    monkeypatch.delenv("SCENARIO_MCP_TOKEN")
    args = build_parser().parse_args(["serve", "--transport", "sse", "--host", "0.0.0.0"])
    assert "--token" in (serve_usage_error(args) or "")
    args = build_parser().parse_args(["serve", "--run", "scr_x"])
    assert "--role solver" in (serve_usage_error(args) or "")


def test_one_token_variable_and_the_api_commands_old_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCENARIO_MCP_TOKEN", raising=False)
    monkeypatch.setenv("SCENARIO_MCP_API_TOKEN", "old")
    assert token_from_env() is None and token_from_env(legacy_api=True) == "old"
    assert build_parser().parse_args(["api"]).token == "old"
    assert build_parser().parse_args(["serve"]).token is None
    monkeypatch.setenv("SCENARIO_MCP_TOKEN", "new")
    assert build_parser().parse_args(["api"]).token == "new" and build_parser().parse_args(["serve"]).token == "new"
    monkeypatch.setenv("SCENARIO_MCP_TOKEN", "")
    assert token_from_env() is None


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def test_both_surfaces_answer_alike_over_real_servers(backend: LocalBackend) -> None:
    token = "guard-t0k"
    mcp = http_app(build_server(backend), "http", host="127.0.0.1", token=token)
    rest = build_rest_app(backend, token=token, host="127.0.0.1")
    async with (
        serve_app(mcp, lifespan=True) as mcp_url,
        serve_app(rest) as rest_url,
        httpx2.AsyncClient(timeout=30) as http,
    ):

        async def call(surface: str, headers: dict[str, str]) -> httpx2.Response:
            if surface == "mcp":
                return await http.post(mcp_url + MCP_PATH, json=INITIALIZE, headers={**MCP_HEADERS, **headers})
            return await http.get(rest_url + "/v1/scenarios", headers=headers)

        for surface, url in (("mcp", mcp_url), ("rest", rest_url)):
            port = url.rsplit(":", 1)[1]
            auth = {"Authorization": f"Bearer {token}"}
            cases: list[tuple[dict[str, str], int]] = [
                (auth, 200),  # an SDK: no Origin
                ({**auth, "Origin": f"http://localhost:{port}"}, 200),
                ({"Authorization": f"bearer {token}"}, 200),
                ({**auth, "Host": f"evil.example:{port}"}, 421),
                ({**auth, "Origin": "https://evil.example"}, 403),
                ({**auth, "Origin": "null"}, 403),
                ({}, 401),
                ({"Authorization": "Bearer wrong"}, 401),
                ({"Host": f"evil.example:{port}"}, 421),
                ({"Origin": "http://evil.example"}, 403),
            ]
            for headers, expected in cases:
                response = await call(surface, headers)
                assert response.status_code == expected, (surface, headers, response.text)
                if expected in (401, 403, 421):
                    body = response.json()
                    # The same words on both surfaces, each in its own shape (Runloop's for REST).
                    message = body["message"] if surface == "rest" else body["error"]
                    assert (
                        message
                        == {
                            421: "misdirected request: unexpected Host header",
                            403: "forbidden: cross-origin request refused",
                            401: "missing bearer token: send `Authorization: Bearer <token>`"
                            if not headers
                            else "invalid bearer token",
                        }[expected]
                    )
                if expected == 401:
                    assert response.headers["www-authenticate"].startswith("Bearer")
