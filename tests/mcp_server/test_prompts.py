"""The MCP prompts (prompts.py): the solver's brief and the authoring guide, through the functions that write
them and a real mcp.Client over a real LocalBackend."""

from __future__ import annotations

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.access import SOLVER_SEES_SCORER_OUTPUT
from scenario_mcp.mcp_server.prompts import author_brief, solve_brief
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.models import StartScenarioRunParameters

from .helpers import SECRET_REFERENCE, SECRET_SCRIPT, seed_scenario, seed_snapshot

pytestmark = pytest.mark.anyio

OUTPUT_SHOWN = "each function's score, state and output"
OUTPUT_HIDDEN = "its output is hidden"


def prompt_text(result: object) -> str:
    return "".join(getattr(m.content, "text", "") for m in getattr(result, "messages", []))


async def test_solve_brief_names_the_run_its_devbox_and_each_weighted_scorer(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    run = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    brief = solve_brief(run, scenario, role="author")
    assert f"**fix-calc** (`{scenario.id}`) in run `{run.id}` (state `running`)" in brief
    assert "calc.add subtracts; make it add." in brief
    assert f"Your devbox is `{run.devbox_id}`: a sandboxed Linux machine without network access." in brief
    assert "Work in `/home/user`." in brief
    # Weights 1 and 3 are normalised to 0.25 and 0.75.
    assert "2 weighted scoring function(s):\n  - `script`: bash_script_scorer, weight 0.25\n" in brief
    assert "  - `tests`: test_based_scorer, weight 0.75\n" in brief
    assert f'score_run(run_id="{run.id}")' in brief and f'complete_run(run_id="{run.id}")' in brief
    assert f'get_run(run_id="{run.id}", wait_seconds=30)' in brief
    assert f"devbox://{run.devbox_id}/files/<path>" in brief and f"run://{run.id}/logs" in brief
    assert OUTPUT_SHOWN in brief and "**Note:**" not in brief
    assert "Additional context" not in brief

    # A solver is told its scorers' output is hidden, unless the scenario shows it.
    assert OUTPUT_HIDDEN in solve_brief(run, scenario, role="solver")
    shown = scenario.model_copy(update={"metadata": {SOLVER_SEES_SCORER_OUTPUT: "true"}})
    assert OUTPUT_SHOWN in solve_brief(run, shown, role="solver")

    canceled = await backend.cancel_run(run.id)
    note = solve_brief(canceled, scenario, role="author")
    assert "**Note:** this run is `canceled`; its devbox takes no more work." in note


def test_author_brief_walks_every_step_and_names_the_real_metadata_key() -> None:
    guide = author_brief("fix an off-by-one in a date parser")
    assert "The goal: **fix an off-by-one in a date parser**" in guide
    steps = ["Environment", "Problem statement", "Scorers, with weights", "Reference output", "Create it", "Validate"]
    positions = [guide.index(f"{n}. **{step}.**") for n, step in enumerate(steps, 1)]
    assert positions == sorted(positions) and "7. **Report**" in guide
    assert f"`{SOLVER_SEES_SCORER_OUTPUT}`" in guide  # the key redaction actually reads
    for tool in ("create_devbox", "snapshot_devbox", "create_scenario", "validate_scenario", "update_scenario"):
        assert f"`{tool}" in guide, tool


async def test_prompts_through_the_client_follow_the_role(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    run = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    async with Client(build_server(backend)) as client:
        author_view = prompt_text(await client.get_prompt("solve_scenario", {"run_id": run.id}))
        guide = prompt_text(await client.get_prompt("author_scenario", {"goal": "test a CLI"}))
    assert author_view == solve_brief(run, scenario, role="author")
    assert guide == author_brief("test a CLI")

    async with Client(build_server(backend, role="solver")) as client:
        listed = (await client.list_prompts()).prompts
        assert [p.name for p in listed] == ["solve_scenario"]
        (argument,) = listed[0].arguments or []
        assert argument.name == "run_id" and argument.required
        solver_view = prompt_text(await client.get_prompt("solve_scenario", {"run_id": run.id}))
        with pytest.raises(MCPError) as unknown:
            await client.get_prompt("solve_scenario", {"run_id": "scr_nope"})
        with pytest.raises(MCPError):
            await client.get_prompt("author_scenario", {"goal": "x"})
    assert OUTPUT_HIDDEN in solver_view and run.devbox_id in solver_view
    assert SECRET_SCRIPT not in solver_view and SECRET_REFERENCE not in solver_view
    assert unknown.value.code == INVALID_PARAMS and "scr_nope" in unknown.value.message
    await backend.cancel_run(run.id)
