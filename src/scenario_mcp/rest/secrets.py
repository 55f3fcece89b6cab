"""Secrets: create, list, get, update, delete, by name. No answer carries a value."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..models import SecretCreateParameters, SecretUpdateParameters
from .common import RouteTable, backend, body, model_response, path_param, query_bool, query_limit, query_str


async def create_secret(request: Request) -> Response:
    params = await body(request, SecretCreateParameters)
    return model_response(await backend(request).create_secret(params))


async def list_secrets(request: Request) -> Response:
    page = await backend(request).list_secrets(
        limit=query_limit(request), starting_after=query_str(request, "starting_after")
    )
    if not query_bool(request, "include_total_count", True):
        page = page.model_copy(update={"total_count": None})
    return model_response(page)


async def get_secret(request: Request) -> Response:
    return model_response(await backend(request).get_secret(path_param(request, "name")))


async def update_secret(request: Request) -> Response:
    params = await body(request, SecretUpdateParameters)
    return model_response(await backend(request).update_secret(path_param(request, "name"), params))


async def delete_secret(request: Request) -> Response:
    return model_response(await backend(request).delete_secret(path_param(request, "name")))


ROUTES: RouteTable = [
    ("POST", "/v1/secrets", create_secret),
    ("GET", "/v1/secrets", list_secrets),
    ("GET", "/v1/secrets/{name}", get_secret),
    ("POST", "/v1/secrets/{name}", update_secret),
    ("POST", "/v1/secrets/{name}/delete", delete_secret),
]
