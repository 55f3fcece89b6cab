"""The benchmark tools (tools/benchmarks.py): through a real in-memory mcp.Client over a real
LocalBackend, and the functions called directly."""

from __future__ import annotations

import pytest
from mcp import Client

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.mcp_server.tools.benchmarks import create_benchmark, run_benchmark
from scenario_mcp.mcp_server.tools.inputs import CreateBenchmarkInput, RunBenchmarkInput
from scenario_mcp.mcp_server.tools.shapes import KeyValue

from ..helpers import ok, seed_scenario, seed_snapshot

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
    started = await run_benchmark(backend, RunBenchmarkInput(benchmark_id=bench.id, run_name="b2", metadata=labels))
    assert (started.benchmark_id, started.name, started.metadata) == (bench.id, "b2", {"k": "v"})
    runs = (await backend.list_runs(benchmark_run_id=started.id)).runs
    assert [r.scenario_id for r in runs] == [scenario.id]
    for run in runs:
        await backend.cancel_run(run.id)
