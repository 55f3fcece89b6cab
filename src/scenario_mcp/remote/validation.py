"""Validating a scenario where the API has no validation endpoint (Runloop's does not): two runs
of the scenario, scored as any run, through the Backend protocol alone.

One run applies the reference output and must score 1.0; the other is left untouched and must
score below it. Both runs are canceled afterwards (their devboxes shut down).
"""

from __future__ import annotations

import itertools
import logging

import anyio

from ..backend import Backend, BackendError, InvalidRequestError
from ..models import (
    ScenarioRunState,
    ScenarioValidationView,
    ScenarioView,
    StartScenarioRunParameters,
    ValidationAttempt,
)
from ..validation import judge_validation
from .errors import RemoteError
from .http import poll

log = logging.getLogger(__name__)

_PATCH = "/home/user/.scenario-reference.patch"


def is_unified_diff(text: str) -> bool:
    """A reference output that is a patch (git diff / diff -u) rather than commands."""
    lines = text.lstrip().splitlines()
    return bool(lines) and (
        lines[0].startswith("diff --git ")
        or any(a.startswith("--- ") and b.startswith("+++ ") for a, b in itertools.pairwise(lines))
    )


async def validate_by_runs(backend: Backend, scenario_id: str) -> ScenarioValidationView:
    scenario = await backend.get_scenario(scenario_id)
    if not scenario.reference_output:
        raise InvalidRequestError(
            f"scenario {scenario_id} has no reference_output to validate; set one with update_scenario "
            "(a unified diff, or commands that solve the task)"
        )
    attempts: dict[bool, ValidationAttempt] = {}

    async def attempt(apply: bool) -> None:
        attempts[apply] = await _attempt(backend, scenario, apply)

    async with anyio.create_task_group() as tg:
        tg.start_soon(attempt, True)
        tg.start_soon(attempt, False)
    return judge_validation(scenario, attempts[True], attempts[False])


async def _attempt(backend: Backend, scenario: ScenarioView, apply: bool) -> ValidationAttempt:
    label = "reference_output" if apply else "nothing"
    run = await backend.start_run(
        StartScenarioRunParameters(
            scenario_id=scenario.id,
            run_name=f"validate-{'gold' if apply else 'untouched'}",
            metadata={"scenario_mcp_validation": "gold" if apply else "untouched"},
        )
    )
    output: str | None = None
    try:
        if apply:
            output = await _apply_reference(backend, scenario, run.devbox_id)
        await backend.score_run(run.id)
        scored = await poll(
            lambda: backend.get_run(run.id),
            lambda r: r.state != ScenarioRunState.SCORING,
            timeout=scenario.scorer_timeout_sec + 60,
            what=f"scoring run {run.id}",
        )
        if scored.state != ScenarioRunState.SCORED:
            raise RemoteError(409, f"run {run.id} ended `{scored.state.value}`: {scored.failure_reason}")
        return ValidationAttempt(
            devbox_id=run.devbox_id, applied=label, apply_output=output, result=scored.scoring_contract_result
        )
    except BackendError as exc:
        return ValidationAttempt(devbox_id=run.devbox_id, applied=label, apply_output=output, error=exc.message)
    finally:
        with anyio.CancelScope(shield=True):
            try:
                await backend.cancel_run(run.id)
            except BackendError:
                log.warning("could not cancel validation run %s", run.id)


async def _apply_reference(backend: Backend, scenario: ScenarioView, devbox_id: str) -> str:
    reference = scenario.reference_output or ""
    if is_unified_diff(reference):
        await backend.write_file(devbox_id, ".scenario-reference.patch", reference)
        command = (
            f"(git apply --whitespace=nowarn {_PATCH} 2>/dev/null "
            f"|| patch -p1 --forward < {_PATCH}); rc=$?; "
            f"rm -f {_PATCH}; exit $rc"
        )
    else:
        command = reference
    result = await backend.execute(
        devbox_id, command, working_directory=scenario.working_directory, timeout_seconds=600
    )
    output = (result.stdout or "") + (result.stderr or "")
    if result.exit_status != 0:
        raise InvalidRequestError(f"applying the reference output exited {result.exit_status}: {output[-2000:]}")
    return output
