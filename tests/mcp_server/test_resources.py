"""The MCP resources (resources.py): the text each one renders, the MIME type a devbox file is served
with, and what resources/list shows; through the functions and a real mcp.Client over a real LocalBackend."""

from __future__ import annotations

import json

import pytest
from mcp import Client
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.shared.exceptions import MCPError

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.docs import DOCS_URI
from scenario_mcp.mcp_server.resources import (
    ResourceLister,
    adjust_mime_types,
    iso,
    logs_text,
    problem_statement_text,
)
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.models import (
    BashScriptScorer,
    DevboxCreateParameters,
    InputContext,
    RunLogEntry,
    ScenarioCreateParameters,
    ScenarioEnvironment,
    ScoringContract,
    ScoringFunction,
    StartScenarioRunParameters,
)

from .helpers import FIX, ok, seed_scenario, seed_snapshot, text_of

pytestmark = pytest.mark.anyio


async def test_problem_statement_names_the_task_its_context_and_working_directory(backend: LocalBackend) -> None:
    snapshot_id = await seed_snapshot(backend)
    plain = await seed_scenario(backend, snapshot_id)
    assert problem_statement_text(plain) == (
        "# fix-calc\n\ncalc.add subtracts; make it add.\n\n(Work in /home/user on your run's devbox.)\n"
    )
    with_context = await backend.create_scenario(
        ScenarioCreateParameters(
            name="in-a-project",
            input_context=InputContext(problem_statement="Make it add.", additional_context="Python 3 only."),
            environment_parameters=ScenarioEnvironment(snapshot_id=snapshot_id, working_directory="/home/user/proj"),
            scoring_contract=ScoringContract(
                scoring_function_parameters=[
                    ScoringFunction(name="s", weight=1, scorer=BashScriptScorer(bash_script="echo 1.0"))
                ]
            ),
        )
    )
    expected = (
        "# in-a-project\n\nMake it add.\n\n## Additional context\n\nPython 3 only.\n\n"
        "(Work in /home/user/proj on your run's devbox.)\n"
    )
    assert problem_statement_text(with_context) == expected
    async with Client(build_server(backend)) as client:
        read = await client.read_resource(f"scenario://{with_context.id}/problem_statement")
    assert text_of(read) == expected and read.contents[0].mime_type == "text/markdown"


def test_logs_text_heads_each_entry_with_its_utc_time_and_source() -> None:
    assert iso(0) == "1970-01-01T00:00:00.000+00:00"
    assert iso(1_700_000_000_123) == "2023-11-14T22:13:20.123+00:00"
    entries = [
        RunLogEntry(timestamp_ms=0, source="exec:exe_1", message="$ true"),
        RunLogEntry(timestamp_ms=1_500, source="scorer:tests", message="state=complete score=1.0"),
    ]
    assert logs_text(entries) == (
        "[1970-01-01T00:00:00.000+00:00] exec:exe_1\n$ true\n\n"
        "[1970-01-01T00:00:01.500+00:00] scorer:tests\nstate=complete score=1.0\n"
    )
    assert logs_text([]) == ""


async def test_a_finished_run_reads_as_json_and_its_logs_in_order(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    async with Client(build_server(backend)) as client:
        done = await ok(client, "run_scenario", scenario_id=scenario.id, command=FIX)
        run_id = done["run"]["id"]
        state = json.loads(text_of(await client.read_resource(f"run://{run_id}")))
        logs = await client.read_resource(f"run://{run_id}/logs")
    assert state["state"] == "completed" and state["scoring_contract_result"]["score"] == 1.0
    assert logs.contents[0].mime_type == "text/plain"
    assert text_of(logs) == logs_text(await backend.run_logs(run_id))
    entries = await backend.run_logs(run_id)
    times = [entry.timestamp_ms for entry in entries]
    assert times == sorted(times)
    sources = [entry.source for entry in entries]
    assert any(s.startswith("exec:") for s in sources) and {"scorer:script", "scorer:tests"} <= set(sources)
    # The command (the run's agent) ran before the scorers.
    assert max(i for i, s in enumerate(sources) if s.startswith("exec:")) < sources.index("scorer:script")


def test_devbox_files_are_served_with_the_type_their_name_and_content_suggest() -> None:
    def served(path: str, content: str | bytes) -> str | None:
        (item,) = adjust_mime_types(f"devbox://dbx_1/files/{path}", [ReadResourceContents(content, "x/original")])
        assert item.content == content
        return item.mime_type

    assert served("pkg/mod.py", "X = 1\n") == "text/x-python"
    assert served("data.json", "{}") == "application/json"
    assert served("notes", "plain words") == "text/plain"
    assert served("image.png", "decoded as text after all") == "text/plain"  # text content is never an image
    assert served("image.png", b"\x89PNG") == "image/png"
    assert served("blob", b"\x00\xff") == "application/octet-stream"
    other = [ReadResourceContents("{}", "application/json")]
    assert adjust_mime_types("run://scr_1", other) is other  # only devbox files are adjusted


async def test_devbox_file_errors_are_resource_not_found(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters(name="files"))
    await backend.write_file(box.id, "dir/conf.json", '{"a": 1}')
    async with Client(build_server(backend)) as client:
        read = await client.read_resource(f"devbox://{box.id}/files/dir/conf.json")
        assert text_of(read) == '{"a": 1}' and read.contents[0].mime_type == "application/json"
        with pytest.raises(MCPError, match=rf"devbox://{box.id}/files/dir: "):
            await client.read_resource(f"devbox://{box.id}/files/dir")  # a directory: nothing to read
        with pytest.raises(MCPError, match="not found"):
            await client.read_resource("devbox://dbx_nope/files/conf.json")


async def test_lister_shows_recent_scenarios_and_runs_or_only_the_pinned_run(backend: LocalBackend) -> None:
    snapshot_id = await seed_snapshot(backend)
    scenario = await seed_scenario(backend, snapshot_id)
    other = await seed_scenario(backend, snapshot_id)
    named = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id, run_name="named"))
    unnamed = await backend.start_run(StartScenarioRunParameters(scenario_id=other.id))

    listed = {str(r.uri): r for r in await ResourceLister(backend).resources()}
    assert set(listed) == {
        DOCS_URI,
        f"scenario://{scenario.id}/problem_statement",
        f"scenario://{other.id}/problem_statement",
        f"run://{named.id}",
        f"run://{named.id}/logs",
        f"run://{unnamed.id}",
        f"run://{unnamed.id}/logs",
    }
    assert listed[f"scenario://{scenario.id}/problem_statement"].title == "Problem statement: fix-calc"
    assert listed[f"run://{named.id}"].title == "Run named" and listed[f"run://{named.id}"].mime_type == (
        "application/json"
    )
    assert listed[f"run://{unnamed.id}/logs"].title == f"Run {unnamed.id} logs"

    pinned = await ResourceLister(backend, pinned_run_id=unnamed.id).resources()
    assert [str(r.uri) for r in pinned] == [
        DOCS_URI,
        f"scenario://{other.id}/problem_statement",
        f"run://{unnamed.id}",
        f"run://{unnamed.id}/logs",
    ]
    for run in (named, unnamed):
        await backend.cancel_run(run.id)
