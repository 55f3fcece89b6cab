"""Benchmarks and their runs on the remote API."""

from __future__ import annotations

from ..models import (
    BenchmarkCreateParameters,
    BenchmarkListView,
    BenchmarkRunListView,
    BenchmarkRunView,
    BenchmarkUpdateParameters,
    BenchmarkView,
    StartBenchmarkRunParameters,
    given,
)
from .http import RemoteHttp, dump


class BenchmarksMixin:
    http: RemoteHttp

    async def create_benchmark(self, params: BenchmarkCreateParameters) -> BenchmarkView:
        return await self.http.post("/v1/benchmarks", BenchmarkView, dump(params))

    async def get_benchmark(self, benchmark_id: str) -> BenchmarkView:
        return await self.http.get(f"/v1/benchmarks/{benchmark_id}", BenchmarkView)

    async def list_benchmarks(
        self, *, limit: int = 20, starting_after: str | None = None, name: str | None = None
    ) -> BenchmarkListView:
        return await self.http.get(
            "/v1/benchmarks", BenchmarkListView, limit=limit, starting_after=starting_after, name=name
        )

    async def update_benchmark(self, benchmark_id: str, params: BenchmarkUpdateParameters) -> BenchmarkView:
        return await self.http.post(f"/v1/benchmarks/{benchmark_id}", BenchmarkView, dump(params), idempotent=True)

    async def archive_benchmark(self, benchmark_id: str) -> BenchmarkView:
        return await self.http.post(f"/v1/benchmarks/{benchmark_id}/archive", BenchmarkView, idempotent=True)

    async def unarchive_benchmark(self, benchmark_id: str) -> BenchmarkView:
        return await self.http.post(f"/v1/benchmarks/{benchmark_id}/unarchive", BenchmarkView, idempotent=True)

    async def update_benchmark_scenarios(
        self, benchmark_id: str, *, add: list[str] | None = None, remove: list[str] | None = None
    ) -> BenchmarkView:
        body = given(scenarios_to_add=add, scenarios_to_remove=remove)
        return await self.http.post(f"/v1/benchmarks/{benchmark_id}/scenarios", BenchmarkView, body)

    async def start_benchmark_run(self, params: StartBenchmarkRunParameters) -> BenchmarkRunView:
        return await self.http.post("/v1/benchmarks/start_run", BenchmarkRunView, dump(params))

    async def get_benchmark_run(self, benchmark_run_id: str) -> BenchmarkRunView:
        return await self.http.get(f"/v1/benchmark_runs/{benchmark_run_id}", BenchmarkRunView)

    async def list_benchmark_runs(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        benchmark_id: str | None = None,
        name: str | None = None,
        state: str | None = None,
    ) -> BenchmarkRunListView:
        return await self.http.get(
            "/v1/benchmark_runs",
            BenchmarkRunListView,
            limit=limit,
            starting_after=starting_after,
            benchmark_id=benchmark_id,
            name=name,
            state=state,
        )

    async def complete_benchmark_run(self, benchmark_run_id: str) -> BenchmarkRunView:
        return await self.http.post(f"/v1/benchmark_runs/{benchmark_run_id}/complete", BenchmarkRunView)

    async def cancel_benchmark_run(self, benchmark_run_id: str) -> BenchmarkRunView:
        return await self.http.post(f"/v1/benchmark_runs/{benchmark_run_id}/cancel", BenchmarkRunView)
