"""Custom scorers: create, list, read, update."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..models import CreateCustomScorerParameters
from .common import RouteTable, backend, body, model_response, path_param, query_limit, query_str


async def create_scorer(request: Request) -> Response:
    params = await body(request, CreateCustomScorerParameters)
    return model_response(await backend(request).create_custom_scorer(params))


async def list_scorers(request: Request) -> Response:
    page = await backend(request).list_custom_scorers(
        limit=query_limit(request), starting_after=query_str(request, "starting_after")
    )
    return model_response(page)


async def get_scorer(request: Request) -> Response:
    return model_response(await backend(request).get_custom_scorer(path_param(request, "id")))


async def update_scorer(request: Request) -> Response:
    params = await body(request, CreateCustomScorerParameters)
    return model_response(await backend(request).update_custom_scorer(path_param(request, "id"), params))


ROUTES: RouteTable = [
    ("POST", "/v1/scenarios/scorers", create_scorer),
    ("GET", "/v1/scenarios/scorers", list_scorers),
    ("GET", "/v1/scenarios/scorers/{id}", get_scorer),
    ("POST", "/v1/scenarios/scorers/{id}", update_scorer),
]
