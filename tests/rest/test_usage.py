"""A devbox's usage (measured from its cgroups and layer) and its log tail, over the wire."""

from __future__ import annotations

import json

import anyio
import httpx2
import pytest

from .helpers import error, ok

pytestmark = pytest.mark.anyio


async def test_usage_of_a_running_devbox_measures_cpu_and_disk(http: httpx2.AsyncClient) -> None:
    box = ok(await http.post("/v1/devboxes", json={}))
    size = 300_000
    burn = f"head -c {size} /dev/urandom > blob.bin; end=$(($(date +%s)+2)); while [ $(date +%s) -lt $end ]; do :; done"
    assert ok(await http.post(f"/v1/devboxes/{box['id']}/execute", json={"command": burn}))["exit_status"] == 0
    usage = ok(await http.get(f"/v1/devboxes/{box['id']}/usage"))
    assert usage["id"] == box["id"] and usage["status"] == "running" and usage["end_time_ms"] is None
    assert usage["total_elapsed_seconds"] > 0 and usage["start_time_ms"] == box["create_time_ms"]
    assert usage["cpu_seconds_used"] > 0.5  # a busy loop of about 2 s on a shared machine
    assert usage["disk_bytes_used"] >= size
    assert usage["memory_peak_bytes"] > 0

    ok(await http.post(f"/v1/devboxes/{box['id']}/shutdown"))
    ended = ok(await http.get(f"/v1/devboxes/{box['id']}/usage"))
    assert ended["status"] == "shutdown" and ended["end_time_ms"] is not None
    assert ended["cpu_seconds_used"] is None and ended["memory_peak_bytes"] is None
    assert "not found" in error(await http.get("/v1/devboxes/dbx_nope/usage"), 404)


async def test_log_tail_streams_past_and_new_entries_until_shutdown(http: httpx2.AsyncClient) -> None:
    box = ok(await http.post("/v1/devboxes", json={}))
    past = ok(await http.post(f"/v1/devboxes/{box['id']}/execute", json={"command": "echo before"}))
    events: list[dict[str, object]] = []
    with anyio.fail_after(20):
        async with http.stream("GET", f"/v1/devboxes/{box['id']}/logs/tail") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            async for line in lines:
                if line.startswith("data: "):
                    events.append(json.loads(line[len("data: ") :]))
                    break
            assert events[0]["cmd_id"] == past["execution_id"] and events[0]["message"] == "before\n"
            new = ok(await http.post(f"/v1/devboxes/{box['id']}/execute", json={"command": "echo during"}))
            async for line in lines:
                if line.startswith("data: "):
                    events.append(json.loads(line[len("data: ") :]))
                    if events[-1]["cmd_id"] == new["execution_id"] and events[-1]["exit_code"] == 0:
                        break
            assert events[-1]["message"] == "during\n"
            ok(await http.post(f"/v1/devboxes/{box['id']}/shutdown"))
            rest = [line async for line in lines]  # the stream ends once the devbox has
    assert not any(line.startswith("event: error") for line in rest)
    assert "not found" in error(await http.get("/v1/devboxes/dbx_nope/logs/tail"), 404)
