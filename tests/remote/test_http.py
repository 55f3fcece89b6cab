"""RemoteHttp's retry policy against a real server on 127.0.0.1 that fails on purpose: what is sent
again, what is not, and how long the client waits between tries."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import AsyncIterator

import anyio
import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from scenario_mcp.remote import RemoteError, RemoteUnavailableError
from scenario_mcp.remote.http import MAX_BACKOFF, RemoteHttp, retry_delay, should_retry
from tests.rest.server import serve_app

pytestmark = pytest.mark.anyio


class Misbehaving:
    """`/fail/{key}?status=S&times=N&retry_after=R` answers S to the first N tries of each key;
    `/slow/{key}?seconds=T` holds the first try of each key T seconds. Both count every try."""

    def __init__(self) -> None:
        self.tries: Counter[str] = Counter()
        self.app = Starlette(
            routes=[
                Route("/fail/{key}", self.fail, methods=["GET", "POST"]),
                Route("/slow/{key}", self.slow, methods=["GET", "POST"]),
            ]
        )

    async def fail(self, request: Request) -> JSONResponse:
        key = request.path_params["key"]
        self.tries[key] += 1
        if self.tries[key] <= int(request.query_params.get("times", "1")):
            headers = (
                {"Retry-After": request.query_params["retry_after"]} if "retry_after" in request.query_params else {}
            )
            status = int(request.query_params["status"])
            return JSONResponse({"message": f"failing {key}"}, status_code=status, headers=headers)
        return JSONResponse({"tries": self.tries[key]})

    async def slow(self, request: Request) -> JSONResponse:
        key = request.path_params["key"]
        self.tries[key] += 1
        if self.tries[key] == 1:
            await anyio.sleep(float(request.query_params["seconds"]))
        return JSONResponse({"tries": self.tries[key]})


@pytest.fixture
async def server() -> AsyncIterator[tuple[Misbehaving, RemoteHttp]]:
    misbehaving = Misbehaving()
    async with serve_app(misbehaving.app) as url:
        http = RemoteHttp(url, None, timeout=5, connect_timeout=2, max_retries=2, transport=None)
        http.open()
        try:
            yield misbehaving, http
        finally:
            await http.close()


@pytest.mark.parametrize("status", [429, 503])
async def test_not_taken_is_sent_again_even_when_not_idempotent(
    server: tuple[Misbehaving, RemoteHttp], status: int
) -> None:
    _, http = server
    response = await http.request("POST", "/fail/a", params={"status": status, "times": 2, "retry_after": 0})
    assert response.json() == {"tries": 3}


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_may_have_run_is_sent_again_only_when_idempotent(
    server: tuple[Misbehaving, RemoteHttp], status: int
) -> None:
    app, http = server
    params = {"status": status, "retry_after": 0}
    assert (await http.request("GET", "/fail/get", params=params)).json() == {"tries": 2}
    assert (await http.request("POST", "/fail/marked", params=params, idempotent=True)).json() == {"tries": 2}
    with pytest.raises(RemoteError) as failed:
        await http.request("POST", "/fail/post", params=params)
    assert failed.value.status == status and f"{status} on POST /fail/post" in failed.value.message
    assert app.tries["post"] == 1


async def test_gives_up_after_max_retries_with_the_last_answer(server: tuple[Misbehaving, RemoteHttp]) -> None:
    app, http = server
    with pytest.raises(RemoteUnavailableError) as exhausted:
        await http.request("GET", "/fail/b", params={"status": 503, "times": 10, "retry_after": 0})
    assert "failing b" in exhausted.value.message
    assert app.tries["b"] == 3  # the first try and max_retries=2 more


async def test_retry_after_is_how_long_it_waits(server: tuple[Misbehaving, RemoteHttp]) -> None:
    _, http = server
    started = time.monotonic()
    await http.request("GET", "/fail/c", params={"status": 429, "retry_after": 1})
    assert 1.0 <= time.monotonic() - started < 3.0


async def test_a_timeout_is_sent_again_only_when_idempotent(server: tuple[Misbehaving, RemoteHttp]) -> None:
    app, http = server
    assert (await http.request("GET", "/slow/get", params={"seconds": 2}, timeout=0.5)).json() == {"tries": 2}
    with pytest.raises(RemoteError) as timed_out:
        await http.request("POST", "/slow/post", params={"seconds": 2}, timeout=0.5)
    assert timed_out.value.status == 504 and "did not answer POST /slow/post in time" in timed_out.value.message
    assert app.tries["post"] == 1


async def test_unreachable_is_retried_then_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    http = RemoteHttp(f"http://127.0.0.1:{port}", None, timeout=5, connect_timeout=2, max_retries=1, transport=None)
    http.open()
    try:
        with anyio.fail_after(10), pytest.raises(RemoteUnavailableError) as unreachable:
            await http.request("POST", "/v1/devboxes")
    finally:
        await http.close()
    assert (
        unreachable.value.status == 503
        and f"cannot reach the remote API at http://127.0.0.1:{port}" in unreachable.value.message
    )


def test_which_statuses_are_retried() -> None:
    assert should_retry(429, idempotent=False) and should_retry(503, idempotent=False)
    assert not should_retry(502, idempotent=False) and should_retry(502, idempotent=True)
    assert not any(should_retry(status, idempotent=True) for status in (200, 400, 404, 408, 409))


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    for attempt in range(8):
        delay = retry_delay(attempt, None)
        full = min(MAX_BACKOFF, 0.2 * 2**attempt)
        assert full / 2 <= delay <= full


def test_retry_after_wins_but_is_capped() -> None:
    def answer(retry_after: str) -> httpx2.Response:
        return httpx2.Response(503, headers={"Retry-After": retry_after})

    assert retry_delay(0, answer("2")) == 2.0
    assert retry_delay(0, answer("3600")) == MAX_BACKOFF
    assert retry_delay(0, answer("-5")) == 0.0
    assert 0.1 <= retry_delay(0, answer("Wed, 21 Oct 2015 07:28:00 GMT")) <= 0.2  # a date: backoff instead
