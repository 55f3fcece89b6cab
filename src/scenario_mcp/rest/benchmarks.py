"""Benchmarks and benchmark runs: create, list, read, change a benchmark's scenarios, archive;
start, list, read, complete and cancel its runs, and list the scenario runs of one."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from ..models import (
    BenchmarkCreateParameters,
    BenchmarkListView,
    BenchmarkUpdateParameters,
    Metadata,
    RunProfile,
    ScenarioListView,
    StartBenchmarkRunParameters,
)
from .common import (
    ApiError,
    Endpoint,
    RouteTable,
    backend,
    body,
    json_object,
    model_response,
    page_of,
    parse_model,
    path_param,
    query_limit,
    query_str,
)
from .runs import CAMEL_HINT, runs_page


class StartBenchmarkRunBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    benchmark_id: str
    run_name: str | None = None
    metadata: Metadata | None = None
    run_profile: RunProfile | None = Field(default=None, alias="runProfile")
    start_scenario_runs: bool | None = None  # scenario-mcp extension (StartBenchmarkRunParameters)


class BenchmarkScenariosBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenarios_to_add: list[str] | None = None
    scenarios_to_remove: list[str] | None = None


def _check_run_profile(profile: RunProfile | None) -> None:
    """Benchmark runs take no run profile here: refuse one rather than silently drop it."""
    if profile is None:
        return
    given = [name for name, value in profile.model_dump(exclude_none=True).items() if value not in ({}, [], "")]
    if given:
        raise ApiError(
            400,
            "runProfile." + given[0] + " is not supported by this scenario-mcp engine; "
            "set environment variables and launch parameters on the scenario's environment instead",
        )


# --- benchmarks ----------------------------------------------------------------------------------


async def create_benchmark(request: Request) -> Response:
    data = await json_object(request)
    data.pop("attribution", None)  # Runloop's free-text credit line; nothing here shows it
    return model_response(await backend(request).create_benchmark(parse_model(BenchmarkCreateParameters, data)))


async def list_benchmarks(request: Request) -> Response:
    page = await backend(request).list_benchmarks(
        limit=query_limit(request), starting_after=query_str(request, "starting_after"), name=query_str(request, "name")
    )
    return model_response(page)


async def list_public_benchmarks(request: Request) -> Response:
    query_limit(request)
    return model_response(BenchmarkListView(benchmarks=[], has_more=False, total_count=0))


async def get_benchmark(request: Request) -> Response:
    return model_response(await backend(request).get_benchmark(path_param(request, "id")))


async def archive_benchmark(request: Request) -> Response:
    return model_response(await backend(request).archive_benchmark(path_param(request, "id")))


async def unarchive_benchmark(request: Request) -> Response:
    return model_response(await backend(request).unarchive_benchmark(path_param(request, "id")))


async def update_benchmark(request: Request) -> Response:
    data = await json_object(request)
    data.pop("attribution", None)  # Runloop's free-text credit line; nothing here shows it
    params = parse_model(BenchmarkUpdateParameters, data)
    return model_response(await backend(request).update_benchmark(path_param(request, "id"), params))


async def benchmark_definitions(request: Request) -> Response:
    benchmark = await backend(request).get_benchmark(path_param(request, "id"))
    scenarios = [await backend(request).get_scenario(s) for s in benchmark.scenario_ids]
    window, has_more, total = page_of(
        scenarios, limit=query_limit(request), starting_after=query_str(request, "starting_after")
    )
    return model_response(ScenarioListView(scenarios=window, has_more=has_more, total_count=total))


async def update_benchmark_scenarios(request: Request) -> Response:
    change = await body(request, BenchmarkScenariosBody)
    view = await backend(request).update_benchmark_scenarios(
        path_param(request, "id"), add=change.scenarios_to_add, remove=change.scenarios_to_remove
    )
    return model_response(view)


# --- benchmark runs ------------------------------------------------------------------------------


async def start_benchmark_run(request: Request) -> Response:
    start = await body(request, StartBenchmarkRunBody, hints=CAMEL_HINT)
    _check_run_profile(start.run_profile)
    params = StartBenchmarkRunParameters(
        benchmark_id=start.benchmark_id,
        run_name=start.run_name,
        metadata=start.metadata,
        start_scenario_runs=start.start_scenario_runs,
    )
    return model_response(await backend(request).start_benchmark_run(params))


async def benchmark_runs_page(request: Request, benchmark_id: str | None = None) -> Response:
    page = await backend(request).list_benchmark_runs(
        limit=query_limit(request),
        starting_after=query_str(request, "starting_after"),
        benchmark_id=benchmark_id or query_str(request, "benchmark_id"),
        name=query_str(request, "name"),
        state=query_str(request, "state"),
    )
    return model_response(page)


async def list_benchmark_runs(request: Request) -> Response:
    return await benchmark_runs_page(request)


async def list_runs_of_benchmark(request: Request) -> Response:
    benchmark_id = path_param(request, "id")
    await backend(request).get_benchmark(benchmark_id)
    return await benchmark_runs_page(request, benchmark_id)


async def get_benchmark_run(request: Request) -> Response:
    return model_response(await backend(request).get_benchmark_run(path_param(request, "id")))


async def complete_benchmark_run(request: Request) -> Response:
    return model_response(await backend(request).complete_benchmark_run(path_param(request, "id")))


async def cancel_benchmark_run(request: Request) -> Response:
    return model_response(await backend(request).cancel_benchmark_run(path_param(request, "id")))


async def benchmark_scenario_runs(request: Request) -> Response:
    benchmark_run_id = path_param(request, "id")
    await backend(request).get_benchmark_run(benchmark_run_id)
    return await runs_page(request, benchmark_run_id=benchmark_run_id)


_RUN_ROUTES: list[tuple[str, str, Endpoint]] = [
    ("GET", "", list_benchmark_runs),
    ("GET", "/{id}", get_benchmark_run),
    ("POST", "/{id}/complete", complete_benchmark_run),
    ("POST", "/{id}/cancel", cancel_benchmark_run),
    ("GET", "/{id}/scenario_runs", benchmark_scenario_runs),
]
ROUTES: RouteTable = [
    ("POST", "/v1/benchmarks", create_benchmark),
    ("GET", "/v1/benchmarks", list_benchmarks),
    ("GET", "/v1/benchmarks/list_public", list_public_benchmarks),
    ("POST", "/v1/benchmarks/start_run", start_benchmark_run),
    # Older clients reach benchmark runs under /v1/benchmarks/runs (before `{id}`); both paths answer.
    *((method, "/v1/benchmarks/runs" + path, fn) for method, path, fn in _RUN_ROUTES),
    ("GET", "/v1/benchmarks/{id}", get_benchmark),
    ("POST", "/v1/benchmarks/{id}", update_benchmark),
    ("GET", "/v1/benchmarks/{id}/definitions", benchmark_definitions),
    ("POST", "/v1/benchmarks/{id}/archive", archive_benchmark),
    ("POST", "/v1/benchmarks/{id}/unarchive", unarchive_benchmark),
    ("POST", "/v1/benchmarks/{id}/scenarios", update_benchmark_scenarios),
    ("GET", "/v1/benchmarks/{id}/runs", list_runs_of_benchmark),
    *((method, "/v1/benchmark_runs" + path, fn) for method, path, fn in _RUN_ROUTES),
]
