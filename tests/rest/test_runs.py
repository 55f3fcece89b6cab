"""Scenario runs over the wire: camelCase runProfile, run lists, logs as a zip."""

from __future__ import annotations

import io
import json
import zipfile

import anyio
import httpx2
import pytest

from .helpers import error, ok, scenario

pytestmark = pytest.mark.anyio


async def test_start_run_takes_camel_case_run_profile(http: httpx2.AsyncClient) -> None:
    created = await scenario(http)
    snake = error(
        await http.post("/v1/scenarios/start_run", json={"scenario_id": created["id"], "run_profile": {}}), 400
    )
    assert "run_profile: unknown field" in snake and "runProfile" in snake
    with_mounts = {"scenario_id": created["id"], "runProfile": {"mounts": [{"type": "x"}]}}
    assert "runProfile.mounts.0" in error(await http.post("/v1/scenarios/start_run", json=with_mounts), 400)
    task = {"type": "file_mount", "target": "task.md", "content": "do it"}
    with_env = {
        "scenario_id": created["id"],
        "runProfile": {"envVars": {"A": "1"}, "purpose": "p", "mounts": [task]},
    }
    profiled = ok(await http.post("/v1/scenarios/start_run", json=with_env))
    assert profiled["purpose"] == "p"
    assert (
        ok(await http.post(f"/v1/devboxes/{profiled['devbox_id']}/execute", json={"command": "echo $A; cat task.md"}))[
            "stdout"
        ]
        == "1\ndo it"
    )
    ok(await http.post(f"/v1/scenarios/runs/{profiled['id']}/cancel"))
    run = ok(await http.post("/v1/scenarios/start_run", json={"scenario_id": created["id"], "runProfile": {}}))
    assert run["state"] == "running" and run["scenario_id"] == created["id"]
    assert [r["id"] for r in ok(await http.get(f"/v1/scenarios/{created['id']}/runs"))["runs"]] == [
        run["id"],
        profiled["id"],
    ]
    assert ok(await http.post(f"/v1/scenarios/runs/{run['id']}/cancel"))["state"] == "canceled"
    assert "cannot complete" in error(await http.post(f"/v1/scenarios/runs/{run['id']}/complete"), 409)
    assert "not found" in error(await http.post("/v1/scenarios/start_run", json={"scenario_id": "scn_nope"}), 404)


async def test_run_logs_download_as_a_zip(http: httpx2.AsyncClient) -> None:
    created = await scenario(http)
    run = ok(await http.post("/v1/scenarios/start_run", json={"scenario_id": created["id"]}))
    ok(await http.post(f"/v1/devboxes/{run['devbox_id']}/execute", json={"command": "echo visible-in-logs"}))
    ok(await http.post(f"/v1/scenarios/runs/{run['id']}/score"))
    with anyio.fail_after(30):
        while ok(await http.get(f"/v1/scenarios/runs/{run['id']}"))["state"] == "scoring":
            await anyio.sleep(0.05)
    response = await http.post(f"/v1/scenarios/runs/{run['id']}/download_logs")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = set(archive.namelist())
        assert {"run.json", "run.log", "entries.jsonl"} <= names
        assert "visible-in-logs" in archive.read("run.log").decode()
        entries = [json.loads(line) for line in archive.read("entries.jsonl").decode().splitlines()]
        assert any(e["source"].startswith("scorer:") for e in entries)
