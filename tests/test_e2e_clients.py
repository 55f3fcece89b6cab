"""Third-party clients against `scenario-mcp serve` over real stdio, each walking the seed workflow:

- openai-agents' MCPServerStdio, with its default 5 s request timeout, on a fresh data dir (the
  default environment is built at the server's start while the calls go on: none may block past
  5 s); its strict-schema conversion takes every tool;
- the 1.x `mcp` client most deployed agents use, in its own venv under the git-ignored .tools/
  (made here on first use, as scripts/conformance.sh makes its Node tools there).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from agents import Agent, RunContextWrapper
from agents.mcp import MCPServerStdio, MCPUtil

from scenario_mcp.local.engine import LocalBackend

from .conftest import seed_default_blueprint

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parent.parent
MCP1_VENV = ROOT / ".tools" / "mcp1"
MCP1_REQUIREMENT = "mcp>=1.9,<2"
CLIENT_TIMEOUT = 5.0
FAILING = "def add(a, b):\n    return a - b\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
FIX = "sed -i 's/a - b/a + b/' tests/test_example.py"
REPEAT_TO_WAIT = {"create_devbox", "snapshot_devbox", "start_run", "execute_on_devbox"}


def serve(data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "scenario_mcp", "serve", "--data-dir", str(data_dir), "--log-level", "WARNING"]


class Walker:
    """Calls tools through openai-agents, as its agent loop would, keeping what each call took."""

    def __init__(self, server: MCPServerStdio) -> None:
        self.server = server
        self.longest = 0.0
        self.unfinished: list[str] = []

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        while True:
            started = time.perf_counter()
            result = await self.server.call_tool(tool, arguments)  # raises past the 5 s timeout
            self.longest = max(self.longest, time.perf_counter() - started)
            assert not result.is_error, result.content
            answer = dict(result.structured_content or {})
            if tool not in REPEAT_TO_WAIT or "message" not in answer:
                return answer
            self.unfinished.append(f"{tool}: {answer['message']}")


async def test_openai_agents_walks_the_seed_workflow_on_a_fresh_data_dir(tmp_path: Path) -> None:
    params = {"command": sys.executable, "args": serve(tmp_path / "fresh")[1:]}
    async with MCPServerStdio(params, client_session_timeout_seconds=CLIENT_TIMEOUT) as server:  # type: ignore[arg-type]
        tools = await MCPUtil.get_function_tools(server, True, RunContextWrapper(None), Agent(name="probe"))
        assert tools and all(getattr(tool, "strict_json_schema", False) for tool in tools)
        walk = Walker(server)
        with anyio.fail_after(300):  # the default environment takes PyPI and tens of seconds
            box = await walk.call("create_devbox", name="authoring", wait_seconds=4)
        await walk.call("write_devbox_file", devbox_id=box["id"], file_path="tests/test_example.py", contents=FAILING)
        failing = await walk.call("execute_on_devbox", devbox_id=box["id"], command="pytest -q | tail -1")
        assert "1 failed" in failing["stdout"]
        snapshot = await walk.call("snapshot_devbox", devbox_id=box["id"], name="failing")
        await walk.call("shutdown_devbox", devbox_id=box["id"])
        # As a strict client sends it: every field, null where unused.
        scorer = {"type": "bash_script_scorer", "bash_script": "pytest -q && echo 1.0 || echo 0.0", "command": None}
        scenario = await walk.call(
            "create_scenario",
            name="agents-seed",
            input_context={"problem_statement": "Fix the failing test.", "additional_context": None},
            environment_parameters={"snapshot_id": snapshot["id"], "blueprint_id": None, "launch_parameters": None},
            scoring_contract={"scoring_function_parameters": [{"name": "pytest", "weight": 1, "scorer": scorer}]},
            reference_output=FIX,
            metadata=[{"key": "client", "value": "openai-agents"}],
        )
        assert scenario["metadata"] == {"client": "openai-agents"}
        run = await walk.call("start_run", scenario_id=scenario["id"])
        task = await walk.call("get_scenario", scenario_id=scenario["id"])
        assert task["input_context"]["problem_statement"] == "Fix the failing test."
        await walk.call("execute_on_devbox", devbox_id=run["devbox_id"], command=FIX)
        run = await walk.call("score_run", run_id=run["id"])
        while run["state"] == "scoring":
            run = await walk.call("get_run", run_id=run["id"], wait_seconds=3)
        assert run["state"] == "scored" and run["scoring_contract_result"]["score"] == 1.0, run
        completed = await walk.call("complete_run", run_id=run["id"])
        assert completed["state"] == "completed"
    assert walk.longest < CLIENT_TIMEOUT, walk.longest
    print(f"longest call {walk.longest:.2f} s; unfinished answers: {walk.unfinished}")


async def mcp1_python() -> Path:
    """The venv holding the 1.x client, made on first use."""
    python = MCP1_VENV / "bin" / "python"
    check = [str(python), "-c", "import mcp, importlib.metadata as m; assert m.version('mcp') < '2'"]
    if python.exists() and (await anyio.run_process(check, check=False)).returncode == 0:
        return python
    await anyio.run_process([sys.executable, "-m", "venv", "--clear", str(MCP1_VENV)])
    await anyio.run_process([str(python), "-m", "pip", "install", "--quiet", MCP1_REQUIREMENT])
    return python


async def test_mcp_1x_client_walks_the_seed_workflow(tmp_path: Path, default_blueprint_cache: Path) -> None:
    python = await mcp1_python()
    data_dir = tmp_path / "data"
    async with LocalBackend(data_dir) as engine:
        await seed_default_blueprint(engine, default_blueprint_cache)
    script = ROOT / "tests" / "clients" / "mcp1_seed.py"
    with anyio.fail_after(180):
        result = await anyio.run_process([str(python), str(script), *serve(data_dir)], check=False)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    seen = json.loads(result.stdout)
    assert seen["protocol"] < "2026"  # the handshake era: what 1.x speaks
    assert {"create_scenario", "start_run", "score_run"} <= set(seen["tools"])
    assert seen["metadata"] == {"client": "mcp1"} and "Fix the failing test." in seen["statement"]
    assert (seen["state"], seen["score"]) == ("completed", 1.0)
