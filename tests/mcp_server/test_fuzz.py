"""Every MCP tool's input fuzzed from its own published input schema (issue 15): through a real
in-memory client on a real engine, inputs that fit the schema and inputs that break it. No call
crashes (a crash reads `Error executing tool <name>` and nothing more), none hangs, a refusal of
refusal of the input names the field it got wrong, and nothing half-made is stored."""

from __future__ import annotations

import string
import time
from typing import Any

import anyio
import anyio.from_thread
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.models import BlueprintView, DevboxView, ScenarioRunView, ScenarioView

from ..conftest import shutdown_all

pytestmark = pytest.mark.anyio

CALL_TIMEOUT = 30.0  # a call that takes longer has hung
# Tools whose valid inputs start sandboxes, builds or scorers: fewer cases, the same checks.
COSTLY = {"create_devbox", "start_run", "run_scenario", "validate_scenario", "create_blueprint", "run_benchmark"}
CASES = 150
COSTLY_CASES = 30

_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " _-./$'\"\\\n\x00é", max_size=24)
_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that fit the subset of JSON Schema the tools publish (types, properties, required,
    items, enum)."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    types = schema.get("type", "object")
    if isinstance(types, list):
        return st.one_of([from_schema({**schema, "type": t}) for t in types])
    if types == "null":
        return st.none()
    if types == "boolean":
        return st.booleans()
    if types == "integer":
        return st.integers(-5, 100_000) | st.integers(-(2**63), 2**63)
    if types == "number":
        return st.floats(-10, 1e6, allow_nan=False) | st.integers(-5, 100)
    if types == "string":
        return _TEXT
    if types == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=3)
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    return st.fixed_dictionaries(
        {name: from_schema(sub) for name, sub in properties.items() if name in required},
        optional={name: from_schema(sub) for name, sub in properties.items() if name not in required},
    )


def broken(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Inputs the schema rejects, most of the time: a field of the wrong type, one unknown, one
    missing."""
    properties = list(schema.get("properties", {}))
    fitting = from_schema(schema)
    wrong_type = st.tuples(fitting, st.sampled_from(properties or ["x"]), _ANY_JSON).map(lambda t: {**t[0], t[1]: t[2]})
    unknown = st.tuples(fitting, _TEXT.filter(lambda k: k not in properties), _ANY_JSON).map(
        lambda t: {**t[0], t[1]: t[2]}
    )
    missing = st.tuples(fitting, st.sampled_from(properties or ["x"])).map(
        lambda t: {k: v for k, v in t[0].items() if k != t[1]}
    )
    return st.one_of(wrong_type, unknown, missing)


def fields_wrong(schema: dict[str, Any], arguments: dict[str, Any]) -> set[str]:
    """The names a refusal could rightly point at: every property on a path the schema rejects,
    and the missing or unknown properties themselves."""
    names: set[str] = set()
    for error in jsonschema.Draft202012Validator(schema).iter_errors(arguments):
        names.update(part for part in error.absolute_path if isinstance(part, str))
        if error.validator == "required":
            names.update(name for name in error.validator_value if name not in error.instance)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = error.schema.get("properties", {})
            names.update(name for name in error.instance if name not in allowed)
    return names


async def test_every_tool_survives_its_fuzzed_input(backend: LocalBackend) -> None:
    async with Client(build_server(backend, toolsets=["all"])) as client:
        tools = (await client.list_tools()).tools
        assert len(tools) >= 30
        slowest = 0.0

        async def call(name: str, arguments: dict[str, Any]) -> tuple[bool, str, float]:
            started = time.perf_counter()
            with anyio.fail_after(CALL_TIMEOUT):
                result = await client.call_tool(name, arguments)
            text = "\n".join(getattr(part, "text", "") for part in result.content)
            return result.is_error, text, time.perf_counter() - started

        def fuzz(name: str, schema: dict[str, Any], cases: int) -> None:
            @settings(
                max_examples=cases,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(arguments=st.one_of(from_schema(schema), broken(schema)))
            def one(arguments: dict[str, Any]) -> None:
                nonlocal slowest
                is_error, text, took = anyio.from_thread.run(call, name, arguments)
                slowest = max(slowest, took)
                assert not (is_error and text.strip() == f"Error executing tool {name}"), (
                    f"{name} crashed on {arguments!r}"
                )
                if is_error and ("invalid arguments" in text or "validation error" in text):
                    # A refusal of the input itself names what was wrong: a field the schema
                    # rejects when there is one, else a field of the input at least.
                    named = fields_wrong(schema, arguments) or set(schema.get("properties", {}))
                    assert any(field in text for field in named), (
                        f"{name}'s refusal of {arguments!r} names none of {sorted(named)}: {text}"
                    )

            one()

        for tool in tools:
            cases = COSTLY_CASES if tool.name in COSTLY else CASES
            await anyio.to_thread.run_sync(fuzz, tool.name, tool.input_schema, cases)
    assert slowest < CALL_TIMEOUT
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
