"""The benchmark-run pages at /runs and /runs/{id}, over a real HTTP server, behind /mcp's guard."""

from __future__ import annotations

import httpx2
import pytest

from scenario_mcp.harness.agents import parse_agent
from scenario_mcp.harness.runner import SuiteOptions, SuiteRun
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.http import http_app
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.models import BenchmarkCreateParameters
from tests.rest.server import serve_app

from ..harness.test_runner import trivial

pytestmark = pytest.mark.anyio
TOKEN = "pages-token-7d2e"


async def test_runs_pages_show_reports_behind_the_guard(backend: LocalBackend) -> None:
    scenarios = [await trivial(backend, f"page-{i}") for i in range(2)]
    benchmark = await backend.create_benchmark(
        BenchmarkCreateParameters(name="paged", scenario_ids=[s.id for s in scenarios])
    )
    runner = SuiteRun(backend, SuiteOptions(agent=parse_agent("oracle")))
    await runner.start(benchmark)
    suite = await runner.run()
    app = http_app(build_server(backend), "http", host="127.0.0.1", token=TOKEN, backend=backend)
    async with serve_app(app, lifespan=True) as url, httpx2.AsyncClient(base_url=url) as http:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert (await http.get("/runs")).status_code == 401
        assert (await http.get(f"/runs/{suite.benchmark_run_id}")).status_code == 401
        evil = await http.get("/runs", headers={**auth, "Origin": "https://evil.example"})
        assert evil.status_code == 403
        listing = await http.get("/runs", headers=auth)
        assert listing.status_code == 200 and f"/runs/{suite.benchmark_run_id}" in listing.text
        page = await http.get(f"/runs/{suite.benchmark_run_id}", headers=auth)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "page-0" in page.text and "page-1" in page.text and "+solved" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        missing = await http.get("/runs/bmr_nothing", headers=auth)
        assert missing.status_code == 404 and "not found" in missing.text
        assert (await http.post("/runs", headers=auth)).status_code == 405
