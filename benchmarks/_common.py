"""Helpers shared by the benchmark scripts: timing, medians, the results table."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from scenario_mcp.local.engine import LocalBackend

HOST_TOOLS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Figure:
    """One measured quantity: its samples in milliseconds."""

    name: str
    samples: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Row:
    label: str
    measured: Figure
    floor: Figure
    goal_ms: float | None  # None: shown for insight, no goal of its own


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    """Milliseconds one call of `fn` took."""
    start = time.perf_counter()
    await fn()
    return (time.perf_counter() - start) * 1000


async def run_argv(argv: list[str]) -> None:
    """Run a program to completion the way the engine spawns its helpers; fail loudly."""
    result = await anyio.run_process(argv, check=False, stdin=subprocess.DEVNULL, env={"PATH": HOST_TOOLS_PATH})
    if result.returncode != 0:
        raise RuntimeError(f"{argv} exited {result.returncode}: {result.stderr.decode(errors='replace')}")


async def shutdown_all(data_dir: Path) -> None:
    """Shut down every devbox still running in a data dir (a failed or interrupted benchmark's)."""
    if not data_dir.exists():
        return
    async with LocalBackend(data_dir) as engine:
        page = await engine.list_devboxes(limit=5000, status="running")
        for box in page.devboxes:
            await engine.shutdown_devbox(box.id)


def print_table(title: str, rows: list[Row]) -> None:
    print()
    print(title)
    header = f"{'figure':<44} {'n':>4} {'p50 ms':>8} {'p90 ms':>8} {'floor p50':>10} {'ratio':>6} {'goal':>8}  ok"
    print(header)
    print("-" * len(header))
    for row in rows:
        m, f = row.measured, row.floor
        goal, ok = ("-", "") if row.goal_ms is None else ("<= " + format(row.goal_ms, "g"), "yes")
        if row.goal_ms is not None and m.p50 > row.goal_ms:
            ok = "NO"
        print(
            f"{row.label:<44} {len(m.samples):>4} {m.p50:>8.2f} {m.quantile(0.9):>8.2f} "
            f"{f.p50:>10.2f} {m.p50 / f.p50:>6.2f} {goal:>8}  {ok}"
        )
    print()
    for row in rows:
        print(f"  {row.label.split(' ', 1)[0]} {row.measured.name}; floor: {row.floor.name}")
    print(f"  host: Linux {os.uname().release}, {os.cpu_count()} cpus")
