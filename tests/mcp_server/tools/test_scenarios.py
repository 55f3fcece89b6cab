"""The scenario tools (tools/scenarios.py): through a real in-memory mcp.Client over a real LocalBackend,
and the functions called directly."""

from __future__ import annotations

import pytest
from mcp import Client

from scenario_mcp.backend import NotFoundError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.mcp_server.tools.inputs import ListScenariosInput, ScenarioIdInput, UpdateScenarioInput
from scenario_mcp.mcp_server.tools.scenarios import (
    archive_scenario,
    get_scenario,
    list_scenarios,
    unarchive_scenario,
    update_scenario,
)

from ..helpers import FIX, error_text, ok, seed_scenario, seed_snapshot

pytestmark = pytest.mark.anyio


async def test_scenario_update_list_paging_archive(backend: LocalBackend) -> None:
    snapshot_id = await seed_snapshot(backend)
    ids = [(await seed_scenario(backend, snapshot_id)).id for _ in range(3)]
    async with Client(build_server(backend)) as client:
        first = await ok(client, "list_scenarios", limit=2)
        assert first["has_more"] is True and len(first["scenarios"]) == 2
        rest = await ok(client, "list_scenarios", limit=2, starting_after=first["scenarios"][-1]["id"])
        assert rest["has_more"] is False
        assert sorted(s["id"] for s in first["scenarios"] + rest["scenarios"]) == sorted(ids)

        updated = await ok(
            client,
            "update_scenario",
            scenario_id=ids[0],
            name="renamed",
            input_context={"problem_statement": "New words."},
        )
        assert updated["name"] == "renamed" and updated["input_context"]["problem_statement"] == "New words."
        assert updated["reference_output"].startswith(FIX)  # untouched fields stay
        named = await ok(client, "list_scenarios", name="renamed")
        assert [s["id"] for s in named["scenarios"]] == [ids[0]]

        archived = await ok(client, "archive_scenario", scenario_id=ids[0])
        assert archived["status"] == "archived"
        assert "unarchive" in await error_text(client, "start_run", scenario_id=ids[0])
        assert (await ok(client, "unarchive_scenario", scenario_id=ids[0]))["status"] == "active"
        assert "not found" in await error_text(client, "update_scenario", scenario_id="scn_nope", name="x")


async def test_validate_scenario(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    async with Client(build_server(backend)) as client:
        verdict = await ok(client, "validate_scenario", scenario_id=scenario.id)
    assert verdict["valid"] is True, verdict
    assert verdict["gold"]["result"]["score"] == 1.0
    assert verdict["untouched"]["result"]["score"] < 1.0


async def test_update_scenario_sends_only_the_fields_given(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    updated = await update_scenario(backend, UpdateScenarioInput(scenario_id=scenario.id, name="renamed"))
    assert updated.name == "renamed"
    assert updated.input_context == scenario.input_context
    assert updated.reference_output == scenario.reference_output
    assert updated.scoring_contract == scenario.scoring_contract
    listed = await list_scenarios(backend, ListScenariosInput(name="renamed"))
    assert [s.id for s in listed.scenarios] == [scenario.id]
    assert (await get_scenario(backend, ScenarioIdInput(scenario_id=scenario.id))).name == "renamed"
    archived = await archive_scenario(backend, ScenarioIdInput(scenario_id=scenario.id))
    assert archived.status == "archived"
    assert (await unarchive_scenario(backend, ScenarioIdInput(scenario_id=scenario.id))).status == "active"
    with pytest.raises(NotFoundError):
        await get_scenario(backend, ScenarioIdInput(scenario_id="scn_nope"))
