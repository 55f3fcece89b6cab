"""The REST API on the wire: Runloop's quirks, error bodies, auth, long-poll bounds, the CLI."""

from __future__ import annotations

import io
import json
import os
import socket
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from scenario_mcp.local.engine import LocalBackend
from tests.conftest import seed_default_blueprint

from .server import TOKEN, serve_rest

pytestmark = pytest.mark.anyio

CONTRACT = {
    "scoring_function_parameters": [
        {"name": "ok", "weight": 1.0, "scorer": {"type": "bash_script_scorer", "bash_script": "echo 1.0"}}
    ]
}


@pytest.fixture
async def http(backend: LocalBackend) -> AsyncIterator[httpx2.AsyncClient]:
    async with (
        serve_rest(backend) as url,
        httpx2.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client,
    ):
        yield client


def ok(response: httpx2.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def error(response: httpx2.Response, status: int) -> str:
    """Runloop's error shape: the status as `code`, a kind and a message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status and isinstance(body["error"], str)
    assert isinstance(body["message"], str) and body["message"]
    return str(body["message"])


async def scenario(http: httpx2.AsyncClient, name: str = "s", **extra: Any) -> dict[str, Any]:
    body = {"name": name, "input_context": {"problem_statement": "p"}, "scoring_contract": CONTRACT, **extra}
    return dict(ok(await http.post("/v1/scenarios", json=body)))


async def test_bearer_token(backend: LocalBackend) -> None:
    async with serve_rest(backend) as url, httpx2.AsyncClient(base_url=url) as anonymous:
        assert "missing bearer token" in error(await anonymous.get("/v1/scenarios"), 401)
        wrong = await anonymous.get("/v1/scenarios", headers={"Authorization": "Bearer nope"})
        assert "invalid bearer token" in error(wrong, 401)
        assert ok(await anonymous.get("/healthz")) == {"status": "ok"}
    async with serve_rest(backend, token=None) as url, httpx2.AsyncClient(base_url=url) as open_client:
        assert ok(await open_client.get("/v1/scenarios"))["scenarios"] == []


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


async def test_environment_parameters_in_environment_out(http: httpx2.AsyncClient) -> None:
    created = await scenario(http, environment_parameters={"working_directory": "/home/user/app"})
    assert created["environment"]["working_directory"] == "/home/user/app"
    assert "environment_parameters" not in created
    assert created["status"] == "active" and created["is_public"] is False
    fetched = ok(await http.get(f"/v1/scenarios/{created['id']}"))
    assert fetched["environment"] == created["environment"]
    updated = ok(
        await http.post(
            f"/v1/scenarios/{created['id']}", json={"environment_parameters": {"working_directory": "/srv"}}
        )
    )
    assert updated["environment"]["working_directory"] == "/srv" and updated["name"] == "s"
    assert ok(await http.post(f"/v1/scenarios/{created['id']}/archive"))["status"] == "archived"
    assert ok(await http.post(f"/v1/scenarios/{created['id']}/unarchive"))["status"] == "active"


async def test_lists_filter_and_page(http: httpx2.AsyncClient) -> None:
    forward = await scenario(http, "f", validation_type="FORWARD")
    plain = await scenario(http, "p")
    other = await scenario(http, "o", validation_type="FORWARD")
    page = ok(await http.get("/v1/scenarios", params={"limit": 2}))
    assert [s["id"] for s in page["scenarios"]] == [other["id"], plain["id"]]
    assert page["has_more"] is True and page["total_count"] == 3
    rest = ok(await http.get("/v1/scenarios", params={"limit": 2, "starting_after": plain["id"]}))
    assert [s["id"] for s in rest["scenarios"]] == [forward["id"]] and rest["has_more"] is False
    no_count = ok(await http.get("/v1/scenarios", params={"include_total_count": "false"}))
    assert no_count["total_count"] is None
    typed = ok(await http.get("/v1/scenarios", params={"validation_type": "FORWARD", "limit": 1}))
    assert [s["id"] for s in typed["scenarios"]] == [other["id"]] and typed["has_more"] and typed["total_count"] == 2

    bench = ok(await http.post("/v1/benchmarks", json={"name": "b", "scenario_ids": [forward["id"], plain["id"]]}))
    assert bench["scenarioIds"] == [forward["id"], plain["id"]] and "scenario_ids" not in bench
    in_bench = ok(await http.get("/v1/scenarios", params={"benchmark_id": bench["id"]}))
    assert [s["id"] for s in in_bench["scenarios"]] == [plain["id"], forward["id"]]
    assert ok(await http.get(f"/v1/benchmarks/{bench['id']}"))["scenarioIds"] == [forward["id"], plain["id"]]
    updated = ok(await http.post(f"/v1/benchmarks/{bench['id']}", json={"scenario_ids": [plain["id"], other["id"]]}))
    assert updated["scenarioIds"] == [plain["id"], other["id"]]
    assert "not supported" in error(await http.post(f"/v1/benchmarks/{bench['id']}", json={"name": "renamed"}), 400)
    assert ok(await http.get("/v1/scenarios/list_public"))["scenarios"] == []


async def test_start_run_takes_camel_case_run_profile(http: httpx2.AsyncClient) -> None:
    created = await scenario(http)
    snake = error(
        await http.post("/v1/scenarios/start_run", json={"scenario_id": created["id"], "run_profile": {}}), 400
    )
    assert "run_profile: unknown field" in snake and "runProfile" in snake
    with_mounts = {"scenario_id": created["id"], "runProfile": {"mounts": [{"type": "x"}]}}
    assert "runProfile.mounts is not supported" in error(
        await http.post("/v1/scenarios/start_run", json=with_mounts), 400
    )
    with_env = {"scenario_id": created["id"], "runProfile": {"envVars": {"A": "1"}, "purpose": "p"}}
    profiled = ok(await http.post("/v1/scenarios/start_run", json=with_env))
    assert profiled["purpose"] == "p"
    assert (
        ok(await http.post(f"/v1/devboxes/{profiled['devbox_id']}/execute", json={"command": "echo $A"}))["stdout"]
        == "1\n"
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


async def test_files_over_the_wire(http: httpx2.AsyncClient) -> None:
    box = ok(await http.post("/v1/devboxes", json={}))
    base = f"/v1/devboxes/{box['id']}"
    written = ok(await http.post(f"{base}/write_file_contents", json={"file_path": "a/b.txt", "contents": "text"}))
    assert written["exit_status"] == 0
    read = await http.post(f"{base}/read_file_contents", json={"file_path": "a/b.txt"})
    assert read.status_code == 200 and read.text == "text" and read.headers["content-type"].startswith("text/plain")
    upload = await http.post(f"{base}/upload_file", data={"path": "bin/x"}, files={"file": ("x", b"\x00\xff")})
    assert upload.status_code == 200, upload.text
    download = await http.post(f"{base}/download_file", json={"path": "bin/x"})
    assert download.content == b"\x00\xff" and download.headers["content-type"] == "application/octet-stream"
    assert "path: required" in error(await http.post(f"{base}/upload_file", files={"file": ("x", b"1")}), 400)
    assert "multipart" in error(await http.post(f"{base}/upload_file", json={"path": "x"}), 415)
    assert "escapes" in error(
        await http.post(f"{base}/read_file_contents", json={"file_path": "../../etc/shadow"}), 400
    )
    huge = b'{"file_path": "big", "contents": "' + b"a" * (64 * 1024 * 1024) + b'"}'
    assert "larger than" in error(await http.post(f"{base}/write_file_contents", content=huge), 413)

    snap = ok(await http.post(f"{base}/snapshot_disk_async", json={"name": "n"}))
    status = ok(await http.get(f"/v1/devboxes/disk_snapshots/{snap['id']}/status"))
    assert status["status"] == "complete" and status["snapshot"]["id"] == snap["id"]
    assert "metadata.a" in error(
        await http.post(f"/v1/devboxes/disk_snapshots/{snap['id']}", json={"metadata": {"a": 1}}), 400
    )
    relabeled = ok(await http.post(f"/v1/devboxes/disk_snapshots/{snap['id']}", json={"commit_message": "c"}))
    assert relabeled["name"] == "n" and relabeled["commit_message"] == "c"
    ok(await http.post(f"/v1/devboxes/disk_snapshots/{snap['id']}/delete"))
    error(await http.get(f"/v1/devboxes/disk_snapshots/{snap['id']}/status"), 404)

    # POST on a devbox's own path updates it; GET still reads it.
    assert "nme: unknown field" in error(await http.post(base, json={"nme": "x"}), 400)
    assert ok(await http.post(base, json={"name": "renamed"}))["name"] == "renamed"
    assert ok(await http.get(base))["name"] == "renamed"
    error(await http.post("/v1/devboxes/dbx_nope", json={"name": "x"}), 404)


async def test_cli_api_serves_and_refuses_open_binds(tmp_path: Path, default_blueprint_cache: Path) -> None:
    refused = await anyio.run_process(
        [sys.executable, "-m", "scenario_mcp", "api", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "d")],
        check=False,
        env={k: v for k, v in os.environ.items() if k != "SCENARIO_MCP_API_TOKEN"},
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
