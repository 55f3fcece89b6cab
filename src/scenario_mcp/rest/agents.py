"""Agents: create (the install runs in the background), list (by name, partly; by version, or
`latest`; by search over id and name), get, delete; and (this engine's) the install's logs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..models import AgentCreateParameters
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


async def create_agent(request: Request) -> Response:
    params = await body(request, AgentCreateParameters)
    return model_response(await backend(request).create_agent(params))


async def list_agents(request: Request) -> Response:
    page = await backend(request).list_agents(
        limit=query_limit(request),
        starting_after=query_str(request, "starting_after"),
        name=query_str(request, "name"),
        version=query_str(request, "version"),
        search=query_str(request, "search"),
    )
    if not query_bool(request, "include_total_count", True):
        page = page.model_copy(update={"total_count": None})
    return model_response(page)


async def get_agent(request: Request) -> Response:
    return model_response(await backend(request).get_agent(path_param(request, "id")))


async def agent_logs(request: Request) -> Response:
    return model_response(await backend(request).agent_logs(path_param(request, "id")))


async def delete_agent(request: Request) -> Response:
    await backend(request).delete_agent(path_param(request, "id"))
    return json_response({})


ROUTES: RouteTable = [
    ("POST", "/v1/agents", create_agent),
    ("GET", "/v1/agents", list_agents),
    ("GET", "/v1/agents/{id}", get_agent),
    ("GET", "/v1/agents/{id}/logs", agent_logs),
    ("POST", "/v1/agents/{id}/delete", delete_agent),
]
