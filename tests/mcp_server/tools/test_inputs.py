"""The tools' input models (tools/inputs.py): what they accept and refuse before any backend is asked."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from scenario_mcp.mcp_server.tools.inputs import (
    MAX_WAIT_SECONDS,
    ExecuteInput,
    GetExecutionInput,
    ListRunsInput,
    ListScenariosInput,
    RunScenarioInput,
    ScenarioIdInput,
    ScoreRunInput,
    UpdateScenarioInput,
)
from scenario_mcp.models import ScenarioRunState


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        ScenarioIdInput.model_validate({"scenario_id": "scn_1", "scenario": "typo"})


def test_defaults_and_bounds() -> None:
    listing = ListScenariosInput()
    assert (listing.limit, listing.starting_after, listing.name) == (20, None, None)
    for limit in (0, 5001):
        with pytest.raises(ValidationError, match="limit"):
            ListScenariosInput(limit=limit)
    score = ScoreRunInput(run_id="scr_1")
    assert (score.wait, score.timeout_seconds) == (False, 600)
    with pytest.raises(ValidationError):
        ScoreRunInput(run_id="scr_1", timeout_seconds=MAX_WAIT_SECONDS + 1)
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
