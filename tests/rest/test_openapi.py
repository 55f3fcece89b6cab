"""Every implemented path of Runloop's OpenAPI, called for real, its answer checked against the spec.

One walk over a real server on 127.0.0.1 makes each call a client makes (devboxes, executions,
files, snapshots, blueprints, objects, scenarios, runs, scorers, benchmarks) and validates each 200
answer with jsonschema against the spec's response schema: required fields present, enums the
spec's, no field the spec does not know unless it is a declared extension (openapi.EXTENSIONS).
The walk must cover every (method, path) of the spec that the REST app routes.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx2
import pytest

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.launch import host_architecture
from scenario_mcp.rest.app import ROUTES

from . import openapi
from .helpers import CONTRACT

pytestmark = pytest.mark.anyio


class Walk:
    """A client that checks every answer against the spec and remembers which operations it saw."""

    def __init__(self, http: httpx2.AsyncClient) -> None:
        self.http = http
        self.seen: set[tuple[str, str]] = set()
        self.problems: list[str] = []  # every deviation is reported, not only the first

    async def call(self, method: str, url: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, url, **kwargs)
        assert response.status_code == 200, f"{method} {url}: {response.status_code} {response.text}"
        path = openapi.match(method, url.split("?", 1)[0])
        assert path is not None, f"{method} {url} is not in Runloop's OpenAPI"
        self.seen.add((method, path))
        expected = openapi.expected(method, path)
        media_type = response.headers["content-type"].split(";")[0]
        for header in expected.headers:
            assert header.lower() in response.headers, f"{method} {path}: no {header} header"
        if path.endswith(("/stream_stdout_updates", "/stream_stderr_updates")):
            # Server-sent events, each one's data a chunk (the spec names only the chunk's schema).
            assert media_type == "text/event-stream"
            chunks = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
            for chunk in chunks:
                expected.validate(chunk)  # chunks are this test's own parsing: a deviation stops it
            return chunks
        if path.endswith("/logs/tail"):
            # Server-sent events the spec gives no schema for: this API's are devbox log entries.
            assert media_type == "text/event-stream", f"{method} {path}: {media_type}"
            return [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
        assert media_type == expected.media_type, f"{method} {path}: {media_type}, not {expected.media_type}"
        if expected.schema_name is None:
            return response.content
        body = response.json()
        try:
            expected.validate(body)
        except AssertionError as exc:
            self.problems.append(f"{method} {path}: {exc}")
        return body

    async def until(self, url: str, done: Any, seconds: float = 120) -> Any:
        """GET `url` until `done(answer)`."""
        async with asyncio.timeout(seconds):
            while not done(answer := await self.call("GET", url)):
                await asyncio.sleep(0.05)
        return answer


def implemented() -> set[tuple[str, str]]:
    """The spec's operations the REST app routes."""
    routed = {(method, openapi.template(path)) for method, path, _ in ROUTES}
    return {(m, p) for m, p in openapi.operations() if (m, openapi.template(p)) in routed}


async def devboxes(walk: Walk) -> str:
    launch = {"resource_size_request": "SMALL", "architecture": host_architecture(), "keep_alive_time_seconds": 600}
    box = await walk.call(
        "POST", "/v1/devboxes", json={"name": "walk", "metadata": {"team": "a"}, "launch_parameters": launch}
    )
    base = f"/v1/devboxes/{box['id']}"
    await walk.call("GET", "/v1/devboxes?limit=5")
    await walk.call("GET", base)
    await walk.call("POST", base, json={"name": "walked"})
    await walk.call("POST", f"{base}/wait_for_status", json={"statuses": ["running"], "timeout_seconds": 5})
    await walk.call("POST", f"{base}/keep_alive")
    await walk.call("GET", "/v1/devboxes/metadata/keys")
    await walk.call("GET", "/v1/devboxes/metadata/keys/team/values")
    await walk.call("POST", f"{base}/write_file_contents", json={"file_path": "a.txt", "contents": "text"})
    assert await walk.call("POST", f"{base}/read_file_contents", json={"file_path": "a.txt"}) == b"text"
    await walk.call("POST", f"{base}/upload_file", data={"path": "/srv/b.bin"}, files={"file": ("b", b"\x00")})
    assert await walk.call("POST", f"{base}/download_file", json={"path": "/srv/b.bin"}) == b"\x00"
    await executions(walk, base)
    await walk.call("GET", f"{base}/logs")
    await walk.call("GET", f"{base}/usage")
    return str(box["id"])


async def executions(walk: Walk, base: str) -> None:
    done = await walk.call(
        "POST", f"{base}/execute", json={"command": "echo hi; echo err >&2", "command_id": str(uuid.uuid4())}
    )
    assert done["status"] == "completed" and done["stdout"] == "hi\n"
    execution = f"{base}/executions/{done['execution_id']}"
    assert [c["output"] for c in await walk.call("GET", f"{execution}/stream_stdout_updates")] == ["hi\n"]
    assert [c["output"] for c in await walk.call("GET", f"{execution}/stream_stderr_updates")] == ["err\n"]
    await walk.call("POST", f"{base}/execute_sync", json={"command": "true"})
    reader = await walk.call("POST", f"{base}/execute_async", json={"command": "cat", "attach_stdin": True})
    execution = f"{base}/executions/{reader['execution_id']}"
    await walk.call("POST", f"{execution}/send_std_in", json={"text": "fed\n"})
    await walk.call("POST", f"{execution}/send_std_in", json={"signal": "EOF"})
    fed = await walk.call("POST", f"{execution}/wait_for_status", json={"statuses": ["completed"]})
    assert fed["stdout"] == "fed\n"
    sleeper = await walk.call("POST", f"{base}/execute_async", json={"command": "sleep 60"})
    execution = f"{base}/executions/{sleeper['execution_id']}"
    await walk.call("GET", execution)
    assert (await walk.call("POST", f"{execution}/kill", json={}))["status"] == "completed"


async def snapshots(walk: Walk, devbox_id: str) -> None:
    base = f"/v1/devboxes/{devbox_id}"
    snap = await walk.call("POST", f"{base}/snapshot_disk", json={"name": "s", "metadata": {"kind": "walk"}})
    await walk.call("POST", f"{base}/snapshot_disk_async", json={"name": "s2"})
    await walk.call("GET", f"/v1/devboxes/disk_snapshots?devbox_id={devbox_id}")
    await walk.call("GET", "/v1/devboxes/disk_snapshots/list_public")
    await walk.call("POST", f"/v1/devboxes/disk_snapshots/{snap['id']}", json={"commit_message": "c"})
    await walk.call("GET", f"/v1/devboxes/disk_snapshots/{snap['id']}/status")
    await walk.call("GET", "/v1/devboxes/disk_snapshots/metadata/keys")
    await walk.call("GET", "/v1/devboxes/disk_snapshots/metadata/keys/kind/values")
    await walk.call("GET", "/v1/devboxes/disk_snapshots/public/metadata/keys")
    await walk.call("GET", "/v1/devboxes/disk_snapshots/public/metadata/keys/kind/values")
    await walk.call("POST", f"/v1/devboxes/disk_snapshots/{snap['id']}/delete")
    await walk.call("POST", f"{base}/suspend")
    await walk.call("POST", f"{base}/wait_for_status", json={"statuses": ["suspended"], "timeout_seconds": 20})
    await walk.call("POST", f"{base}/resume")
    await walk.call("POST", f"{base}/wait_for_status", json={"statuses": ["running"], "timeout_seconds": 20})
    assert (await walk.call("POST", f"{base}/shutdown"))["status"] == "shutdown"
    assert (await walk.call("GET", f"{base}/usage"))["end_time_ms"] is not None
    tail = await walk.call("GET", f"{base}/logs/tail")  # ends at once: the devbox has
    assert tail[0]["message"] == "hi\nerr\n"


async def blueprints(walk: Walk) -> None:
    launch = {"resource_size_request": "CUSTOM_SIZE", "custom_cpu_cores": 1, "custom_gb_memory": 2}
    body = {
        "name": "walk-bp",
        "system_setup_commands": ["echo ok > /tmp/ok"],
        "file_mounts": {"/etc/walk.conf": "x"},
        "launch_parameters": {**launch, "user_parameters": {"username": "root", "uid": 0}},
        "metadata": {"kind": "walk"},
    }
    queued = await walk.call("POST", "/v1/blueprints", json=body)
    built = await walk.until(f"/v1/blueprints/{queued['id']}", lambda b: b["status"] in ("build_complete", "failed"))
    assert built["status"] == "build_complete", built
    broken = await walk.call(
        "POST", "/v1/blueprints", json={"name": "walk-broken", "system_setup_commands": ["exit 3"]}
    )
    failed = await walk.until(f"/v1/blueprints/{broken['id']}", lambda b: b["status"] in ("build_complete", "failed"))
    assert failed["failure_reason"] == "build_failed" and "exited 3" in failed["failure_message"]
    await walk.call("GET", "/v1/blueprints?name=walk-bp&include_total_count=false")
    await walk.call("GET", "/v1/blueprints/list_public?name=walk-bp")
    await walk.call("GET", f"/v1/blueprints/{queued['id']}/logs")
    await walk.call("GET", "/v1/blueprints/metadata/keys")
    await walk.call("GET", "/v1/blueprints/metadata/keys/kind/values")
    await walk.call("GET", "/v1/blueprints/public/metadata/keys")
    await walk.call("GET", "/v1/blueprints/public/metadata/keys/kind/values")
    for blueprint in (queued, broken):
        await walk.call("POST", f"/v1/blueprints/{blueprint['id']}/delete")


async def objects(walk: Walk) -> None:
    created = await walk.call("POST", "/v1/objects", json={"name": "o.txt", "content_type": "text", "ttl_ms": 60_000})
    upload = await walk.http.put(created["upload_url"], content=b"content", headers={"Authorization": ""})
    assert upload.status_code == 200, upload.text
    await walk.call("POST", f"/v1/objects/{created['id']}/complete")
    await walk.call("GET", "/v1/objects?content_type=text")
    await walk.call("GET", "/v1/objects/list_public")
    await walk.call("GET", f"/v1/objects/{created['id']}")
    await walk.call("GET", f"/v1/objects/{created['id']}/download?duration_seconds=60")
    await walk.call("POST", f"/v1/objects/{created['id']}/delete")


async def scenarios(walk: Walk) -> str:
    scorer = await walk.call("POST", "/v1/scenarios/scorers", json={"type": "walk_scorer", "bash_script": "echo 1.0"})
    await walk.call("GET", "/v1/scenarios/scorers")
    await walk.call("GET", f"/v1/scenarios/scorers/{scorer['id']}")
    await walk.call(
        "POST", f"/v1/scenarios/scorers/{scorer['id']}", json={"type": "walk_scorer", "bash_script": "echo 1"}
    )
    body = {
        "name": "walk",
        "input_context": {"problem_statement": "p"},
        "scoring_contract": CONTRACT,
        "metadata": {"k": "v"},
    }
    scenario = await walk.call("POST", "/v1/scenarios", json=body)
    base = f"/v1/scenarios/{scenario['id']}"
    await walk.call("GET", "/v1/scenarios?limit=5")
    await walk.call("GET", "/v1/scenarios/list_public")
    await walk.call("GET", base)
    await walk.call("POST", base, json={"metadata": {"k": "w"}})
    await walk.call("GET", "/v1/scenarios/metadata/keys")
    await walk.call("GET", "/v1/scenarios/metadata/keys/k/values")
    run = await walk.call("POST", "/v1/scenarios/start_run", json={"scenario_id": scenario["id"], "run_name": "r"})
    await walk.call("GET", f"/v1/scenarios/runs?scenario_id={scenario['id']}")
    await walk.call("GET", f"{base}/runs")
    await walk.call("POST", f"/v1/scenarios/runs/{run['id']}/score")
    scored = await walk.until(f"/v1/scenarios/runs/{run['id']}", lambda r: r["state"] not in ("running", "scoring"))
    assert scored["state"] == "scored" and scored["scoring_contract_result"]["score"] == 1.0
    await walk.call("POST", f"/v1/scenarios/runs/{run['id']}/complete")
    assert (await walk.call("POST", f"/v1/scenarios/runs/{run['id']}/download_logs")).startswith(b"PK")
    other = await walk.call("POST", "/v1/scenarios/start_run", json={"scenario_id": scenario["id"]})
    await walk.call("POST", f"/v1/scenarios/runs/{other['id']}/cancel")
    await walk.call("POST", f"{base}/archive")
    await walk.call("POST", f"{base}/unarchive")
    return str(scenario["id"])


async def benchmarks(walk: Walk, scenario_id: str) -> None:
    body = {"name": "walk-bench", "scenario_ids": [scenario_id], "metadata": {"k": "v"}}
    bench = await walk.call("POST", "/v1/benchmarks", json=body)
    base = f"/v1/benchmarks/{bench['id']}"
    await walk.call("GET", "/v1/benchmarks")
    await walk.call("GET", "/v1/benchmarks/list_public")
    await walk.call("GET", base)
    await walk.call("POST", base, json={"scenario_ids": [scenario_id]})
    await walk.call("GET", f"{base}/definitions")
    await walk.call("POST", f"{base}/scenarios", json={"scenarios_to_add": [scenario_id]})
    await walk.call("GET", "/v1/benchmarks/metadata/keys")
    await walk.call("GET", "/v1/benchmarks/metadata/keys/k/values")
    # Runs under both of Runloop's prefixes, each run ended once (complete or cancel).
    for prefix, end in [
        ("/v1/benchmark_runs", "complete"),
        ("/v1/benchmark_runs", "cancel"),
        ("/v1/benchmarks/runs", "complete"),
        ("/v1/benchmarks/runs", "cancel"),
    ]:
        run = await walk.call("POST", "/v1/benchmarks/start_run", json={"benchmark_id": bench["id"]})
        await walk.call("GET", prefix)
        await walk.call("GET", f"{prefix}/{run['id']}")
        await walk.call("GET", f"{prefix}/{run['id']}/scenario_runs")
        await walk.call("POST", f"{prefix}/{run['id']}/{end}")
    await walk.call("GET", f"{base}/runs")
    await walk.call("POST", f"{base}/archive")
    await walk.call("POST", f"{base}/unarchive")


async def network_policies(walk: Walk) -> None:
    body = {"name": "walk-np", "allow_all": False, "allowed_hostnames": ["pypi.org"], "description": "d"}
    policy = await walk.call("POST", "/v1/network-policies", json=body)
    base = f"/v1/network-policies/{policy['id']}"
    await walk.call("GET", "/v1/network-policies?name=walk-np")
    await walk.call("GET", base)
    await walk.call("POST", base, json={"allowed_hostnames": ["pypi.org", "files.pythonhosted.org"]})
    none = await walk.call("POST", "/v1/network-policies", json={"name": "walk-none", "allow_all": False})
    launch = {"network_policy_id": none["id"], "user_parameters": {"username": "root", "uid": 0}}
    box = await walk.call("POST", "/v1/devboxes", json={"launch_parameters": launch})
    await walk.call("POST", f"/v1/devboxes/{box['id']}/shutdown")
    await walk.call("POST", f"{base}/delete")


async def secrets(walk: Walk) -> None:
    await walk.call("POST", "/v1/secrets", json={"name": "WALK_SECRET", "value": "walk-value"})
    await walk.call("GET", "/v1/secrets?limit=5")
    await walk.call("GET", "/v1/secrets/WALK_SECRET")
    await walk.call("POST", "/v1/secrets/WALK_SECRET", json={"value": "walk-value-2"})
    await walk.call("POST", "/v1/secrets/WALK_SECRET/delete")


async def tunnels(walk: Walk) -> None:
    box = await walk.call("POST", "/v1/devboxes", json={"tunnel": {"auth_mode": "authenticated"}})
    await walk.call("POST", f"/v1/devboxes/{box['id']}/remove_tunnel", json={})
    await walk.call("POST", f"/v1/devboxes/{box['id']}/enable_tunnel", json={"auth_mode": "open"})
    await walk.call("POST", f"/v1/devboxes/{box['id']}/shutdown")


async def agents(walk: Walk) -> None:
    agent = await walk.call("POST", "/v1/agents", json={"name": "walk-agent", "version": "1"})
    await walk.until(f"/v1/agents/{agent['id']}", lambda a: a["status"] == "build_complete")
    await walk.call("GET", "/v1/agents?name=walk&version=latest&include_total_count=false")
    mounts = [
        {"type": "agent_mount", "agent_id": agent["id"], "agent_path": "/opt/walk"},
        {"type": "file_mount", "target": "/home/user/task.md", "content": "walk"},
    ]
    box = await walk.call("POST", "/v1/devboxes", json={"mounts": mounts})
    await walk.call("POST", f"/v1/devboxes/{box['id']}/shutdown")
    await walk.call("POST", f"/v1/agents/{agent['id']}/delete")


async def test_every_implemented_path_answers_as_runloops_openapi_says(
    http: httpx2.AsyncClient, backend: LocalBackend
) -> None:
    walk = Walk(http)
    devbox_id = await devboxes(walk)
    await snapshots(walk, devbox_id)
    await blueprints(walk)
    await objects(walk)
    await network_policies(walk)
    await secrets(walk)
    await tunnels(walk)
    await agents(walk)
    await benchmarks(walk, await scenarios(walk))
    assert not walk.problems, "\n".join(walk.problems)
    missing = sorted(implemented() - walk.seen)
    assert not missing, f"routed but never checked against the spec: {missing}"


def test_every_schema_the_walk_names_exists_and_every_extension_is_declared_on_a_model() -> None:
    schemas = openapi.spec()["components"]["schemas"]
    for name, fields in openapi.EXTENSIONS.items():
        assert name in schemas
        assert not fields & set(schemas[name].get("properties", {})), f"{name}: the spec has some of {fields}"
    for (method, path), (schema_name, _why) in openapi.ERRATA.items():
        assert (method, path) in openapi.operations() and schema_name in schemas
