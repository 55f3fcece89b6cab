"""The wire over what moved behind the Backend: a command_id kept across a server restart, list
filters in the query, and a benchmark's whole-object update."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

from scenario_mcp.local.engine import LocalBackend
from tests.conftest import seed_default_blueprint, shutdown_all

from .helpers import error, ok, scenario
from .server import TOKEN, serve_rest

pytestmark = pytest.mark.anyio

ONCE = {"command": "echo ran >> once.txt; cat once.txt", "command_id": "0190c5b0-0000-7000-8000-0000000000bb"}


async def test_execute_with_a_command_id_runs_once_across_a_server_restart(
    data_dir: Path, default_blueprint_cache: Path
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with LocalBackend(data_dir) as engine:
        await seed_default_blueprint(engine, default_blueprint_cache)
        async with serve_rest(engine) as url, httpx2.AsyncClient(base_url=url, headers=auth, timeout=30) as http:
            box = ok(await http.post("/v1/devboxes", json={}))
            first = ok(await http.post(f"/v1/devboxes/{box['id']}/execute", json=ONCE))
            assert first["stdout"] == "ran\n"
    async with LocalBackend(data_dir) as engine:
        async with serve_rest(engine) as url, httpx2.AsyncClient(base_url=url, headers=auth, timeout=30) as http:
            again = ok(await http.post(f"/v1/devboxes/{box['id']}/execute", json=ONCE))
            assert again["execution_id"] == first["execution_id"] and again["stdout"] == "ran\n"
            count = ok(await http.post(f"/v1/devboxes/{box['id']}/execute", json={"command": "wc -l < once.txt"}))
            assert count["stdout"].strip() == "1"
        await shutdown_all(engine)


async def test_list_filters_page_in_the_backend(http: httpx2.AsyncClient) -> None:
    names = ["a", "b", "a", "a"]
    made = [await scenario(http, name) for name in names]
    page = ok(await http.get("/v1/scenarios", params={"name": "a", "limit": 2}))
    assert [s["id"] for s in page["scenarios"]] == [made[3]["id"], made[2]["id"]]
    assert page["has_more"] is True and page["total_count"] == 3
    rest = ok(await http.get("/v1/scenarios", params={"name": "a", "limit": 2, "starting_after": made[2]["id"]}))
    assert [s["id"] for s in rest["scenarios"]] == [made[0]["id"]] and rest["has_more"] is False
    no_total = ok(await http.get("/v1/scenarios", params={"name": "a", "include_total_count": "false"}))
    assert no_total["total_count"] is None

    assert "unknown devbox status 'nap'" in error(await http.get("/v1/devboxes", params={"status": "nap"}), 400)
    assert "not found" in error(await http.get("/v1/scenarios", params={"benchmark_id": "bmd_nope"}), 404)


async def test_benchmark_update_replaces_its_scenarios(http: httpx2.AsyncClient) -> None:
    one, two = await scenario(http, "one"), await scenario(http, "two")
    bench = ok(await http.post("/v1/benchmarks", json={"name": "b", "scenario_ids": [one["id"]]}))
    path = f"/v1/benchmarks/{bench['id']}"
    updated = ok(await http.post(path, json={"name": "b", "scenario_ids": [two["id"]], "attribution": "me"}))
    assert updated["scenarioIds"] == [two["id"]]
    refused = error(await http.post(path, json={"name": "renamed"}), 400)
    assert refused.startswith("updating name of a benchmark is not supported by this scenario-mcp engine")
    assert "invalid request" in error(await http.post(path, json={"bogus": 1}), 400)
    error(await http.post("/v1/benchmarks/bmd_nope", json={"scenario_ids": []}), 404)
