"""The benchmarks toolset. Benchmarks: group scenarios and run them."""

from __future__ import annotations

from ....models import BenchmarkRunView, BenchmarkView
from ..benchmarks import create_benchmark, run_benchmark
from ..inputs import CreateBenchmarkInput, RunBenchmarkInput
from ..spec import ToolSpec, hints

BENCHMARK_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "create_benchmark",
        "Create benchmark",
        "Group scenarios into a benchmark.",
        CreateBenchmarkInput,
        BenchmarkView,
        create_benchmark,
        hints(),
        "benchmarks",
        authoring=True,
    ),
    ToolSpec(
        "run_benchmark",
        "Run benchmark",
        "Start a run of each scenario of a benchmark; with an agent, run them all to a score "
        "(results: resource benchmark-run://{id}).",
        RunBenchmarkInput,
        BenchmarkRunView,
        run_benchmark,
        hints(),
        "benchmarks",
        authoring=True,
        progress=True,
        bounded=True,
        pending=lambda p: {"benchmark_id": p.benchmark_id},
        lists_change=True,
    ),
)
