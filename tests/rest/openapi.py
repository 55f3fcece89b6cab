"""Runloop's OpenAPI description (shared/reference/runloop-openapi.yml) as JSON Schema validators of
the REST API's responses.

OpenAPI 3.0 is not quite JSON Schema: `nullable: true` becomes a union with null, and a `$ref`
with siblings (a description, `nullable`) keeps them. Every schema keeps its
`additionalProperties: false`, so a field the spec does not know fails validation unless it is
one of this project's declared extensions (EXTENSIONS), each documented as
"scenario-mcp extension" on its model.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT.parent / "shared" / "reference" / "runloop-openapi.yml"
METHODS = ("get", "post", "put", "delete", "patch")

# Fields this API adds to Runloop's views, by the spec's schema name.
EXTENSIONS: dict[str, set[str]] = {
    "DevboxView": {"isolation", "limits", "failure_message"},
    "LaunchParameters": {"network"},
    "BlueprintView": {"failure_message", "build_log", "image_config"},
    "ScenarioRunView": {"failure_reason"},
    "ScenarioDefinitionView": {"create_time_ms", "scoring_scope"},
    "AgentView": {"status", "build_finish_time_ms", "failure_message"},
    "DevboxResourceUsageView": {"cpu_seconds_used", "memory_peak_bytes", "disk_bytes_used"},
}

# Where the spec itself is wrong, the schema that describes what Runloop (and its SDKs) answer.
ERRATA: dict[tuple[str, str], tuple[str, str]] = {
    # A paged list of the scenario's runs (limit, starting_after), not one scenario: SDK 1.32 reads
    # a ScenarioRunListView here.
    ("GET", "/v1/scenarios/{id}/runs"): ("ScenarioRunListView", "the spec names ScenarioDefinitionView"),
}

# Schemas the spec gets wrong everywhere they are used, as Runloop's answers are.
SCHEMA_ERRATA: dict[str, tuple[dict[str, Any], str]] = {
    "Number": ({"type": "number"}, "a Java Number rendered as an empty object; transition_time_ms is milliseconds"),
}


@cache
def spec() -> dict[str, Any]:
    assert SPEC.exists(), f"Runloop's OpenAPI description is expected at {SPEC}"
    loaded: dict[str, Any] = yaml.load(SPEC.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return loaded


def operations() -> list[tuple[str, str]]:
    """Every (METHOD, path) of the spec, in its order."""
    return [(m.upper(), path) for path, item in spec()["paths"].items() for m in item if m in METHODS]


def template(path: str) -> str:
    """A path with its parameters unnamed, so `/x/{id}` and `/x/{devbox_id}` compare equal."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def match(method: str, url_path: str) -> str | None:
    """The spec path a concrete request path is an instance of; fixed segments win over
    parameters (`/v1/blueprints/list_public` before `/v1/blueprints/{id}`)."""
    found = []
    for op_method, path in operations():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"
        if op_method == method and re.match(pattern, url_path):
            found.append(path)
    return min(found, key=lambda p: p.count("{")) if found else None


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0's `nullable` as JSON Schema, throughout a schema tree."""
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _nullable(value) for key, value in node.items()}
    if converted.pop("nullable", False):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@cache
def _components() -> dict[str, Any]:
    schemas = copy.deepcopy(spec()["components"]["schemas"])
    schemas.update({name: schema for name, (schema, _why) in SCHEMA_ERRATA.items()})
    for name, fields in EXTENSIONS.items():
        schemas[name].setdefault("properties", {}).update({field: {} for field in fields})
    return {"schemas": _nullable(schemas)}


@dataclass(frozen=True)
class Expected:
    """What the spec says a 200 answer is: its media type, its schema (None for bytes), its
    required headers."""

    media_type: str
    schema_name: str | None
    headers: tuple[str, ...]

    def validate(self, body: Any) -> None:
        assert self.schema_name is not None
        schema = {"$ref": f"#/components/schemas/{self.schema_name}", "components": _components()}
        validator = jsonschema.Draft7Validator(schema)
        problems = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if problems:
            lines = [f"  at /{'/'.join(map(str, p.absolute_path))}: {p.message[:300]}" for p in problems[:10]]
            raise AssertionError(f"not a valid {self.schema_name}:\n" + "\n".join(lines))


def expected(method: str, path: str) -> Expected:
    """The 200 answer the spec gives for an operation (with the errata applied)."""
    response = spec()["paths"][path][method.lower()]["responses"]["200"]
    ((media_type, content),) = (response.get("content") or {"application/json": {}}).items()
    ref = (content.get("schema") or {}).get("$ref")
    name = ref.rsplit("/", 1)[-1] if ref else None
    if (method, path) in ERRATA:
        name = ERRATA[(method, path)][0]
    headers = tuple(h for h, spec_header in (response.get("headers") or {}).items() if spec_header.get("required"))
    return Expected(media_type, name, headers)


def request_body_validator(method: str, path: str) -> jsonschema.Draft7Validator | None:
    """The spec's JSON request body of an operation as a validator (None when it takes none)."""
    body = spec()["paths"][path][method.lower()].get("requestBody") or {}
    schema = (body.get("content") or {}).get("application/json", {}).get("schema")
    if schema is None:
        return None
    components = _components()
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):  # inlined at the top, so its `properties` are there to read
        schema = components["schemas"][ref.rsplit("/", 1)[-1]]
    return jsonschema.Draft7Validator({**_nullable(schema), "components": components})
