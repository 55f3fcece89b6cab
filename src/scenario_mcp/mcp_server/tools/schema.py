"""The JSON schemas a tool publishes, made from its pydantic models.

Input schemas are what every call of an agent carries in its context, and what strict clients
(OpenAI's structured tool calls, through openai-agents' `ensure_strict_json_schema`) must accept:
self-contained (no `$ref`/`$defs`: each definition inlined where it is used), unions as `anyOf`
(no `oneOf`, no `discriminator` mapping into `$defs`), a nullable scalar as a type list, every
object closed, and no titles (pydantic's titles restate the property names). Bounds and patterns
are left to the server's validation, which names the field and the rule when a call breaks one:
they would cost every turn bytes that only a wrong call needs.

Output schemas describe what matters without restating every nested view: the result's top-level
fields with their JSON types (a nested view is an `object`, a list an `array`), states as enums.
They stay open (`additionalProperties` is not closed), so a waiting tool's answer in its current
state, with its `message`, fits the same schema.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

JsonSchema = dict[str, Any]
_DEFS = "#/$defs/"
_DROPPED = frozenset(
    {
        "title",
        "discriminator",
        "minLength",
        "maxLength",
        "minItems",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "pattern",
    }
)


def input_schema(model: type[BaseModel]) -> JsonSchema:
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})
    compact = _compact(_inline(schema, defs))
    assert isinstance(compact, dict)
    return compact


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_DEFS):
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return _inline({**defs[ref.removeprefix(_DEFS)], **siblings}, defs)
    return {key: _inline(value, defs) for key, value in node.items()}


def _compact(node: Any) -> Any:
    if isinstance(node, list):
        return [_compact(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: JsonSchema = {}
    for key, value in node.items():
        if key in _DROPPED or (key == "default" and (value is None or value == node.get("const"))):
            continue
        if key == "properties":
            out[key] = {name: _compact(prop) for name, prop in value.items()}
        else:
            out["anyOf" if key == "oneOf" else key] = _compact(value)
    if "const" in out:
        out.pop("type", None)  # a const says it all
    return _nullable(out)


def _nullable(node: JsonSchema) -> JsonSchema:
    """`{"anyOf": [X, {"type": "null"}]}` as X with "null" among its types, when X is one plain type."""
    variants = node.get("anyOf")
    if not isinstance(variants, list) or len(variants) != 2 or {"type": "null"} not in variants:
        return node
    (other,) = [variant for variant in variants if variant != {"type": "null"}]
    if not isinstance(other.get("type"), str) or "anyOf" in other:
        return node
    merged = {**{key: value for key, value in node.items() if key != "anyOf"}, **other}
    merged["type"] = [other["type"], "null"]
    if "enum" in merged:
        merged["enum"] = [*merged["enum"], None]
    return merged


def output_schema(model: type[BaseModel], *, waits: bool = False) -> JsonSchema:
    """The result's top-level fields and their JSON types; `waits`: the tool may answer in an
    unfinished state, with a `message` saying which tool to wait with."""
    full = model.model_json_schema(mode="serialization", by_alias=True)
    defs = full.get("$defs", {})
    properties = {name: _shallow(prop, defs) for name, prop in full.get("properties", {}).items()}
    schema: JsonSchema = {"type": "object", "properties": properties}
    if waits:
        properties["message"] = {"type": "string"}
    else:
        schema["required"] = list(full.get("required", []))
    return schema


def _shallow(prop: JsonSchema, defs: dict[str, Any]) -> JsonSchema:
    types: list[str] = []
    enum: list[Any] | None = []
    for variant in prop.get("anyOf", [prop]):
        ref = variant.get("$ref")
        target = defs[ref.removeprefix(_DEFS)] if isinstance(ref, str) else variant
        kind = target.get("type", "object" if "properties" in target else None)
        if kind is None:
            return {}  # anything
        for name in kind if isinstance(kind, list) else [kind]:
            if name not in types:
                types.append(name)
        if enum is not None and ("enum" in target or "const" in target):
            enum.extend(target.get("enum", [target.get("const")]))
        elif enum is not None and kind != "null":
            enum = None
    shallow: JsonSchema = {"type": types[0] if len(types) == 1 else types}
    if enum:
        shallow["enum"] = [*enum, None] if "null" in types else enum
    return shallow
