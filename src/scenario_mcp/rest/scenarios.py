"""Scenarios: create, list (by benchmark and validation type too), read, update, archive."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..models import ScenarioCreateParameters, ScenarioListView, ScenarioUpdateParameters, ScenarioView
from .common import (
    RouteTable,
    backend,
    body,
    model_response,
    page_of,
    path_param,
    query_bool,
    query_limit,
    query_str,
    scan,
)

ENV_HINT = {"environment": "a scenario's environment goes in as environment_parameters; views return it as environment"}


async def create_scenario(request: Request) -> Response:
    params = await body(request, ScenarioCreateParameters, hints=ENV_HINT)
    return model_response(await backend(request).create_scenario(params))


async def _filtered_scenarios(
    request: Request, name: str | None, benchmark_id: str | None, validation_type: str | None
) -> list[ScenarioView]:
    async def fetch(n: int, cursor: str | None) -> tuple[list[ScenarioView], bool]:
        p = await backend(request).list_scenarios(limit=n, starting_after=cursor, name=name)
        return p.scenarios, p.has_more

    scenarios = await scan(fetch)
    if benchmark_id is not None:
        members = set((await backend(request).get_benchmark(benchmark_id)).scenario_ids)
        scenarios = [s for s in scenarios if s.id in members]
    if validation_type is not None:
        scenarios = [s for s in scenarios if s.validation_type is not None and s.validation_type == validation_type]
    return scenarios


async def list_scenarios(request: Request) -> Response:
    limit, after = query_limit(request), query_str(request, "starting_after")
    name, benchmark_id = query_str(request, "name"), query_str(request, "benchmark_id")
    validation_type = query_str(request, "validation_type")
    with_total = query_bool(request, "include_total_count", True)
    if benchmark_id is None and validation_type is None:
        page = await backend(request).list_scenarios(limit=limit, starting_after=after, name=name)
        return model_response(page if with_total else page.model_copy(update={"total_count": None}))
    scenarios = await _filtered_scenarios(request, name, benchmark_id, validation_type)
    window, has_more, total = page_of(scenarios, limit=limit, starting_after=after)
    return model_response(
        ScenarioListView(scenarios=window, has_more=has_more, total_count=total if with_total else None)
    )


async def list_public_scenarios(request: Request) -> Response:
    # Nothing here is published to other accounts: the public catalogue is empty.
    query_limit(request)
    return model_response(ScenarioListView(scenarios=[], has_more=False, total_count=0))


async def get_scenario(request: Request) -> Response:
    return model_response(await backend(request).get_scenario(path_param(request, "id")))


async def update_scenario(request: Request) -> Response:
    params = await body(request, ScenarioUpdateParameters, hints=ENV_HINT)
    return model_response(await backend(request).update_scenario(path_param(request, "id"), params))


async def archive_scenario(request: Request) -> Response:
    return model_response(await backend(request).archive_scenario(path_param(request, "id")))


async def unarchive_scenario(request: Request) -> Response:
    return model_response(await backend(request).unarchive_scenario(path_param(request, "id")))


# After the runs and scorers routes: `/v1/scenarios/runs` and `/v1/scenarios/scorers` are not ids.
ROUTES: RouteTable = [
    ("POST", "/v1/scenarios", create_scenario),
    ("GET", "/v1/scenarios", list_scenarios),
    ("GET", "/v1/scenarios/list_public", list_public_scenarios),
    ("GET", "/v1/scenarios/{id}", get_scenario),
    ("POST", "/v1/scenarios/{id}", update_scenario),
    ("POST", "/v1/scenarios/{id}/archive", archive_scenario),
    ("POST", "/v1/scenarios/{id}/unarchive", unarchive_scenario),
]
