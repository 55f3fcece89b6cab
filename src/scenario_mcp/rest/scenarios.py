"""Scenarios, scenario runs, custom scorers and benchmarks: Runloop's paths over a Backend."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..backend import Backend
from ..models import (
    BenchmarkCreateParameters,
    BenchmarkListView,
    BenchmarkRunListView,
    BenchmarkRunView,
    BenchmarkView,
    CreateCustomScorerParameters,
    Metadata,
    RunLogEntry,
    RunProfile,
    ScenarioCreateParameters,
    ScenarioListView,
    ScenarioRunListView,
    ScenarioRunView,
    ScenarioUpdateParameters,
    ScenarioView,
    StartBenchmarkRunParameters,
    StartScenarioRunParameters,
)
from .common import (
    ApiError,
    body,
    json_object,
    model_response,
    page_of,
    parse_model,
    path_param,
    query_bool,
    query_limit,
    query_str,
    scan,
)

_CAMEL_HINT = {"run_profile": "Runloop spells it runProfile, in camelCase"}
_ENV_HINT = {
    "environment": "a scenario's environment goes in as environment_parameters; views return it as environment"
}


class StartRunBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    scenario_id: str
    run_name: str | None = None
    benchmark_run_id: str | None = None
    metadata: Metadata | None = None
    run_profile: RunProfile | None = Field(default=None, alias="runProfile")


class StartBenchmarkRunBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    benchmark_id: str
    run_name: str | None = None
    metadata: Metadata | None = None
    run_profile: RunProfile | None = Field(default=None, alias="runProfile")


class BenchmarkScenariosBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenarios_to_add: list[str] | None = None
    scenarios_to_remove: list[str] | None = None


class BenchmarkUpdateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    scenario_ids: list[str] | None = None
    metadata: Metadata | None = None
    description: str | None = None
    required_environment_variables: list[str] | None = None
    required_secret_names: list[str] | None = None
    attribution: str | None = None


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


def logs_zip(run: ScenarioRunView, entries: list[RunLogEntry]) -> bytes:
    """A run's logs as Runloop hands them out: a zip. `run.log` is for people, `entries.jsonl` for
    programs (the remote backend reads it back), one file per source for grepping."""
    buffer = io.BytesIO()
    by_source: dict[str, list[str]] = {}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        lines = []
        for entry in entries:
            stamp = datetime.fromtimestamp(entry.timestamp_ms / 1000, UTC).isoformat(timespec="milliseconds")
            lines.append(f"{stamp} [{entry.source}] {entry.message}")
            by_source.setdefault(entry.source.split(":", 1)[0], []).append(f"{stamp} {entry.message}")
        archive.writestr("run.json", run.model_dump_json(indent=2))
        archive.writestr("run.log", "\n".join(lines) + ("\n" if lines else ""))
        archive.writestr("entries.jsonl", "".join(entry.model_dump_json() + "\n" for entry in entries))
        for source, source_lines in by_source.items():
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", source) or "log"
            archive.writestr(f"sources/{safe}.log", "\n".join(source_lines) + "\n")
    return buffer.getvalue()


def routes(backend: Backend) -> list[Route]:
    # --- scenarios -------------------------------------------------------------------------------

    async def create_scenario(request: Request) -> Response:
        params = await body(request, ScenarioCreateParameters, hints=_ENV_HINT)
        return model_response(await backend.create_scenario(params))

    async def list_scenarios(request: Request) -> Response:
        limit, after = query_limit(request), query_str(request, "starting_after")
        name, benchmark_id = query_str(request, "name"), query_str(request, "benchmark_id")
        validation_type = query_str(request, "validation_type")
        with_total = query_bool(request, "include_total_count", True)
        if benchmark_id is None and validation_type is None:
            page = await backend.list_scenarios(limit=limit, starting_after=after, name=name)
            return model_response(page if with_total else page.model_copy(update={"total_count": None}))

        async def fetch(n: int, cursor: str | None) -> tuple[list[ScenarioView], bool]:
            p = await backend.list_scenarios(limit=n, starting_after=cursor, name=name)
            return p.scenarios, p.has_more

        scenarios = await scan(fetch)
        if benchmark_id is not None:
            members = set((await backend.get_benchmark(benchmark_id)).scenario_ids)
            scenarios = [s for s in scenarios if s.id in members]
        if validation_type is not None:
            scenarios = [s for s in scenarios if s.validation_type is not None and s.validation_type == validation_type]
        window, has_more, total = page_of(scenarios, limit=limit, starting_after=after)
        return model_response(
            ScenarioListView(scenarios=window, has_more=has_more, total_count=total if with_total else None)
        )

    async def list_public_scenarios(request: Request) -> Response:
        # Nothing here is published to other accounts: the public catalogue is empty.
        query_limit(request)
        return model_response(ScenarioListView(scenarios=[], has_more=False, total_count=0))

    async def get_scenario(request: Request) -> Response:
        return model_response(await backend.get_scenario(path_param(request, "id")))

    async def update_scenario(request: Request) -> Response:
        params = await body(request, ScenarioUpdateParameters, hints=_ENV_HINT)
        return model_response(await backend.update_scenario(path_param(request, "id"), params))

    async def archive_scenario(request: Request) -> Response:
        return model_response(await backend.archive_scenario(path_param(request, "id")))

    async def unarchive_scenario(request: Request) -> Response:
        return model_response(await backend.unarchive_scenario(path_param(request, "id")))

    async def start_run(request: Request) -> Response:
        start = await body(request, StartRunBody, hints=_CAMEL_HINT)
        params = StartScenarioRunParameters(
            scenario_id=start.scenario_id,
            run_name=start.run_name,
            benchmark_run_id=start.benchmark_run_id,
            metadata=start.metadata,
            run_profile=start.run_profile,
        )
        return model_response(await backend.start_run(params))

    # --- scenario runs ---------------------------------------------------------------------------

    async def _list_runs(
        request: Request, *, scenario_id: str | None = None, benchmark_run_id: str | None = None
    ) -> Response:
        limit, after = query_limit(request), query_str(request, "starting_after")
        scenario_id = scenario_id or query_str(request, "scenario_id")
        benchmark_run_id = benchmark_run_id or query_str(request, "benchmark_run_id")
        state, name = query_str(request, "state"), query_str(request, "name")
        with_total = query_bool(request, "include_total_count", True)
        if name is None:
            page = await backend.list_runs(
                limit=limit,
                starting_after=after,
                scenario_id=scenario_id,
                state=state,
                benchmark_run_id=benchmark_run_id,
            )
            return model_response(page if with_total else page.model_copy(update={"total_count": None}))

        async def fetch(n: int, cursor: str | None) -> tuple[list[ScenarioRunView], bool]:
            p = await backend.list_runs(
                limit=n, starting_after=cursor, scenario_id=scenario_id, state=state, benchmark_run_id=benchmark_run_id
            )
            return p.runs, p.has_more

        runs = [r for r in await scan(fetch) if r.name == name]
        window, has_more, total = page_of(runs, limit=limit, starting_after=after)
        return model_response(
            ScenarioRunListView(runs=window, has_more=has_more, total_count=total if with_total else None)
        )

    async def list_runs(request: Request) -> Response:
        return await _list_runs(request)

    async def list_scenario_runs(request: Request) -> Response:
        scenario_id = path_param(request, "id")
        await backend.get_scenario(scenario_id)  # 404 for an unknown scenario, not an empty list
        return await _list_runs(request, scenario_id=scenario_id)

    async def get_run(request: Request) -> Response:
        return model_response(await backend.get_run(path_param(request, "id")))

    async def score_run(request: Request) -> Response:
        return model_response(await backend.score_run(path_param(request, "id")))

    async def complete_run(request: Request) -> Response:
        return model_response(await backend.complete_run(path_param(request, "id")))

    async def cancel_run(request: Request) -> Response:
        return model_response(await backend.cancel_run(path_param(request, "id")))

    async def download_logs(request: Request) -> Response:
        run_id = path_param(request, "id")
        run = await backend.get_run(run_id)
        data = logs_zip(run, await backend.run_logs(run_id))
        return Response(
            data,
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{run_id}_logs.zip"'},
        )

    # --- custom scorers --------------------------------------------------------------------------

    async def create_scorer(request: Request) -> Response:
        return model_response(await backend.create_custom_scorer(await body(request, CreateCustomScorerParameters)))

    async def list_scorers(request: Request) -> Response:
        page = await backend.list_custom_scorers(
            limit=query_limit(request), starting_after=query_str(request, "starting_after")
        )
        return model_response(page)

    async def get_scorer(request: Request) -> Response:
        return model_response(await backend.get_custom_scorer(path_param(request, "id")))

    async def update_scorer(request: Request) -> Response:
        params = await body(request, CreateCustomScorerParameters)
        return model_response(await backend.update_custom_scorer(path_param(request, "id"), params))

    # --- benchmarks ------------------------------------------------------------------------------

    async def create_benchmark(request: Request) -> Response:
        data = await json_object(request)
        data.pop("attribution", None)  # Runloop's free-text credit line; nothing here shows it
        return model_response(await backend.create_benchmark(parse_model(BenchmarkCreateParameters, data)))

    async def list_benchmarks(request: Request) -> Response:
        limit, after = query_limit(request), query_str(request, "starting_after")
        name = query_str(request, "name")
        if name is None:
            return model_response(await backend.list_benchmarks(limit=limit, starting_after=after))

        async def fetch(n: int, cursor: str | None) -> tuple[list[BenchmarkView], bool]:
            p = await backend.list_benchmarks(limit=n, starting_after=cursor)
            return p.benchmarks, p.has_more

        found = [b for b in await scan(fetch) if b.name == name]
        window, has_more, total = page_of(found, limit=limit, starting_after=after)
        return model_response(BenchmarkListView(benchmarks=window, has_more=has_more, total_count=total))

    async def list_public_benchmarks(request: Request) -> Response:
        query_limit(request)
        return model_response(BenchmarkListView(benchmarks=[], has_more=False, total_count=0))

    async def get_benchmark(request: Request) -> Response:
        return model_response(await backend.get_benchmark(path_param(request, "id")))

    async def archive_benchmark(request: Request) -> Response:
        return model_response(await backend.archive_benchmark(path_param(request, "id")))

    async def unarchive_benchmark(request: Request) -> Response:
        return model_response(await backend.unarchive_benchmark(path_param(request, "id")))

    async def update_benchmark(request: Request) -> Response:
        benchmark_id = path_param(request, "id")
        update = await body(request, BenchmarkUpdateBody)
        current = await backend.get_benchmark(benchmark_id)
        unsupported = [
            field
            for field in ("name", "metadata", "description", "required_environment_variables", "required_secret_names")
            if getattr(update, field) is not None and getattr(update, field) != getattr(current, field, None)
        ]
        if unsupported:
            raise ApiError(
                400,
                f"updating {', '.join(unsupported)} of a benchmark is not supported by this scenario-mcp engine; "
                "only its scenario_ids can change (or use POST /v1/benchmarks/{id}/scenarios)",
            )
        if update.scenario_ids is None:
            return model_response(current)
        wanted = list(dict.fromkeys(update.scenario_ids))
        view = await backend.update_benchmark_scenarios(
            benchmark_id,
            add=[s for s in wanted if s not in current.scenario_ids],
            remove=[s for s in current.scenario_ids if s not in wanted],
        )
        return model_response(view)

    async def benchmark_definitions(request: Request) -> Response:
        benchmark = await backend.get_benchmark(path_param(request, "id"))
        scenarios = [await backend.get_scenario(s) for s in benchmark.scenario_ids]
        window, has_more, total = page_of(
            scenarios, limit=query_limit(request), starting_after=query_str(request, "starting_after")
        )
        return model_response(ScenarioListView(scenarios=window, has_more=has_more, total_count=total))

    async def update_benchmark_scenarios(request: Request) -> Response:
        change = await body(request, BenchmarkScenariosBody)
        view = await backend.update_benchmark_scenarios(
            path_param(request, "id"), add=change.scenarios_to_add, remove=change.scenarios_to_remove
        )
        return model_response(view)

    async def start_benchmark_run(request: Request) -> Response:
        start = await body(request, StartBenchmarkRunBody, hints=_CAMEL_HINT)
        _check_run_profile(start.run_profile)
        params = StartBenchmarkRunParameters(
            benchmark_id=start.benchmark_id, run_name=start.run_name, metadata=start.metadata
        )
        return model_response(await backend.start_benchmark_run(params))

    async def list_benchmark_runs(request: Request, benchmark_id: str | None = None) -> Response:
        limit, after = query_limit(request), query_str(request, "starting_after")
        benchmark_id = benchmark_id or query_str(request, "benchmark_id")
        name, state = query_str(request, "name"), query_str(request, "state")
        if name is None and state is None:
            return model_response(
                await backend.list_benchmark_runs(limit=limit, starting_after=after, benchmark_id=benchmark_id)
            )

        async def fetch(n: int, cursor: str | None) -> tuple[list[BenchmarkRunView], bool]:
            p = await backend.list_benchmark_runs(limit=n, starting_after=cursor, benchmark_id=benchmark_id)
            return p.runs, p.has_more

        found = [
            r for r in await scan(fetch) if (name is None or r.name == name) and (state is None or r.state == state)
        ]
        window, has_more, total = page_of(found, limit=limit, starting_after=after)
        return model_response(BenchmarkRunListView(runs=window, has_more=has_more, total_count=total))

    async def list_runs_of_benchmark(request: Request) -> Response:
        benchmark_id = path_param(request, "id")
        await backend.get_benchmark(benchmark_id)
        return await list_benchmark_runs(request, benchmark_id)

    async def all_benchmark_runs(request: Request) -> Response:
        return await list_benchmark_runs(request)

    async def get_benchmark_run(request: Request) -> Response:
        return model_response(await backend.get_benchmark_run(path_param(request, "id")))

    async def complete_benchmark_run(request: Request) -> Response:
        return model_response(await backend.complete_benchmark_run(path_param(request, "id")))

    async def cancel_benchmark_run(request: Request) -> Response:
        return model_response(await backend.cancel_benchmark_run(path_param(request, "id")))

    async def benchmark_scenario_runs(request: Request) -> Response:
        benchmark_run_id = path_param(request, "id")
        await backend.get_benchmark_run(benchmark_run_id)
        return await _list_runs(request, benchmark_run_id=benchmark_run_id)

    benchmark_run_routes = [
        ("", all_benchmark_runs, ["GET"]),
        ("/{id}", get_benchmark_run, ["GET"]),
        ("/{id}/complete", complete_benchmark_run, ["POST"]),
        ("/{id}/cancel", cancel_benchmark_run, ["POST"]),
        ("/{id}/scenario_runs", benchmark_scenario_runs, ["GET"]),
    ]
    return [
        # Fixed paths before `{id}` ones: Starlette matches in order.
        Route("/v1/scenarios", create_scenario, methods=["POST"]),
        Route("/v1/scenarios", list_scenarios, methods=["GET"]),
        Route("/v1/scenarios/list_public", list_public_scenarios, methods=["GET"]),
        Route("/v1/scenarios/start_run", start_run, methods=["POST"]),
        Route("/v1/scenarios/runs", list_runs, methods=["GET"]),
        Route("/v1/scenarios/runs/{id}", get_run, methods=["GET"]),
        Route("/v1/scenarios/runs/{id}/score", score_run, methods=["POST"]),
        Route("/v1/scenarios/runs/{id}/complete", complete_run, methods=["POST"]),
        Route("/v1/scenarios/runs/{id}/cancel", cancel_run, methods=["POST"]),
        Route("/v1/scenarios/runs/{id}/download_logs", download_logs, methods=["POST"]),
        Route("/v1/scenarios/scorers", create_scorer, methods=["POST"]),
        Route("/v1/scenarios/scorers", list_scorers, methods=["GET"]),
        Route("/v1/scenarios/scorers/{id}", get_scorer, methods=["GET"]),
        Route("/v1/scenarios/scorers/{id}", update_scorer, methods=["POST"]),
        Route("/v1/scenarios/{id}", get_scenario, methods=["GET"]),
        Route("/v1/scenarios/{id}", update_scenario, methods=["POST"]),
        Route("/v1/scenarios/{id}/archive", archive_scenario, methods=["POST"]),
        Route("/v1/scenarios/{id}/unarchive", unarchive_scenario, methods=["POST"]),
        Route("/v1/scenarios/{id}/runs", list_scenario_runs, methods=["GET"]),
        Route("/v1/benchmarks", create_benchmark, methods=["POST"]),
        Route("/v1/benchmarks", list_benchmarks, methods=["GET"]),
        Route("/v1/benchmarks/list_public", list_public_benchmarks, methods=["GET"]),
        Route("/v1/benchmarks/start_run", start_benchmark_run, methods=["POST"]),
        # Older clients reach benchmark runs under /v1/benchmarks/runs; both paths answer.
        *(Route("/v1/benchmarks/runs" + path, fn, methods=m) for path, fn, m in benchmark_run_routes),
        Route("/v1/benchmarks/{id}", get_benchmark, methods=["GET"]),
        Route("/v1/benchmarks/{id}", update_benchmark, methods=["POST"]),
        Route("/v1/benchmarks/{id}/definitions", benchmark_definitions, methods=["GET"]),
        Route("/v1/benchmarks/{id}/archive", archive_benchmark, methods=["POST"]),
        Route("/v1/benchmarks/{id}/unarchive", unarchive_benchmark, methods=["POST"]),
        Route("/v1/benchmarks/{id}/scenarios", update_benchmark_scenarios, methods=["POST"]),
        Route("/v1/benchmarks/{id}/runs", list_runs_of_benchmark, methods=["GET"]),
        *(Route("/v1/benchmark_runs" + path, fn, methods=m) for path, fn, m in benchmark_run_routes),
    ]
