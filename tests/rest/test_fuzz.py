"""The REST API fuzzed from Runloop's OpenAPI description (issue 15): schemathesis makes requests for
every operation this API serves, inputs that fit the spec and inputs that break it, sent over
real HTTP to the API on 127.0.0.1 over a real engine. No answer is a 5xx, none hangs, every
refusal says what was wrong, and nothing half-made is stored."""

from __future__ import annotations

import importlib.util
import time
from typing import Any

import anyio
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import openapi
from schemathesis.generation import GenerationMode

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import BlueprintView, DevboxView, ScenarioRunView, ScenarioView

from ..conftest import shutdown_all
from .openapi import ROOT, SPEC
from .server import TOKEN, serve_rest

pytestmark = pytest.mark.anyio

CASES = 5  # per operation: ~90 operations served
COSTLY_CASES = 2
REQUEST_TIMEOUT = 30.0  # an answer that takes longer has hung
# Operations whose valid requests start sandboxes or builds: the same checks, fewer cases.
COSTLY = ("/v1/devboxes", "/v1/blueprints", "/v1/scenarios/start_run", "/v1/benchmarks/start_run")


def _served_paths() -> set[str]:
    spec = importlib.util.spec_from_file_location("openapi_table", ROOT / "scripts" / "openapi_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {path for path, _methods, why_not in module.rows() if why_not is None}


async def test_every_served_operation_survives_fuzzed_requests(backend: LocalBackend) -> None:
    schema = openapi.from_path(str(SPEC))
    served = _served_paths()
    operations = [op.ok() for op in schema.get_all_operations()]
    operations = [op for op in operations if op.path in served]
    assert len(operations) >= 80
    problems: list[str] = []
    sent = 0

    def fuzz_one(url: str, session: requests.Session, operation: Any) -> None:
        nonlocal sent
        costly = operation.path.startswith(COSTLY) and operation.method.upper() == "POST"
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
        )

        @settings(
            max_examples=COSTLY_CASES if costly else CASES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def one(case: Any) -> None:
            nonlocal sent
            started = time.perf_counter()
            auth = {"Authorization": f"Bearer {TOKEN}"}
            response = case.call(base_url=url, session=session, headers=auth, timeout=REQUEST_TIMEOUT)
            took = time.perf_counter() - started
            sent += 1
            where = f"{operation.method.upper()} {operation.path} ({case.path_parameters}, {case.query}, "
            where += f"{case.body!r:.200})"
            if response.status_code >= 500:
                problems.append(f"{where}: {response.status_code} {response.text[:300]}")
            elif response.status_code >= 400:
                try:
                    message = response.json().get("message", "")
                except ValueError:
                    message = response.text
                if not message.strip():
                    problems.append(f"{where}: {response.status_code} with no message")
            if took > REQUEST_TIMEOUT / 2:
                problems.append(f"{where}: took {took:.1f} s")

        one()

    def fuzz(url: str) -> None:
        session = requests.Session()
        for operation in operations:
            fuzz_one(url, session, operation)

    async with serve_rest(backend) as url:
        await anyio.to_thread.run_sync(fuzz, url)
    assert not problems, "\n".join(problems[:20])
    assert sent >= CASES * len(operations) // 2
    # Nothing half-made: every stored object is whole (its view validates).
    for table, view in (
        ("scenarios", ScenarioView),
        ("runs", ScenarioRunView),
        ("devboxes", DevboxView),
        ("blueprints", BlueprintView),
    ):
        for row in (await backend._store.list(table, limit=100_000)).rows:  # type: ignore[arg-type]
            view.model_validate(row.data)
    await shutdown_all(backend)
