"""The seed workflow through the 1.x `mcp` client (the one most deployed agents use), run by the
venv that holds it (.tools/mcp1, made by tests/test_e2e_clients.py): `python mcp1_seed.py DATA_DIR
SERVER_COMMAND...`. Prints one JSON document: what the workflow saw. Written for mcp 1.x only
(camelCase result fields, ClientSession over stdio_client), so it imports nothing of this project.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

FAILING = "def add(a, b):\n    return a - b\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
FIX = "sed -i 's/a - b/a + b/' tests/test_example.py"
REPEAT_TO_WAIT = {"create_devbox", "snapshot_devbox", "start_run", "execute_on_devbox"}


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    while True:
        result = await session.call_tool(tool, arguments)
        if result.isError:
            raise SystemExit(f"{tool} failed: {result.content}")
        answer = dict(result.structuredContent or {})
        if tool not in REPEAT_TO_WAIT or "message" not in answer:
            return answer


async def main(command: list[str]) -> None:
    server = StdioServerParameters(command=command[0], args=command[1:])
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        tools = (await session.list_tools()).tools
        box = await call(session, "create_devbox", name="mcp1")
        test_file = {"file_path": "tests/test_example.py", "contents": FAILING}
        await call(session, "write_devbox_file", devbox_id=box["id"], **test_file)
        snapshot = await call(session, "snapshot_devbox", devbox_id=box["id"])
        await call(session, "shutdown_devbox", devbox_id=box["id"])
        scorer = {"type": "bash_script_scorer", "bash_script": "pytest -q && echo 1.0 || echo 0.0"}
        scenario = await call(
            session,
            "create_scenario",
            name="mcp1-seed",
            input_context={"problem_statement": "Fix the failing test."},
            environment_parameters={"snapshot_id": snapshot["id"]},
            scoring_contract={"scoring_function_parameters": [{"name": "pytest", "weight": 1, "scorer": scorer}]},
            metadata=[{"key": "client", "value": "mcp1"}],
        )
        run = await call(session, "start_run", scenario_id=scenario["id"])
        statement = await session.read_resource(f"scenario://{scenario['id']}/problem_statement")
        await call(session, "execute_on_devbox", devbox_id=run["devbox_id"], command=FIX)
        run = await call(session, "score_run", run_id=run["id"], wait_seconds=30)
        run = await call(session, "complete_run", run_id=run["id"])
    print(
        json.dumps(
            {
                "protocol": init.protocolVersion,
                "tools": sorted(tool.name for tool in tools),
                "metadata": scenario["metadata"],
                "statement": statement.contents[0].text,  # type: ignore[union-attr]
                "state": run["state"],
                "score": run["scoring_contract_result"]["score"],
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
