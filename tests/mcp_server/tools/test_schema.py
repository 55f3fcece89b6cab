"""The schemas the tools publish (tools/schema.py), as a real client lists them: every input schema
passes OpenAI's strict conversion (openai-agents' own), every output schema is valid JSON Schema
2020-12, and scripts/tool_budget.py holds each role's default toolsets to their budgets."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from agents.strict_schema import ensure_strict_json_schema
from jsonschema import Draft202012Validator
from mcp import Client
from mcp.types import Tool

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.mcp_server.tools import TOOLS

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[3]


async def listed(tmp_path: Path, role: str = "author") -> list[Tool]:
    # tools/list asks nothing of the backend: it is never entered.
    server = build_server(LocalBackend(tmp_path), role="solver" if role == "solver" else "author", toolsets=["all"])
    async with Client(server) as client:
        return list((await client.list_tools()).tools)


async def test_every_input_schema_passes_strict_conversion(tmp_path: Path) -> None:
    tools = await listed(tmp_path)
    assert {tool.name for tool in tools} == {spec.name for spec in TOOLS}
    for tool in tools:
        text = json.dumps(tool.input_schema)
        assert "$ref" not in text and "$defs" not in text and "oneOf" not in text, tool.name
        # What openai-agents does to an MCP tool's schema before it calls it strictly: it raises
        # where the schema cannot be made strict (a $ref beside siblings, an open map, ...).
        strict = ensure_strict_json_schema(copy.deepcopy(tool.input_schema), _reject_open_objects=True)
        assert strict["additionalProperties"] is False, tool.name


def _objects(schema: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "object" in (schema.get("type") or []):
            found.append(schema)
        for value in schema.values():
            found.extend(_objects(value))
    elif isinstance(schema, list):
        for item in schema:
            found.extend(_objects(item))
    return found


async def test_inputs_have_no_open_objects_and_outputs_are_valid_2020_12(tmp_path: Path) -> None:
    for tool in await listed(tmp_path):
        for obj in _objects(tool.input_schema):
            assert obj.get("additionalProperties") is False and obj.get("properties"), (tool.name, obj)
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
        Draft202012Validator.check_schema(tool.output_schema)


async def test_a_free_map_is_a_list_of_key_value_pairs(tmp_path: Path) -> None:
    tools = {tool.name: tool for tool in await listed(tmp_path)}
    metadata = tools["create_scenario"].input_schema["properties"]["metadata"]
    assert metadata["type"] == ["array", "null"]
    assert metadata["items"]["required"] == ["key", "value"]
    env = tools["create_devbox"].input_schema["properties"]["environment_variables"]
    assert env["items"]["properties"] == {"key": {"type": "string"}, "value": {"type": "string"}}


async def test_the_budget_script_holds_each_roles_defaults_to_their_goals() -> None:
    result = await anyio.run_process(
        [sys.executable, str(ROOT / "scripts" / "tool_budget.py"), "--json"], check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr.decode()
    figures = {(b["role"], b["default"]): b for b in json.loads(result.stdout)}
    author, solver = figures["author", True], figures["solver", True]
    assert author["model_bytes"] <= 16 * 1024 and author["raw_bytes"] <= 48 * 1024
    assert solver["model_bytes"] <= 8 * 1024
    # `all` offers every tool, beside no goal.
    assert figures["author", False]["tools"] == len(TOOLS)
