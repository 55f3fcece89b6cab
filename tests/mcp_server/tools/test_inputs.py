"""The tools' input models (tools/inputs.py): what they accept and refuse before any backend is asked."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from scenario_mcp.mcp_server.tools.inputs import (
    MAX_WAIT_SECONDS,
    CreateDevboxInput,
    CreateScenarioInput,
    ExecuteInput,
    GetExecutionInput,
    GetRunInput,
    ListRunsInput,
    ListScenariosInput,
    RunScenarioInput,
    ScenarioIdInput,
    ScoreRunInput,
    UpdateScenarioInput,
)
from scenario_mcp.mcp_server.tools.shapes import runloop_shape
from scenario_mcp.models import (
    CustomScorer,
    DevboxCreateParameters,
    ScenarioCreateParameters,
    ScenarioRunState,
    ScenarioUpdateParameters,
)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        ScenarioIdInput.model_validate({"scenario_id": "scn_1", "scenario": "typo"})


def test_defaults_and_bounds() -> None:
    listing = ListScenariosInput()
    assert (listing.limit, listing.starting_after, listing.name) == (20, None, None)
    for limit in (0, 5001):
        with pytest.raises(ValidationError, match="limit"):
            ListScenariosInput(limit=limit)
    # Bounded tools wait 4 s by default (a 5 s client timeout is met); a plain read waits not at all.
    assert ScoreRunInput(run_id="scr_1").wait_seconds == 4 and GetRunInput(run_id="scr_1").wait_seconds == 0
    with pytest.raises(ValidationError):
        ScoreRunInput(run_id="scr_1", wait_seconds=MAX_WAIT_SECONDS + 1)
    with pytest.raises(ValidationError):
        GetExecutionInput(devbox_id="dbx_1", execution_id="exe_1", wait_seconds=-1)
    assert RunScenarioInput(scenario_id="scn_1").scoring_timeout_seconds == 1800
    with pytest.raises(ValidationError):
        RunScenarioInput(scenario_id="scn_1", command="")  # an empty command is a mistake, not "no command"
    assert ListRunsInput(state="scored").state is ScenarioRunState.SCORED
    with pytest.raises(ValidationError, match="state"):
        ListRunsInput(state="bogus")


def test_execute_input_checks_command_and_shell_name() -> None:
    with pytest.raises(ValidationError, match="command"):
        ExecuteInput(devbox_id="dbx_1", command="")
    assert ExecuteInput(devbox_id="dbx_1", command="true", shell_name="term-1.a_b").shell_name == "term-1.a_b"
    for bad in ("a b", "x" * 65, "semi;colon"):
        with pytest.raises(ValidationError, match="shell_name"):
            ExecuteInput(devbox_id="dbx_1", command="true", shell_name=bad)


def test_update_input_keeps_which_fields_were_given() -> None:
    params = UpdateScenarioInput(scenario_id="scn_1", name="renamed")
    assert params.model_fields_set == {"scenario_id", "name"}  # update_scenario sends only these


SCENARIO = {
    "name": "n",
    "input_context": {"problem_statement": "p", "additional_context": "more"},
    "scoring_contract": {
        "scoring_function_parameters": [
            # Strict clients send every field, null when unused: only the given ones reach the scorer.
            {
                "name": "s",
                "weight": 2,
                "scorer": {"type": "bash_script_scorer", "bash_script": "echo 1", "command": None},
            },
            {
                "name": "c",
                "weight": 1,
                "scorer": {
                    "type": "custom_scorer",
                    "custom_scorer_type": "mine",
                    "scorer_params": [{"key": "n", "value": "3"}, {"key": "word", "value": "plain"}],
                },
            },
        ]
    },
    "environment_parameters": {"snapshot_id": "snp_1", "launch_parameters": {"network": True}},
    "metadata": [{"key": "team", "value": "infra"}],
}


def test_key_value_lists_become_runloop_maps() -> None:
    params = CreateScenarioInput.model_validate(SCENARIO)
    runloop = ScenarioCreateParameters.model_validate(runloop_shape(params.model_dump(exclude_none=True)))
    assert runloop.metadata == {"team": "infra"}
    first, custom = runloop.scoring_contract.scoring_function_parameters
    assert first.scorer.model_dump() == {"type": "bash_script_scorer", "bash_script": "echo 1"}
    assert isinstance(custom.scorer, CustomScorer) and custom.scorer.scorer_params == {"n": 3, "word": "plain"}
    assert runloop.environment_parameters is not None and runloop.environment_parameters.snapshot_id == "snp_1"
    devbox = CreateDevboxInput(environment_variables=[{"key": "A", "value": "1"}], metadata=[])  # type: ignore[list-item]
    shaped = DevboxCreateParameters.model_validate(
        runloop_shape(devbox.model_dump(exclude_none=True, exclude={"wait_seconds"}))
    )
    assert shaped.environment_variables == {"A": "1"} and shaped.metadata == {}


def test_a_scorer_missing_its_field_is_refused_by_runloops_model() -> None:
    body = {
        **SCENARIO,
        "scoring_contract": {
            "scoring_function_parameters": [{"name": "s", "weight": 1, "scorer": {"type": "command_scorer"}}]
        },
    }
    shaped = runloop_shape(CreateScenarioInput.model_validate(body).model_dump(exclude_none=True))
    with pytest.raises(ValidationError, match="command"):
        ScenarioCreateParameters.model_validate(shaped)


def test_an_update_sends_only_what_was_given() -> None:
    params = UpdateScenarioInput(scenario_id="scn_1", metadata=[])
    given = runloop_shape(params.model_dump(include=params.model_fields_set - {"scenario_id"}))
    assert ScenarioUpdateParameters.model_validate(given).model_fields_set == {"metadata"}
    assert given == {"metadata": {}}  # [] clears the labels
