"""The HTTP guard's rules, straight on the ASGI app (the e2e tests drive it over real sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from scenario_mcp.cli import _parser, _serve_usage_error
from scenario_mcp.mcp_server.http import BindRefused, HttpGuard, check_bind, is_loopback

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
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "t")
    with pytest.raises(BindRefused, match="--token"):
        check_bind("0.0.0.0", None)

    monkeypatch.setenv("SCENARIO_MCP_TOKEN", "from-env")
    args = _parser().parse_args(["serve", "--transport", "http", "--host", "0.0.0.0"])
    assert args.token == "from-env" and _serve_usage_error(args) is None
    monkeypatch.delenv("SCENARIO_MCP_TOKEN")
    args = _parser().parse_args(["serve", "--transport", "sse", "--host", "0.0.0.0"])
    assert "--token" in (_serve_usage_error(args) or "")
    args = _parser().parse_args(["serve", "--run", "scr_x"])
    assert "--role solver" in (_serve_usage_error(args) or "")
