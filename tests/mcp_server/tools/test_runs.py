"""The run tools (tools/runs.py): through a real in-memory mcp.Client over a real LocalBackend, and
the functions called directly."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client

from scenario_mcp.backend import OperationTimeoutError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.server import build_server
from scenario_mcp.mcp_server.tools.inputs import (
    GetRunInput,
    ListRunsInput,
    RunIdInput,
    RunScenarioInput,
    ScoreRunInput,
    StartRunInput,
)
from scenario_mcp.mcp_server.tools.runs import (
    RUN_SCENARIO_STEPS,
    complete_run,
    get_run,
    list_runs,
    run_scenario,
    score_run,
    start_run,
)
from scenario_mcp.mcp_server.tools.spec import Unfinished
from scenario_mcp.models import DevboxCreateParameters, ScenarioRunState, ScenarioRunView

from ..helpers import FIX, Progress, error_text, ok, seed_scenario, seed_snapshot

pytestmark = pytest.mark.anyio


async def test_score_run_waits_with_progress(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    async with Client(build_server(backend)) as client:
        run = await ok(client, "start_run", scenario_id=scenario.id)
        at_once = await ok(client, "score_run", run_id=run["id"], wait_seconds=0)
        assert at_once["state"] == "scoring" and "get_run" in at_once["message"]
        with anyio.fail_after(60):
            while (await ok(client, "get_run", run_id=run["id"]))["state"] == "scoring":
                await anyio.sleep(0.05)
        await ok(client, "execute_on_devbox", devbox_id=run["devbox_id"], command=FIX)
        progress = Progress()
        result = await client.call_tool(
            "score_run", {"run_id": run["id"], "wait_seconds": 60}, progress_callback=progress
        )
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


async def test_run_scenario_directly_reports_each_step(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    progress = Progress()
    result = await run_scenario(backend, RunScenarioInput(scenario_id=scenario.id, command=FIX), progress)
    assert result.run.state == ScenarioRunState.COMPLETED and result.score == 1.0
    assert result.execution is not None and result.execution.exit_status == 0
    steps = [p for p, total, _ in progress.events if total == RUN_SCENARIO_STEPS]
    assert steps == [1, 2, 3, 4, 5], progress.events
    progress.assert_increasing()


async def test_run_scenario_still_scoring_at_its_bound_is_an_error_and_cancels_the_run(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    params = RunScenarioInput(scenario_id=scenario.id, scoring_timeout_seconds=0.01)
    with pytest.raises(OperationTimeoutError, match=r"still scoring after 0\.01 s; it was canceled"):
        await run_scenario(backend, params, Progress())
    (run,) = (await backend.list_runs(scenario_id=scenario.id)).runs
    assert run.state == ScenarioRunState.CANCELED


async def test_score_run_wait_bounded_returns_the_run_still_scoring(backend: LocalBackend) -> None:
    scenario = await seed_scenario(backend, await seed_snapshot(backend))
    run = await start_run(backend, StartRunInput(scenario_id=scenario.id, run_name="bounded"))
    assert run.state == ScenarioRunState.RUNNING and run.name == "bounded"
    progress = Progress()
    still = await score_run(backend, ScoreRunInput(run_id=run.id, wait_seconds=0.01), progress)
    assert isinstance(still, Unfinished) and isinstance(still.current, ScenarioRunView)
    assert still.current.state == ScenarioRunState.SCORING and "get_run(run_id, wait_seconds=" in still.message
    assert progress.events == [(0, 1, f"scoring {run.id}")]  # no final step: it has not ended
    scored = await get_run(backend, GetRunInput(run_id=run.id, wait_seconds=60))
    assert isinstance(scored, ScenarioRunView) and scored.state == ScenarioRunState.SCORED
    assert [r.id for r in (await list_runs(backend, ListRunsInput(state=ScenarioRunState.SCORED))).runs] == [run.id]
    assert (await complete_run(backend, RunIdInput(run_id=run.id))).state == ScenarioRunState.COMPLETED


async def test_a_bounded_call_answers_in_time_and_the_same_call_waits_for_the_same_work(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters(name="bounded"))
    # Counts its own starts: run twice, it would print 2.
    slow = {"devbox_id": box.id, "command": "echo x >> starts; sleep 1.5; wc -l < starts", "wait_seconds": 0.3}
    async with Client(build_server(backend)) as client:
        progress = Progress()
        started = anyio.current_time()
        result = await client.call_tool("execute_on_devbox", slow, progress_callback=progress)
        first = dict(result.structured_content or {})
        assert anyio.current_time() - started < 1.2
        assert first["status"] == "running" and first["devbox_id"] == box.id
        assert "Call execute_on_devbox again with the same arguments" in first["message"]
        with anyio.fail_after(10):
            while "message" in (answer := await ok(client, "execute_on_devbox", **slow)):
                pass
        assert answer["exit_status"] == 0 and answer["stdout"].strip() == "1"
        # Finished and collected: the same call again is new work.
        again = await ok(client, "execute_on_devbox", **{**slow, "wait_seconds": 10})
        assert again["stdout"].strip() == "2"
    await backend.shutdown_devbox(box.id)
