"""The REST app as a whole: the guard (Host, Origin, bearer token), error bodies, the `api` command."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import anyio
import httpx2
import pytest

from scenario_mcp.local.engine import LocalBackend
from tests.conftest import seed_default_blueprint

from .helpers import CONTRACT, error, ok
from .server import TOKEN, serve_rest

pytestmark = pytest.mark.anyio


async def test_bearer_token(backend: LocalBackend) -> None:
    async with serve_rest(backend) as url, httpx2.AsyncClient(base_url=url) as anonymous:
        assert "missing bearer token" in error(await anonymous.get("/v1/scenarios"), 401)
        wrong = await anonymous.get("/v1/scenarios", headers={"Authorization": "Bearer nope"})
        assert "invalid bearer token" in error(wrong, 401)
        assert ok(await anonymous.get("/healthz")) == {"status": "ok"}
    async with serve_rest(backend, token=None) as url, httpx2.AsyncClient(base_url=url) as open_client:
        assert ok(await open_client.get("/v1/scenarios"))["scenarios"] == []


async def test_host_and_origin_are_checked_as_on_the_mcp_transport(backend: LocalBackend) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with serve_rest(backend) as url, httpx2.AsyncClient(base_url=url, headers=auth) as client:
        port = url.rsplit(":", 1)[1]
        # DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 sends its own Host.
        assert "Host" in error(await client.get("/v1/scenarios", headers={"Host": f"evil.example:{port}"}), 421)
        error(await client.get("/healthz", headers={"Host": "evil.example"}), 421)
        # A page on another origin, even with the token (a browser would send it if the page had it).
        cross = await client.post("/v1/devboxes", json={}, headers={"Origin": "https://evil.example"})
        assert "cross-origin" in error(cross, 403)
        error(await client.get("/v1/scenarios", headers={"Origin": "null"}), 403)
        assert ok(await client.get("/v1/devboxes"))["devboxes"] == []  # the refused POST made nothing
        # The SDK and curl send no Origin; a page served from this machine sends a loopback one.
        assert ok(await client.get("/v1/scenarios"))["scenarios"] == []
        assert (
            ok(await client.get("/v1/scenarios", headers={"Origin": f"http://localhost:{port}"}))["has_more"] is False
        )
        assert ok(await client.get("/v1/scenarios", headers={"Host": f"localhost:{port}"}))["has_more"] is False
    async with serve_rest(backend) as url, httpx2.AsyncClient(base_url=url) as anonymous:
        # Host and Origin first: a foreign page learns nothing about the token.
        error(await anonymous.get("/v1/scenarios", headers={"Origin": "https://evil.example"}), 403)
        assert ok(await anonymous.get("/v1/scenarios", headers={"Authorization": f"bearer {TOKEN}"}))["scenarios"] == []
        error(await anonymous.get("/v1/scenarios", params={"token": TOKEN}), 401)  # never from the URL


async def test_bad_requests_say_which_field_and_why(http: httpx2.AsyncClient) -> None:
    assert "not valid JSON" in error(await http.post("/v1/scenarios", content=b"{nope"), 400)
    assert "must be a JSON object" in error(await http.post("/v1/scenarios", json=[1]), 400)
    assert "request body is required" in error(await http.post("/v1/scenarios"), 400)
    missing = error(await http.post("/v1/scenarios", json={"name": "x"}), 400)
    assert "input_context: required field missing" in missing and "scoring_contract" in missing
    weight = dict(CONTRACT["scoring_function_parameters"][0], weight=0)
    body = {
        "name": "x",
        "input_context": {"problem_statement": "p"},
        "scoring_contract": {"scoring_function_parameters": [weight]},
    }
    assert "scoring_contract.scoring_function_parameters.0.weight" in error(
        await http.post("/v1/scenarios", json=body), 400
    )
    # `environment` is the view's name; the request's is `environment_parameters`.
    renamed = error(await http.post("/v1/scenarios", json={**body, "environment": {}}), 400)
    assert "environment: unknown field" in renamed and "environment_parameters" in renamed
    assert "limit must be between" in error(await http.get("/v1/scenarios", params={"limit": 0}), 400)
    assert "must be an integer" in error(await http.get("/v1/scenarios", params={"limit": "x"}), 400)
    assert "no such endpoint" in error(await http.get("/v1/nothing"), 404)
    # Runloop's public catalogue has nothing here; its metadata listings answer, empty.
    assert ok(await http.get("/v1/blueprints/public/metadata/keys")) == {"keys": []}
    assert ok(await http.get("/v1/devboxes/disk_snapshots/public/metadata/keys/k/values")) == {"key": "k", "values": []}
    assert "not supported" in error(await http.delete("/v1/scenarios"), 405)


async def test_cli_api_serves_and_refuses_open_binds(tmp_path: Path, default_blueprint_cache: Path) -> None:
    refused = await anyio.run_process(
        [sys.executable, "-m", "scenario_mcp", "api", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "d")],
        check=False,
        env={k: v for k, v in os.environ.items() if k not in ("SCENARIO_MCP_TOKEN", "SCENARIO_MCP_API_TOKEN")},
    )
    assert refused.returncode == 2 and b"without a bearer token" in refused.stderr

    data_dir = tmp_path / "data"
    async with LocalBackend(data_dir) as engine:
        await seed_default_blueprint(engine, default_blueprint_cache)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = [
        sys.executable,
        "-m",
        "scenario_mcp",
        "api",
        "--port",
        str(port),
        "--token",
        "t0k",
        "--data-dir",
        str(data_dir),
    ]
    async with await anyio.open_process(argv) as process:
        try:
            async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                with anyio.fail_after(30):
                    while True:
                        try:
                            health = await client.get("/healthz")
                            break
                        except httpx2.ConnectError:
                            await anyio.sleep(0.1)
                assert health.status_code == 200
                assert (await client.get("/v1/blueprints")).status_code == 401
                listed = await client.get("/v1/blueprints", headers={"Authorization": "Bearer t0k"})
                assert listed.status_code == 200 and listed.json()["blueprints"][0]["status"] == "build_complete"
        finally:
            process.terminate()
