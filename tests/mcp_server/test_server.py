"""The MCP server (server.py) through a real in-memory mcp.Client over a real LocalBackend: what it
publishes, how it reports errors and progress, and the options build_server takes."""

from __future__ import annotations

import json
import re
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import PromptReference, ResourceTemplateReference

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.mcp_server.tools import TOOLS

from .helpers import Progress, error_text, ok, seed_scenario, seed_snapshot, text_of

pytestmark = pytest.mark.anyio

SCORER = {"type": "bash_script_scorer", "bash_script": "pytest -q && echo 1.0 || echo 0.0"}


def scenario_body(snapshot_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "fix-test",
        "input_context": {"problem_statement": "Make tests/test_example.py pass."},
        "environment_parameters": {"snapshot_id": snapshot_id},
        "scoring_contract": {"scoring_function_parameters": [{"name": "pytest", "weight": 2.0, "scorer": SCORER}]},
        "reference_output": "sed -i s/2/1/ tests/test_example.py",
        **extra,
    }


READS = {name for name in (spec.name for spec in TOOLS) if name.startswith(("get_", "list_", "read_"))}
DESTRUCTIVE = {"archive_scenario", "shutdown_devbox", "cancel_run", "complete_run", "kill_execution", "delete_agent"}
IDEMPOTENT_WRITES = {
    "update_scenario",
    "archive_scenario",
    "unarchive_scenario",
    "validate_scenario",
    "shutdown_devbox",
    "write_devbox_file",
    "kill_execution",
    "import_scenarios",  # a repeat of an unchanged task changes nothing
    "open_devbox_port",  # a devbox has one tunnel: a repeat returns the same
}


async def test_every_tool_has_schema_title_and_annotations(backend: LocalBackend) -> None:
    async with Client(build_server(backend, toolsets=["all"])) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(listed) == {spec.name for spec in TOOLS}
    assert {"create_scenario", "update_scenario", "get_scenario", "list_scenarios", "archive_scenario"} <= set(listed)
    assert {"create_devbox", "get_devbox", "list_devboxes", "shutdown_devbox", "snapshot_devbox"} <= set(listed)
    assert {"execute_on_devbox", "execute_async", "kill_execution", "send_execution_stdin"} <= set(listed)
    assert {"read_devbox_file", "write_devbox_file", "list_devbox_files", "run_scenario"} <= set(listed)
    assert {"start_run", "get_run", "list_runs", "score_run", "complete_run", "cancel_run"} <= set(listed)
    for name, tool in listed.items():
        assert tool.title and tool.description and len(tool.description) >= 20, name
        assert tool.input_schema.get("type") == "object", name
        assert tool.output_schema is not None and tool.output_schema.get("type") == "object", name
        hints = tool.annotations
        assert hints is not None and hints.open_world_hint is False, name
        assert hints.read_only_hint is (name in READS | {"validate_scenario"}), name
        assert hints.destructive_hint is (name in DESTRUCTIVE), name
        assert hints.idempotent_hint is (name in READS | IDEMPOTENT_WRITES), name
    # create_scenario takes Runloop's create body (its maps as {key, value} lists): its fields are the arguments.
    props = listed["create_scenario"].input_schema["properties"]
    assert {"name", "input_context", "scoring_contract", "environment_parameters", "reference_output"} <= set(props)
    assert listed["execute_on_devbox"].input_schema["required"] == ["devbox_id", "command"]
    # Defaults and enums reach the published schema, inline; bounds are the server's to check (and to explain).
    assert listed["list_scenarios"].input_schema["properties"]["limit"] == {"default": 20, "type": "integer"}
    assert set(listed["list_runs"].input_schema["properties"]["state"]["enum"]) >= {"running", "scored", None}
    assert listed["create_devbox"].input_schema["properties"]["wait_seconds"]["default"] == 4


async def test_default_toolsets_and_unknown_ones(backend: LocalBackend) -> None:
    async with Client(build_server(backend)) as client:
        author = {tool.name for tool in (await client.list_tools()).tools}
    async with Client(build_server(backend, role="solver", toolsets=["files"])) as client:
        files = {tool.name for tool in (await client.list_tools()).tools}
    assert "create_scenario" in author and not author & {"create_blueprint", "create_benchmark"}
    assert files == {"read_devbox_file", "write_devbox_file", "list_devbox_files"}
    with pytest.raises(ValueError, match="unknown toolset"):
        build_server(backend, toolsets=["nope"])


async def test_resources_prompts_and_completions(backend: LocalBackend) -> None:
    snapshot_id = await seed_snapshot(backend)
    scenario = await seed_scenario(backend, snapshot_id)
    async with Client(build_server(backend)) as client:
        run = await ok(client, "start_run", scenario_id=scenario.id, run_name="listed")
        await ok(client, "execute_on_devbox", devbox_id=run["devbox_id"], command="echo hello-logs")
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        assert {
            f"scenario://{scenario.id}/problem_statement",
            f"run://{run['id']}",
            f"run://{run['id']}/logs",
        } <= uris
        templates = {t.uri_template: t for t in (await client.list_resource_templates()).resource_templates}
        assert templates["scenario://{scenario_id}/problem_statement"].mime_type == "text/markdown"
        assert templates["run://{run_id}"].mime_type == "application/json"
        assert "devbox://{devbox_id}/files/{+path}" in templates

        statement = await client.read_resource(f"scenario://{scenario.id}/problem_statement")
        assert statement.contents[0].mime_type == "text/markdown"
        assert "calc.add subtracts" in text_of(statement)
        state = json.loads(text_of(await client.read_resource(f"run://{run['id']}")))
        assert state["state"] == "running" and state["devbox_id"] == run["devbox_id"]
        logs = text_of(await client.read_resource(f"run://{run['id']}/logs"))
        assert re.search(
            r"^\[\d{4}-\d\d-\d\dT[\d:.]+\+00:00\] exec:exe_\w+\n\$ echo hello-logs\nhello-logs", logs, re.M
        ), logs

        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert [a.name for a in prompts["solve_scenario"].arguments or []] == ["run_id"]
        assert [a.name for a in prompts["author_scenario"].arguments or []] == ["goal"]
        brief = await client.get_prompt("solve_scenario", {"run_id": run["id"]})
        text = "".join(getattr(m.content, "text", "") for m in brief.messages)
        assert run["devbox_id"] in text and "/home/user" in text and "score_run" in text and "calc.add" in text
        guide = await client.get_prompt("author_scenario", {"goal": "fix a date parser"})
        text = "".join(getattr(m.content, "text", "") for m in guide.messages)
        assert "fix a date parser" in text and "validate_scenario" in text and "weight" in text
        assert "reference" in text.lower()
        with pytest.raises(MCPError, match="not found"):
            await client.get_prompt("solve_scenario", {"run_id": "scr_nope"})

        completion = await client.complete(
            ResourceTemplateReference(uri="run://{run_id}"), {"name": "run_id", "value": run["id"][:8]}
        )
        assert run["id"] in completion.completion.values
        completion = await client.complete(PromptReference(name="nope"), {"name": "arg1", "value": "x"})
        assert completion.completion.values == []
        await ok(client, "cancel_run", run_id=run["id"])


async def test_legacy_handshake_era_in_memory(backend: LocalBackend) -> None:
    async with Client(build_server(backend, toolsets=["all"]), mode="legacy") as client:
        assert client.protocol_version < "2026"
        assert {t.name for t in (await client.list_tools()).tools} == {spec.name for spec in TOOLS}
        assert "scenario 'scn_nope' not found" in await error_text(client, "get_scenario", scenario_id="scn_nope")


async def test_seed_workflow_through_the_client(backend: LocalBackend) -> None:
    async with Client(build_server(backend)) as client:
        box = await ok(client, "create_devbox")
        await ok(
            client,
            "write_devbox_file",
            devbox_id=box["id"],
            file_path="tests/test_example.py",
            contents="def test_one():\n    assert 2 == 1\n",
        )
        snap = await ok(client, "snapshot_devbox", devbox_id=box["id"], name="failing")
        scenario = await ok(client, "create_scenario", **scenario_body(snap["id"]))
        assert scenario["scoring_contract"]["scoring_function_parameters"][0]["weight"] == 1.0  # normalised
        assert scenario["environment"]["snapshot_id"] == snap["id"]

        run = await ok(client, "start_run", scenario_id=scenario["id"], run_name="r1")
        assert run["state"] == "running"
        statement = await client.read_resource(f"scenario://{scenario['id']}/problem_statement")
        assert "Make tests/test_example.py pass." in getattr(statement.contents[0], "text", "")

        read = await ok(client, "read_devbox_file", devbox_id=run["devbox_id"], file_path="tests/test_example.py")
        await ok(
            client,
            "write_devbox_file",
            devbox_id=run["devbox_id"],
            file_path="tests/test_example.py",
            contents=read["contents"].replace("2 == 1", "1 == 1"),
        )
        executed = await ok(client, "execute_on_devbox", devbox_id=run["devbox_id"], command="pytest -q")
        assert executed["exit_status"] == 0 and "1 passed" in executed["stdout"]

        scoring = await ok(client, "score_run", run_id=run["id"], wait_seconds=0)
        assert scoring["state"] == "scoring" and "get_run" in scoring["message"]
        while (current := await ok(client, "get_run", run_id=run["id"]))["state"] == "scoring":
            pass
        assert current["state"] == "scored"
        assert current["scoring_contract_result"]["score"] == 1.0

        done = await ok(client, "complete_run", run_id=run["id"])
        assert done["state"] == "completed"
        devbox = await ok(client, "get_devbox", devbox_id=run["devbox_id"])
        assert devbox["status"] == "shutdown"

        logs = await client.read_resource(f"run://{run['id']}/logs")
        text = getattr(logs.contents[0], "text", "")
        assert text.index("$ pytest -q") < text.index("scorer:pytest") < text.index("run completed")

        listed = await ok(client, "list_runs", scenario_id=scenario["id"])
        assert [r["id"] for r in listed["runs"]] == [run["id"]]


async def test_bad_input_is_an_actionable_tool_error(backend: LocalBackend) -> None:
    async with Client(build_server(backend)) as client:
        assert "scenario 'scn_nope' not found" in await error_text(client, "get_scenario", scenario_id="scn_nope")
        assert "not found" in await error_text(client, "get_run", run_id="scr_nope")
        text = await error_text(
            client,
            "create_scenario",
            name="x",
            input_context={"problem_statement": "p"},
            scoring_contract={"scoring_function_parameters": [{"name": "bad name!", "weight": 1, "scorer": SCORER}]},
        )
        assert "scoring_function_parameters" in text and "name" in text
        text = await error_text(
            client,
            "create_scenario",
            name="x",
            input_context={"problem_statement": "p"},
            scoring_contract={"scoring_function_parameters": [{"name": "a", "weight": 0, "scorer": SCORER}]},
        )
        assert "weight" in text
        text = await error_text(client, "create_scenario", **scenario_body("snp_missing"))
        assert "snapshot 'snp_missing' not found" in text
        assert "missing" in (await error_text(client, "execute_on_devbox", devbox_id="dbx_x")).lower()
        box = await ok(client, "create_devbox")
        text = await error_text(client, "read_devbox_file", devbox_id=box["id"], file_path="../../etc/passwd")
        assert "escapes the devbox home" in text
        text = await error_text(client, "score_run", run_id="scr_missing")
        assert "not found" in text


async def test_state_errors_name_the_state(backend: LocalBackend) -> None:
    async with Client(build_server(backend)) as client:
        box = await ok(client, "create_devbox")
        snap = await ok(client, "snapshot_devbox", devbox_id=box["id"])
        scenario = await ok(client, "create_scenario", **scenario_body(snap["id"]))
        run = await ok(client, "start_run", scenario_id=scenario["id"])
        await ok(client, "cancel_run", run_id=run["id"])
        text = await error_text(client, "score_run", run_id=run["id"])
        assert "`canceled`" in text and "score" in text
        text = await error_text(client, "execute_on_devbox", devbox_id=run["devbox_id"], command="true")
        assert "canceled" in text


async def test_unknown_resource_ids_are_not_found(backend: LocalBackend) -> None:
    async with Client(build_server(backend)) as client:
        with pytest.raises(MCPError, match="not found"):
            await client.read_resource("scenario://scn_nope/problem_statement")
        with pytest.raises(MCPError, match="not found"):
            await client.read_resource("run://scr_nope/logs")
        templates = (await client.list_resource_templates()).resource_templates
        assert {t.uri_template for t in templates} >= {
            "scenario://{scenario_id}/problem_statement",
            "run://{run_id}/logs",
        }


async def test_a_remote_backend_makes_the_tools_open_world(backend: LocalBackend) -> None:
    async with Client(build_server(backend, open_world=True)) as client:
        tools = (await client.list_tools()).tools
    assert all(t.annotations and t.annotations.open_world_hint is True for t in tools)


async def test_conformance_fixture_only_on_request(backend: LocalBackend) -> None:
    async with Client(build_server(backend)) as client:
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert "test://template/{id}/data" not in templates
    async with Client(build_server(backend, conformance_fixtures=True)) as client:
        read = await client.read_resource("test://template/123/data")
        assert '"id": "123"' in getattr(read.contents[0], "text", "")


async def test_long_calls_report_progress_and_stop_when_cancelled(backend: LocalBackend) -> None:
    async with Client(build_server(backend)) as client:
        box = (await ok(client, "create_devbox"))["id"]
        progress = Progress()
        result = await client.call_tool(
            "execute_on_devbox", {"devbox_id": box, "command": "sleep 2.5; echo done"}, progress_callback=progress
        )
        assert not result.is_error and (result.structured_content or {})["stdout"] == "done\n"
        assert progress.events and "still working" in (progress.events[0][2] or "")
        progress.assert_increasing()

        # A cancelled call takes its command with it.
        with anyio.move_on_after(1):
            await client.call_tool("execute_on_devbox", {"devbox_id": box, "command": "touch started; sleep 30"})
        with anyio.fail_after(10):
            while "sleep 30" in (await ok(client, "execute_on_devbox", devbox_id=box, command="ps -eo args"))["stdout"]:
                await anyio.sleep(0.1)
