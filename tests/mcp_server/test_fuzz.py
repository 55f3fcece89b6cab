"""Every MCP tool's input fuzzed from its own published input schema (issue 15): through a real
in-memory client on a real engine, CASES generated inputs per tool, inputs that fit the schema and
inputs that break it. No call crashes (a crash reads `Error executing tool <name>` and nothing
more), none hangs, every input the schema rejects is refused naming the field it got wrong, and
nothing half-made is stored.

What a case costs (profiled): about half is hypothesis's bookkeeping per example and per choice
it draws, most of the rest the SDK's in-memory round trip (its JSON-RPC models validated ~16 times
a call); the tool's own validation and refusal about a tenth, and a refused input writes nothing. So each
example draws a batch of BATCH distinct cases (the per-example overhead, and the trip into the
event loop, paid once per batch), a string is as often drawn whole from a list of troublesome ones
(one choice, not one per character), wrong-type values are wrong by construction (no filter to
retry), and the tools whose accepted inputs start sandboxes, builds or installs get STARTS accepted
call without waiting; after that, each of their inputs that could be accepted gets an unknown field
more (a refusal: every input model forbids them). The run is derandomized: the same inputs every
time, and a failure names the input that caused it."""

from __future__ import annotations

import string
import time
from collections import Counter
from typing import Any

import anyio
import anyio.from_thread
import jsonschema
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from mcp import Client

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.models import BlueprintView, DevboxView, ScenarioRunView, ScenarioView

from ..conftest import fields_named, shutdown_all

pytestmark = pytest.mark.anyio

CASES = 300  # generated inputs sent per tool, every tool
BATCH = 30  # inputs per hypothesis example, no two alike
CALL_TIMEOUT = 30.0  # a call that takes longer has hung
# Tools whose accepted inputs start sandboxes, builds, scorers or installs: STARTS accepted calls
# each (with wait_seconds 0), then only inputs to refuse, so every tool still gets CASES.
COSTLY = {
    "create_devbox",
    "start_run",
    "run_scenario",
    "validate_scenario",
    "create_blueprint",
    "run_benchmark",
    "create_agent",
}
STARTS = 1
UNKNOWN = "not_a_field"

# Strings a tool may choke on, each drawn whole; free text as often, for the rest.
_TROUBLE = (
    "",
    " ",
    "a",
    "x" * 300,
    "0",
    "-1",
    "1.5",
    "true",
    "null",
    "/",
    "/tmp/x",
    "../../etc/passwd",
    "~/.ssh",
    "$(id)",
    "'; DROP TABLE runs; --",
    "\x00",
    "a\x00b",
    "é",
    "日本語",
    "\n",
    "\\",
    "%s%n",
    "{}",
    "dbx_0",
    "scn_0",
    "run_0",
    "bpt_0",
    "a b",
    "*",
    "-h",
)
_TEXT = st.one_of(
    st.sampled_from(_TROUBLE),
    st.text(alphabet=string.ascii_letters + string.digits + " _-./$'\"\\\n\x00é", max_size=12),
)
_SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "integer": st.integers(-(2**63), 2**63),
    "number": st.floats(allow_nan=False, allow_infinity=False),
    "string": _TEXT,
}
_SHALLOW = st.one_of(list(_SCALARS.values()))
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    **_SCALARS,
    "array": st.lists(_SHALLOW, max_size=2),
    "object": st.dictionaries(_TEXT, _SHALLOW, max_size=2),
}


def other_than(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of the JSON types a property's schema does not take (a string for an enum)."""
    if "enum" in schema:
        return _TEXT
    types = schema.get("type", "object")
    taken = set(types if isinstance(types, list) else [types])
    if "number" in taken or "integer" in taken:
        taken |= {"number", "integer"}  # JSON Schema's numbers include its integers, and 2.0 passes for one
    return st.one_of([values for kind, values in _VALUES.items() if kind not in taken])


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
    """Inputs the schema rejects: a field of the wrong type, one unknown, a required one missing."""
    properties = list(schema.get("properties", {}))
    required = list(schema.get("required", ()))
    fitting = from_schema(schema)
    wrong_type = st.one_of(
        [
            st.tuples(fitting, st.just(name), other_than(sub)).map(lambda t: {**t[0], t[1]: t[2]})
            for name, sub in schema.get("properties", {}).items()
        ]
        or [fitting]
    )
    unknown = st.tuples(fitting, _TEXT.filter(lambda k: k not in properties), _SHALLOW).map(
        lambda t: {**t[0], t[1]: t[2]}
    )
    ways = [wrong_type, unknown]
    if required:
        missing = st.tuples(fitting, st.sampled_from(required)).map(
            lambda t: {k: v for k, v in t[0].items() if k != t[1]}
        )
        ways.append(missing)
    return st.one_of(ways)


def _coercible(error: jsonschema.ValidationError) -> bool:
    """A type error pydantic's lax mode may accept: `"5"` or `5.0` for a number, `"true"` or `1` for
    a boolean. Such an input may be taken as meant; any other schema error must be refused."""
    if error.validator == "anyOf":
        return any(_coercible(inner) for inner in error.context or ())
    if error.validator != "type" or isinstance(error.instance, dict | list) or error.instance is None:
        return False
    wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
    return bool({"number", "integer", "boolean"} & set(wanted))


def fields_wrong(errors: list[jsonschema.ValidationError]) -> set[str]:
    """The names a refusal could rightly point at: every property on a path the schema rejects,
    and the missing or unknown properties themselves."""
    names: set[str] = set()
    for error in errors:
        names.update(part for part in error.absolute_path if isinstance(part, str))
        if error.validator == "required":
            names.update(name for name in error.validator_value if name not in error.instance)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = error.schema.get("properties", {})
            names.update(name for name in error.instance if name not in allowed)
    return names


def certain_errors(validator: jsonschema.Draft202012Validator, arguments: dict[str, Any]) -> list[Any]:
    """The schema's errors in `arguments` that no lax reading excuses: the input must be refused."""
    return [error for error in validator.iter_errors(arguments) if not _coercible(error)]


def check(name: str, arguments: dict[str, Any], errors: list[Any], is_error: bool, text: str) -> None:
    """What every answer must be, whatever the input."""
    assert not (is_error and text.strip() == f"Error executing tool {name}"), f"{name} crashed on {arguments!r}"
    if errors:
        # An input the schema rejects is refused, naming a field it got wrong.
        named = fields_wrong(errors)
        assert is_error, f"{name} accepted {arguments!r}, which its schema rejects: {text[:300]}"
        assert named & fields_named(text) or any(repr(field) in text for field in named), (
            f"{name}'s refusal of {arguments!r} names none of {sorted(named)}: {text}"
        )
    elif is_error and "invalid arguments" in text:
        # A bound or pattern the schema leaves to the server: the refusal still names a field.
        assert set(arguments) & fields_named(text), f"{name}'s refusal of {arguments!r} names no field: {text}"


async def test_every_tool_survives_its_fuzzed_input(backend: LocalBackend) -> None:
    async with Client(build_server(backend, toolsets=["all"])) as client:
        tools = (await client.list_tools()).tools
        assert len(tools) >= 30
        sent: Counter[str] = Counter()
        accepted: Counter[str] = Counter()
        slowest = 0.0

        async def call_each(
            name: str, validator: jsonschema.Draft202012Validator, cases: list[dict[str, Any]]
        ) -> list[tuple[dict[str, Any], list[Any], bool, str]]:
            """Each case as sent (steered once the tool's starts are spent), its schema errors and
            the answer: a batch per trip into the event loop."""
            nonlocal slowest
            answers = []
            for arguments in cases:
                errors = certain_errors(validator, arguments)
                if name in COSTLY and accepted[name] >= STARTS and not errors:
                    # Its starts are spent: one unknown field more makes the input one to refuse.
                    arguments = {**arguments, UNKNOWN: True}
                    errors = certain_errors(validator, arguments)
                started = time.perf_counter()
                with anyio.fail_after(CALL_TIMEOUT):
                    result = await client.call_tool(name, arguments)
                slowest = max(slowest, time.perf_counter() - started)
                sent[name] += 1
                accepted[name] += not result.is_error
                text = "\n".join(getattr(part, "text", "") for part in result.content)
                answers.append((arguments, errors, result.is_error, text))
            return answers

        def fuzz(name: str, schema: dict[str, Any]) -> None:
            fitting = from_schema(schema)
            validator = jsonschema.Draft202012Validator(schema)
            if name in COSTLY and "wait_seconds" in schema.get("properties", {}):
                fitting = fitting.map(lambda arguments: {**arguments, "wait_seconds": 0})
            inputs = st.one_of(fitting, broken(schema))  # built once: a new strategy is validated anew

            @settings(
                max_examples=CASES // BATCH,
                derandomize=True,
                phases=[Phase.generate],  # replaying a batch against a changed engine would not shrink it
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(cases=st.lists(inputs, min_size=BATCH, max_size=BATCH, unique_by=repr))
            def batch(cases: list[dict[str, Any]]) -> None:
                for arguments, errors, is_error, text in anyio.from_thread.run(call_each, name, validator, cases):
                    check(name, arguments, errors, is_error, text)

            batch()

        for tool in tools:
            await anyio.to_thread.run_sync(fuzz, tool.name, tool.input_schema)
    assert slowest < CALL_TIMEOUT
    assert {sent[tool.name] for tool in tools} == {CASES}, sent
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
