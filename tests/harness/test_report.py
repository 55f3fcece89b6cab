"""The HTML report: what a real browser (headless Chromium) renders of it, and its size and speed
with 500 scenarios."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from html import unescape
from pathlib import Path

import pytest

from scenario_mcp.harness.agents import parse_agent
from scenario_mcp.harness.console import run_logs
from scenario_mcp.harness.report import render_report
from scenario_mcp.harness.results import AttemptResult, PhaseTimes, SuiteResults
from scenario_mcp.harness.runner import SuiteOptions, SuiteRun
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import BenchmarkCreateParameters, ScoringFunctionResultView

from .test_runner import trivial

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / ".tools" / "artifacts"


def chromium(*args: str) -> str:
    assert CHROMIUM, "chromium is not installed: run EXTRAS=test bash scripts/setup.sh"
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


@pytest.mark.anyio
async def test_chromium_renders_every_scenario_score_and_diff(backend: LocalBackend, tmp_path: Path) -> None:
    scenarios = [await trivial(backend, f"report-{i}") for i in range(3)]
    benchmark = await backend.create_benchmark(
        BenchmarkCreateParameters(name="report suite", scenario_ids=[s.id for s in scenarios])
    )
    suites = []
    for agent in ("nop", "oracle"):
        runner = SuiteRun(backend, SuiteOptions(agent=parse_agent(agent), concurrency=3))
        await runner.start(benchmark)
        suites.append(await runner.run())
    nop, oracle = suites
    page = tmp_path / "report.html"
    page.write_text(render_report(oracle, compare=nop, logs=await run_logs(backend, oracle)))
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.read_text()), "the report fetches nothing"

    dom = unescape(chromium("--dump-dom", page.as_uri()))
    for scenario in scenarios:
        assert scenario.name in dom
    assert dom.count(">1.000</td>") >= 3  # each scenario's mean
    assert "+solved" in dom and "+++ b/done" in dom  # the oracle's change, as a diff line
    assert "3 better</span>" in dom and "run started on devbox" in dom  # compared; the run's logs
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "bench-report.png"
    chromium("--window-size=1280,900", f"--screenshot={shot}", page.as_uri())
    assert shot.stat().st_size > 10_000


def test_a_report_of_500_scenarios_is_small_and_fast() -> None:
    results = [
        AttemptResult(
            scenario_id=f"scn_{i}",
            scenario_name=f"scenario-{i}",
            attempt=k,
            run_id=f"scr_{i}_{k}",
            state="completed",
            score=(i % 3) / 2,
            scorers=[
                ScoringFunctionResultView(
                    scoring_function_name="tests", score=(i % 3) / 2, output="3 passed", state="complete"
                )
            ],
            diff=f"diff a/f{i}.py b/f{i}.py\n--- a/f{i}.py\n+++ b/f{i}.py\n@@ -1 +1 @@\n-old\n+new {i}\n",
            agent_output="did it\n" * 20,
            phases=PhaseTimes(environment=0.1, agent=1.0, scoring=0.2),
        )
        for i in range(500)
        for k in (1, 2)
    ]
    suite = SuiteResults(
        benchmark_id="bmd_x",
        benchmark_name="big",
        benchmark_run_id="bmr_x",
        agent="oracle",
        attempts_per_scenario=2,
        concurrency=16,
        start_time_ms=0,
        duration_s=10,
        complete=True,
        results=results,
    ).summarised()
    started = time.perf_counter()
    html = render_report(suite, compare=suite)
    assert time.perf_counter() - started < 2.0
    assert len(html) < 5_000_000
    assert html.count("<tr class='scenario'") == 500 and "+new 499" in html
