"""The embedded engine end to end: scenarios, runs, scoring in the background, reconcile."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import anyio
import pytest

from scenario_mcp.backend import InvalidRequestError, InvalidStateError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import (
    BashScriptScorer,
    DevboxCreateParameters,
    DevboxStatus,
)
from tests.conftest import seed_default_blueprint

from .helpers import RUN, alive, contract, scenario_with, start, wait_scored

pytestmark = pytest.mark.anyio


# --- reconcile --------------------------------------------------------------------------------


async def test_reconcile_fails_dead_devboxes_and_reattaches_live_ones(
    data_dir: Path, default_blueprint_cache: Path
) -> None:
    async with LocalBackend(data_dir) as first:
        await seed_default_blueprint(first, default_blueprint_cache)
        dead = await first.create_devbox(DevboxCreateParameters(name="dead"))
        live = await first.create_devbox(DevboxCreateParameters(name="live"))
        bg = await first.execute(live.id, "echo kept > kept.txt; sleep 300 >/dev/null 2>&1 & echo $!")
        sleeper = (bg.stdout or "").strip()
        dead_init = (await first.devboxes.internal(dead.id))["init_pid"]
        live_init = (await first.devboxes.internal(live.id))["init_pid"]
    try:
        # The server is gone; the devboxes are not.
        assert alive(dead_init) and alive(live_init)
        os.kill(dead_init, signal.SIGKILL)
        with anyio.fail_after(10):
            while alive(dead_init):
                await anyio.sleep(0.02)

        async with LocalBackend(data_dir) as second:
            view = await second.get_devbox(dead.id)
            assert view.status == DevboxStatus.FAILURE
            assert view.failure_message and "died" in view.failure_message
            assert view.failure_reason == "health_check_failed"
            assert view.end_time_ms is not None
            assert view.state_transitions[-1].status == DevboxStatus.FAILURE
            with pytest.raises(InvalidStateError, match="`failure`"):
                await second.execute(dead.id, "true")

            assert (await second.get_devbox(live.id)).status == DevboxStatus.RUNNING
            assert await second.read_file(live.id, "kept.txt") == "kept\n"
            result = await second.execute(live.id, f"kill -0 {sleeper} && echo reattached")
            assert result.stdout == "reattached\n", result.stderr
            # A reattached devbox (no keeper process of ours) still shuts down cleanly.
            await second.shutdown_devbox(live.id)
            assert not alive(live_init)
    finally:
        for pid in (dead_init, live_init):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


async def test_reconcile_rescores_run_left_scoring(data_dir: Path, default_blueprint_cache: Path) -> None:
    async with LocalBackend(data_dir) as first:
        await seed_default_blueprint(first, default_blueprint_cache)
        scenario = await scenario_with(first, contract(("ok", 1, BashScriptScorer(bash_script="echo 0.5"))))
        run = await start(first, scenario)
        init = (await first.devboxes.internal(run.devbox_id))["init_pid"]
        await first.score_run(run.id)
        # Leave while scoring is (about to be) under way.
    try:
        async with LocalBackend(data_dir) as second:
            current = await second.get_run(run.id)
            if current.state == RUN.SCORING:
                current = await wait_scored(second, run.id)
            assert current.state == RUN.SCORED
            assert current.scoring_contract_result is not None
            assert current.scoring_contract_result.score == 0.5
            await second.complete_run(run.id)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(init, signal.SIGKILL)


async def test_metadata_of_an_unknown_kind_is_refused(backend: LocalBackend) -> None:
    with pytest.raises(InvalidRequestError, match="unknown kind 'runs; --'"):
        await backend.metadata_keys("runs; --")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="use one of scenarios, benchmarks"):
        await backend.metadata_values("executions", "k")  # type: ignore[arg-type]


def test_building_the_default_environment_leaves_no_scratch(default_blueprint_cache: Path) -> None:
    # The fixture's engine built it (ensure_default) and closed: the build's scratch (its
    # sandbox's disk, tens of MB) went with the build, not at some later start.
    assert (default_blueprint_cache / "layers").is_dir()
    assert not list((default_blueprint_cache / "devboxes").glob("build-*"))
