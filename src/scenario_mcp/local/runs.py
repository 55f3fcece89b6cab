"""The scenario run state machine: which action is allowed from which state."""

from __future__ import annotations

from ..backend import InvalidStateError
from ..models import ScenarioRunState as S

ALLOWED: dict[str, frozenset[S]] = {
    # Self-evaluation loops score, keep working, and score again: `scored` may be scored again.
    "score": frozenset({S.RUNNING, S.SCORED}),
    "complete": frozenset({S.RUNNING, S.SCORED}),
    "cancel": frozenset({S.RUNNING, S.SCORING, S.SCORED}),
    "work": frozenset({S.RUNNING, S.SCORED}),
}

HINTS: dict[S, str] = {
    S.SCORING: "wait until get_run shows `scored`",
    S.COMPLETED: "the run is over; start a new run with start_run",
    S.CANCELED: "the run was canceled; start a new run with start_run",
    S.FAILED: "the run failed (see failure_reason); start a new run with start_run",
    S.TIMEOUT: "the run timed out; start a new run with start_run",
}


def check_transition(run_id: str, state: S, action: str) -> None:
    """Raise InvalidStateError naming the state when `action` is not allowed from it."""
    if state in ALLOWED[action]:
        return
    allowed = ", ".join(sorted(s.value for s in ALLOWED[action]))
    hint = HINTS.get(state, "")
    raise InvalidStateError(
        f"cannot {action} run {run_id}: it is `{state.value}`; {action} is allowed only when the run is "
        f"{allowed}" + (f" ({hint})" if hint else "")
    )
