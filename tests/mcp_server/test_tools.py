"""Every tool of the author surface through a real in-memory mcp.Client over a real LocalBackend."""

from __future__ import annotations

import base64
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import BlobResourceContents, TextResourceContents

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.server import build_server

from .helpers import FIX, error_text, ok, seed_scenario, seed_snapshot

pytestmark = pytest.mark.anyio


class Progress:
    def __init__(self) -> None:
        self.events: list[tuple[float, float | None, str | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.events.append((progress, total, message))

    def assert_increasing(self) -> None:
        values = [p for p, _, _ in self.events]
        assert values == sorted(values) and len(set(values)) == len(values), self.events


async def test_scenario_update_list_paging_archive(backend: LocalBackend) -> None:
    snapshot_id = await seed_snapshot(backend)
    ids = [(await seed_scenario(backend, snapshot_id)).id for _ in range(3)]
    async with Client(build_server(backend)) as client:
        first = await ok(client, "list_scenarios", limit=2)
        assert first["has_more"] is True and len(first["scenarios"]) == 2
        rest = await ok(client, "list_scenarios", limit=2, starting_after=first["scenarios"][-1]["id"])
        assert rest["has_more"] is False
        assert sorted(s["id"] for s in first["scenarios"] + rest["scenarios"]) == sorted(ids)

        updated = await ok(
            client,
            "update_scenario",
            scenario_id=ids[0],
            name="renamed",
            input_context={"problem_statement": "New words."},
        )
        assert updated["name"] == "renamed" and updated["input_context"]["problem_statement"] == "New words."
        assert updated["reference_output"].startswith(FIX)  # untouched fields stay
        named = await ok(client, "list_scenarios", name="renamed")
        assert [s["id"] for s in named["scenarios"]] == [ids[0]]

        archived = await ok(client, "archive_scenario", scenario_id=ids[0])
        assert archived["status"] == "archived"
        assert "unarchive" in await error_text(client, "start_run", scenario_id=ids[0])
        assert (await ok(client, "unarchive_scenario", scenario_id=ids[0]))["status"] == "active"
        assert "not found" in await error_text(client, "update_scenario", scenario_id="scn_nope", name="x")


async def test_validate_scenario(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    async with Client(build_server(backend)) as client:
        verdict = await ok(client, "validate_scenario", scenario_id=scenario.id)
    assert verdict["valid"] is True, verdict
    assert verdict["gold"]["result"]["score"] == 1.0
    assert verdict["untouched"]["result"]["score"] < 1.0


async def test_devbox_tools_and_files(backend: LocalBackend) -> None:
    async with Client(build_server(backend)) as client:
        box = await ok(client, "create_devbox", name="files")
        listed = await ok(client, "list_devboxes", status="running")
        assert box["id"] in [d["id"] for d in listed["devboxes"]]
        await ok(client, "write_devbox_file", devbox_id=box["id"], file_path="pkg/mod.py", contents="X = 1\n")
        await ok(client, "execute_on_devbox", devbox_id=box["id"], command="printf '\\x00\\xff\\x01' > pkg/data.bin")
        entries = (await ok(client, "list_devbox_files", devbox_id=box["id"]))["entries"]
        assert "pkg/" in entries
        inside = await ok(client, "list_devbox_files", devbox_id=box["id"], path="pkg")
        assert inside["entries"] == ["data.bin", "mod.py"]

        text = await client.read_resource(f"devbox://{box['id']}/files/pkg/mod.py")
        assert isinstance(text.contents[0], TextResourceContents)
        assert text.contents[0].text == "X = 1\n" and text.contents[0].mime_type == "text/x-python"
        blob = await client.read_resource(f"devbox://{box['id']}/files/pkg/data.bin")
        assert isinstance(blob.contents[0], BlobResourceContents)
        assert base64.b64decode(blob.contents[0].blob) == b"\x00\xff\x01"
        with pytest.raises(MCPError, match=r"missing\.py"):
            await client.read_resource(f"devbox://{box['id']}/files/pkg/missing.py")
        with pytest.raises(MCPError):
            await client.read_resource(f"devbox://{box['id']}/files/../../etc/shadow")

        assert (await ok(client, "suspend_devbox", devbox_id=box["id"]))["status"] == "suspended"
        refused = await client.call_tool("execute_on_devbox", {"devbox_id": box["id"], "command": "true"})
        assert refused.is_error and "suspended" in str(refused.content)
        assert (await ok(client, "resume_devbox", devbox_id=box["id"]))["status"] == "running"

        snap = await ok(client, "snapshot_devbox", devbox_id=box["id"], name="with-files", commit_message="files")
        assert snap["source_devbox_id"] == box["id"]
        gone = await ok(client, "shutdown_devbox", devbox_id=box["id"])
        assert gone["status"] == "shutdown"
        assert (await ok(client, "get_devbox", devbox_id=box["id"]))["status"] == "shutdown"
        blueprints = await ok(client, "list_blueprints")
        assert blueprints["blueprints"], "the default blueprint is listed"


async def test_async_executions_stdin_kill_and_output(backend: LocalBackend) -> None:
    async with Client(build_server(backend)) as client:
        box = (await ok(client, "create_devbox"))["id"]
        started = await ok(
            client,
            "execute_async",
            devbox_id=box,
            command="read line; echo got $line; cat > /dev/null",
            attach_stdin=True,
        )
        assert started["status"] == "running"
        exe = started["execution_id"]
        await ok(client, "send_execution_stdin", devbox_id=box, execution_id=exe, text="hello\n", signal="EOF")
        done = await ok(client, "get_execution", devbox_id=box, execution_id=exe, wait_seconds=20)
        assert done["status"] == "completed" and done["exit_status"] == 0 and done["stdout"] == "got hello\n"
        chunk = await ok(client, "read_execution_output", devbox_id=box, execution_id=exe)
        assert chunk["output"] == "got hello\n"

        sleeper = (await ok(client, "execute_async", devbox_id=box, command="sleep 60"))["execution_id"]
        still = await ok(client, "get_execution", devbox_id=box, execution_id=sleeper, wait_seconds=0.2)
        assert still["status"] == "running"  # a bounded wait is an answer, not an error
        killed = await ok(client, "kill_execution", devbox_id=box, execution_id=sleeper)
        final = await ok(client, "get_execution", devbox_id=box, execution_id=sleeper, wait_seconds=10)
        assert final["status"] == "completed" and final["exit_status"] != 0, (killed, final)

        await ok(client, "execute_on_devbox", devbox_id=box, command="cd /tmp && export V=7", shell_name="term")
        shell = await ok(client, "execute_on_devbox", devbox_id=box, command="echo $PWD $V", shell_name="term")
        assert shell["stdout"].strip() == "/tmp 7"
        assert "shell_name" in await error_text(
            client, "execute_on_devbox", devbox_id=box, command="true", shell_name="a b"
        )


async def test_score_run_waits_with_progress(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    async with Client(build_server(backend)) as client:
        run = await ok(client, "start_run", scenario_id=scenario.id)
        at_once = await ok(client, "score_run", run_id=run["id"])
        assert at_once["state"] == "scoring"
        with anyio.fail_after(60):
            while (await ok(client, "get_run", run_id=run["id"]))["state"] == "scoring":
                await anyio.sleep(0.05)
        await ok(client, "execute_on_devbox", devbox_id=run["devbox_id"], command=FIX)
        progress = Progress()
        result = await client.call_tool("score_run", {"run_id": run["id"], "wait": True}, progress_callback=progress)
        scored = result.structured_content
        assert scored is not None and scored["state"] == "scored"
        assert scored["scoring_contract_result"]["score"] == 1.0
        assert progress.events[0][0] == 0 and progress.events[-1][:2] == (1, 1)
        progress.assert_increasing()
        completed = await ok(client, "complete_run", run_id=run["id"])
        assert completed["state"] == "completed"


async def test_run_scenario_in_one_call(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    async with Client(build_server(backend)) as client:
        progress = Progress()
        result = await client.call_tool(
            "run_scenario",
            {"scenario_id": scenario.id, "command": FIX, "run_name": "one-call"},
            progress_callback=progress,
        )
        assert not result.is_error, result.content
        body: dict[str, Any] = dict(result.structured_content or {})
        assert body["run"]["state"] == "completed" and body["score"] == 1.0
        assert body["execution"]["exit_status"] == 0
        steps = [p for p, total, _ in progress.events if total == 5]
        assert steps == [1, 2, 3, 4, 5], progress.events
        progress.assert_increasing()

        untouched = await ok(client, "run_scenario", scenario_id=scenario.id)
        assert untouched["run"]["state"] == "completed" and untouched["score"] < 1.0
        assert untouched["execution"] is None


async def test_cancelling_run_scenario_cancels_the_run(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    async with Client(build_server(backend)) as client:
        with anyio.move_on_after(1.5):
            await client.call_tool("run_scenario", {"scenario_id": scenario.id, "command": "sleep 60"})
        with anyio.fail_after(10):
            while True:
                runs = (await ok(client, "list_runs", scenario_id=scenario.id))["runs"]
                if runs and runs[0]["state"] == "canceled":
                    break
                await anyio.sleep(0.05)
        devbox = await ok(client, "get_devbox", devbox_id=runs[0]["devbox_id"])
        assert devbox["status"] == "shutdown"


async def test_list_runs_filters(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    async with Client(build_server(backend)) as client:
        first = await ok(client, "start_run", scenario_id=scenario.id)
        second = await ok(client, "start_run", scenario_id=scenario.id)
        await ok(client, "cancel_run", run_id=first["id"])
        canceled = await ok(client, "list_runs", scenario_id=scenario.id, state="canceled")
        assert [r["id"] for r in canceled["runs"]] == [first["id"]]
        page = await ok(client, "list_runs", scenario_id=scenario.id, limit=1)
        assert page["has_more"] is True and page["runs"][0]["id"] == second["id"]
        assert "state" in await error_text(client, "list_runs", state="bogus")
        await ok(client, "cancel_run", run_id=second["id"])


async def test_benchmarks(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    async with Client(build_server(backend)) as client:
        bench = await ok(client, "create_benchmark", name="calc-bench", scenario_ids=[scenario.id])
        run = await ok(client, "run_benchmark", benchmark_id=bench["id"], run_name="b1")
        assert run["benchmark_id"] == bench["id"]
        runs = (await ok(client, "list_runs", benchmark_run_id=run["id"]))["runs"]
        assert [r["scenario_id"] for r in runs] == [scenario.id]
        for r in runs:
            await ok(client, "cancel_run", run_id=r["id"])


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
