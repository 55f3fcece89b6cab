"""server.json is valid for the MCP registry and consistent with the package."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT.parent / "shared" / "reference" / "server.schema.json"


def test_server_json_matches_registry_schema_and_pyproject() -> None:
    server = json.loads((ROOT / "server.json").read_text())
    # The registry's schema lives beside the project (shared/reference), where CI has it too.
    assert SCHEMA.exists(), f"the MCP registry schema is expected at {SCHEMA}"
    jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).validate(server)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert server["version"] == version
    assert all(p["version"] == version for p in server["packages"])
    assert f"mcp-name: {server['name']}" in (ROOT / "README.md").read_text()
    assert len(server["description"]) <= 100


def test_server_json_arguments_and_environment_match_the_cli() -> None:
    """Every argument the registry entry passes is one `scenario-mcp serve` accepts; every variable is described."""
    from scenario_mcp.cli import build_parser

    server = json.loads((ROOT / "server.json").read_text())
    (package,) = server["packages"]
    assert package["runtimeHint"] == "uvx" and package["transport"] == {"type": "stdio"}
    argv: list[str] = []
    for argument in package["packageArguments"]:
        if argument["type"] == "positional":
            argv.append(argument["value"])
        else:
            argv += [argument["name"], argument.get("default", "scr_x")]
    parsed = build_parser().parse_args(argv)
    assert parsed.command == "serve" and parsed.role == "author" and parsed.run_id == "scr_x"
    for variable in package["environmentVariables"]:
        assert variable["description"] and "isSecret" in variable
    source = (ROOT / "src" / "scenario_mcp").rglob("*.py")
    used = "".join(p.read_text() for p in source)
    assert all(v["name"] in used for v in package["environmentVariables"])
