"""Custom scorers: the registry on a real store, and a registered script scoring a real run."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from scenario_mcp.backend import InvalidRequestError, NotFoundError
from scenario_mcp.local.custom_scorers import CustomScorers
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.store import Store
from scenario_mcp.models import (
    CreateCustomScorerParameters,
    CustomScorer,
    InputContext,
    ScenarioCreateParameters,
    ScoringContract,
    ScoringFunction,
    StartScenarioRunParameters,
)

pytestmark = pytest.mark.anyio

SCRIPT = "echo 1.0"


@pytest.fixture
def scorers(tmp_path: Path) -> CustomScorers:
    return CustomScorers(Store(tmp_path / "db.sqlite3"))


async def test_create_get_list_and_by_type(scorers: CustomScorers) -> None:
    first = await scorers.create(CreateCustomScorerParameters(type="first", bash_script=SCRIPT))
    second = await scorers.create(CreateCustomScorerParameters(type="second", bash_script="echo 0.5"))
    assert await scorers.get(first.id) == first
    assert await scorers.by_type("second") == second
    assert await scorers.by_type("third") is None
    listed = await scorers.list(limit=1)
    assert [s.id for s in listed.scorers] == [second.id] and listed.has_more and listed.total_count == 2
    rest = await scorers.list(limit=5, starting_after=second.id)
    assert [s.id for s in rest.scorers] == [first.id] and not rest.has_more


async def test_a_type_is_registered_once(scorers: CustomScorers) -> None:
    existing = await scorers.create(CreateCustomScorerParameters(type="dup", bash_script=SCRIPT))
    with pytest.raises(InvalidRequestError, match=existing.id):
        await scorers.create(CreateCustomScorerParameters(type="dup", bash_script="echo 0.0"))
    assert (await scorers.list(limit=10)).total_count == 1


async def test_an_empty_script_is_refused(scorers: CustomScorers) -> None:
    with pytest.raises(InvalidRequestError, match="bash_script is empty"):
        await scorers.create(CreateCustomScorerParameters(type="blank", bash_script="  \n"))
    made = await scorers.create(CreateCustomScorerParameters(type="ok", bash_script=SCRIPT))
    with pytest.raises(InvalidRequestError, match="bash_script is empty"):
        await scorers.update(made.id, CreateCustomScorerParameters(type="ok", bash_script=""))
    assert (await scorers.get(made.id)).bash_script == SCRIPT


async def test_update_renames_only_to_a_free_type(scorers: CustomScorers) -> None:
    taken = await scorers.create(CreateCustomScorerParameters(type="taken", bash_script=SCRIPT))
    mine = await scorers.create(CreateCustomScorerParameters(type="mine", bash_script=SCRIPT))
    with pytest.raises(InvalidRequestError, match=taken.id):
        await scorers.update(mine.id, CreateCustomScorerParameters(type="taken", bash_script=SCRIPT))
    same = await scorers.update(mine.id, CreateCustomScorerParameters(type="mine", bash_script="echo 0.25"))
    assert same.bash_script == "echo 0.25"
    renamed = await scorers.update(mine.id, CreateCustomScorerParameters(type="free", bash_script=SCRIPT))
    assert renamed.type == "free"
    assert await scorers.by_type("mine") is None
    assert (await scorers.by_type("free")) == renamed


async def test_unknown_scorer_is_not_found(scorers: CustomScorers) -> None:
    with pytest.raises(NotFoundError):
        await scorers.get("scs_missing")
    with pytest.raises(NotFoundError):
        await scorers.update("scs_missing", CreateCustomScorerParameters(type="x", bash_script=SCRIPT))


async def test_a_registered_script_scores_with_its_function_params(backend: LocalBackend) -> None:
    await backend.create_custom_scorer(
        CreateCustomScorerParameters(
            type="wants-context",
            bash_script='case "$RL_SCORER_CONTEXT" in *\'"expect": "yes"\'*) echo 1.0;; *) echo 0.0;; esac',
        )
    )
    functions = [
        ScoringFunction(
            name=name,
            weight=1,
            scorer=CustomScorer(custom_scorer_type="wants-context", scorer_params={"expect": expect}),
        )
        for name, expect in (("right", "yes"), ("wrong", "no"))
    ]
    scenario = await backend.create_scenario(
        ScenarioCreateParameters(
            name="custom",
            input_context=InputContext(problem_statement="nothing to do"),
            scoring_contract=ScoringContract(scoring_function_parameters=functions),
        )
    )
    run = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    await backend.score_run(run.id)
    with anyio.fail_after(60):
        while (run := await backend.get_run(run.id)).state == "scoring":
            await anyio.sleep(0.05)
    assert run.scoring_contract_result is not None
    scores = {r.scoring_function_name: r.score for r in run.scoring_contract_result.scoring_function_results}
    assert scores == {"right": 1.0, "wrong": 0.0}
    assert run.scoring_contract_result.score == 0.5
    await backend.complete_run(run.id)
