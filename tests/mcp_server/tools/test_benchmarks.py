"""The benchmark tools (tools/benchmarks.py): through a real in-memory mcp.Client over a real
LocalBackend, and the functions called directly."""

from __future__ import annotations

import json

import pytest
from mcp import Client

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.mcp_server.tools.benchmarks import create_benchmark, run_benchmark
from scenario_mcp.mcp_server.tools.inputs import CreateBenchmarkInput, RunBenchmarkInput
from scenario_mcp.mcp_server.tools.shapes import KeyValue

from ...harness.test_runner import trivial
from ..helpers import Progress, error_text, ok, seed_scenario, seed_snapshot, text_of

pytestmark = pytest.mark.anyio


async def test_benchmarks(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    async with Client(build_server(backend, toolsets=["all"])) as client:
        bench = await ok(client, "create_benchmark", name="calc-bench", scenario_ids=[scenario.id])
        run = await ok(client, "run_benchmark", benchmark_id=bench["id"], run_name="b1")
        assert run["benchmark_id"] == bench["id"]
        runs = (await ok(client, "list_runs", benchmark_run_id=run["id"]))["runs"]
        assert [r["scenario_id"] for r in runs] == [scenario.id]
        for r in runs:
            await ok(client, "cancel_run", run_id=r["id"])


async def test_benchmark_functions_directly(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    bench = await create_benchmark(backend, CreateBenchmarkInput(name="direct", scenario_ids=[scenario.id]))
    labels = [KeyValue(key="k", value="v")]
    started = await run_benchmark(
        backend, RunBenchmarkInput(benchmark_id=bench.id, run_name="b2", metadata=labels), Progress()
    )
    assert (started.benchmark_id, started.name, started.metadata) == (bench.id, "b2", {"k": "v"})
    runs = (await backend.list_runs(benchmark_run_id=started.id)).runs
    assert [r.scenario_id for r in runs] == [scenario.id]
    for run in runs:
        await backend.cancel_run(run.id)


async def test_run_benchmark_drives_an_agent_through_every_run_and_reports_progress(backend: LocalBackend) -> None:
    scenarios = [await trivial(backend, f"mcp-{i}") for i in range(2)]
    async with Client(build_server(backend, toolsets=["all"])) as client:
        bench = await ok(client, "create_benchmark", name="agent-bench", scenario_ids=[s.id for s in scenarios])
        progress = Progress()
        result = await client.call_tool(
            "run_benchmark",
            {"benchmark_id": bench["id"], "agent": "oracle", "attempts": 2, "wait_seconds": 60},
            progress_callback=progress,
        )
        assert not result.is_error, result.content
        run = dict(result.structured_content or {})
        assert run["state"] == "completed" and run["score"] == 1.0
        reports = [(done, total) for done, total, message in progress.events if message and "#" in message]
        assert reports == [(n, 4) for n in range(1, 5)]
        contents = await client.read_resource(f"benchmark-run://{run['id']}")
        results = json.loads(text_of(contents))
        assert results["summary"]["pass_at"] == {"1": 1.0, "2": 1.0} and len(results["results"]) == 4
        assert "+solved" in results["results"][0]["diff"]
        refused = await error_text(client, "run_benchmark", benchmark_id=bench["id"], agent="host:claude -p")
        assert "agent host is not available here" in refused and "command:CMD" in refused


async def test_run_benchmark_mounts_an_installed_agent_into_every_run(backend: LocalBackend) -> None:
    from ...harness.test_agent_mounts import solver_agent

    agent = await solver_agent(backend)
    scenarios = [await trivial(backend, f"mounted-{i}") for i in range(2)]
    async with Client(build_server(backend, toolsets=["all"])) as client:
        bench = await ok(client, "create_benchmark", name="mounted", scenario_ids=[s.id for s in scenarios])
        mount = {"type": "agent_mount", "agent_name": "solver", "agent_path": "/opt/solver"}
        run = await ok(
            client, "run_benchmark", benchmark_id=bench["id"], agent="command:solve", mounts=[mount], wait_seconds=60
        )
        assert run["state"] == "completed" and run["score"] == 1.0
        assert run["metadata"]["mounts"] == f"{agent.id}:/opt/solver"

        unknown = {**mount, "agent_name": "nobody"}
        refused = await error_text(client, "run_benchmark", benchmark_id=bench["id"], agent="nop", mounts=[unknown])
        assert "no agent 'nobody' is installed (agents here: solver@1)" in refused
        no_agent = await error_text(client, "run_benchmark", benchmark_id=bench["id"], mounts=[mount])
        assert "mounts go into the runs an agent drives: give agent" in no_agent
    assert [r.id for r in (await backend.list_benchmark_runs()).runs] == [run["id"]]
