"""The REST API fuzzed from Runloop's OpenAPI description (issue 15): schemathesis makes requests for
every operation this API serves, inputs that fit the spec and inputs that break it, sent over
real HTTP to the API on 127.0.0.1 over a real engine, the same requests every run. No answer is a
5xx, none hangs, every refusal says what was wrong, a 400 or 422 to a request that breaks the spec
in its body, query or path names the field and what it accepts, and nothing half-made is stored."""

from __future__ import annotations

import importlib.util
import time
from typing import Any

import anyio
import jsonschema
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import openapi
from schemathesis.core import NotSet
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import BlueprintView, DevboxView, ScenarioRunView, ScenarioView

from ..conftest import fields_named, shutdown_all
from .openapi import ROOT, request_body_validator, spec
from .server import TOKEN, serve_rest

pytestmark = pytest.mark.anyio

CASES = 5  # per operation: ~90 operations served
COSTLY_CASES = 2
REQUEST_TIMEOUT = 30.0  # an answer that takes longer has hung
# Operations whose valid requests start sandboxes or builds: the same checks, fewer cases.
# Answers that refuse the request itself; each must name the field and what it accepts.
REFUSALS = (400, 422)
CHECKED = (ParameterLocation.BODY, ParameterLocation.QUERY, ParameterLocation.PATH)
# How a refusal says what a field accepts ("should be a valid integer", "must be between 1 and
# 5000", "required field missing", "unknown field (expected one of: ...)").
ACCEPTS = ("should", "must", "expected", "required", "accepts", "one of", "allowed", "valid", "at least", "at most")
COSTLY = ("/v1/devboxes", "/v1/blueprints", "/v1/scenarios/start_run", "/v1/benchmarks/start_run")


def breaks_checked_parts(case: Any) -> bool:
    """Whether the case breaks the spec in its body, query or path (not only in a header)."""
    return any(
        info.mode == GenerationMode.NEGATIVE and location in CHECKED for location, info in case.meta.components.items()
    )


def fields_to_name(case: Any, body_validator: jsonschema.Draft7Validator | None) -> set[str] | None:
    """The fields a refusal of `case` may rightly name: those its body breaks the spec in (by the
    spec's own schema), the query or path parameters schemathesis broke, and the spec's parameters
    and body fields the request sent (a value the spec allows may still be out of this API's
    documented bounds: limit above 5000). None when the request breaks nothing of those (a
    positive case, or a header mutation the test's own token overrides)."""
    if not breaks_checked_parts(case):
        return None
    data = case.meta.phase.data
    names = {part for m in getattr(data, "mutations", ()) if m.parameter_location in CHECKED for part in m.path}
    if getattr(data, "parameter_location", None) in CHECKED:
        names.add(data.parameter)
    parameters = {p["name"] for p in case.operation.definition.raw.get("parameters", ())}
    names |= parameters & (set(case.query or {}) | set(case.path_parameters or {}))
    body_broken = case.meta.components.get(ParameterLocation.BODY)
    if body_broken and body_broken.mode == GenerationMode.NEGATIVE and not isinstance(case.body, dict | NotSet):
        names.add("body")  # not JSON, or not an object: the body as a whole is the field
    if body_validator is not None and isinstance(case.body, dict):
        names |= set(case.body) & set(body_validator.schema.get("properties", {}))
        for error in body_validator.iter_errors(case.body):
            names.update(error.absolute_path)
            if error.validator == "required":
                names.update(name for name in error.validator_value if name not in error.instance)
            if error.validator == "additionalProperties" and isinstance(error.instance, dict):
                names.update(name for name in error.instance if name not in error.schema.get("properties", {}))
    return {name for name in names if isinstance(name, str) and name}


def unexplained(case: Any, body_validator: jsonschema.Draft7Validator | None, message: str) -> str | None:
    """What a refusal of a request that breaks the spec leaves unsaid: the field it got wrong
    (by name or JSON path), or what that field accepts. None when it says both."""
    names = fields_to_name(case, body_validator)
    if names is None:
        return None
    if not names & fields_named(message):
        return f"names none of {sorted(names)}"
    if not any(word in message for word in ACCEPTS):
        return "says nothing of what the field accepts"
    return None


def _served_paths() -> set[str]:
    spec = importlib.util.spec_from_file_location("openapi_table", ROOT / "scripts" / "openapi_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {path for path, _methods, why_not in module.rows() if why_not is None}


async def test_every_served_operation_survives_fuzzed_requests(backend: LocalBackend) -> None:
    # Without its security scheme: the test sends its own token, so a negative case that broke
    # only the Authorization header would be a positive one, and cost a request for nothing.
    schema = openapi.from_dict({key: value for key, value in spec().items() if key != "security"})
    served = _served_paths()
    operations = [op.ok() for op in schema.get_all_operations()]
    operations = [op for op in operations if op.path in served]
    assert len(operations) >= 80
    problems: list[str] = []
    sent = refusals_checked = 0

    def fuzz_one(url: str, session: requests.Session, operation: Any) -> None:
        nonlocal sent, refusals_checked
        costly = operation.path.startswith(COSTLY) and operation.method.upper() == "POST"
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
        )

        body_validator = request_body_validator(operation.method, operation.path)

        @settings(
            max_examples=COSTLY_CASES if costly else CASES,
            derandomize=True,  # the same requests every run: a failure is there again to debug
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def one(case: Any) -> None:
            nonlocal sent, refusals_checked
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
                elif response.status_code in REFUSALS and fields_to_name(case, body_validator) is not None:
                    refusals_checked += 1
                    if unsaid := unexplained(case, body_validator, message):
                        problems.append(f"{where}: {response.status_code} {message!r} {unsaid}")
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
    assert refusals_checked >= len(operations) // 2, refusals_checked  # the refusal check saw enough
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
