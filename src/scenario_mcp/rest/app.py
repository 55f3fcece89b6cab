"""build_rest_app(backend): Runloop's REST API (paths, JSON, errors) over any Backend.

Code written for Runloop (its SDK with `base_url` set to this server, or plain HTTP) runs against
the local engine unchanged. Errors carry Runloop's status codes with a JSON body
`{"code": <status>, "error": <kind>, "message": <what to fix>}`. The HTTP guard the MCP transports
use sits in front: Host and browser Origin checks, and a bearer token when one is set.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from ..backend import Backend, BackendError
from ..conventions import OBJECT_STORAGE_PATH
from ..http_guard import HttpGuard, Refusal
from . import (
    agents,
    benchmarks,
    blueprints,
    devboxes,
    executions,
    files,
    metadata,
    network_policies,
    objects,
    runs,
    scenarios,
    scorers,
    secrets,
    snapshots,
    tunnels,
)
from .common import (
    ApiError,
    ApiState,
    RouteTable,
    backend_error_response,
    build_routes,
    error_body,
    error_response,
    invalid_request,
)

log = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


# Starlette tries routes in order: fixed paths (`…/metadata/keys`, `/v1/scenarios/runs`,
# `/v1/devboxes/disk_snapshots`) come before the `{id}` routes they would otherwise match.
ROUTES: RouteTable = [
    ("GET", HEALTH_PATH, health),
    *metadata.ROUTES,
    *runs.ROUTES,
    *scorers.ROUTES,
    *scenarios.ROUTES,
    *benchmarks.ROUTES,
    *snapshots.ROUTES,
    *devboxes.ROUTES,
    *executions.ROUTES,
    *files.ROUTES,
    *blueprints.ROUTES,
    *objects.ROUTES,
    *network_policies.ROUTES,
    *agents.ROUTES,
    *secrets.ROUTES,
    *tunnels.ROUTES,
]


async def _backend_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BackendError)
    return backend_error_response(exc)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    return error_response(400, invalid_request(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not supported on {request.url.path}"
    else:
        message = str(exc.detail)
    return JSONResponse(error_body(exc.status_code, message), status_code=exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error serving %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, f"internal error: {type(exc).__name__}: {exc}")


def _refusal(refusal: Refusal) -> Response:
    """The guard's refusals in Runloop's error shape, which its SDK reads."""
    return JSONResponse(
        error_body(refusal.status, refusal.message), status_code=refusal.status, headers=dict(refusal.headers)
    )


def build_rest_app(backend: Backend, token: str | None = None, *, host: str = "127.0.0.1") -> ASGIApp:
    """The REST app over `backend`, served on `host`; with `token`, every call but the health
    check and the objects' presigned URLs (which carry their own credential) needs it as a bearer
    token."""
    app = Starlette(
        routes=build_routes(ROUTES),
        exception_handlers={
            BackendError: _backend_error,
            ApiError: _api_error,
            ValidationError: _validation_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
    app.state.api = ApiState(backend)
    guarded = HttpGuard(
        app,
        bind_host=host,
        token=token,
        open_paths={HEALTH_PATH},
        open_prefixes={OBJECT_STORAGE_PATH + "/"},
        render=_refusal,
    )
    # A tunnel's host is no API call: it carries the tunnel's own credential (rest/tunnels.py).
    return tunnels.TunnelHost(guarded, backend)
