"""Network policies: create, list (by name, partly; or by id), get, update, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..models import NetworkPolicyCreateParameters, NetworkPolicyUpdateParameters
from .common import RouteTable, backend, body, model_response, path_param, query_bool, query_limit, query_str


async def create_network_policy(request: Request) -> Response:
    params = await body(request, NetworkPolicyCreateParameters)
    return model_response(await backend(request).create_network_policy(params))


async def list_network_policies(request: Request) -> Response:
    page = await backend(request).list_network_policies(
        limit=query_limit(request),
        starting_after=query_str(request, "starting_after"),
        name=query_str(request, "name"),
        policy_id=query_str(request, "id"),
    )
    if not query_bool(request, "include_total_count", True):
        page = page.model_copy(update={"total_count": None})
    return model_response(page)


async def get_network_policy(request: Request) -> Response:
    return model_response(await backend(request).get_network_policy(path_param(request, "id")))


async def update_network_policy(request: Request) -> Response:
    params = await body(request, NetworkPolicyUpdateParameters, required=False)
    return model_response(await backend(request).update_network_policy(path_param(request, "id"), params))


async def delete_network_policy(request: Request) -> Response:
    return model_response(await backend(request).delete_network_policy(path_param(request, "id")))


ROUTES: RouteTable = [
    ("POST", "/v1/network-policies", create_network_policy),
    ("GET", "/v1/network-policies", list_network_policies),
    ("GET", "/v1/network-policies/{id}", get_network_policy),
    ("POST", "/v1/network-policies/{id}", update_network_policy),
    ("POST", "/v1/network-policies/{id}/delete", delete_network_policy),
]
