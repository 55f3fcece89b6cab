"""Blueprints: build one, list (by name too, newest first), read, read its build logs, delete; and
Runloop's public catalogue, empty here."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..models import BlueprintCreateParameters, BlueprintListView
from .common import (
    RouteTable,
    backend,
    body,
    json_response,
    model_response,
    path_param,
    query_bool,
    query_limit,
    query_str,
)


async def create_blueprint(request: Request) -> Response:
    params = await body(request, BlueprintCreateParameters)
    return model_response(await backend(request).create_blueprint(params))


async def list_blueprints(request: Request) -> Response:
    page = await backend(request).list_blueprints(
        limit=query_limit(request), starting_after=query_str(request, "starting_after"), name=query_str(request, "name")
    )
    if not query_bool(request, "include_total_count", True):
        page = page.model_copy(update={"total_count": None})
    return model_response(page)


async def list_public_blueprints(request: Request) -> Response:
    """Runloop's public blueprints are its own catalogue of bases, which this server does not
    have: the page is empty (Harbor looks here, then builds its own). The default environment is
    not listed: it is a blueprint of this server's, in GET /v1/blueprints, so a client that merges
    both lists would see it twice."""
    query_limit(request)
    query_bool(request, "include_total_count", True)
    return model_response(BlueprintListView(blueprints=[], has_more=False, total_count=0))


async def get_blueprint(request: Request) -> Response:
    return model_response(await backend(request).get_blueprint(path_param(request, "id")))


async def blueprint_logs(request: Request) -> Response:
    return model_response(await backend(request).blueprint_logs(path_param(request, "id")))


async def delete_blueprint(request: Request) -> Response:
    await backend(request).delete_blueprint(path_param(request, "id"))
    return json_response({})


ROUTES: RouteTable = [
    ("POST", "/v1/blueprints", create_blueprint),
    ("GET", "/v1/blueprints", list_blueprints),
    ("GET", "/v1/blueprints/list_public", list_public_blueprints),  # before `{id}`, which it would match
    ("GET", "/v1/blueprints/{id}", get_blueprint),
    ("GET", "/v1/blueprints/{id}/logs", blueprint_logs),
    ("POST", "/v1/blueprints/{id}/delete", delete_blueprint),
]
