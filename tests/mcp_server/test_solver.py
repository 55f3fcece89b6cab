"""The solver role: no authoring tools, and no reference output, scorer body, test file or (unless the
scenario allows it) scorer output in any tool result, resource or prompt. Pinned to a run, a solver
sees that run, its scenario and its devbox, and everything else is not found."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import PromptReference, ResourceTemplateReference

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.access import HIDDEN_OUTPUT, SOLVER_SEES_SCORER_OUTPUT
from scenario_mcp.mcp_server.docs import DOCS_URI
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.mcp_server.tools import TOOLS, solver_tools
from scenario_mcp.models import DevboxCreateParameters, StartScenarioRunParameters

from .helpers import (
    FIX,
    SECRET_REFERENCE,
    SECRET_SCORER_OUTPUT,
    SECRET_SCRIPT,
    SECRET_TEST_CMD,
    SECRET_TEST_FILE,
    SECRETS,
    error_text,
    ok,
    seed_scenario,
    seed_snapshot,
)

pytestmark = pytest.mark.anyio


class Recorder:
    """Every byte a solver client receives, and which tools it called."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.seen: list[str] = []
        self.called: set[str] = set()

    def keep(self, obj: Any) -> None:
        self.seen.append(obj.model_dump_json() if hasattr(obj, "model_dump_json") else json.dumps(obj, default=str))

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        self.called.add(tool)
        result = await self.client.call_tool(tool, arguments)
        self.keep(result)
        assert not result.is_error, result.content
        return dict(result.structured_content or {})

    async def fail(self, tool: str, **arguments: Any) -> str:
        self.called.add(tool)
        result = await self.client.call_tool(tool, arguments)
        self.keep(result)
        assert result.is_error
        return " ".join(getattr(c, "text", "") for c in result.content)

    async def read(self, uri: str) -> str:
        result = await self.client.read_resource(uri)
        self.keep(result)
        return "".join(getattr(c, "text", "") for c in result.contents)

    def assert_no_secret(self) -> None:
        everything = "\n".join(self.seen)
        leaked = [s for s in SECRETS if s in everything]
        assert not leaked, f"solver saw {leaked}"


async def wait_scored(client: Client, run_id: str) -> dict[str, Any]:
    with anyio.fail_after(60):
        while (run := await ok(client, "get_run", run_id=run_id))["state"] == "scoring":
            await anyio.sleep(0.05)
    return run


async def test_author_sees_every_secret(backend: LocalBackend) -> None:
    """The secrets are real: the author's views carry each of them (so their absence below means something)."""
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    async with Client(build_server(backend)) as client:
        seen = json.dumps(await ok(client, "get_scenario", scenario_id=scenario.id))
        finished = await ok(client, "run_scenario", scenario_id=scenario.id, command=FIX)
        seen += json.dumps(finished)
    for secret in (SECRET_REFERENCE, SECRET_SCRIPT, SECRET_TEST_FILE, SECRET_TEST_CMD, SECRET_SCORER_OUTPUT):
        assert secret in seen, secret


async def test_solver_walks_every_tool_resource_and_prompt_without_seeing_a_secret(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    author_box = await backend.create_devbox(DevboxCreateParameters(name="author-only"))
    await backend.write_file(author_box.id, "answer.txt", SECRET_REFERENCE)

    async with Client(build_server(backend, role="solver", toolsets=["all"])) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        assert listed == {s.name for s in solver_tools(pinned=False)}
        assert not listed & {s.name for s in TOOLS if s.authoring}
        assert {p.name for p in (await client.list_prompts()).prompts} == {"solve_scenario"}

        s = Recorder(client)
        await s.call("list_scenarios")
        shown = await s.call("get_scenario", scenario_id=scenario.id)
        assert shown["reference_output"] is None
        assert [f["name"] for f in shown["scoring_contract"]["scoring_function_parameters"]] == ["script", "tests"]

        run = await s.call("start_run", scenario_id=scenario.id)
        box = run["devbox_id"]
        await s.call("get_devbox", devbox_id=box)
        await s.call("list_devbox_files", devbox_id=box)
        source = await s.call("read_devbox_file", devbox_id=box, file_path="calc.py")
        await s.call(
            "write_devbox_file",
            devbox_id=box,
            file_path="calc.py",
            contents=source["contents"].replace("a - b", "a + b"),
        )
        await s.call("execute_on_devbox", devbox_id=box, command="python -c 'import calc; print(calc.add(2, 3))'")
        exe = (await s.call("execute_async", devbox_id=box, command="cat", attach_stdin=True))["execution_id"]
        await s.call("send_execution_stdin", devbox_id=box, execution_id=exe, text="hi\n", signal="EOF")
        await s.call("get_execution", devbox_id=box, execution_id=exe, wait_seconds=10)
        await s.call("read_execution_output", devbox_id=box, execution_id=exe)
        sleeper = (await s.call("execute_async", devbox_id=box, command="sleep 30"))["execution_id"]
        await s.call("kill_execution", devbox_id=box, execution_id=sleeper)

        scored = await s.call("score_run", run_id=run["id"], wait_seconds=60)
        assert scored["state"] == "scored" and scored["scoring_contract_result"]["score"] == 1.0
        for function in scored["scoring_contract_result"]["scoring_function_results"]:
            assert function["output"] == HIDDEN_OUTPUT and function["state"] == "complete"
        await s.call("get_run", run_id=run["id"])
        await s.call("list_runs")
        await s.call("list_runs", scenario_id=scenario.id)

        # Resources: everything listed, every template, the run's devbox files.
        for resource in (await client.list_resources()).resources:
            await s.read(str(resource.uri))
        await s.read(f"scenario://{scenario.id}/problem_statement")
        await s.read(f"run://{run['id']}")
        logs = await s.read(f"run://{run['id']}/logs")
        assert "scorer:tests" in logs and "state=complete" in logs
        await s.read(f"devbox://{box}/files/calc.py")
        s.keep(await client.get_prompt("solve_scenario", {"run_id": run["id"]}))
        for ref, argument in (
            (PromptReference(name="solve_scenario"), "run_id"),
            (ResourceTemplateReference(uri="scenario://{scenario_id}/problem_statement"), "scenario_id"),
            (ResourceTemplateReference(uri="devbox://{devbox_id}/files/{+path}"), "devbox_id"),
        ):
            s.keep(await client.complete(ref, {"name": argument, "value": ""}))

        await s.call("complete_run", run_id=run["id"])
        other = await s.call("start_run", scenario_id=scenario.id)
        await s.call("cancel_run", run_id=other["id"])
        await s.call("run_scenario", scenario_id=scenario.id, command=FIX)

        # An author's devbox (here holding the answer) is out of a solver's reach.
        assert "not found" in await s.fail("read_devbox_file", devbox_id=author_box.id, file_path="answer.txt")
        assert "not found" in await s.fail("execute_on_devbox", devbox_id=author_box.id, command="cat answer.txt")
        with pytest.raises(MCPError, match="not found"):
            await client.read_resource(f"devbox://{author_box.id}/files/answer.txt")

        assert s.called == listed, f"not walked: {listed - s.called}"
        s.assert_no_secret()


async def test_scenario_may_show_scorer_output_to_solvers(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend), metadata={SOLVER_SEES_SCORER_OUTPUT: "true"})
    async with Client(build_server(backend, role="solver", toolsets=["all"])) as client:
        done = await ok(client, "run_scenario", scenario_id=scenario.id, command=FIX)
        outputs = [f["output"] for f in done["run"]["scoring_contract_result"]["scoring_function_results"]]
        assert any(SECRET_SCORER_OUTPUT in o for o in outputs)
        logs = await client.read_resource(f"run://{done['run']['id']}/logs")
        assert SECRET_SCORER_OUTPUT in "".join(getattr(c, "text", "") for c in logs.contents)
        # ... but never the scorer body or the reference.
        shown = json.dumps(await ok(client, "get_scenario", scenario_id=scenario.id))
        assert SECRET_SCRIPT not in shown and SECRET_REFERENCE not in shown


async def test_pinned_solver_sees_one_run(backend: LocalBackend) -> None:
    snapshot_id = await seed_snapshot(backend)
    scenario = await seed_scenario(backend, snapshot_id)
    elsewhere = await seed_scenario(backend, snapshot_id)
    mine = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    theirs = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))

    async with Client(build_server(backend, role="solver", run_id=mine.id, toolsets=["all"])) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        assert listed == {s.name for s in solver_tools(pinned=True)}
        assert "start_run" not in listed and "run_scenario" not in listed

        assert (await ok(client, "get_run", run_id=mine.id))["devbox_id"] == mine.devbox_id
        assert [r["id"] for r in (await ok(client, "list_runs"))["runs"]] == [mine.id]
        assert [s["id"] for s in (await ok(client, "list_scenarios"))["scenarios"]] == [scenario.id]
        assert "not found" in await error_text(client, "get_run", run_id=theirs.id)
        assert "not found" in await error_text(client, "get_scenario", scenario_id=elsewhere.id)
        assert "not found" in await error_text(client, "get_devbox", devbox_id=theirs.devbox_id)
        assert "not found" in await error_text(client, "execute_on_devbox", devbox_id=theirs.devbox_id, command="id")
        assert "not found" in await error_text(client, "cancel_run", run_id=theirs.id)
        for uri in (f"run://{theirs.id}", f"run://{theirs.id}/logs", f"scenario://{elsewhere.id}/problem_statement"):
            with pytest.raises(MCPError, match="not found"):
                await client.read_resource(uri)
        with pytest.raises(MCPError, match="not found"):
            await client.get_prompt("solve_scenario", {"run_id": theirs.id})
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        assert uris == {
            DOCS_URI,
            f"scenario://{scenario.id}/problem_statement",
            f"run://{mine.id}",
            f"run://{mine.id}/logs",
        }
        completion = await client.complete(PromptReference(name="solve_scenario"), {"name": "run_id", "value": "scr_"})
        assert completion.completion.values == [mine.id]

        # Its own run works end to end.
        await ok(client, "execute_on_devbox", devbox_id=mine.devbox_id, command=FIX)
        brief = await client.get_prompt("solve_scenario", {"run_id": mine.id})
        text = "".join(getattr(m.content, "text", "") for m in brief.messages)
        assert mine.devbox_id in text and "calc.add subtracts" in text and "score_run" in text
        assert SECRET_SCRIPT not in text and SECRET_REFERENCE not in text
        await ok(client, "score_run", run_id=mine.id)
        run = await wait_scored(client, mine.id)
        assert run["scoring_contract_result"]["score"] == 1.0
        await ok(client, "complete_run", run_id=mine.id)
    await backend.cancel_run(theirs.id)
