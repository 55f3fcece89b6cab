"""MCP benchmarks: the server over stdio, each figure next to the same work on the engine directly.

    .venv/bin/python benchmarks/bench_mcp.py [--runs N] [--workflow-runs M]

(c) `execute_on_devbox` of `true` through a real MCP client talking to `scenario-mcp serve` over
    stdio, vs. its floor: the same client's call of a canned `execute_on_devbox` on a server of
    the same SDK over stdio (_canned_mcp.py, started here), plus LocalBackend.execute(`true`) in
    this process, each timed in the same iteration. The goal: at most 1 ms above that floor (this
    server's own layer: argument validation, the bounded wait, the answer's serialization).
(d) the seed workflow over MCP, once its blueprint and snapshot exist: create_scenario (one
    bash_script_scorer `pytest -q && echo 1.0 || echo 0.0` on a snapshot holding a failing
    tests/test_example.py), start_run, the fix via execute_on_devbox, score_run, get_run polled
    until `scored`, complete_run; vs. the same workflow on LocalBackend directly.
(e) `get_devbox` back to back through a real MCP client over streamable HTTP (`scenario-mcp serve
    --transport http` on loopback), vs. the same call over stdio, alternately. Goal: <= 1.5x.
    Below it, where a call's time goes: the client's CPU per call (this thread's, p50) and each
    server's CPU per call (its process's, over all the calls), HTTP beside stdio.

Each figure is the median of its runs (default 50 each) after a few warm-up runs; MCP runs and
engine runs alternate. The server and the in-process engine use separate temporary data dirs;
the default blueprint (a venv with pytest, from PyPI, ~10 s) is built once, before any timing,
and shared by both.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from _common import Figure, Row, print_table, shutdown_all, timed
from bench_runs import http_server, process_cpu_s
from mcp import Client, StdioServerParameters

from scenario_mcp.local.blueprints import default_blueprint_id
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import (
    DevboxCreateParameters,
    ScenarioCreateParameters,
    ScenarioRunState,
    StartScenarioRunParameters,
)

WARMUP = 5
WORKFLOW_WARMUP = 3
POLL_INTERVAL = 0.002
FAILING_TEST = "def add(a, b):\n    return a - b\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
FIX = "sed -i 's/return a - b/return a + b/' tests/test_example.py"
SCORER = "pytest -q && echo 1.0 || echo 0.0"


def scenario_arguments(snapshot_id: str) -> dict[str, Any]:
    return {
        "name": "bench-fix-the-failing-test",
        "input_context": {"problem_statement": "The test in tests/test_example.py fails. Fix the code."},
        "environment_parameters": {"snapshot_id": snapshot_id, "working_directory": "/home/user"},
        "scoring_contract": {
            "scoring_function_parameters": [
                {"name": "pytest", "weight": 1.0, "scorer": {"type": "bash_script_scorer", "bash_script": SCORER}}
            ]
        },
    }


def server_command() -> str:
    venv_tool = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "scenario-mcp"
    found = str(venv_tool) if venv_tool.exists() else shutil.which("scenario-mcp")
    if found is None:
        raise SystemExit("scenario-mcp not found: install the project (scripts/setup.sh) first")
    return found


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        text = " ".join(getattr(block, "text", "") for block in result.content)
        raise RuntimeError(f"{tool} failed: {text}")
    assert result.structured_content is not None, f"{tool} returned no structured content"
    return dict(result.structured_content)


# --- setup -------------------------------------------------------------------------------------


async def share_default_blueprint(source: LocalBackend, data_dir: Path) -> None:
    """Give a fresh data dir the default blueprint `source` built: its layer and its row."""
    blueprint_id = default_blueprint_id()
    assert source.store is not None
    row = await source.store.get("blueprints", blueprint_id)
    assert row is not None, "build the default blueprint first"
    async with LocalBackend(data_dir) as target:
        link = target.devboxes.layers.path(blueprint_id)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            os.symlink(source.devboxes.layers.path(blueprint_id), link)
        assert target.store is not None
        await target.store.put(
            "blueprints", blueprint_id, row.data, internal=row.internal, name=row.data["name"], state=row.data["status"]
        )


async def engine_snapshot(engine: LocalBackend) -> str:
    box = await engine.create_devbox(DevboxCreateParameters(name="bench-authoring"))
    await engine.write_file(box.id, "tests/test_example.py", FAILING_TEST)
    snapshot = await engine.snapshot_disk(box.id, name="bench-failing-test")
    await engine.shutdown_devbox(box.id)
    return str(snapshot.id)


async def mcp_snapshot(client: Client) -> str:
    box = await call(client, "create_devbox", name="bench-authoring")
    await call(
        client, "write_devbox_file", devbox_id=box["id"], file_path="tests/test_example.py", contents=FAILING_TEST
    )
    snapshot = await call(client, "snapshot_devbox", devbox_id=box["id"], name="bench-failing-test")
    await call(client, "shutdown_devbox", devbox_id=box["id"])
    return str(snapshot["id"])


# --- (c) exec ----------------------------------------------------------------------------------


async def bench_exec(engine: LocalBackend, client: Client, canned: Client, runs: int) -> list[Row]:
    engine_box = await engine.create_devbox(DevboxCreateParameters(name="bench-exec"))
    mcp_box = await call(client, "create_devbox", name="bench-exec")
    measured = Figure("execute_on_devbox(`true`) over MCP stdio")
    canned_call, engine_exec = Figure("a canned execute_on_devbox over MCP stdio"), Figure("LocalBackend.execute")
    floor = Figure("canned MCP call + engine exec, timed in the same iteration")
    try:
        for i in range(WARMUP + runs):

            async def over_mcp() -> None:
                result = await call(client, "execute_on_devbox", devbox_id=mcp_box["id"], command="true")
                assert result["exit_status"] == 0, result

            async def on_canned() -> None:
                await call(canned, "execute_on_devbox", devbox_id=mcp_box["id"], command="true")

            async def on_engine() -> None:
                result = await engine.execute(engine_box.id, "true")
                assert result.exit_status == 0, result.stderr

            ms, canned_ms, engine_ms = await timed(over_mcp), await timed(on_canned), await timed(on_engine)
            if i >= WARMUP:
                measured.samples.append(ms)
                canned_call.samples.append(canned_ms)
                engine_exec.samples.append(engine_ms)
                floor.samples.append(canned_ms + engine_ms)
    finally:
        await engine.shutdown_devbox(engine_box.id)
        await call(client, "shutdown_devbox", devbox_id=mcp_box["id"])
    return [
        Row("(c) execute_on_devbox `true`", measured, floor, goal_ms=round(floor.p50 + 1.0, 2)),
        Row("(c0) its floors: a canned MCP tool", canned_call, engine_exec, goal_ms=None),
    ]


# --- (d) the seed workflow ---------------------------------------------------------------------


async def workflow_mcp(client: Client, snapshot_id: str) -> None:
    scenario = await call(client, "create_scenario", **scenario_arguments(snapshot_id))
    run = await call(client, "start_run", scenario_id=scenario["id"], run_name="bench")
    while run["state"] not in ("running", "failed"):
        await anyio.sleep(POLL_INTERVAL)
        run = await call(client, "get_run", run_id=run["id"])
    fixed = await call(client, "execute_on_devbox", devbox_id=run["devbox_id"], command=FIX)
    assert fixed["exit_status"] == 0, fixed
    run = await call(client, "score_run", run_id=run["id"], wait_seconds=0)
    while run["state"] not in ("scored", "failed", "canceled", "timeout"):
        await anyio.sleep(POLL_INTERVAL)
        run = await call(client, "get_run", run_id=run["id"])
    assert run["state"] == "scored" and run["scoring_contract_result"]["score"] == 1.0, run
    await call(client, "complete_run", run_id=run["id"])


async def workflow_engine(engine: LocalBackend, snapshot_id: str) -> None:
    scenario = await engine.create_scenario(ScenarioCreateParameters.model_validate(scenario_arguments(snapshot_id)))
    run = await engine.start_run(StartScenarioRunParameters(scenario_id=scenario.id, run_name="bench"))
    fixed = await engine.execute(run.devbox_id, FIX)
    assert fixed.exit_status == 0, fixed.stderr
    run = await engine.score_run(run.id)
    while run.state == ScenarioRunState.SCORING:
        await anyio.sleep(POLL_INTERVAL)
        run = await engine.get_run(run.id)
    result = run.scoring_contract_result
    assert run.state == ScenarioRunState.SCORED and result is not None and result.score == 1.0, run
    await engine.complete_run(run.id)


async def bench_workflow(engine: LocalBackend, client: Client, engine_snap: str, mcp_snap: str, runs: int) -> Row:
    measured, floor = Figure("seed workflow over MCP stdio"), Figure("the same workflow on LocalBackend")
    steps: list[tuple[Figure, Callable[[], Awaitable[None]]]] = [
        (measured, lambda: workflow_mcp(client, mcp_snap)),
        (floor, lambda: workflow_engine(engine, engine_snap)),
    ]
    for i in range(WORKFLOW_WARMUP + runs):
        for figure, step in steps:
            ms = await timed(step)
            if i >= WORKFLOW_WARMUP:
                figure.samples.append(ms)
    return Row("(d) seed workflow, scenario to complete_run", measured, floor, goal_ms=150)


# --- (e) back-to-back calls over streamable HTTP -------------------------------------------------


async def client_timed(fn: Callable[[], Awaitable[object]], cpu: Figure) -> float:
    """Milliseconds one call of `fn` took; the CPU this thread (the clients') spent meanwhile joins `cpu`."""
    start = time.thread_time()
    ms = await timed(fn)
    cpu.samples.append((time.thread_time() - start) * 1000)
    return ms


def stdio_server_pid(data_dir: Path) -> int:
    """The pid of this process's child serving `data_dir` over stdio."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and str(data_dir).encode() in argv:
            return int(stat.parent.name)
    raise RuntimeError(f"no child of this process serves {data_dir}")


async def bench_http_calls(stdio: Client, http: Client, pids: tuple[int, int], runs: int) -> tuple[Row, str]:
    """`get_devbox` back to back over streamable HTTP, against the same call over stdio; and where
    the time goes (each side's CPU per call), as a line to print under the table."""
    stdio_box = await call(stdio, "create_devbox", name="bench-get")
    http_box = await call(http, "create_devbox", name="bench-get")
    measured = Figure("get_devbox back to back over streamable HTTP")
    floor = Figure("get_devbox back to back over stdio")
    http_client, stdio_client = Figure("client CPU, HTTP"), Figure("client CPU, stdio")
    http_pid, stdio_pid = pids
    try:
        for i in range(WARMUP + runs):
            if i == WARMUP:
                http_client.samples.clear()
                stdio_client.samples.clear()
                servers_before = process_cpu_s(http_pid), process_cpu_s(stdio_pid)
            http_ms = await client_timed(lambda: call(http, "get_devbox", devbox_id=http_box["id"]), http_client)
            stdio_ms = await client_timed(lambda: call(stdio, "get_devbox", devbox_id=stdio_box["id"]), stdio_client)
            if i >= WARMUP:
                measured.samples.append(http_ms)
                floor.samples.append(stdio_ms)
        http_server_ms, stdio_server_ms = (
            (process_cpu_s(pid) - before) * 1000 / runs for pid, before in zip(pids, servers_before, strict=True)
        )
    finally:
        await call(stdio, "shutdown_devbox", devbox_id=stdio_box["id"])
        await call(http, "shutdown_devbox", devbox_id=http_box["id"])
    where = (
        f"  under (e), CPU per call, HTTP / stdio: client {http_client.p50:.2f} / {stdio_client.p50:.2f} ms (p50), "
        f"server {http_server_ms:.2f} / {stdio_server_ms:.2f} ms (mean)"
    )
    return Row("(e) get_devbox over streamable HTTP", measured, floor, goal_ms=round(1.5 * floor.p50, 2)), where


async def scorer_alone(engine: LocalBackend, snapshot_id: str, runs: int) -> Figure:
    """The scorer's own command in a running devbox: a floor under any scoring, hence under (d)."""
    figure = Figure("`pytest -q` alone, executed in a devbox")
    box = await engine.create_devbox(DevboxCreateParameters(snapshot_id=snapshot_id))
    try:
        for i in range(WORKFLOW_WARMUP + runs):
            ms = await timed(lambda: engine.execute(box.id, "pytest -q >/dev/null; true"))
            if i >= WORKFLOW_WARMUP:
                figure.samples.append(ms)
    finally:
        await engine.shutdown_devbox(box.id)
    return figure


async def main(runs: int, workflow_runs: int, tmp: Path, figures: set[str]) -> None:
    async with LocalBackend(tmp / "engine") as engine:
        print("building the default blueprint (once per data dir) and the snapshots ...", file=sys.stderr)
        await engine.blueprints.ensure_default()
        await share_default_blueprint(engine, tmp / "server")
        engine_snap = await engine_snapshot(engine)
        server = StdioServerParameters(
            command=server_command(), args=["serve", "--data-dir", str(tmp / "server"), "--log-level", "WARNING"]
        )
        canned = StdioServerParameters(command=sys.executable, args=[str(Path(__file__).with_name("_canned_mcp.py"))])
        await share_default_blueprint(engine, tmp / "http")
        async with (
            Client(server) as client,
            Client(canned) as canned_client,
            http_server(tmp / "http") as (url, http_pid),
            Client(url) as http_client,
        ):
            mcp_snap = await mcp_snapshot(client)
            print(f"timing {runs} exec runs and {workflow_runs} workflow runs ...", file=sys.stderr)
            rows, notes = [], []
            if "c" in figures:
                rows += await bench_exec(engine, client, canned_client, runs)
            if "d" in figures:
                rows.append(await bench_workflow(engine, client, engine_snap, mcp_snap, workflow_runs))
            if "e" in figures:
                pids = http_pid, stdio_server_pid(tmp / "server")
                row, where = await bench_http_calls(client, http_client, pids, runs)
                rows.append(row)
                notes.append(where)
        pytest_alone = await scorer_alone(engine, engine_snap, min(workflow_runs, 20)) if "d" in figures else None
    print_table(
        f"MCP benchmarks (p50; exec: {runs} runs after {WARMUP} warm-up; "
        f"workflow: {workflow_runs} runs after {WORKFLOW_WARMUP} warm-up)",
        rows,
    )
    for note in notes:
        print(note)
    if pytest_alone is not None:
        print(f"  under (d): {pytest_alone.name}: p50 {pytest_alone.p50:.2f} ms over {len(pytest_alone.samples)} runs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50, help="timed exec runs (default 50)")
    parser.add_argument("--workflow-runs", type=int, default=50, help="timed workflow runs (default 50; >= 20)")
    parser.add_argument("--figures", default="c,d,e", help="which figures, of c,d,e (default all)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    directory = Path(tempfile.mkdtemp(prefix="scenario-mcp-bench-"))
    try:
        anyio.run(main, args.runs, args.workflow_runs, directory, set(args.figures.split(",")))
    finally:
        for data_dir in ("engine", "server", "http"):
            anyio.run(shutdown_all, directory / data_dir)
        shutil.rmtree(directory, ignore_errors=True)
