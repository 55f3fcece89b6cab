"""Blueprints: build one, list (by name too), read, read its build logs, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..models import BlueprintCreateParameters
from .common import (
    RouteTable,
    backend,
    body,
    json_response,
    model_response,
    path_param,
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
    return model_response(page)


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
    ("GET", "/v1/blueprints/{id}", get_blueprint),
    ("GET", "/v1/blueprints/{id}/logs", blueprint_logs),
    ("POST", "/v1/blueprints/{id}/delete", delete_blueprint),
]
