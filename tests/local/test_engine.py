"""The embedded engine end to end: scenarios, runs, scoring in the background, reconcile."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import anyio
import pytest
from pydantic import ValidationError

from scenario_mcp.backend import InvalidRequestError, InvalidStateError, NotFoundError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import (
    AstGrepScorer,
    BashScriptScorer,
    CommandScorer,
    CustomScorer,
    DevboxCreateParameters,
    DevboxStatus,
    InputContext,
    PythonScriptScorer,
    ScenarioCreateParameters,
    ScenarioEnvironment,
    ScenarioRunState,
    ScenarioRunView,
    ScenarioView,
    ScoringContract,
    ScoringFunction,
    StartScenarioRunParameters,
    TestBasedScorer,
)
from scenario_mcp.models import TestFile as ScorerTestFile  # not Test*: pytest would collect it
from tests.conftest import seed_default_blueprint

pytestmark = pytest.mark.anyio

BUGGY_CALC = "def add(a, b):\n    return a - b\n"
FIXED_CALC = "def add(a, b):\n    return a + b\n"
TEST_CALC = (
    "from calc import add\n\n\n"
    "def test_add():\n    assert add(2, 3) == 5\n\n\n"
    "def test_add_zero():\n    assert add(0, 4) == 4\n"
)
RUN = ScenarioRunState


def contract(*functions: tuple[str, float, object]) -> ScoringContract:
    return ScoringContract(
        scoring_function_parameters=[
            ScoringFunction(name=name, weight=weight, scorer=scorer)  # type: ignore[arg-type]
            for name, weight, scorer in functions
        ]
    )


def calc_tests_scorer() -> TestBasedScorer:
    return TestBasedScorer(
        test_command="pytest -q -p no:cacheprovider",
        test_files=[ScorerTestFile(file_path="test_calc.py", file_contents=TEST_CALC)],
    )


async def scenario_with(
    backend: LocalBackend,
    scoring: ScoringContract,
    *,
    name: str = "fix-add",
    environment: ScenarioEnvironment | None = None,
) -> ScenarioView:
    return await backend.create_scenario(
        ScenarioCreateParameters(
            name=name,
            input_context=InputContext(problem_statement="Make add() add."),
            scoring_contract=scoring,
            environment_parameters=environment,
        )
    )


async def buggy_snapshot(backend: LocalBackend) -> str:
    """A snapshot holding the buggy calc.py in /home/user: the scenario's starting point."""
    box = await backend.create_devbox(DevboxCreateParameters(name="seed"))
    await backend.write_file(box.id, "calc.py", BUGGY_CALC)
    snapshot = await backend.snapshot_disk(box.id, name="buggy")
    await backend.shutdown_devbox(box.id)
    return snapshot.id


async def calc_scenario(backend: LocalBackend) -> ScenarioView:
    snapshot_id = await buggy_snapshot(backend)
    return await scenario_with(
        backend,
        contract(("tests", 1, calc_tests_scorer())),
        environment=ScenarioEnvironment(snapshot_id=snapshot_id),
    )


async def start(backend: LocalBackend, scenario: ScenarioView, **kwargs: object) -> ScenarioRunView:
    return await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id, **kwargs))  # type: ignore[arg-type]


async def wait_scored(backend: LocalBackend, run_id: str, timeout: float = 60) -> ScenarioRunView:
    with anyio.fail_after(timeout):
        while True:
            run = await backend.get_run(run_id)
            if run.state != RUN.SCORING:
                return run
            await anyio.sleep(0.05)


async def score(backend: LocalBackend, run_id: str) -> ScenarioRunView:
    scoring = await backend.score_run(run_id)
    assert scoring.state == RUN.SCORING
    run = await wait_scored(backend, run_id)
    assert run.state == RUN.SCORED, run.failure_reason
    assert run.scoring_contract_result is not None
    return run


def results_by_name(run: ScenarioRunView) -> dict[str, tuple[str, float, str]]:
    assert run.scoring_contract_result is not None
    return {
        r.scoring_function_name: (r.state, r.score, r.output)
        for r in run.scoring_contract_result.scoring_function_results
    }


def processes_mentioning(text: str) -> list[int]:
    found = []
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) != os.getpid():
            try:
                cmdline = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(p))
    return found


def pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def pids_in_namespace(ns: str) -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and pid_namespace(int(p)) == ns]


def alive(pid: int) -> bool:
    """Running or sleeping: not gone and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


# --- scenarios --------------------------------------------------------------------------------


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


async def test_scenario_refuses_unsupported_scorers_and_unknown_environment(backend: LocalBackend) -> None:
    bad = contract(
        ("fine", 1, CommandScorer(command="true")),
        ("grep", 1, AstGrepScorer(pattern="$X", search_directory=".")),
        ("mine", 1, CustomScorer(custom_scorer_type="llm_judge")),
    )
    with pytest.raises(InvalidRequestError) as info:
        await scenario_with(backend, bad)
    assert "grep (ast_grep_scorer)" in info.value.message
    assert "fine" not in info.value.message
    unregistered = contract(("mine", 1, CustomScorer(custom_scorer_type="llm_judge")))
    with pytest.raises(InvalidRequestError, match="'llm_judge', which is not registered"):
        await scenario_with(backend, unregistered)

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


# --- runs -------------------------------------------------------------------------------------


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


async def test_scorer_test_file_wins_over_agent_file_and_fake_pytest(backend: LocalBackend) -> None:
    scenario = await calc_scenario(backend)
    run = await start(backend, scenario)
    box = run.devbox_id
    # The agent writes a trivially passing test at the scorer's path ...
    await backend.write_file(box, "test_calc.py", "def test_add():\n    assert True\n")
    # ... and fake pytests where the scorer's PATH would find them first.
    fake = "#!/bin/sh\necho '99 passed in 0.01s'\nexit 0\n"
    for path in ("/usr/local/bin/pytest", "/opt/python/bin/pytest"):
        result = await backend.execute(box, f"cat > {path} <<'EOF'\n{fake}EOF\nchmod +x {path}")
        assert result.exit_status == 0, result.stderr
    # In the agent's devbox the fakes work (so the test means something).
    assert (await backend.execute(box, "pytest -q")).stdout == "99 passed in 0.01s\n"
    assert (await backend.execute(box, "pytest -q test_calc.py")).stdout == "99 passed in 0.01s\n"

    scored = await score(backend, run.id)
    state, value, output = results_by_name(scored)["tests"]
    assert (state, value) == ("complete", 0.0), output
    assert "99 passed" not in output
    assert "2 failed" in output
    # The agent's own file is untouched in its devbox.
    assert await backend.read_file(box, "test_calc.py") == "def test_add():\n    assert True\n"


async def test_bad_scorer_output_is_error_while_others_score(backend: LocalBackend) -> None:
    scenario = await scenario_with(
        backend,
        contract(
            ("garbage", 1, BashScriptScorer(bash_script="echo 'looks good to me'")),
            ("too-big", 1, BashScriptScorer(bash_script="echo 7")),
            ("exists", 2, CommandScorer(command="test -f answer.txt")),
        ),
    )
    run = await start(backend, scenario)
    await backend.write_file(run.devbox_id, "answer.txt", "42\n")
    scored = await score(backend, run.id)
    results = results_by_name(scored)
    assert results["garbage"][:2] == ("error", 0.0)
    assert "is not a score" in results["garbage"][2]
    assert results["too-big"][:2] == ("error", 0.0)
    assert "outside [0, 1]" in results["too-big"][2]
    assert results["exists"][:2] == ("complete", 1.0)
    assert scored.scoring_contract_result is not None
    assert scored.scoring_contract_result.score == pytest.approx(0.5)


async def test_weighted_scorers_combine_normalised(backend: LocalBackend) -> None:
    scenario = await scenario_with(
        backend,
        contract(
            ("light", 1, BashScriptScorer(bash_script="echo checking >&2\necho score=0.2")),
            (
                "heavy",
                3,
                PythonScriptScorer(python_script="print(open('/home/user/answer.txt').read().strip())"),
            ),
        ),
    )
    assert [f.weight for f in scenario.scoring_contract.scoring_function_parameters] == [0.25, 0.75]
    run = await start(backend, scenario)
    await backend.write_file(run.devbox_id, "answer.txt", "0.6\n")
    scored = await score(backend, run.id)
    results = results_by_name(scored)
    assert results["light"][:2] == ("complete", 0.2)
    assert "checking" in results["light"][2]
    assert results["heavy"][:2] == ("complete", 0.6)
    assert scored.scoring_contract_result is not None
    assert scored.scoring_contract_result.score == pytest.approx(0.25 * 0.2 + 0.75 * 0.6)


async def test_scoring_stops_agent_processes(backend: LocalBackend) -> None:
    scenario = await scenario_with(backend, contract(("ok", 1, CommandScorer(command="true"))))
    run = await start(backend, scenario)
    pid = (await backend.execute(run.devbox_id, "sleep 300 >/dev/null 2>&1 & echo $!")).stdout
    assert pid
    await score(backend, run.id)
    alive = await backend.execute(run.devbox_id, f"test -e /proc/{pid.strip()}")
    assert alive.exit_status != 0, "the agent's background process survived scoring"


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


# --- reconcile --------------------------------------------------------------------------------


async def test_reconcile_fails_dead_devboxes_and_reattaches_live_ones(
    data_dir: Path, default_blueprint_cache: Path
) -> None:
    async with LocalBackend(data_dir) as first:
        await seed_default_blueprint(first, default_blueprint_cache)
        dead = await first.create_devbox(DevboxCreateParameters(name="dead"))
        live = await first.create_devbox(DevboxCreateParameters(name="live"))
        bg = await first.execute(live.id, "echo kept > kept.txt; sleep 300 >/dev/null 2>&1 & echo $!")
        sleeper = (bg.stdout or "").strip()
        dead_init = (await first.devboxes.internal(dead.id))["init_pid"]
        live_init = (await first.devboxes.internal(live.id))["init_pid"]
    try:
        # The server is gone; the devboxes are not.
        assert alive(dead_init) and alive(live_init)
        os.kill(dead_init, signal.SIGKILL)
        with anyio.fail_after(10):
            while alive(dead_init):
                await anyio.sleep(0.02)

        async with LocalBackend(data_dir) as second:
            view = await second.get_devbox(dead.id)
            assert view.status == DevboxStatus.FAILURE
            assert view.failure_message and "died" in view.failure_message
            assert view.failure_reason == "health_check_failed"
            assert view.end_time_ms is not None
            assert view.state_transitions[-1].status == DevboxStatus.FAILURE
            with pytest.raises(InvalidStateError, match="`failure`"):
                await second.execute(dead.id, "true")

            assert (await second.get_devbox(live.id)).status == DevboxStatus.RUNNING
            assert await second.read_file(live.id, "kept.txt") == "kept\n"
            result = await second.execute(live.id, f"kill -0 {sleeper} && echo reattached")
            assert result.stdout == "reattached\n", result.stderr
            # A reattached devbox (no keeper process of ours) still shuts down cleanly.
            await second.shutdown_devbox(live.id)
            assert not alive(live_init)
    finally:
        for pid in (dead_init, live_init):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


async def test_reconcile_rescores_run_left_scoring(data_dir: Path, default_blueprint_cache: Path) -> None:
    async with LocalBackend(data_dir) as first:
        await seed_default_blueprint(first, default_blueprint_cache)
        scenario = await scenario_with(first, contract(("ok", 1, BashScriptScorer(bash_script="echo 0.5"))))
        run = await start(first, scenario)
        init = (await first.devboxes.internal(run.devbox_id))["init_pid"]
        await first.score_run(run.id)
        # Leave while scoring is (about to be) under way.
    try:
        async with LocalBackend(data_dir) as second:
            current = await second.get_run(run.id)
            if current.state == RUN.SCORING:
                current = await wait_scored(second, run.id)
            assert current.state == RUN.SCORED
            assert current.scoring_contract_result is not None
            assert current.scoring_contract_result.score == 0.5
            await second.complete_run(run.id)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(init, signal.SIGKILL)


async def test_metadata_of_an_unknown_kind_is_refused(backend: LocalBackend) -> None:
    with pytest.raises(InvalidRequestError, match="unknown kind 'runs; --'"):
        await backend.metadata_keys("runs; --")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="use one of scenarios, benchmarks"):
        await backend.metadata_values("executions", "k")  # type: ignore[arg-type]
