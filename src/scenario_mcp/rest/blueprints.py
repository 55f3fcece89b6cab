"""Blueprints: build one, list (by name too), read, read its build logs, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..models import BlueprintCreateParameters, BlueprintListView, BlueprintView
from .common import (
    RouteTable,
    backend,
    body,
    json_response,
    model_response,
    page_of,
    path_param,
    query_limit,
    query_str,
    scan,
)


async def create_blueprint(request: Request) -> Response:
    params = await body(request, BlueprintCreateParameters)
    return model_response(await backend(request).create_blueprint(params))


async def list_blueprints(request: Request) -> Response:
    limit, after, name = query_limit(request), query_str(request, "starting_after"), query_str(request, "name")
    if name is None:
        return model_response(await backend(request).list_blueprints(limit=limit, starting_after=after))

    async def fetch(n: int, cursor: str | None) -> tuple[list[BlueprintView], bool]:
        p = await backend(request).list_blueprints(limit=n, starting_after=cursor)
        return p.blueprints, p.has_more

    found = [b for b in await scan(fetch) if b.name == name]
    window, has_more, total = page_of(found, limit=limit, starting_after=after)
    return model_response(BlueprintListView(blueprints=window, has_more=has_more, total_count=total))


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
