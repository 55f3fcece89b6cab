"""RemoteBackend against a server that misbehaves: retries with backoff, then clear errors.

The server is real (uvicorn on 127.0.0.1) and so is the API behind it; a small ASGI layer in front
answers 429 or 503 to the first tries of each request, as a loaded gateway would.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter

import pytest
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scenario_mcp.backend import NotFoundError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import DevboxCreateParameters
from scenario_mcp.remote import RemoteBackend, RemoteError
from scenario_mcp.rest import build_rest_app

from .server import TOKEN, serve_app

pytestmark = pytest.mark.anyio


class Flaky:
    """Fails the first `failures` tries of every (method, path) with `status`, then lets it through."""

    def __init__(self, app: ASGIApp, status: int, failures: int) -> None:
        self.app, self.status, self.failures = app, status, failures
        self.seen: Counter[tuple[str, str]] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            key = (scope["method"], scope["path"])
            self.seen[key] += 1
            if self.seen[key] <= self.failures:
                response = JSONResponse(
                    {"code": self.status, "error": "busy", "message": "try again"},
                    status_code=self.status,
                    headers={"Retry-After": "0"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


@pytest.mark.parametrize("status", [429, 503])
async def test_retries_rate_limits_and_unavailability(backend: LocalBackend, status: int) -> None:
    flaky = Flaky(build_rest_app(backend, token=TOKEN), status, failures=2)
    async with serve_app(flaky) as url, RemoteBackend(url, TOKEN, max_retries=3) as remote:
        box = await remote.create_devbox(DevboxCreateParameters(name="retried"))
        assert (await remote.execute(box.id, "echo ok")).stdout == "ok\n"
        with pytest.raises(NotFoundError):  # a 404 is an answer, not a failure: no retry hides it
            await remote.get_scenario("scn_nope")
    assert flaky.seen[("POST", "/v1/devboxes")] == 3
    assert flaky.seen[("GET", "/v1/scenarios/scn_nope")] == 3  # two 429/503s, then the real 404
    assert (await backend.list_devboxes()).total_count == 1  # created once, though asked three times


async def test_gives_up_with_the_remote_status_and_message(backend: LocalBackend) -> None:
    flaky = Flaky(build_rest_app(backend, token=TOKEN), 503, failures=10)
    async with serve_app(flaky) as url, RemoteBackend(url, TOKEN, max_retries=2) as remote:
        with pytest.raises(RemoteError) as exhausted:
            await remote.list_scenarios()
    assert exhausted.value.status == 503
    assert "try again" in exhausted.value.message and "503 on GET /v1/scenarios" in exhausted.value.message
    assert flaky.seen[("GET", "/v1/scenarios")] == 3


class LosesFirstAnswer:
    """Runs the first request to each `execute` path, then loses its answer (a 502 instead), as a
    gateway that timed out on the way back would; keeps the bodies it saw."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.bodies: list[dict[str, object]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/execute"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def recording() -> Message:
            message = await receive()
            chunks.append(message.get("body", b""))
            return message

        async def swallow(message: Message) -> None:
            pass

        first = not self.bodies
        if first:
            await self.app(scope, recording, swallow)
        else:
            await self.app(scope, recording, send)
        self.bodies.append(json.loads(b"".join(chunks)))
        if first:
            await JSONResponse({"code": 502, "error": "bad_gateway", "message": "lost"}, status_code=502)(
                scope, receive, send
            )


async def test_a_lost_execute_answer_is_asked_again_and_the_command_runs_once(backend: LocalBackend) -> None:
    lossy = LosesFirstAnswer(build_rest_app(backend, token=TOKEN))
    async with serve_app(lossy) as url, RemoteBackend(url, TOKEN, max_retries=2) as remote:
        box = await remote.create_devbox(DevboxCreateParameters(name="lossy"))
        result = await remote.execute(box.id, "echo ran >> once.txt; cat once.txt")
    assert result.exit_status == 0 and result.stdout == "ran\n"  # not "ran\nran\n"
    first, again = lossy.bodies
    assert first == again  # the same command_id: the server knows it is the same command
    command_id = uuid.UUID(str(first["command_id"]))
    assert command_id.version == 7
    assert abs((command_id.int >> 80) - time.time() * 1000) < 60_000  # its milliseconds are now's


async def test_a_gateway_error_on_a_request_that_may_have_run_is_not_sent_again(backend: LocalBackend) -> None:
    # A 502 may come after the server took the request: creating a devbox twice would leak one.
    flaky = Flaky(build_rest_app(backend, token=TOKEN), 502, failures=1)
    async with serve_app(flaky) as url, RemoteBackend(url, TOKEN, max_retries=3) as remote:
        with pytest.raises(RemoteError) as failed:
            await remote.create_devbox(DevboxCreateParameters(name="once"))
        assert (await remote.list_devboxes()).total_count == 0  # a GET: its 502 was retried
    assert failed.value.status == 502 and "502 on POST /v1/devboxes" in failed.value.message
    assert flaky.seen[("POST", "/v1/devboxes")] == 1
    assert flaky.seen[("GET", "/v1/devboxes")] == 2
