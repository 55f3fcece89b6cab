"""Benchmarks: group scenarios, and start a run of each."""

from __future__ import annotations

from ...backend import Backend
from ...models import (
    BenchmarkCreateParameters,
    BenchmarkRunView,
    BenchmarkView,
    StartBenchmarkRunParameters,
)
from .inputs import CreateBenchmarkInput, RunBenchmarkInput
from .shapes import runloop_shape


async def create_benchmark(backend: Backend, params: CreateBenchmarkInput) -> BenchmarkView:
    given = runloop_shape(params.model_dump(exclude_none=True))
    return await backend.create_benchmark(BenchmarkCreateParameters.model_validate(given))


async def run_benchmark(backend: Backend, params: RunBenchmarkInput) -> BenchmarkRunView:
    given = runloop_shape(params.model_dump(exclude_none=True, exclude={"wait_seconds"}))
    return await backend.start_benchmark_run(StartBenchmarkRunParameters.model_validate(given))
