"""Redaction: what of a scenario, a run and its logs a solver may see.

A solver never sees a reference output, a scorer's body or its test files; it sees each scorer's
output only where the scenario's metadata allows it. SolverBackend (access.py) applies these to
every view on its way out.
"""

from __future__ import annotations

from typing import Any

from ..models import RunLogEntry, ScenarioRunView, ScenarioView, ScoringFunction

# Runloop's scenario models have no "may the solver see scorer output" flag; this metadata key is
# scenario-mcp's. Off by default: a failing test's output can quote the hidden test.
SOLVER_SEES_SCORER_OUTPUT = "scenario_mcp.solver_sees_scorer_output"
HIDDEN = "[hidden from solvers]"
HIDDEN_OUTPUT = (
    f"{HIDDEN} scorer output is not shown to solvers unless the scenario's metadata sets "
    f"{SOLVER_SEES_SCORER_OUTPUT}=true"
)


def solver_sees_scorer_output(scenario: ScenarioView) -> bool:
    return scenario.metadata.get(SOLVER_SEES_SCORER_OUTPUT, "").strip().lower() == "true"


def _hide_scorer(function: ScoringFunction) -> ScoringFunction:
    """Keep a scoring function's name, weight and scorer type; hide everything the scorer runs."""
    scorer = function.scorer
    update: dict[str, Any] = {}
    for name, info in type(scorer).model_fields.items():
        if name in ("type", "custom_scorer_type"):
            continue
        value = getattr(scorer, name)
        if isinstance(value, str):
            update[name] = HIDDEN
        elif isinstance(value, list):
            update[name] = []
        elif value is not None and not info.is_required():
            update[name] = None
    return function.model_copy(update={"scorer": scorer.model_copy(update=update)})


def redact_scenario(scenario: ScenarioView) -> ScenarioView:
    functions = [_hide_scorer(f) for f in scenario.scoring_contract.scoring_function_parameters]
    contract = scenario.scoring_contract.model_copy(update={"scoring_function_parameters": functions})
    return scenario.model_copy(update={"reference_output": None, "scoring_contract": contract})


def redact_run(run: ScenarioRunView, scenario: ScenarioView | None) -> ScenarioRunView:
    """Scores and states stay; each scorer's output only where the scenario allows it."""
    result = run.scoring_contract_result
    if result is None or (scenario is not None and solver_sees_scorer_output(scenario)):
        return run
    hidden = [r.model_copy(update={"output": HIDDEN_OUTPUT}) for r in result.scoring_function_results]
    return run.model_copy(
        update={"scoring_contract_result": result.model_copy(update={"scoring_function_results": hidden})}
    )


def redact_logs(entries: list[RunLogEntry], scenario: ScenarioView | None) -> list[RunLogEntry]:
    """Scorer log entries keep their first line (`state=... score=...`) and lose the output."""
    if scenario is not None and solver_sees_scorer_output(scenario):
        return entries
    redacted = []
    for entry in entries:
        if entry.source.startswith("scorer"):
            first = entry.message.split("\n", 1)[0]
            summary = first if first.startswith("state=") else ""
            entry = entry.model_copy(update={"message": f"{summary}\n{HIDDEN_OUTPUT}".strip()})
        redacted.append(entry)
    return redacted
