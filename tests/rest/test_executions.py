"""Executions over the wire: bounded long polls, last_n, command_id, the legacy sync call, SSE output, stdin."""

from __future__ import annotations

import json

import httpx2
import pytest

from .helpers import error, ok

pytestmark = pytest.mark.anyio


async def test_long_polls_are_bounded_and_408(http: httpx2.AsyncClient) -> None:
    box = ok(await http.post("/v1/devboxes", json={}))
    assert box["status"] == "running"
    waited = await http.post(
        f"/v1/devboxes/{box['id']}/wait_for_status", json={"statuses": ["suspended"], "timeout_seconds": 0.2}
    )
    assert "not one of" in error(waited, 408)
    now = ok(await http.post(f"/v1/devboxes/{box['id']}/wait_for_status", json={"statuses": ["running"]}))
    assert now["status"] == "running"
    assert "statuses" in error(
        await http.post(f"/v1/devboxes/{box['id']}/wait_for_status", json={"statuses": ["nap"]}), 400
    )

    started = ok(await http.post(f"/v1/devboxes/{box['id']}/execute_async", json={"command": "sleep 20"}))
    path = f"/v1/devboxes/{box['id']}/executions/{started['execution_id']}"
    error(await http.post(f"{path}/wait_for_status", json={"statuses": ["completed"], "timeout_seconds": 0.2}), 408)
    # execute's optimistic wait gives back the running execution; it does not kill it.
    slow = ok(
        await http.post(f"/v1/devboxes/{box['id']}/execute", json={"command": "sleep 5", "optimistic_timeout": 0.2})
    )
    assert slow["status"] == "running" and slow["exit_status"] is None
    killed = ok(await http.post(f"{path}/kill", json={"kill_process_group": True}))
    assert killed["status"] == "completed"


async def test_execute_quirks(http: httpx2.AsyncClient) -> None:
    box = ok(await http.post("/v1/devboxes", json={"name": "quirks"}))
    execute = f"/v1/devboxes/{box['id']}/execute"
    many = ok(await http.post(execute, json={"command": "seq 1 150"}))
    assert many["stdout"].splitlines() == [str(i) for i in range(51, 151)] and many["stdout_truncated"] is True
    few = ok(await http.post(execute, params={"last_n": 2}, json={"command": "seq 1 5"}))
    assert few["stdout"] == "4\n5\n"

    # The same command_id is the same execution: a retried request does not run the command twice.
    once = {"command": "echo ran >> once.txt; cat once.txt", "command_id": "0190c5b0-0000-7000-8000-000000000001"}
    first, again = ok(await http.post(execute, json=once)), ok(await http.post(execute, json=once))
    assert first["execution_id"] == again["execution_id"] and again["stdout"] == "ran\n"

    legacy = ok(await http.post(f"/v1/devboxes/{box['id']}/execute_sync", json={"command": "echo sync"}))
    assert legacy == {"devbox_id": box["id"], "stdout": "sync\n", "stderr": "", "exit_status": 0, "shell_name": None}

    started = ok(await http.post(f"/v1/devboxes/{box['id']}/execute_async", json={"command": "printf 'a\\nb\\n'"}))
    stream = f"/v1/devboxes/{box['id']}/executions/{started['execution_id']}/stream_stdout_updates"
    async with http.stream("GET", stream, params={"offset": "2"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = (await response.aread()).decode()
    events = [json.loads(line[len("data: ") :]) for line in body.splitlines() if line.startswith("data: ")]
    assert "".join(e["output"] for e in events) == "b\n" and events[-1]["offset"] == 4
    assert "not found" in error(
        await http.get(f"/v1/devboxes/{box['id']}/executions/exe_nope/stream_stdout_updates"), 404
    )

    stdin = await http.post(f"/v1/devboxes/{box['id']}/executions/{started['execution_id']}/send_std_in", json={})
    assert "give text" in error(stdin, 400)
