"""The results' statistics (mean, standard error, unbiased pass@k) and their JUnit form."""

from __future__ import annotations

import math
from xml.etree import ElementTree

from scenario_mcp.harness.results import AttemptResult, SuiteResults, junit_xml, pass_at_k, summarise


def attempt(scenario: str, k: int, score: float | None, error: str | None = None) -> AttemptResult:
    return AttemptResult(
        scenario_id=f"scn_{scenario}", scenario_name=scenario, attempt=k, state="completed", score=score, error=error
    )


def test_pass_at_k_is_the_unbiased_estimator() -> None:
    assert pass_at_k(5, 2, 1) == 0.4
    assert math.isclose(pass_at_k(5, 2, 2), 1 - math.comb(3, 2) / math.comb(5, 2))  # 0.7
    assert pass_at_k(5, 0, 3) == 0.0 and pass_at_k(5, 3, 3) == 1.0 and pass_at_k(4, 4, 1) == 1.0


def test_the_summary_counts_errors_as_zero_and_gives_the_standard_error() -> None:
    results = [
        attempt("a", 1, 1.0),
        attempt("a", 2, 0.0),
        attempt("b", 1, 1.0),
        attempt("b", 2, 1.0),
        attempt("c", 1, 0.5),
        attempt("c", 2, 1.0, error="the devbox died"),  # scored, but errored: 0.0, not a pass
    ]
    summary = summarise(results, 2)
    means = {s.scenario_name: s.mean for s in summary.per_scenario}
    assert means == {"a": 0.5, "b": 1.0, "c": 0.25}
    assert math.isclose(summary.mean, 1.75 / 3)
    deviation = math.sqrt(sum((m - 1.75 / 3) ** 2 for m in means.values()) / 2)
    assert math.isclose(summary.stderr, deviation / math.sqrt(3))
    assert summary.pass_at[1] == (0.5 + 1.0 + 0.0) / 3
    assert summary.pass_at[2] == (1.0 + 1.0 + 0.0) / 3
    assert summary.errors == 1 and summary.attempts == 6


def test_junit_fails_a_scenario_below_one_and_errors_one_that_never_ran() -> None:
    results = [attempt("good", 1, 1.0), attempt("weak", 1, 0.5), attempt("broken", 1, None, error="no devbox")]
    suite = SuiteResults(
        benchmark_id="bmd_x",
        benchmark_name="suite",
        benchmark_run_id="bmr_x",
        agent="oracle",
        attempts_per_scenario=1,
        concurrency=1,
        start_time_ms=0,
        duration_s=1.5,
        complete=False,
        results=results,
    ).summarised()
    root = ElementTree.fromstring(junit_xml(suite).split("\n", 1)[1])
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    cases = {case.get("name"): [child.tag for child in case] for case in root.iter("testcase")}
    assert cases == {"good": [], "weak": ["failure"], "broken": ["error"]}
