"""The HTML report of a benchmark run: one self-contained file (inline CSS, a few lines of inline
script, nothing fetched), readable with hundreds of scenarios.

The totals; a row per scenario (score bar, mean, pass@k, errors, phase times, and with a run to
compare against, whether it got better or worse); under each row, collapsed, its attempts: each
scorer's score and output, the agent's output, its changes to the working directory as a diff,
and the run's logs. Collapsed parts are plain <details> elements: no script is needed to read them.
"""

from __future__ import annotations

import time
from html import escape

from ..models import RunLogEntry
from .results import AttemptResult, ScenarioSummary, SuiteResults, Summary, summarise

DIFF_LINES_SHOWN = 1500  # per attempt; the rest is said to be cut
LOG_ENTRY_CHARS = 4000
SAME = 1e-9

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d232a;background:#fafbfc}
h1{font-size:1.4em;margin:0 0 .2em}.muted{color:#667}
.cards{display:flex;gap:1em;flex-wrap:wrap;margin:1em 0}.card{background:#fff;border:1px solid #dde;
border-radius:6px;padding:.6em 1em}.card b{display:block;font-size:1.5em}
table{border-collapse:collapse;width:100%;background:#fff}th,td{padding:.3em .5em;border-bottom:1px solid #eef;
text-align:left;vertical-align:top}th{background:#f0f2f5;position:sticky;top:0}
.bar{width:120px;height:12px;background:#eee;border-radius:3px;display:inline-block;vertical-align:middle}
.bar i{display:block;height:100%;border-radius:3px;background:#2da44e}.bar i.part{background:#d4a72c}
.bar i.zero{background:#cf222e}
.num{text-align:right;font-variant-numeric:tabular-nums}
.better{color:#1a7f37;font-weight:600}.worse{color:#cf222e;font-weight:600}
tr.detail>td{background:#f7f8fa;padding:0 .5em}details{margin:.3em 0}summary{cursor:pointer}
pre{background:#fff;border:1px solid #dde;padding:.5em;overflow:auto;max-height:30em;margin:.3em 0;font-size:12px}
.diff .add{color:#1a7f37;background:#e6ffec;display:block}.diff .del{color:#cf222e;background:#ffebe9;display:block}
.diff .hunk{color:#0550ae;display:block}.error{color:#cf222e}
#filter{margin:.5em 0;padding:.3em;width:20em}
"""

_SCRIPT = """
document.getElementById('filter').addEventListener('input',function(e){var q=e.target.value.toLowerCase();
document.querySelectorAll('tr.scenario').forEach(function(r){var show=r.dataset.name.indexOf(q)>=0;
r.style.display=show?'':'none';r.nextElementSibling.style.display=show?'':'none';});});
"""


def _bar(score: float) -> str:
    kind = "" if score >= 1.0 else ("zero" if score <= 0.0 else "part")
    return f'<span class="bar"><i class="{kind}" style="width:{max(score, 0.0) * 100:.0f}%"></i></span>'


def _seconds(value: float) -> str:
    return f"{value:.2f}"


def _diff_html(diff: str) -> str:
    lines = diff.splitlines()
    shown = []
    for line in lines[:DIFF_LINES_SHOWN]:
        text = escape(line)
        if line.startswith(("+++", "---", "diff ")):
            shown.append(f"<b>{text}</b>")
        elif line.startswith("+"):
            shown.append(f'<span class="add">{text}</span>')
        elif line.startswith("-"):
            shown.append(f'<span class="del">{text}</span>')
        elif line.startswith("@@"):
            shown.append(f'<span class="hunk">{text}</span>')
        else:
            shown.append(text)
    if len(lines) > DIFF_LINES_SHOWN:
        shown.append(f"[... {len(lines) - DIFF_LINES_SHOWN} more lines]")
    return '<pre class="diff">' + "\n".join(shown) + "</pre>"


def _attempt_html(attempt: AttemptResult, logs: list[RunLogEntry] | None) -> str:
    score = "not scored" if attempt.score is None else f"{attempt.score:.3f}"
    parts = [
        f"<h4>attempt {attempt.attempt}: {score} <span class='muted'>({escape(attempt.state)}"
        f"{', run ' + escape(attempt.run_id) if attempt.run_id else ''}"
        f"{', agent timed out' if attempt.agent_timed_out else ''})</span></h4>"
    ]
    if attempt.error:
        parts.append(f'<p class="error">error: {escape(attempt.error)}</p>')
    if attempt.scorers:
        rows = "".join(
            f"<tr><td>{escape(s.scoring_function_name)}</td><td class='num'>{s.score:.3f}</td>"
            f"<td>{escape(s.state)}</td><td><pre>{escape(s.output[-4000:])}</pre></td></tr>"
            for s in attempt.scorers
        )
        parts.append(f"<table><tr><th>scorer</th><th>score</th><th>state</th><th>output</th></tr>{rows}</table>")
    phases = attempt.phases
    parts.append(
        f"<p class='muted'>environment {_seconds(phases.environment)} s · agent {_seconds(phases.agent)} s"
        f" · scoring {_seconds(phases.scoring)} s · agent exit {attempt.agent_exit_status}</p>"
    )
    changed = sum(1 for line in attempt.diff.splitlines() if line.startswith("+++ "))
    if attempt.diff:
        parts.append(
            f"<details open><summary>changes ({changed} file(s))</summary>{_diff_html(attempt.diff)}</details>"
        )
    else:
        parts.append("<p class='muted'>no changes to the working directory</p>")
    if attempt.agent_output:
        parts.append(f"<details><summary>agent output</summary><pre>{escape(attempt.agent_output)}</pre></details>")
    if logs:
        text = "\n".join(
            f"{time.strftime('%H:%M:%S', time.gmtime(e.timestamp_ms / 1000))} [{e.source}] "
            f"{e.message[:LOG_ENTRY_CHARS]}"
            for e in logs
        )
        parts.append(f"<details><summary>run logs ({len(logs)})</summary><pre>{escape(text)}</pre></details>")
    return "".join(parts)


def _delta(mine: ScenarioSummary, theirs: ScenarioSummary | None) -> str:
    if theirs is None:
        return "<td class='muted'>new</td>"
    change = mine.mean - theirs.mean
    if change > SAME:
        return f"<td class='better'>better +{change:.3f}</td>"
    if change < -SAME:
        return f"<td class='worse'>worse {change:.3f}</td>"
    return "<td class='muted'>same</td>"


def render_report(
    suite: SuiteResults,
    *,
    compare: SuiteResults | None = None,
    logs: dict[str, list[RunLogEntry]] | None = None,
) -> str:
    """The whole HTML page."""
    summary = suite.summary or summarise(suite.results, suite.attempts_per_scenario)
    other = compare.summary or summarise(compare.results, compare.attempts_per_scenario) if compare else None
    k = max(summary.pass_at, default=1)
    out = _heading(suite, summary, k)
    if compare is not None and other is not None:
        out.append(_comparison(summary, compare, other))
    out.append("<input id='filter' placeholder='filter scenarios by name' aria-label='filter scenarios'>")
    out.extend(_scenario_table(suite, summary, k, other, logs or {}))
    out.append(f"</tbody></table><script>{_SCRIPT}</script></body></html>")
    return "\n".join(out)


def _heading(suite: SuiteResults, summary: Summary, k: int) -> list[str]:
    """The page's head, title, run line and the summary's cards."""
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(suite.start_time_ms / 1000))
    title = f"{suite.benchmark_name}: {summary.mean:.3f}"
    cards = [
        ("mean score", f"{summary.mean:.3f} ± {summary.stderr:.3f}"),
        *((f"pass@{n}", f"{value:.3f}") for n, value in summary.pass_at.items() if n in (1, k)),
        ("scenarios", str(summary.scenarios)),
        ("attempts", str(summary.attempts)),
        ("errors", str(summary.errors)),
        (
            "mean s: env / agent / scoring",
            f"{summary.phases.environment:.2f} / {summary.phases.agent:.2f} / {summary.phases.scoring:.2f}",
        ),
    ]
    return [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(suite.benchmark_name)}</h1>",
        f"<p class='muted'>benchmark run {escape(suite.benchmark_run_id)} · agent {escape(suite.agent)} · "
        f"{started} · {suite.duration_s:.1f} s · concurrency {suite.concurrency} · "
        f"{'complete' if suite.complete else 'incomplete (errors or interrupted: --resume it)'}</p>",
        "<div class='cards'>",
        *(f"<div class='card'>{escape(label)}<b>{escape(value)}</b></div>" for label, value in cards),
        "</div>",
    ]


def _comparison(summary: Summary, compare: SuiteResults, other: Summary) -> str:
    """How many scenarios got better or worse than in the compared run."""
    theirs = {s.scenario_name: s for s in other.per_scenario}
    mine = {s.scenario_name: s for s in summary.per_scenario}
    better = sorted(n for n, s in mine.items() if n in theirs and s.mean - theirs[n].mean > SAME)
    worse = sorted(n for n, s in mine.items() if n in theirs and s.mean - theirs[n].mean < -SAME)
    return (
        f"<p>compared with {escape(compare.benchmark_run_id)} ({escape(compare.agent)}, mean "
        f"{other.mean:.3f}): <span class='better'>{len(better)} better</span>, "
        f"<span class='worse'>{len(worse)} worse</span>, mean change {summary.mean - other.mean:+.3f}</p>"
    )


def _scenario_table(
    suite: SuiteResults, summary: Summary, k: int, other: Summary | None, logs: dict[str, list[RunLogEntry]]
) -> list[str]:
    """The table's head and, per scenario, its row and the row of its attempts (the body stays open)."""
    theirs = {s.scenario_name: s for s in other.per_scenario} if other else {}
    attempts: dict[str, list[AttemptResult]] = {}
    for result in suite.results:
        attempts.setdefault(result.scenario_id, []).append(result)
    head = [
        "scenario",
        "score",
        "mean",
        "pass@1",
        f"pass@{k}" if k > 1 else None,
        "errors",
        "env s",
        "agent s",
        "scoring s",
    ]
    columns = [h for h in head if h] + (["vs compared"] if other is not None else [])
    out = ["<table><thead><tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr></thead><tbody>"]
    for scenario in summary.per_scenario:
        cells = [
            f"<td>{escape(scenario.scenario_name)}</td>",
            f"<td>{_bar(scenario.mean)}</td>",
            f"<td class='num'>{scenario.mean:.3f}</td>",
            f"<td class='num'>{scenario.pass_at.get(1, 0.0):.2f}</td>",
            f"<td class='num'>{scenario.pass_at.get(k, 0.0):.2f}</td>" if k > 1 else "",
            f"<td class='num{' error' if scenario.errors else ''}'>{scenario.errors}</td>",
            f"<td class='num'>{_seconds(scenario.phases.environment)}</td>",
            f"<td class='num'>{_seconds(scenario.phases.agent)}</td>",
            f"<td class='num'>{_seconds(scenario.phases.scoring)}</td>",
            _delta(scenario, theirs.get(scenario.scenario_name)) if other is not None else "",
        ]
        out.append(f"<tr class='scenario' data-name='{escape(scenario.scenario_name.lower())}'>{''.join(cells)}</tr>")
        inner = "".join(_attempt_html(a, logs.get(a.run_id or "")) for a in attempts.get(scenario.scenario_id, []))
        out.append(
            f"<tr class='detail'><td colspan='{len(columns)}'><details><summary>attempts of "
            f"{escape(scenario.scenario_name)}</summary>{inner}</details></td></tr>"
        )
    return out
