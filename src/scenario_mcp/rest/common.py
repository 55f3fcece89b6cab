"""What every REST route shares: the app's state, route tables, errors in Runloop's shape, body and
query parsing, list pages."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..backend import Backend, BackendError
from ..conventions import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT
from ..input_errors import validation_message

M = TypeVar("M", bound=BaseModel)

MAX_JSON_BODY = 64 * 1024 * 1024

Endpoint = Callable[[Request], Awaitable[Response]]
# (method, path, handler): each resource module's routes, in the order Starlette tries them.
RouteTable = Sequence[tuple[str, str, Endpoint]]


@dataclass
class ApiState:
    """What handlers share, kept on `app.state.api`."""

    backend: Backend


def api_state(request: Request) -> ApiState:
    state = request.app.state.api
    assert isinstance(state, ApiState)
    return state


def backend(request: Request) -> Backend:
    return api_state(request).backend


def build_routes(table: RouteTable) -> list[Route]:
    return [Route(path, endpoint, methods=[method]) for method, path, endpoint in table]


_ERROR_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    421: "misdirected_request",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
}


class ApiError(Exception):
    """A request the REST layer itself refuses (bad JSON, a bad query parameter, no token, ...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_body(status: int, message: str) -> dict[str, Any]:
    """Runloop's error shape: the HTTP status as `code` (its SDK reads that back), and a message."""
    return {"code": status, "error": _ERROR_TYPES.get(status, "error"), "message": message}


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status)


def backend_error_response(exc: BackendError) -> JSONResponse:
    return error_response(exc.status, exc.message)


def model_response(model: BaseModel) -> Response:
    # pydantic's own serializer: no dict round trip, and aliases (`scenarioIds`) as configured.
    return Response(model.model_dump_json(), media_type="application/json")


def json_response(data: Any) -> Response:
    return JSONResponse(data)


def invalid_request(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    return "invalid request: " + validation_message(exc, model)


def parse_model(model: type[M], data: Any, *, hints: dict[str, str] | None = None) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message = invalid_request(exc, model)
        for field, hint in (hints or {}).items():
            if isinstance(data, dict) and field in data:
                message += f" ({hint})"
        raise ApiError(400, message) from exc


async def _read_capped(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_JSON_BODY:
        raise ApiError(413, f"request body is larger than {MAX_JSON_BODY} bytes; send big files with upload_file")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BODY:
            raise ApiError(413, f"request body is larger than {MAX_JSON_BODY} bytes; send big files with upload_file")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_object(request: Request, *, required: bool = True) -> dict[str, Any]:
    raw = await _read_capped(request)
    if not raw.strip():
        if required:
            raise ApiError(400, "request body is required: a JSON object")
        return {}
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from exc
    if data is None and not required:
        return {}
    if not isinstance(data, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(data).__name__}")
    return data


async def body(request: Request, model: type[M], *, required: bool = True, hints: dict[str, str] | None = None) -> M:
    """The request's JSON body as `model`; a 400 naming the field and the reason otherwise."""
    return parse_model(model, await json_object(request, required=required), hints=hints)


# --- query parameters --------------------------------------------------------------------------


def query_str(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value not in (None, "") else None


def query_int(request: Request, name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = query_str(request, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, f"query parameter {name} must be an integer, got {raw!r}") from exc
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ApiError(400, f"query parameter {name} must be {bound}, got {value}")
    return value


def query_bool(request: Request, name: str, default: bool) -> bool:
    raw = query_str(request, name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ApiError(400, f"query parameter {name} must be true or false, got {raw!r}")


def query_limit(request: Request) -> int:
    return query_int(request, "limit", DEFAULT_LIST_LIMIT, minimum=1, maximum=MAX_LIST_LIMIT)


def path_param(request: Request, name: str) -> str:
    return str(request.path_params[name])


# --- pages of a list that is not a backend listing (a benchmark's scenarios) ---------------------


class HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=HasId)


def page_of(items: Sequence[T], *, limit: int, starting_after: str | None) -> tuple[list[T], bool, int]:
    """Runloop's paging over a list in hand: (the page, has_more, total_count)."""
    start = 0
    if starting_after is not None:
        ids = [item.id for item in items]
        if starting_after not in ids:
            return [], False, len(items)
        start = ids.index(starting_after) + 1
    window = list(items[start : start + limit])
    return window, start + limit < len(items), len(items)


# Server-sent event streams (execution output, devbox log tails): a comment line this often keeps
# proxies from closing a quiet stream.
STREAM_KEEPALIVE_SECONDS = 15.0


def sse_event(data: dict[str, object], event: str | None = None) -> bytes:
    """One server-sent event carrying `data` as JSON."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()
