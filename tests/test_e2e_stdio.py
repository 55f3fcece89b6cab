"""End to end: `scenario-mcp serve` as a subprocess, a real mcp.Client over real stdio."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from scenario_mcp.local.engine import LocalBackend

from .conftest import seed_default_blueprint

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

FAILING = "def add(a, b):\n    return a - b\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


async def run_to_score(client: Client, scenario_id: str, fix: str | None) -> dict[str, Any]:
    run = await ok(client, "start_run", scenario_id=scenario_id)
    if fix is not None:
        result = await ok(client, "execute_on_devbox", devbox_id=run["devbox_id"], command=fix)
        assert result["exit_status"] == 0, result
    await ok(client, "score_run", run_id=run["id"])
    with anyio.fail_after(120):
        while (run := await ok(client, "get_run", run_id=run["id"]))["state"] in ("running", "scoring"):
            await anyio.sleep(0.05)
    assert run["state"] == "scored", run
    return await ok(client, "complete_run", run_id=run["id"])


async def test_seed_workflow_over_stdio(tmp_path: Path, default_blueprint_cache: Path) -> None:
    data_dir = tmp_path / "data"
    async with LocalBackend(data_dir) as engine:
        await seed_default_blueprint(engine, default_blueprint_cache)
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "scenario_mcp", "serve", "--data-dir", str(data_dir)]
    )
    async with Client(server) as client:
        box = await ok(client, "create_devbox")
        await ok(
            client,
            "write_devbox_file",
            devbox_id=box["id"],
            file_path="tests/test_example.py",
            contents=FAILING,
        )
        snap = await ok(client, "snapshot_devbox", devbox_id=box["id"])
        await ok(client, "shutdown_devbox", devbox_id=box["id"])
        scenario = await ok(
            client,
            "create_scenario",
            name="seed",
            input_context={"problem_statement": "Fix the failing test."},
            environment_parameters={"snapshot_id": snap["id"]},
            scoring_contract={
                "scoring_function_parameters": [
                    {
                        "name": "pytest",
                        "weight": 1.0,
                        "scorer": {
                            "type": "bash_script_scorer",
                            "bash_script": "pytest -q && echo 1.0 || echo 0.0",
                        },
                    }
                ]
            },
            reference_output="sed -i 's/a - b/a + b/' tests/test_example.py",
        )
        solved = await run_to_score(client, scenario["id"], "sed -i 's/a - b/a + b/' tests/test_example.py")
        assert solved["state"] == "completed"
        assert solved["scoring_contract_result"]["score"] == 1.0
        untouched = await run_to_score(client, scenario["id"], None)
        assert untouched["scoring_contract_result"]["score"] == 0.0
        logs = await client.read_resource(f"run://{solved['id']}/logs")
        assert "1 passed" in getattr(logs.contents[0], "text", "")


async def test_serve_logs_to_stderr_only(tmp_path: Path) -> None:
    """stdout is the protocol: a bad data dir is reported on stderr with a non-zero exit."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = await anyio.run_process(
        [sys.executable, "-m", "scenario_mcp", "serve", "--data-dir", str(blocker / "sub")],
        check=False,
        stdin=None,
    )
    assert result.returncode != 0
    assert result.stdout == b""
    assert b"scenario-mcp" in result.stderr


async def test_solver_pinned_to_a_run_over_stdio(tmp_path: Path, default_blueprint_cache: Path) -> None:
    """`serve --role solver --run RUN_ID`: no authoring tools, one run, its devbox; the rest is not found."""
    from scenario_mcp.models import StartScenarioRunParameters

    from .mcp_server.helpers import FIX, SECRETS, error_text, seed_scenario, seed_snapshot

    data_dir = tmp_path / "data"
    async with LocalBackend(data_dir) as engine:
        await seed_default_blueprint(engine, default_blueprint_cache)
        scenario = await seed_scenario(engine, await seed_snapshot(engine))
        mine = await engine.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
        theirs = await engine.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    serve = [sys.executable, "-m", "scenario_mcp", "serve", "--data-dir", str(data_dir)]
    server = StdioServerParameters(command=serve[0], args=[*serve[1:], "--role", "solver", "--run", mine.id])
    async with Client(server, mode="legacy") as client:  # the handshake era over stdio (the seed test: current era)
        assert client.protocol_version < "2026"
        tools = {t.name for t in (await client.list_tools()).tools}
        assert "get_run" in tools and not tools & {"create_scenario", "start_run", "validate_scenario"}
        assert "not found" in await error_text(client, "get_run", run_id=theirs.id)
        scenario_view = await ok(client, "get_scenario", scenario_id=scenario.id)
        await ok(client, "execute_on_devbox", devbox_id=mine.devbox_id, command=FIX)
        await ok(client, "score_run", run_id=mine.id, wait_seconds=60)
        run = await ok(client, "complete_run", run_id=mine.id)
        assert run["scoring_contract_result"]["score"] == 1.0
        shown = str(scenario_view) + str(run)
        assert not [s for s in SECRETS if s in shown]

    async with LocalBackend(data_dir) as engine:
        await engine.cancel_run(theirs.id)  # leave no devbox running behind the test

    for extra, code, message in (
        (["--run", mine.id], 2, b"--role solver"),
        (["--role", "solver", "--run", "scr_missing"], 1, b"scr_missing"),
    ):
        result = await anyio.run_process([*serve, *extra], check=False, stdin=None)
        assert result.returncode == code and message in result.stderr, result.stderr
