"""The scenario run state machine."""

from __future__ import annotations

import pytest

from scenario_mcp.backend import InvalidStateError
from scenario_mcp.local.runs import check_transition
from scenario_mcp.models import ScenarioRunState as S

ACTIONS = ("score", "complete", "cancel", "work")

# The full matrix: every (action, state) pair, allowed or not.
EXPECTED_ALLOWED = {
    "score": {S.RUNNING, S.SCORED},
    "complete": {S.RUNNING, S.SCORED},
    "cancel": {S.RUNNING, S.SCORING, S.SCORED},
    "work": {S.RUNNING, S.SCORED},
}

MATRIX = [(action, state) for action in ACTIONS for state in S]


@pytest.mark.parametrize(("action", "state"), MATRIX, ids=[f"{a}-{s.value}" for a, s in MATRIX])
def test_transition_matrix(action: str, state: S) -> None:
    if state in EXPECTED_ALLOWED[action]:
        check_transition("scr_x", state, action)
        return
    with pytest.raises(InvalidStateError) as info:
        check_transition("scr_x", state, action)
    err = info.value
    assert err.status == 409
    assert f"`{state.value}`" in err.message
    assert "scr_x" in err.message
    assert f"cannot {action}" in err.message
    for allowed in EXPECTED_ALLOWED[action]:
        assert allowed.value in err.message


@pytest.mark.parametrize("state", [S.COMPLETED, S.CANCELED, S.FAILED, S.TIMEOUT])
def test_terminal_states_allow_nothing_and_hint_a_new_run(state: S) -> None:
    for action in ACTIONS:
        with pytest.raises(InvalidStateError, match="start a new run"):
            check_transition("scr_x", state, action)


def test_scoring_hint_says_wait() -> None:
    with pytest.raises(InvalidStateError, match="wait until get_run shows `scored`"):
        check_transition("scr_x", S.SCORING, "score")
    with pytest.raises(InvalidStateError, match="it is `scoring`"):
        check_transition("scr_x", S.SCORING, "work")
