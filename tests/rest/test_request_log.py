"""`scenario-mcp api --request-log`: one JSON line per request, with how long the server held it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx2
import pytest

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.rest import build_rest_app
from scenario_mcp.rest.request_log import RequestLog

from .server import serve_app

pytestmark = pytest.mark.anyio


async def test_each_request_is_one_line_with_its_status_and_time_held(backend: LocalBackend, tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    before = time.time()
    async with serve_app(RequestLog(build_rest_app(backend), log)) as url, httpx2.AsyncClient(base_url=url) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/v1/devboxes/dbx_missing")).status_code == 404
        box = (await http.post("/v1/devboxes", json={})).json()["id"]
        held = await http.post(
            f"/v1/devboxes/{box}/wait_for_status", json={"statuses": ["suspended"], "timeout_seconds": 0.3}
        )
        assert held.status_code == 408
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["method"], e["path"], e["status"]) for e in lines] == [
        ("GET", "/healthz", 200),
        ("GET", "/v1/devboxes/dbx_missing", 404),
        ("POST", "/v1/devboxes", 200),
        ("POST", f"/v1/devboxes/{box}/wait_for_status", 408),
    ]
    assert all(before <= e["start"] <= time.time() for e in lines)
    assert [e["start"] for e in lines] == sorted(e["start"] for e in lines)
    assert 300 <= lines[-1]["ms"] < 5000  # the long poll's hold, measured by the server
    assert lines[0]["ms"] < 300
    assert all(e["client"].startswith("127.0.0.1:") for e in lines)
    assert len({e["client"] for e in lines}) == 1  # one client, its connection kept alive
