"""Scenarios: create, list (by benchmark and validation type too), read, update, archive."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..models import ScenarioCreateParameters, ScenarioListView, ScenarioUpdateParameters
from .common import (
    RouteTable,
    backend,
    body,
    model_response,
    path_param,
    query_bool,
    query_limit,
    query_str,
)

ENV_HINT = {"environment": "a scenario's environment goes in as environment_parameters; views return it as environment"}


async def create_scenario(request: Request) -> Response:
    params = await body(request, ScenarioCreateParameters, hints=ENV_HINT)
    return model_response(await backend(request).create_scenario(params))


async def list_scenarios(request: Request) -> Response:
    page = await backend(request).list_scenarios(
        limit=query_limit(request),
        starting_after=query_str(request, "starting_after"),
        name=query_str(request, "name"),
        benchmark_id=query_str(request, "benchmark_id"),
        validation_type=query_str(request, "validation_type"),
    )
    with_total = query_bool(request, "include_total_count", True)
    return model_response(page if with_total else page.model_copy(update={"total_count": None}))


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
