"""Soak: many trivial runs in one engine, and what they leave behind (issue 15).

    .venv/bin/python benchmarks/soak.py [--runs 10000] [--concurrency 8] [--data-dir DIR]

Each run: start_run, `touch done` in its devbox, score_run (a one-line bash scorer), complete_run.
Printed, each beside its floor measured in the same run:
- the server's RSS at the end vs. after the first 1,000 runs (a tenth of --runs when fewer):
  goal <= +10 MB;
- its open file descriptors at the end vs. at that point: goal equal;
- the data dir after retention with `--retain 0` (what `scenario-mcp gc --retain 0` does) vs. the
  database alone: the rows are kept (about what each run's records take), outputs and logs are not:
  goal: everything but the database and the layers <= 1 MB;
- processes left (sandbox inits, anything they started), mounts under the data dir, cgroups named
  for its devboxes or scorers: goal 0 each (the spawner's prepared inits are its own, counted apart).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import anyio
from _common import shutdown_all

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.layers import tree_size
from scenario_mcp.local.limits import group_parents
from scenario_mcp.local.sandbox.handle import _SPAWNERS
from scenario_mcp.models import (
    BashScriptScorer,
    InputContext,
    ScenarioCreateParameters,
    ScoringContract,
    ScoringFunction,
    StartScenarioRunParameters,
)

SCORER = "test -f done && echo 1.0 || echo 0.0"
RSS_GOAL_BYTES = 10 << 20
OTHER_FILES_GOAL_BYTES = 1 << 20


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def descendants() -> set[int]:
    """Every process below this one (the spawner, its prepared inits, sandboxes and theirs)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def engine_cgroups(devbox_ids: set[str], scorer_prefix: str) -> list[Path]:
    return [
        group
        for parent in group_parents()
        if parent.is_dir()
        for group in parent.iterdir()
        if group.name in devbox_ids or group.name.startswith(scorer_prefix)
    ]


def mounts_under(path: Path) -> int:
    return sum(str(path) in line for line in Path("/proc/self/mountinfo").read_text().splitlines())


async def one_run(backend: LocalBackend, scenario_id: str) -> str:
    run = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario_id))
    await backend.execute(run.devbox_id, "touch done")
    await backend.score_run(run.id)
    while (await backend.get_run(run.id)).state == "scoring":
        await anyio.sleep(0.01)
    done = await backend.complete_run(run.id)
    if done.scoring_contract_result is None or done.scoring_contract_result.score != 1.0:
        raise RuntimeError(f"run {run.id} scored {done.scoring_contract_result}")
    return run.devbox_id


async def main(runs: int, concurrency: int, data_dir: Path) -> int:
    checkpoint_at = min(1000, max(1, runs // 10))
    async with LocalBackend(data_dir) as backend:
        print("building the default blueprint (once per data dir) ...", file=sys.stderr)
        await backend.blueprints.ensure_default()
        scenario = await backend.create_scenario(
            ScenarioCreateParameters(
                name="soak",
                input_context=InputContext(problem_statement="touch done"),
                scoring_contract=ScoringContract(
                    scoring_function_parameters=[
                        ScoringFunction(name="done", weight=1, scorer=BashScriptScorer(bash_script=SCORER))
                    ]
                ),
            )
        )
        devbox_ids: set[str] = set()
        done = 0
        checkpoint: tuple[int, int] | None = None
        started = time.monotonic()
        next_run = 0

        async def worker() -> None:
            nonlocal done, next_run, checkpoint
            while next_run < runs:
                next_run += 1
                devbox_ids.add(await one_run(backend, scenario.id))
                done += 1
                if done == checkpoint_at:
                    checkpoint = (rss_bytes(), open_fds())
                if done % 500 == 0:
                    rate = done / (time.monotonic() - started)
                    print(f"  {done}/{runs} runs, {rate:.1f} runs/s, RSS {rss_bytes() / 1e6:.1f} MB", file=sys.stderr)

        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker)
        elapsed = time.monotonic() - started
        assert checkpoint is not None
        await anyio.sleep(1)  # the last devboxes' disk removal, off the callers' path
        end_rss, end_fds = rss_bytes(), open_fds()
        scorer_prefix = backend.parts.scoring.cgroup_prefix
        before_gc = tree_size(data_dir)
        report = await backend.apply_retention(0)
        db_bytes = sum(p.stat().st_size for p in data_dir.glob("scenario-mcp.sqlite3*"))
        layer_bytes = tree_size(data_dir / "layers")
        other_bytes = tree_size(data_dir) - db_bytes - layer_bytes
        others = {
            entry.name: tree_size(entry) for entry in data_dir.iterdir() if entry.is_dir() and entry.name != "layers"
        }
        print(f"  other files by directory: {others}", file=sys.stderr)
    # The engine is closed; its spawner ends the inits it prepared ahead of time when told to (as
    # at this process's exit). Whatever is still below this process was left behind.
    _SPAWNERS.close()
    await anyio.sleep(0.5)
    left = descendants()
    cgroups = engine_cgroups(devbox_ids, scorer_prefix)
    mounts = mounts_under(data_dir)
    rss_grew = end_rss - checkpoint[0]
    rows = [
        (f"runs/s (concurrency {concurrency})", f"{runs / elapsed:.1f}", "", ""),
        (
            "RSS at the end",
            f"{end_rss / 1e6:.1f} MB",
            f"{checkpoint[0] / 1e6:.1f} MB after {checkpoint_at} runs",
            f"+{rss_grew / 1e6:.2f} MB ({'ok' if rss_grew <= RSS_GOAL_BYTES else 'OVER'} <= +10 MB)",
        ),
        (
            "open fds at the end",
            str(end_fds),
            f"{checkpoint[1]} after {checkpoint_at} runs",
            "ok" if end_fds <= checkpoint[1] else "GREW",
        ),
        (
            "data dir after gc --retain 0",
            f"{(db_bytes + other_bytes) / 1e6:.1f} MB + layers {layer_bytes / 1e6:.0f} MB",
            f"database {db_bytes / 1e6:.1f} MB ({db_bytes / runs / 1024:.1f} KiB/run of kept rows); "
            f"before gc {before_gc / 1e6:.0f} MB",
            f"other files {other_bytes / 1e6:.2f} MB ({'ok' if other_bytes <= OTHER_FILES_GOAL_BYTES else 'OVER'})",
        ),
        (
            "left behind",
            f"{len(left)} processes, {mounts} mounts, {len(cgroups)} cgroups",
            "0, 0, 0",
            "ok" if not left and not mounts and not cgroups else "LEFT",
        ),
    ]
    print(
        f"\nsoak: {runs} trivial runs at concurrency {concurrency} ({elapsed:.0f} s); retention freed "
        f"{report.freed_bytes / 1e6:.1f} MB of {len(report.devboxes)} devboxes, {report.log_entries} log entries"
    )
    for label, figure, floor, verdict in rows:
        print(f"  {label:32} {figure:28} beside {floor:60} {verdict}")
    ok = rss_grew <= RSS_GOAL_BYTES and end_fds <= checkpoint[1] and other_bytes <= OTHER_FILES_GOAL_BYTES
    return 0 if ok and not left and not mounts and not cgroups else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000, help="trivial runs (default 10000)")
    parser.add_argument("--concurrency", type=int, default=8, help="runs at once (default 8)")
    parser.add_argument("--data-dir", type=Path, help="reuse this data dir (default: a fresh temporary one)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tmp = None if args.data_dir is not None else Path(tempfile.mkdtemp(prefix="scenario-mcp-soak-"))
    data_dir: Path = args.data_dir if tmp is None else tmp / "data"
    try:
        code = anyio.run(main, args.runs, args.concurrency, data_dir)
    finally:
        anyio.run(shutdown_all, data_dir)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(code)
