"""The `http` fixture: a client of the REST API served on 127.0.0.1 over a fresh LocalBackend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from scenario_mcp.local.engine import LocalBackend

from .server import TOKEN, serve_rest


@pytest.fixture
async def http(backend: LocalBackend) -> AsyncIterator[httpx2.AsyncClient]:
    async with (
        serve_rest(backend) as url,
        httpx2.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client,
    ):
        yield client
