"""Benchmarks: group scenarios, and start a run of each."""

from __future__ import annotations

from ...backend import Backend
from ...models import (
    BenchmarkCreateParameters,
    BenchmarkRunView,
    BenchmarkView,
    StartBenchmarkRunParameters,
)
from .inputs import (
    RunBenchmarkInput,
)


async def create_benchmark(backend: Backend, params: BenchmarkCreateParameters) -> BenchmarkView:
    return await backend.create_benchmark(params)


async def run_benchmark(backend: Backend, params: RunBenchmarkInput) -> BenchmarkRunView:
    return await backend.start_benchmark_run(
        StartBenchmarkRunParameters(
            benchmark_id=params.benchmark_id, run_name=params.run_name, metadata=params.metadata
        )
    )
