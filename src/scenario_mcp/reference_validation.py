"""Reference validation, the same on every backend: the reference output applied on a fresh devbox
of the scenario's environment must score 1.0, and the untouched environment must score below it.

The two attempts run at once, each on its own devbox, through the Backend protocol. Where those
devboxes come from, how they are scored and how they end is the backend's (`AttemptDevboxes`): the
local engine makes them straight from the environment; a remote API has no such call, so its
backend uses two runs of the scenario.
"""

from __future__ import annotations

import itertools
from typing import Literal, Protocol

import anyio

from .backend import Backend, InvalidRequestError
from .conventions import HOME
from .models import (
    ScenarioValidationView,
    ScenarioView,
    ScoringContractResultView,
    ValidationAttempt,
    ValidationType,
)

REFERENCE_TIMEOUT = 600.0  # seconds applying a reference output may take
REFERENCE_PATCH = ".scenario-reference.patch"  # where a patch is put, relative to the home dir

Attempt = Literal["gold", "untouched"]


class AttemptDevboxes(Protocol):
    """The devboxes of a validation's attempts, as a backend makes, scores and ends them."""

    async def fresh(self, scenario: ScenarioView, attempt: Attempt) -> str:
        """A running devbox of the scenario's environment, its working directory made: its id."""
        ...

    async def score(self, scenario: ScenarioView, devbox_id: str) -> ScoringContractResultView | None:
        """The scenario's scorers' verdict on the devbox (a BackendError when scoring could not end)."""
        ...

    async def discard(self, devbox_id: str) -> None:
        """The attempt is over: the devbox goes. What this raises ends the whole validation."""
        ...


def is_unified_diff(text: str) -> bool:
    """A reference output that is a patch (git diff / diff -u) rather than commands."""
    lines = text.lstrip().splitlines()
    return bool(lines) and (
        lines[0].startswith("diff --git ")
        or any(a.startswith("--- ") and b.startswith("+++ ") for a, b in itertools.pairwise(lines))
    )


async def validate_with_reference(
    backend: Backend, scenario_id: str, devboxes: AttemptDevboxes
) -> ScenarioValidationView:
    scenario = await backend.get_scenario(scenario_id)
    if not scenario.reference_output:
        raise InvalidRequestError(
            f"scenario {scenario_id} has no reference_output to validate; set one with update_scenario "
            "(a unified diff, or commands that solve the task)"
        )
    attempts: dict[Attempt, ValidationAttempt] = {}

    async def attempt(which: Attempt) -> None:
        attempts[which] = await _attempt(backend, devboxes, scenario, which)

    async with anyio.create_task_group() as tg:
        tg.start_soon(attempt, "gold")
        tg.start_soon(attempt, "untouched")
    return judge_validation(scenario, attempts["gold"], attempts["untouched"])


async def _attempt(
    backend: Backend, devboxes: AttemptDevboxes, scenario: ScenarioView, which: Attempt
) -> ValidationAttempt:
    applied = "reference_output" if which == "gold" else "nothing"
    devbox_id = await devboxes.fresh(scenario, which)
    output: str | None = None
    try:
        if which == "gold":
            output = await apply_reference(backend, scenario, devbox_id)
        result = await devboxes.score(scenario, devbox_id)
        return ValidationAttempt(devbox_id=devbox_id, applied=applied, apply_output=output, result=result)
    except Exception as exc:  # whatever went wrong is this attempt's verdict, not the validation's end
        return ValidationAttempt(devbox_id=devbox_id, applied=applied, apply_output=output, error=str(exc))
    finally:
        with anyio.CancelScope(shield=True):
            await devboxes.discard(devbox_id)


async def apply_reference(backend: Backend, scenario: ScenarioView, devbox_id: str) -> str:
    """Apply the scenario's reference output in its working directory: a patch with `git apply` (or
    `patch -p1`), anything else as commands. Its output; an InvalidRequestError when it fails."""
    reference = scenario.reference_output or ""
    if is_unified_diff(reference):
        await backend.write_file(devbox_id, REFERENCE_PATCH, reference)
        patch = f"{HOME}/{REFERENCE_PATCH}"
        command = (
            f"(git apply --whitespace=nowarn {patch} 2>/dev/null || patch -p1 --forward < {patch}); rc=$?; "
            f"rm -f {patch}; exit $rc"
        )
    else:
        command = reference
    result = await backend.execute(
        devbox_id, command, working_directory=scenario.working_directory, timeout_seconds=REFERENCE_TIMEOUT
    )
    output = (result.stdout or "") + (result.stderr or "")
    if result.exit_status != 0:
        raise InvalidRequestError(f"applying the reference output exited {result.exit_status}: {output[-2000:]}")
    return output


def judge_validation(
    scenario: ScenarioView, gold: ValidationAttempt, untouched: ValidationAttempt
) -> ScenarioValidationView:
    """FORWARD: the reference output must score 1.0. REVERSE: the untouched environment must score
    below 1.0. A FORWARD scenario is judged on the first alone, a REVERSE one on the second alone,
    any other (or none) on both."""
    forward_problem = reverse_problem = None
    if gold.error or gold.result is None:
        forward_problem = f"applying and scoring the reference output failed: {gold.error}"
    elif gold.result.score < 1.0:
        failing = [
            f"{r.scoring_function_name}={r.score} ({r.state})"
            for r in gold.result.scoring_function_results
            if r.score < 1.0
        ]
        forward_problem = f"the reference output scores {gold.result.score}, not 1.0: {', '.join(failing)}"
    if untouched.error or untouched.result is None:
        reverse_problem = f"scoring the untouched environment failed: {untouched.error}"
    elif untouched.result.score >= 1.0:
        reverse_problem = "the untouched environment already scores 1.0: the scorers do not test the task"
    kind = scenario.validation_type
    problems = [
        problem
        for problem, applies in (
            (forward_problem, kind != ValidationType.REVERSE),
            (reverse_problem, kind != ValidationType.FORWARD),
        )
        if problem and applies
    ]
    verdict = "valid: the reference output scores 1.0 and the untouched environment scores below it"
    return ScenarioValidationView(
        scenario_id=scenario.id,
        valid=not problems,
        verdict=verdict if not problems else "invalid: " + "; ".join(problems),
        gold=gold,
        untouched=untouched,
        validation_type=kind,
        forward=forward_problem is None,
        reverse=reverse_problem is None,
    )
