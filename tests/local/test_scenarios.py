"""Scenarios on the real engine: records, checks, their working directory."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from scenario_mcp.backend import InvalidRequestError, NotFoundError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import (
    AstGrepScorer,
    BashScriptScorer,
    CommandScorer,
    CustomScorer,
    ScenarioEnvironment,
    StartScenarioRunParameters,
)

from .helpers import contract, scenario_with, score, start

pytestmark = pytest.mark.anyio


async def test_scenario_create_get_list_paging(backend: LocalBackend) -> None:
    simple = contract(("ok", 2, CommandScorer(command="true")), ("half", 6, BashScriptScorer(bash_script="echo 0.5")))
    created = [await scenario_with(backend, simple, name=f"scn-{i}") for i in range(5)]
    first = created[0]
    assert first.id.startswith("scn_")
    assert first.status == "active"
    assert first.working_directory == "/home/user"
    assert [f.weight for f in first.scoring_contract.scoring_function_parameters] == [0.25, 0.75]
    assert await backend.get_scenario(first.id) == first

    page = await backend.list_scenarios(limit=2)
    assert [s.id for s in page.scenarios] == [created[4].id, created[3].id]
    assert page.has_more and page.total_count == 5
    page2 = await backend.list_scenarios(limit=2, starting_after=page.scenarios[-1].id)
    assert [s.id for s in page2.scenarios] == [created[2].id, created[1].id] and page2.has_more
    page3 = await backend.list_scenarios(limit=2, starting_after=page2.scenarios[-1].id)
    assert [s.id for s in page3.scenarios] == [first.id] and not page3.has_more
    named = await backend.list_scenarios(name="scn-3")
    assert [s.id for s in named.scenarios] == [created[3].id] and named.total_count == 1

    with pytest.raises(NotFoundError, match="scn_missing"):
        await backend.get_scenario("scn_missing")
    for bad_limit in (0, 5001):
        with pytest.raises(InvalidRequestError, match="limit"):
            await backend.list_scenarios(limit=bad_limit)


async def test_scenario_refuses_unregistered_scorers_and_unknown_environment(backend: LocalBackend) -> None:
    # Every scorer type runs (ast_grep_scorer too); a custom one must be registered first.
    bad = contract(
        ("fine", 1, CommandScorer(command="true")),
        ("grep", 1, AstGrepScorer(pattern="$X", search_directory=".")),
        ("mine", 1, CustomScorer(custom_scorer_type="llm_judge")),
    )
    with pytest.raises(InvalidRequestError, match="'llm_judge', which is not registered") as info:
        await scenario_with(backend, bad)
    assert "grep" not in info.value.message and "fine" not in info.value.message

    ok = contract(("fine", 1, CommandScorer(command="true")))
    with pytest.raises(NotFoundError, match="snp_nope"):
        await scenario_with(backend, ok, environment=ScenarioEnvironment(snapshot_id="snp_nope"))
    with pytest.raises(NotFoundError, match="bpt_nope"):
        await scenario_with(backend, ok, environment=ScenarioEnvironment(blueprint_id="bpt_nope"))
    with pytest.raises(ValidationError, match="absolute"):  # refused by the model itself
        ScenarioEnvironment(working_directory="proj")
    # Nothing was stored by the refused calls.
    assert (await backend.list_scenarios()).total_count == 0
    with pytest.raises(NotFoundError):
        await backend.start_run(StartScenarioRunParameters(scenario_id="scn_nope"))


async def test_working_directory_of_scenario(backend: LocalBackend) -> None:
    scenario = await scenario_with(
        backend,
        contract(("here", 1, BashScriptScorer(bash_script='test "$PWD" = /srv/project && echo 1 || echo 0'))),
        environment=ScenarioEnvironment(working_directory="/srv/project"),
    )
    assert scenario.working_directory == "/srv/project"
    run = await start(backend, scenario)
    assert (await backend.execute(run.devbox_id, "test -d /srv/project && echo yes")).stdout == "yes\n"
    scored = await score(backend, run.id)
    assert scored.scoring_contract_result is not None and scored.scoring_contract_result.score == 1.0
