"""Scenarios over the wire: environment in and out, list filters and pages (benchmarks too)."""

from __future__ import annotations

import httpx2
import pytest

from .helpers import error, ok, scenario

pytestmark = pytest.mark.anyio


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
