"""The scenario run state machine."""

from __future__ import annotations

import os

import anyio
import pytest

from scenario_mcp.backend import InvalidRequestError, InvalidStateError, NotFoundError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.runs import check_transition
from scenario_mcp.models import (
    BashScriptScorer,
    DevboxStatus,
)
from scenario_mcp.models import ScenarioRunState as S

from .helpers import (
    BUGGY_CALC,
    FIXED_CALC,
    RUN,
    calc_scenario,
    contract,
    pid_namespace,
    pids_in_namespace,
    processes_mentioning,
    results_by_name,
    scenario_with,
    score,
    start,
    wait_scored,
)

pytestmark = pytest.mark.anyio

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


async def test_run_scores_fails_then_passes_after_fix_then_completes(backend: LocalBackend) -> None:
    scenario = await calc_scenario(backend)
    run = await start(backend, scenario, run_name="attempt-1", metadata={"who": "test"})
    assert run.state == RUN.RUNNING
    assert run.scenario_id == scenario.id and run.name == "attempt-1" and run.metadata == {"who": "test"}
    box = await backend.get_devbox(run.devbox_id)
    assert box.status == DevboxStatus.RUNNING
    assert await backend.read_file(run.devbox_id, "calc.py") == BUGGY_CALC
    listed = await backend.list_runs(scenario_id=scenario.id)
    assert [r.id for r in listed.runs] == [run.id]

    # Untouched: the scorer's tests fail.
    await backend.execute(run.devbox_id, "echo agent-was-here")
    first = await score(backend, run.id)
    assert first.scoring_contract_result is not None
    assert first.scoring_contract_result.score == 0.0
    state, value, output = results_by_name(first)["tests"]
    assert (state, value) == ("complete", 0.0)
    assert "2 failed" in output
    # The scorer's files are not left in the agent's devbox.
    assert (await backend.execute(run.devbox_id, "test -e test_calc.py")).exit_status != 0

    # Fix it and score again: `scored` may be scored again.
    await backend.write_file(run.devbox_id, "calc.py", FIXED_CALC)
    second = await score(backend, run.id)
    assert second.scoring_contract_result is not None
    assert second.scoring_contract_result.score == 1.0
    assert results_by_name(second)["tests"][:2] == ("complete", 1.0)
    assert "2 passed" in results_by_name(second)["tests"][2]
    # Work may continue in `scored`.
    await backend.execute(run.devbox_id, "echo still-working")
    assert (await backend.list_runs(state="scored")).total_count == 1

    done = await backend.complete_run(run.id)
    assert done.state == RUN.COMPLETED
    assert done.duration_ms is not None and done.duration_ms >= 0
    assert done.scoring_contract_result == second.scoring_contract_result
    assert await backend.get_run(run.id) == done
    box = await backend.get_devbox(run.devbox_id)
    assert box.status == DevboxStatus.SHUTDOWN

    # Nothing more is allowed, and each refusal names the state.
    for action in (backend.score_run, backend.complete_run, backend.cancel_run):
        with pytest.raises(InvalidStateError, match="`completed`"):
            await action(run.id)
    with pytest.raises(InvalidStateError, match="`completed`"):
        await backend.execute(run.devbox_id, "true")
    with pytest.raises(InvalidStateError, match="`completed`"):
        await backend.write_file(run.devbox_id, "calc.py", "x")

    # The logs tell the story in order.
    logs = await backend.run_logs(run.id)
    sources = [entry.source.split(":")[0] for entry in logs]
    assert sources == [
        "setup",  # mkdir of the working directory
        "run",  # started
        "exec",  # echo agent-was-here
        "scorer",  # first scoring
        "run",  # scored
        "exec",  # test -e test_calc.py
        "scorer",  # second scoring
        "run",  # scored
        "exec",  # echo still-working
        "run",  # completed
    ]
    messages = [entry.message for entry in logs]
    assert "run started" in messages[1]
    assert "$ echo agent-was-here\nagent-was-here\n" in messages[2]
    assert logs[3].source == "scorer:tests" and "state=complete score=0.0" in messages[3]
    assert "$ test -e test_calc.py\n" in messages[5] and "[exit 1]" in messages[5]
    assert logs[6].source == "scorer:tests" and "state=complete score=1.0" in messages[6]
    assert "scored" in messages[7]
    assert "$ echo still-working" in messages[8]
    assert "completed" in messages[9]
    exec_ids = [e.source.split(":", 1)[1] for e in logs if e.source.startswith(("exec:", "setup:"))]
    assert all(i.startswith("exe_") for i in exec_ids) and len(set(exec_ids)) == 4
    assert [e.timestamp_ms for e in logs[1:]] == sorted(e.timestamp_ms for e in logs[1:])
    with pytest.raises(NotFoundError):
        await backend.run_logs("scr_missing")


async def test_calls_refused_while_scoring_and_cancel_from_running(backend: LocalBackend) -> None:
    scenario = await scenario_with(backend, contract(("slow", 1, BashScriptScorer(bash_script="sleep 1; echo 1.0"))))
    run = await start(backend, scenario)
    await backend.score_run(run.id)
    with pytest.raises(InvalidStateError, match=r"`scoring`.*wait until get_run"):
        await backend.score_run(run.id)
    with pytest.raises(InvalidStateError, match="`scoring`"):
        await backend.complete_run(run.id)
    with pytest.raises(InvalidStateError, match="`scoring`"):
        await backend.execute(run.devbox_id, "true")
    with pytest.raises(InvalidStateError, match="`scoring`"):
        await backend.write_file(run.devbox_id, "f", "x")
    scored = await wait_scored(backend, run.id)
    assert scored.state == RUN.SCORED
    assert scored.scoring_contract_result is not None and scored.scoring_contract_result.score == 1.0

    # Cancel from running.
    other = await start(backend, scenario)
    canceled = await backend.cancel_run(other.id)
    assert canceled.state == RUN.CANCELED
    assert (await backend.get_devbox(other.devbox_id)).status == DevboxStatus.SHUTDOWN
    with pytest.raises(InvalidStateError, match="`canceled`"):
        await backend.score_run(other.id)
    with pytest.raises(InvalidStateError, match="`canceled`"):
        await backend.cancel_run(other.id)
    assert (await backend.list_runs(state="canceled")).total_count == 1
    with pytest.raises(InvalidRequestError, match="unknown run state"):
        await backend.list_runs(state="bogus")


async def test_cancel_while_scoring_stays_canceled(backend: LocalBackend) -> None:
    scenario = await scenario_with(
        backend, contract(("slow", 1, BashScriptScorer(bash_script="sleep 29.75; echo 1.0")))
    )
    run = await start(backend, scenario)
    await backend.score_run(run.id)
    # Let the scorer's sandbox get going, then cancel.
    with anyio.fail_after(20):
        while not (sleepers := processes_mentioning("sleep 29.75")):
            await anyio.sleep(0.05)
    scorer_ns = pid_namespace(sleepers[0])
    assert scorer_ns is not None and scorer_ns != pid_namespace(os.getpid())
    devbox_init = (await backend.devboxes.internal(run.devbox_id))["init_pid"]
    assert pid_namespace(devbox_init) != scorer_ns  # the scorer runs in its own sandbox
    canceled = await backend.cancel_run(run.id)
    assert canceled.state == RUN.CANCELED
    await anyio.sleep(0.5)
    after = await backend.get_run(run.id)
    assert after.state == RUN.CANCELED
    assert after.scoring_contract_result is None
    assert (await backend.get_devbox(run.devbox_id)).status == DevboxStatus.SHUTDOWN
    # The scorer's sandbox went with it: no process is left in its PID namespace.
    with anyio.fail_after(10):
        while pids_in_namespace(scorer_ns) or processes_mentioning("sleep 29.75"):
            await anyio.sleep(0.05)
