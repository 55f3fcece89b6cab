"""The contract suite runs every test twice: on LocalBackend, and on RemoteBackend talking over
real HTTP to `build_rest_app` served by uvicorn on 127.0.0.1 over a LocalBackend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from scenario_mcp.backend import Backend
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.remote import RemoteBackend
from tests.rest.server import TOKEN, serve_rest


@pytest.fixture(params=["local", "remote"])
async def engine(request: pytest.FixtureRequest, backend: LocalBackend) -> AsyncIterator[Backend]:
    if request.param == "local":
        yield backend
        return
    async with serve_rest(backend) as url, RemoteBackend(url, TOKEN) as remote:
        yield remote
