"""The demo: the seed workflow, walked by a real MCP client against `scenario-mcp serve` over stdio."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

FAILING_TEST = """\
def add(a, b):
    return a - b


def test_add():
    assert add(2, 3) == 5
"""
FIX = "sed -i 's/return a - b/return a + b/' tests/test_example.py"
TERMINAL_FAILURES = {"failed", "timeout", "canceled"}
# Tools that answer with a `message` when their work outlasts `wait_seconds`: the same call again
# waits for the same work (operations.py).
REPEAT_TO_WAIT = {"create_devbox", "snapshot_devbox", "start_run", "execute_on_devbox", "validate_scenario"}


def say(step: str, detail: str = "") -> None:
    print(f"==> {step}" + (f"\n    {detail}" if detail else ""), flush=True)


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    while True:
        result = await client.call_tool(tool, arguments)
        if result.is_error:
            text = " ".join(getattr(block, "text", "") for block in result.content)
            raise SystemExit(f"demo: {tool} failed: {text}")
        assert result.structured_content is not None
        answer = dict(result.structured_content)
        if tool not in REPEAT_TO_WAIT or "message" not in answer:
            return answer
        say("   waiting", str(answer["message"]))


async def wait_run(client: Client, run_id: str, until: set[str]) -> dict[str, Any]:
    with anyio.fail_after(600):
        while True:
            run = await call(client, "get_run", run_id=run_id)
            if run["state"] in until or run["state"] in TERMINAL_FAILURES:
                return run
            await anyio.sleep(0.05)


async def run_demo(data_dir: Path) -> int:
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "scenario_mcp", "serve", "--data-dir", str(data_dir), "--log-level", "WARNING"],
    )
    say(f"starting `scenario-mcp serve` over stdio (data dir {data_dir})")
    async with Client(server) as client:
        tools = await client.list_tools()
        say("connected", f"{len(tools.tools)} tools: {', '.join(t.name for t in tools.tools)}")
        devbox_id, scenario_id = await author(client)
        run = await solve(client, scenario_id)
        if run["state"] in TERMINAL_FAILURES:
            say("run ended", json.dumps(run, indent=2))
            return 1
        return await finish(client, run, scenario_id, devbox_id)


async def author(client: Client) -> tuple[str, str]:
    """Steps 1-2: a devbox with a failing test, its snapshot, and a scenario on it."""
    say(
        "1. create a devbox with no blueprint (the default: Python 3 with pytest)",
        "`scenario-mcp setup` built the default environment; without it the first devbox waits for its build",
    )
    started = time.perf_counter()
    devbox = await call(client, "create_devbox", name="seed-authoring")
    say("   devbox", f"{devbox['id']} is {devbox['status']} ({time.perf_counter() - started:.2f} s)")
    await call(
        client,
        "write_devbox_file",
        devbox_id=devbox["id"],
        file_path="tests/test_example.py",
        contents=FAILING_TEST,
    )
    check = await call(client, "execute_on_devbox", devbox_id=devbox["id"], command="pytest -q | tail -1")
    say("   wrote a failing tests/test_example.py", f"pytest says: {check['stdout'].strip()}")
    snapshot = await call(client, "snapshot_devbox", devbox_id=devbox["id"], name="seed-failing-test")
    say("   snapshot_disk", f"{snapshot['id']} ({snapshot['size_bytes']} bytes of changes)")

    say("2. create_scenario on that snapshot with one bash_script_scorer, weight 1.0")
    scenario = await call(
        client,
        "create_scenario",
        name="fix-the-failing-test",
        input_context={"problem_statement": "The test in tests/test_example.py fails. Fix the code so it passes."},
        environment_parameters={"snapshot_id": snapshot["id"], "working_directory": "/home/user"},
        scoring_contract={
            "scoring_function_parameters": [
                {
                    "name": "pytest",
                    "weight": 1.0,
                    "scorer": {"type": "bash_script_scorer", "bash_script": "pytest -q && echo 1.0 || echo 0.0"},
                }
            ]
        },
        reference_output=FIX,
    )
    say("   scenario", scenario["id"])
    return str(devbox["id"]), str(scenario["id"])


async def solve(client: Client, scenario_id: str) -> dict[str, Any]:
    """Steps 3-5: start a run, act as the agent, score."""
    say("3. start_run, read the problem statement, wait for the devbox")
    run = await call(client, "start_run", scenario_id=scenario_id, run_name="demo")
    statement = await client.read_resource(f"scenario://{scenario_id}/problem_statement")
    text = getattr(statement.contents[0], "text", "")
    say("   problem statement", text.strip().splitlines()[0])
    run = await wait_run(client, run["id"], {"running"})
    say("   run", f"{run['id']} is {run['state']} on devbox {run['devbox_id']}")

    say("4. act as the agent: inspect, fix, check")
    source = await call(client, "read_devbox_file", devbox_id=run["devbox_id"], file_path="tests/test_example.py")
    fixed = source["contents"].replace("return a - b", "return a + b")
    await call(
        client,
        "write_devbox_file",
        devbox_id=run["devbox_id"],
        file_path="tests/test_example.py",
        contents=fixed,
    )
    check = await call(client, "execute_on_devbox", devbox_id=run["devbox_id"], command="pytest -q | tail -1")
    say("   pytest in the devbox", check["stdout"].strip())

    say("5. score_run, poll get_run while running/scoring")
    run = await call(client, "score_run", run_id=run["id"])
    say("   state", run["state"])
    run = await wait_run(client, run["id"], {"scored"})
    if run["state"] not in TERMINAL_FAILURES:
        say("   state", f"{run['state']}, score {run['scoring_contract_result']['score']}")
    return run


async def finish(client: Client, run: dict[str, Any], scenario_id: str, devbox_id: str) -> int:
    """Step 6: complete the run, print its outcome and logs."""
    say("6. complete_run")
    run = await call(client, "complete_run", run_id=run["id"])
    final_score = (run.get("scoring_contract_result") or {}).get("score")
    logs = await client.read_resource(f"run://{run['id']}/logs")
    await call(client, "shutdown_devbox", devbox_id=devbox_id)
    print(
        json.dumps(
            {"scenarioId": scenario_id, "runId": run["id"], "finalState": run["state"], "finalScore": final_score},
            indent=2,
        )
    )
    say("run logs", getattr(logs.contents[0], "text", "").replace("\n", "\n    "))
    return 0 if final_score == 1.0 else 1
