"""Retention: what ended long ago gives its disk back, its record stays.

Devboxes that ended (shutdown or failure) and runs that ended (completed, canceled, timed out or
failed) more than the retention period ago lose their outputs and logs: a devbox's directory
(its executions' output files, its state), a run's log entries. Their rows stay: they are still
listed and read, with the output kept inline in each execution's record. Run by the engine at
start and every hour, and now by `scenario-mcp gc` (`--retain`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from ..models import TERMINAL_RUN_STATES, now_ms
from .layers import tree_size
from .store import Store
from .trash import remove_trees

DEFAULT_RETAIN_SECONDS = 7 * 24 * 3600
RETENTION_INTERVAL = 3600.0  # how often a running engine applies it
_ENDED_DEVBOX = ("shutdown", "failure")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_retention(text: str) -> float:
    """`7d`, `12h`, `30m`, `90s` or plain seconds (`0`: everything that has ended) as seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"--retain {text!r}: give a duration such as 7d, 12h, 30m, 90s or 0")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass
class RetentionReport:
    devboxes: list[str] = field(default_factory=list)  # whose outputs went
    runs: list[str] = field(default_factory=list)  # whose logs went
    freed_bytes: int = 0
    log_entries: int = 0

    def summary(self) -> str:
        return (
            f"retention: freed {self.freed_bytes / 1e6:.1f} MB of {len(self.devboxes)} ended devbox(es), "
            f"{self.log_entries} log entries of {len(self.runs)} ended run(s)"
        )


async def apply_retention(store: Store, boxes_dir: Path, retain_seconds: float) -> RetentionReport:
    """Remove the outputs and logs of devboxes and runs that ended more than `retain_seconds` ago."""
    cutoff = now_ms() - int(retain_seconds * 1000)
    report = RetentionReport()
    # Only devboxes that still have a directory are looked at: the work stays bounded by what
    # retention keeps, not by every devbox ever made.
    names = await anyio.to_thread.run_sync(
        lambda: sorted(p.name for p in boxes_dir.iterdir()) if boxes_dir.is_dir() else []
    )
    for name in names:
        row = await store.get("devboxes", name)
        if row is None or row.data.get("status") not in _ENDED_DEVBOX:
            continue
        ended = row.data.get("end_time_ms")
        if ended is None or ended >= cutoff:
            continue
        directory = boxes_dir / name
        size = await anyio.to_thread.run_sync(tree_size, directory)
        await anyio.to_thread.run_sync(remove_trees, directory)
        if not directory.exists():  # else still busy (a devbox that ended a moment ago): next time
            report.freed_bytes += size
            report.devboxes.append(name)
    report.runs = await store.runs_with_logs_ended_before(cutoff, sorted(TERMINAL_RUN_STATES))
    if report.runs:
        report.log_entries = await store.delete_logs(report.runs)
    return report
