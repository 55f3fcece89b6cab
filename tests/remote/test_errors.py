"""Error answers from a real server on 127.0.0.1 become BackendErrors of the right kind, carrying
the remote status and the message, whatever shape the body has."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from scenario_mcp.backend import (
    BackendError,
    EnvironmentUnavailableError,
    InvalidRequestError,
    InvalidStateError,
    NotFoundError,
    OperationTimeoutError,
)
from scenario_mcp.remote import RemoteError
from scenario_mcp.remote.http import RemoteHttp
from tests.rest.server import serve_app

pytestmark = pytest.mark.anyio

BODIES: dict[str, object] = {
    "runloop": {"code": 409, "error": "conflict", "message": "devbox is suspended"},
    "detail": {"detail": "devbox is suspended"},
    "nested": {"error": {"type": "conflict", "message": "devbox is suspended"}},
    "bare-error": {"error": "devbox is suspended"},
}


async def answer(request: Request) -> Response:
    status = int(request.query_params["status"])
    shape = request.query_params.get("shape", "runloop")
    if shape == "text":
        return PlainTextResponse("  devbox is suspended\n", status_code=status)
    if shape == "empty":
        return Response(b"", status_code=status)
    if shape == "list":
        return JSONResponse(["devbox", "is", "suspended"], status_code=status)
    return JSONResponse(BODIES[shape], status_code=status)


@pytest.fixture
async def http() -> AsyncIterator[RemoteHttp]:
    async with serve_app(Starlette(routes=[Route("/answer", answer)])) as url:
        client = RemoteHttp(url, None, timeout=5, connect_timeout=2, max_retries=0, transport=None)
        client.open()
        try:
            yield client
        finally:
            await client.close()


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, InvalidRequestError),
        (404, NotFoundError),
        (408, OperationTimeoutError),
        (409, InvalidStateError),
        (422, InvalidRequestError),
        (503, EnvironmentUnavailableError),
        (401, BackendError),
        (500, BackendError),
    ],
)
async def test_status_is_the_kind_of_error(http: RemoteHttp, status: int, kind: type[BackendError]) -> None:
    with pytest.raises(RemoteError) as answered:
        await http.request("GET", "/answer", params={"status": status})
    assert isinstance(answered.value, kind)
    assert answered.value.status == status
    assert answered.value.message == f"devbox is suspended [remote API: {status} on GET /answer]"


@pytest.mark.parametrize("shape", ["runloop", "detail", "nested", "bare-error", "text"])
async def test_the_message_is_found_in_any_common_shape(http: RemoteHttp, shape: str) -> None:
    with pytest.raises(InvalidStateError) as answered:
        await http.request("GET", "/answer", params={"status": 409, "shape": shape})
    assert answered.value.message.startswith("devbox is suspended [")


async def test_a_body_without_a_message_is_shown_as_it_came(http: RemoteHttp) -> None:
    with pytest.raises(InvalidStateError) as listed:
        await http.request("GET", "/answer", params={"status": 409, "shape": "list"})
    assert listed.value.message.startswith('["devbox", "is", "suspended"] [')
    with pytest.raises(InvalidStateError) as empty:
        await http.request("GET", "/answer", params={"status": 409, "shape": "empty"})
    assert empty.value.message.startswith("Conflict [")  # no body: the reason phrase
