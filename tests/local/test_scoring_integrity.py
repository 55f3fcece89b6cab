"""Scoring the solver cannot forge, and reference validation (issue 3).

Each trick is played by the agent in its run's devbox against a scenario whose honest score is
0.0; the trick must not raise it.
"""

from __future__ import annotations

import anyio
import pytest

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import (
    BashScriptScorer,
    DevboxCreateParameters,
    InputContext,
    ScenarioCreateParameters,
    ScenarioEnvironment,
    ScenarioRunView,
    ScenarioUpdateParameters,
    ScenarioView,
    ScoringContract,
    ScoringFunction,
    StartScenarioRunParameters,
    TestBasedScorer,
    TestFile,
    ValidationType,
)
from scenario_mcp.reference_validation import is_unified_diff

pytestmark = pytest.mark.anyio

BUGGY = "def add(a, b):\n    return a - b\n"
HIDDEN_TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
GOLD_PATCH = """\
--- a/calc.py
+++ b/calc.py
@@ -1,2 +1,2 @@
 def add(a, b):
-    return a - b
+    return a + b
"""


async def scenario(
    backend: LocalBackend, *, reference: str | None = GOLD_PATCH, bash: str | None = None
) -> ScenarioView:
    box = await backend.create_devbox(DevboxCreateParameters())
    await backend.write_file(box.id, "calc.py", BUGGY)
    snapshot = await backend.snapshot_disk(box.id)
    await backend.shutdown_devbox(box.id)
    scorer: BashScriptScorer | TestBasedScorer
    if bash is not None:
        scorer = BashScriptScorer(bash_script=bash)
    else:
        scorer = TestBasedScorer(
            test_command="pytest -q", test_files=[TestFile(file_path="test_hidden.py", file_contents=HIDDEN_TEST)]
        )
    return await backend.create_scenario(
        ScenarioCreateParameters(
            name="calc",
            input_context=InputContext(problem_statement="Fix add() in calc.py."),
            environment_parameters=ScenarioEnvironment(snapshot_id=snapshot.id),
            scoring_contract=ScoringContract(
                scoring_function_parameters=[ScoringFunction(name="tests", weight=1, scorer=scorer)]
            ),
            reference_output=reference,
        )
    )


async def score(backend: LocalBackend, run_id: str) -> ScenarioRunView:
    await backend.score_run(run_id)
    with anyio.fail_after(60):
        while (run := await backend.get_run(run_id)).state == "scoring":
            await anyio.sleep(0.02)
    assert run.state == "scored", run
    return run


async def cheat(backend: LocalBackend, command: str, **kwargs: str | None) -> float:
    sc = await scenario(backend, **kwargs)  # type: ignore[arg-type]
    run = await backend.start_run(StartScenarioRunParameters(scenario_id=sc.id))
    result = await backend.execute(run.devbox_id, command, timeout_seconds=60)
    assert result.exit_status == 0, result
    scored = await score(backend, run.id)
    assert scored.scoring_contract_result is not None
    return scored.scoring_contract_result.score


async def test_fake_test_runner_in_system_dirs_does_not_score(backend: LocalBackend) -> None:
    fake = '#!/bin/sh\\necho "1 passed in 0.01s"\\nexit 0\\n'
    command = (
        f"for d in /usr/local/bin /usr/bin /opt/python/bin; do printf '{fake}' > $d/pytest; chmod +x $d/pytest; done"
        " && pytest | grep -q '1 passed'"
    )
    assert await cheat(backend, command) == 0.0


async def test_fake_python_and_bash_do_not_score(backend: LocalBackend) -> None:
    command = (
        "printf '#!/bin/sh\\necho 1.0\\n' > /tmp/fake && chmod +x /tmp/fake"
        " && cp /tmp/fake /opt/python/bin/python3 && cp /tmp/fake /usr/local/bin/python3"
        " && rm /usr/bin/bash && cp /tmp/fake /usr/bin/bash"
    )
    honest = "python3 -c 'import calc; print(1.0 if calc.add(2, 3) == 5 else 0.0)'"
    assert await cheat(backend, command, bash=honest) == 0.0


async def test_writing_a_score_file_or_the_scorer_path_does_not_score(backend: LocalBackend) -> None:
    command = (
        "mkdir -p /opt/scenario-scorer && echo 'echo 1.0' > /opt/scenario-scorer/score.sh"
        " && echo 1.0 > /home/user/score && echo 'score=1.0' > /tmp/score"
    )
    honest = "python3 -c 'import calc; print(1.0 if calc.add(2, 3) == 5 else 0.0)'"
    assert await cheat(backend, command, bash=honest) == 0.0


async def test_agent_test_file_at_the_scorer_test_path_loses(backend: LocalBackend) -> None:
    command = "printf 'def test_add():\\n    assert True\\n' > test_hidden.py && pytest -q test_hidden.py"
    assert await cheat(backend, command) == 0.0


async def test_background_process_editing_files_during_scoring_does_not_score(backend: LocalBackend) -> None:
    loop = "while :; do printf 'def test_add():\\n    pass\\n' > /home/user/test_hidden.py; done"
    command = f'echo "{loop}" > /tmp/edit.sh && (nohup sh /tmp/edit.sh >/dev/null 2>&1 &) && sleep 0.2'
    assert await cheat(backend, command) == 0.0


async def test_scoring_twice_gives_the_same_score_and_can_score_again_after_work(backend: LocalBackend) -> None:
    sc = await scenario(backend)
    run = await backend.start_run(StartScenarioRunParameters(scenario_id=sc.id))
    first = await score(backend, run.id)
    second = await score(backend, run.id)
    assert first.scoring_contract_result and second.scoring_contract_result
    assert first.scoring_contract_result.score == second.scoring_contract_result.score == 0.0
    await backend.execute(run.devbox_id, "sed -i 's/a - b/a + b/' calc.py")
    third = await score(backend, run.id)
    assert third.scoring_contract_result and third.scoring_contract_result.score == 1.0
    logs = [e.source for e in await backend.run_logs(run.id) if e.source.startswith("scorer:")]
    assert logs == ["scorer:tests"] * 3  # the view holds the latest, the logs hold them all


# --- reference validation ------------------------------------------------------------------------


async def test_validation_passes_with_a_patch_reference(backend: LocalBackend) -> None:
    sc = await scenario(backend)
    verdict = await backend.validate_scenario(sc.id)
    assert verdict.valid, verdict.verdict
    assert verdict.gold.result and verdict.gold.result.score == 1.0
    assert verdict.untouched.result and verdict.untouched.result.score == 0.0
    for attempt in (verdict.gold, verdict.untouched):
        assert (await backend.get_devbox(attempt.devbox_id)).status == "shutdown"


async def test_validation_passes_with_a_command_reference(backend: LocalBackend) -> None:
    sc = await scenario(backend, reference="sed -i 's/a - b/a + b/' calc.py")
    assert (await backend.validate_scenario(sc.id)).valid


async def test_validation_fails_when_the_reference_does_not_solve_it(backend: LocalBackend) -> None:
    sc = await scenario(backend, reference="echo nothing useful")
    verdict = await backend.validate_scenario(sc.id)
    assert not verdict.valid and "not 1.0" in verdict.verdict
    assert verdict.gold.result and verdict.gold.result.scoring_function_results[0].scoring_function_name == "tests"


async def test_validation_fails_when_the_untouched_environment_already_passes(backend: LocalBackend) -> None:
    sc = await scenario(backend, bash="echo 1.0")
    verdict = await backend.validate_scenario(sc.id)
    assert not verdict.valid and "untouched environment already scores 1.0" in verdict.verdict


def test_unified_diffs_are_told_from_commands() -> None:
    assert is_unified_diff(GOLD_PATCH)
    assert is_unified_diff("diff --git a/x b/x\n")
    assert not is_unified_diff("sed -i 's/--- /+++ /' x")
    assert not is_unified_diff("pytest -q")


async def test_validation_type_picks_the_checks(backend: LocalBackend) -> None:
    sc = await scenario(backend, bash="echo 1.0")  # untouched already passes: REVERSE fails
    assert not (await backend.validate_scenario(sc.id)).reverse
    forward_only = await backend.update_scenario(
        sc.id, ScenarioUpdateParameters(validation_type=ValidationType.FORWARD)
    )
    verdict = await backend.validate_scenario(forward_only.id)
    assert verdict.valid and verdict.forward and not verdict.reverse
