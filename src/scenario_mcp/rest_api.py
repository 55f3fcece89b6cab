"""build_rest_app(backend): Runloop's REST API (paths, JSON, errors) over any Backend.

Code written for Runloop (its SDK with `base_url` set to this server, or plain HTTP) runs against
the local engine unchanged. Errors carry Runloop's status codes with a JSON body
`{"code": <status>, "error": <kind>, "message": <what to fix>}`; a bearer token is checked when one
is set.
"""

from __future__ import annotations

import hmac
import logging

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .backend import Backend, BackendError
from .rest import devboxes, metadata, scenarios
from .rest.common import ApiError, backend_error_response, error_body, error_response, validation_message

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


class BearerAuth:
    """Every request but the health check must carry `Authorization: Bearer <token>`."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/healthz":
            given = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
            if not hmac.compare_digest(given, self.expected):
                message = (
                    "missing bearer token: send `Authorization: Bearer <token>`"
                    if not given
                    else "invalid bearer token"
                )
                response = JSONResponse(
                    error_body(401, message), status_code=401, headers={"WWW-Authenticate": "Bearer"}
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _backend_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BackendError)
    return backend_error_response(exc)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    return error_response(400, validation_message(exc))


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


async def _health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def build_rest_app(backend: Backend, token: str | None = None) -> ASGIApp:
    """The REST app over `backend`; with `token`, every call needs it as a bearer token."""
    app = Starlette(
        routes=[
            Route("/healthz", _health, methods=["GET"]),
            *metadata.routes(backend),  # first: `…/metadata/keys` is not an object id
            *scenarios.routes(backend),
            *devboxes.routes(backend),
        ],
        exception_handlers={
            BackendError: _backend_error,
            ApiError: _api_error,
            ValidationError: _validation_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
    return BearerAuth(app, token) if token else app
