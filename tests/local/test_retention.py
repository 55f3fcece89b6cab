"""Retention (issue 15): outputs and logs of devboxes and runs that ended longer ago than the
retention period go; their records stay listed and readable."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.retention import DEFAULT_RETAIN_SECONDS, parse_retention
from scenario_mcp.models import BashScriptScorer, DevboxCreateParameters

from ..conftest import seed_default_blueprint
from .helpers import contract, scenario_with, start, wait_scored

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("text", "seconds"), [("7d", 7 * 86400), ("12h", 43200), ("30m", 1800), ("90s", 90), ("0", 0), ("1.5h", 5400)]
)
def test_retention_durations(text: str, seconds: float) -> None:
    assert parse_retention(text) == seconds


@pytest.mark.parametrize("text", ["", "7 days", "-1d", "1w", "d"])
def test_a_bad_retention_names_the_option_and_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"--retain .*7d, 12h, 30m, 90s or 0"):
        parse_retention(text)


def test_the_default_is_a_week() -> None:
    assert DEFAULT_RETAIN_SECONDS == 7 * 86400


async def test_ended_devboxes_and_runs_lose_outputs_and_logs_not_rows(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters(name="ended"))
    execution = await backend.execute(box.id, "seq 1 20000")  # ~100 KB: beyond the inline cap, in a file
    await backend.shutdown_devbox(box.id)
    live = await backend.create_devbox(DevboxCreateParameters(name="live"))
    await backend.execute(live.id, "echo still here")
    scenario = await scenario_with(backend, contract(("s", 1, BashScriptScorer(bash_script="echo 1.0"))))
    run = await start(backend, scenario)
    await backend.score_run(run.id)
    await wait_scored(backend, run.id)
    await backend.complete_run(run.id)
    boxes = backend.devboxes.boxes_dir
    assert (boxes / box.id / "exec").is_dir() and await backend.run_logs(run.id)

    kept = await backend.apply_retention(3600)  # nothing ended an hour ago
    assert kept.devboxes == [] and kept.runs == []
    assert (boxes / box.id).is_dir()

    report = await backend.apply_retention(0)
    assert box.id in report.devboxes and run.id in report.runs
    assert report.freed_bytes > 100_000 and report.log_entries > 0
    assert not (boxes / box.id).exists()
    assert (boxes / live.id).is_dir() and live.id not in report.devboxes  # running: untouched
    # The records stay: listed, read, with their inline output.
    assert (await backend.get_devbox(box.id)).status == "shutdown"
    assert any(d.id == box.id for d in (await backend.list_devboxes(limit=100, status="shutdown")).devboxes)
    assert (await backend.get_execution(box.id, execution.execution_id)).stdout.startswith("1\n2\n")
    assert (await backend.get_run(run.id)).state == "completed"
    assert await backend.run_logs(run.id) == []
    again = await backend.apply_retention(0)  # what went is not looked at again
    assert box.id not in again.devboxes and again.runs == []


async def test_gc_applies_retention_now(data_dir: Path, default_blueprint_cache: Path) -> None:
    async with LocalBackend(data_dir) as engine:
        await seed_default_blueprint(engine, default_blueprint_cache)
        box = await engine.create_devbox(DevboxCreateParameters())
        await engine.execute(box.id, "seq 1 20000")
        await engine.shutdown_devbox(box.id)
    result = await anyio.run_process(
        [sys.executable, "-m", "scenario_mcp", "gc", "--data-dir", str(data_dir), "--retain", "0"], check=False
    )
    assert result.returncode == 0, result.stderr
    assert b"retention: freed" in result.stdout and b"1 ended devbox(es)" in result.stdout
    assert not (data_dir / "devboxes" / box.id).exists()
    bad = await anyio.run_process(
        [sys.executable, "-m", "scenario_mcp", "gc", "--data-dir", str(data_dir), "--retain", "soon"], check=False
    )
    assert bad.returncode == 2 and b"--retain 'soon'" in bad.stderr
