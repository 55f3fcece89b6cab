"""Judging a reference validation: shared by every backend, so the verdict means one thing."""

from __future__ import annotations

from .models import ScenarioValidationView, ScenarioView, ValidationAttempt, ValidationType


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
