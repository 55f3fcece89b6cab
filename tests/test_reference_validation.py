"""Reference validation on a real LocalBackend: applying a reference output (a patch, or commands),
both attempts with the local engine's devboxes and with a run's (the remote backend's way, over
any Backend), and the verdict."""

from __future__ import annotations

import pytest

from scenario_mcp.backend import InvalidRequestError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.scenarios import EnvironmentDevboxes
from scenario_mcp.models import (
    BashScriptScorer,
    DevboxCreateParameters,
    DevboxStatus,
    InputContext,
    ScenarioCreateParameters,
    ScenarioRunState,
    ScenarioView,
    ScoringContract,
    ScoringContractResultView,
    ScoringFunction,
    ScoringFunctionResultView,
    ValidationAttempt,
    ValidationType,
)
from scenario_mcp.reference_validation import (
    REFERENCE_PATCH,
    apply_reference,
    is_unified_diff,
    judge_validation,
    validate_with_reference,
)
from scenario_mcp.remote.reference_runs import RunDevboxes

pytestmark = pytest.mark.anyio

ANSWER_SCORER = 'if [ "$(cat answer.txt 2>/dev/null)" = 42 ]; then echo 1.0; else echo 0.0; fi'
ANSWER_PATCH = "--- /dev/null\n+++ b/answer.txt\n@@ -0,0 +1 @@\n+42\n"


async def answer_scenario(backend: LocalBackend, reference: str | None) -> ScenarioView:
    return await backend.create_scenario(
        ScenarioCreateParameters(
            name="answer",
            input_context=InputContext(problem_statement="Write 42 to answer.txt."),
            scoring_contract=ScoringContract(
                scoring_function_parameters=[
                    ScoringFunction(name="answer", weight=1.0, scorer=BashScriptScorer(bash_script=ANSWER_SCORER))
                ]
            ),
            reference_output=reference,
        )
    )


def test_a_patch_is_told_from_commands() -> None:
    assert is_unified_diff(ANSWER_PATCH)
    assert is_unified_diff("\n\ndiff --git a/x b/x\n")
    assert not is_unified_diff("echo 42 > answer.txt")
    assert not is_unified_diff("")


async def test_a_patch_is_applied_in_the_working_directory_and_removed(backend: LocalBackend) -> None:
    scenario = await answer_scenario(backend, ANSWER_PATCH)
    box = await backend.create_devbox(DevboxCreateParameters(name="apply"))
    await apply_reference(backend, scenario, box.id)
    assert await backend.read_file(box.id, "answer.txt") == "42\n"
    assert REFERENCE_PATCH not in await backend.list_files(box.id)


async def test_commands_are_run_and_a_failure_says_how(backend: LocalBackend) -> None:
    scenario = await answer_scenario(backend, "echo 42 > answer.txt && echo done")
    box = await backend.create_devbox(DevboxCreateParameters(name="apply"))
    assert await apply_reference(backend, scenario, box.id) == "done\n"
    assert await backend.read_file(box.id, "answer.txt") == "42\n"
    broken = scenario.model_copy(update={"reference_output": "echo trying >&2; exit 3"})
    with pytest.raises(InvalidRequestError, match="applying the reference output exited 3: trying"):
        await apply_reference(backend, broken, box.id)


async def test_validation_on_the_local_engines_devboxes(backend: LocalBackend) -> None:
    scenario = await answer_scenario(backend, ANSWER_PATCH)
    devboxes = EnvironmentDevboxes(backend.parts.scenarios, backend.parts.scoring)
    validation = await validate_with_reference(backend, scenario.id, devboxes)
    assert validation.valid and validation.forward and validation.reverse, validation.verdict
    assert validation.gold.applied == "reference_output" and validation.untouched.applied == "nothing"
    assert validation.gold.result is not None and validation.gold.result.score == 1.0
    assert validation.untouched.result is not None and validation.untouched.result.score == 0.0
    for attempt in (validation.gold, validation.untouched):
        assert (await backend.get_devbox(attempt.devbox_id)).status == DevboxStatus.SHUTDOWN
    assert (await backend.list_runs(scenario_id=scenario.id)).runs == []  # no run was made


async def test_validation_with_runs_cancels_them(backend: LocalBackend) -> None:
    scenario = await answer_scenario(backend, "echo 42 > answer.txt")
    validation = await validate_with_reference(backend, scenario.id, RunDevboxes(backend))
    assert validation.valid, validation.verdict
    runs = (await backend.list_runs(scenario_id=scenario.id)).runs
    assert sorted(r.name or "" for r in runs) == ["validate-gold", "validate-untouched"]
    assert {r.state for r in runs} == {ScenarioRunState.CANCELED}
    assert {r.metadata["scenario_mcp_validation"] for r in runs} == {"gold", "untouched"}
    assert {r.devbox_id for r in runs} == {validation.gold.devbox_id, validation.untouched.devbox_id}


async def test_a_failing_reference_is_the_gold_attempts_error(backend: LocalBackend) -> None:
    scenario = await answer_scenario(backend, "echo 41 > answer.txt; exit 1")
    validation = await backend.validate_scenario(scenario.id)
    assert not validation.valid and not validation.forward and validation.reverse
    assert validation.gold.result is None and validation.gold.apply_output is None
    assert validation.gold.error is not None and "exited 1" in validation.gold.error
    assert validation.verdict.startswith("invalid: applying and scoring the reference output failed")


async def test_no_reference_output_is_refused(backend: LocalBackend) -> None:
    scenario = await answer_scenario(backend, None)
    with pytest.raises(InvalidRequestError, match="has no reference_output to validate; set one with update_scenario"):
        await backend.validate_scenario(scenario.id)


def _attempt(score: float) -> ValidationAttempt:
    result = ScoringContractResultView(
        score=score,
        scoring_function_results=[
            ScoringFunctionResultView(scoring_function_name="answer", score=score, state="complete", output="")
        ],
    )
    return ValidationAttempt(devbox_id="dbx_1", applied="x", result=result)


@pytest.mark.parametrize(
    ("kind", "gold", "untouched", "valid"),
    [
        (ValidationType.UNSPECIFIED, 1.0, 0.0, True),
        (ValidationType.UNSPECIFIED, 0.5, 0.0, False),
        (ValidationType.FORWARD, 1.0, 1.0, True),
        (ValidationType.REVERSE, 0.5, 0.0, True),
        (ValidationType.REVERSE, 1.0, 1.0, False),
    ],
)
def test_the_verdict_follows_the_validation_type(
    kind: ValidationType, gold: float, untouched: float, valid: bool
) -> None:
    scenario = ScenarioView(
        id="scn_1",
        name="answer",
        input_context=InputContext(problem_statement="Write 42 to answer.txt."),
        scoring_contract=ScoringContract(
            scoring_function_parameters=[
                ScoringFunction(name="answer", weight=1.0, scorer=BashScriptScorer(bash_script=ANSWER_SCORER))
            ]
        ),
        validation_type=kind,
    )
    verdict = judge_validation(scenario, _attempt(gold), _attempt(untouched))
    assert verdict.valid is valid
    assert verdict.forward is (gold == 1.0) and verdict.reverse is (untouched < 1.0)
    if gold < 1.0 and kind != ValidationType.REVERSE:
        assert "the reference output scores 0.5, not 1.0: answer=0.5 (complete)" in verdict.verdict
