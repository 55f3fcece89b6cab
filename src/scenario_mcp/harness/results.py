"""A benchmark run's results as the runner records them, their statistics, and their JUnit form.

The JSON written by `scenario-mcp bench run --json` is `SuiteResults.model_dump_json()`; its schema
is `SuiteResults.model_json_schema()` (`scenario-mcp bench schema` prints it). One `AttemptResult`
per attempt, with each scorer's result; `summary` holds what is derived from them.
"""

from __future__ import annotations

import math
import statistics
from xml.etree import ElementTree

from pydantic import BaseModel, Field

from ..models import ScoringFunctionResultView

SCHEMA_VERSION = 1
RESULTS_OBJECT_PREFIX = "scenario-mcp-results-"  # + the benchmark run's id: the storage object kept


class PhaseTimes(BaseModel):
    """Seconds an attempt spent in each phase."""

    environment: float = Field(0.0, description="Starting the run: its devbox from the scenario's environment.")
    agent: float = Field(0.0, description="The agent at work.")
    scoring: float = Field(0.0, description="Scoring the run, and completing it.")


class AttemptResult(BaseModel):
    scenario_id: str
    scenario_name: str
    attempt: int = Field(description="1-based attempt number of this scenario.")
    run_id: str | None = Field(None, description="The scenario run (None when it could not start).")
    devbox_id: str | None = None
    state: str = Field(description="The scenario run's final state, or `not_started`.")
    score: float | None = Field(None, description="The run's score; None when it was not scored.")
    scorers: list[ScoringFunctionResultView] = Field(default_factory=list)
    error: str | None = Field(None, description="What went wrong (the run is then counted as 0.0).")
    agent_exit_status: int | None = None
    agent_timed_out: bool = False
    agent_output: str = Field("", description="The agent's output, its end when long.")
    diff: str = Field("", description="The agent's changes to the working directory, as a unified diff.")
    phases: PhaseTimes = Field(default_factory=PhaseTimes)

    @property
    def passed(self) -> bool:
        return self.error is None and self.score is not None and self.score >= 1.0

    @property
    def value(self) -> float:
        return self.score if self.score is not None and self.error is None else 0.0


class ScenarioSummary(BaseModel):
    scenario_id: str
    scenario_name: str
    attempts: int
    mean: float
    pass_at: dict[int, float] = Field(description="pass@k for k = 1 .. attempts (unbiased estimator).")
    errors: int
    phases: PhaseTimes = Field(description="Mean seconds per phase over the attempts.")


class Summary(BaseModel):
    scenarios: int
    attempts: int
    mean: float = Field(description="Mean over scenarios of each scenario's mean score (errors count 0.0).")
    stderr: float = Field(description="Standard error of that mean (sample deviation of scenario means / sqrt n).")
    pass_at: dict[int, float] = Field(description="Mean over scenarios of pass@k, for k = 1 .. attempts.")
    errors: int
    phases: PhaseTimes = Field(description="Mean seconds per phase over all attempts.")
    per_scenario: list[ScenarioSummary]


class SuiteResults(BaseModel):
    schema_version: int = SCHEMA_VERSION
    benchmark_id: str
    benchmark_name: str
    benchmark_run_id: str
    agent: str
    attempts_per_scenario: int
    concurrency: int
    start_time_ms: int
    duration_s: float
    complete: bool = Field(description="Every attempt ran (none errored, none left out by an interrupt).")
    results: list[AttemptResult]
    summary: Summary | None = None

    def summarised(self) -> SuiteResults:
        return self.model_copy(update={"summary": summarise(self.results, self.attempts_per_scenario)})


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimator of pass@k from n attempts of which c passed (Chen et al., 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _mean_phases(attempts: list[AttemptResult]) -> PhaseTimes:
    if not attempts:
        return PhaseTimes()
    return PhaseTimes(
        environment=statistics.fmean(a.phases.environment for a in attempts),
        agent=statistics.fmean(a.phases.agent for a in attempts),
        scoring=statistics.fmean(a.phases.scoring for a in attempts),
    )


def summarise(results: list[AttemptResult], attempts_per_scenario: int) -> Summary:
    by_scenario: dict[str, list[AttemptResult]] = {}
    for result in results:
        by_scenario.setdefault(result.scenario_id, []).append(result)
    per_scenario = []
    for scenario_id, attempts in by_scenario.items():
        n, c = len(attempts), sum(a.passed for a in attempts)
        per_scenario.append(
            ScenarioSummary(
                scenario_id=scenario_id,
                scenario_name=attempts[0].scenario_name,
                attempts=n,
                mean=statistics.fmean(a.value for a in attempts),
                pass_at={k: pass_at_k(n, c, k) for k in range(1, n + 1)},
                errors=sum(a.error is not None for a in attempts),
                phases=_mean_phases(attempts),
            )
        )
    means = [s.mean for s in per_scenario]
    ks = range(1, max((s.attempts for s in per_scenario), default=attempts_per_scenario) + 1)
    return Summary(
        scenarios=len(per_scenario),
        attempts=len(results),
        mean=statistics.fmean(means) if means else 0.0,
        stderr=statistics.stdev(means) / math.sqrt(len(means)) if len(means) > 1 else 0.0,
        pass_at={
            k: statistics.fmean(s.pass_at[k] for s in per_scenario if k in s.pass_at)
            for k in ks
            if any(k in s.pass_at for s in per_scenario)
        },
        errors=sum(s.errors for s in per_scenario),
        phases=_mean_phases(results),
        per_scenario=per_scenario,
    )


def junit_xml(suite: SuiteResults) -> str:
    """JUnit XML for CI: a test case per scenario, a failure when its mean is below 1.0, an error
    when every attempt of it errored."""
    summary = suite.summary or summarise(suite.results, suite.attempts_per_scenario)
    failures = sum(1 for s in summary.per_scenario if s.mean < 1.0 and s.errors < s.attempts)
    errors = sum(1 for s in summary.per_scenario if s.errors == s.attempts)
    root = ElementTree.Element(
        "testsuite",
        name=suite.benchmark_name,
        tests=str(summary.scenarios),
        failures=str(failures),
        errors=str(errors),
        time=f"{suite.duration_s:.3f}",
    )
    by_scenario: dict[str, list[AttemptResult]] = {}
    for result in suite.results:
        by_scenario.setdefault(result.scenario_id, []).append(result)
    for scenario in summary.per_scenario:
        phases = scenario.phases
        case = ElementTree.SubElement(
            root,
            "testcase",
            classname=suite.benchmark_name,
            name=scenario.scenario_name,
            time=f"{phases.environment + phases.agent + phases.scoring:.3f}",
        )
        attempts = by_scenario[scenario.scenario_id]
        detail = "\n".join(
            f"attempt {a.attempt}: score {a.score} ({a.state})" + (f": {a.error}" if a.error else "") for a in attempts
        )
        if scenario.errors == scenario.attempts:
            ElementTree.SubElement(case, "error", message=attempts[-1].error or "error").text = detail
        elif scenario.mean < 1.0:
            ElementTree.SubElement(case, "failure", message=f"score {scenario.mean:.3f} < 1.0").text = detail
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
