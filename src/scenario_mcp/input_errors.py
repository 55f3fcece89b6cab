"""How a pydantic ValidationError reads to a caller, the same on the REST API and in MCP tools."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError


def validation_message(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One part per problem, each naming its field and what it takes:
    `scoring_contract.weight: must be > 0; nme: unknown field (expected one of: name, weight)`.
    `model`, the one validated, lets an unknown field's part list the fields there are."""
    parts = []
    for error in exc.errors(include_url=False):
        loc = ".".join(_name(part) for part in error["loc"]) or "body"
        if error["type"] == "extra_forbidden":
            known = _fields_at(model, tuple(error["loc"][:-1])) if model is not None else None
            parts.append(f"{loc}: unknown field" + (f" (expected one of: {', '.join(known)})" if known else ""))
        elif error["type"] == "missing":
            parts.append(f"{loc}: required field missing")
        else:
            parts.append(f"{loc}: {error['msg']}")
    return "; ".join(parts)


def _name(part: int | str) -> str:
    """A path part as written in a message; quoted when it would not read as one name (empty,
    unprintable, or with the separators the message uses)."""
    if isinstance(part, int) or (part and part.isprintable() and not any(c in part for c in ".:; ")):
        return str(part)
    return repr(part)


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[str, ...] | None:
    """The field names of the object at `loc` in `model`'s JSON schema; None where that is not one
    object (a union whose member the path does not name, a free-form map)."""
    schema = _schema(model)
    node: dict[str, Any] | None = schema
    for part in loc:
        members = _members(node, schema)
        if len(members) > 1:  # a union: pydantic's path names the member by its class
            node = next((m for m in members if m.get("title") == part), None)
            continue
        node = members[0] if members else None
        if node is None:
            return None
        node = node.get("items") if isinstance(part, int) else node.get("properties", {}).get(part)
    members = _members(node, schema)
    properties = members[0].get("properties") if len(members) == 1 else None
    return tuple(properties) if properties else None


def _members(node: dict[str, Any] | None, schema: dict[str, Any]) -> list[dict[str, Any]]:
    """What `node` may be, its `$ref`s followed, null left out."""
    if node is None:
        return []
    if "$ref" in node:
        return _members(schema["$defs"][node["$ref"].rsplit("/", 1)[-1]], schema)
    if "anyOf" in node:
        return [member for variant in node["anyOf"] for member in _members(variant, schema)]
    return [] if node.get("type") == "null" else [node]


@cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()
