"""Per-devbox limits (issue 3): pids, memory, disk, lifetime, output; the server stays responsive."""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.limits import group_parents
from scenario_mcp.models import (
    BashScriptScorer,
    DevboxCreateParameters,
    InputContext,
    LaunchParameters,
    ScenarioCreateParameters,
    ScoringContract,
    ScoringFunction,
    StartScenarioRunParameters,
)

from ..conftest import seed_default_blueprint, shutdown_all

pytestmark = pytest.mark.anyio


@pytest.fixture
async def fast_backend(data_dir: Path, default_blueprint_cache: Path) -> AsyncIterator[LocalBackend]:
    """An engine whose keep-alive and disk sweep runs every 0.2 s instead of every 5 s."""
    async with LocalBackend(data_dir, sweep_interval=0.2) as engine:
        await seed_default_blueprint(engine, default_blueprint_cache)
        try:
            yield engine
        finally:
            await shutdown_all(engine)


async def test_the_view_says_which_limits_are_enforced(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters(launch_parameters=LaunchParameters(custom_gb_memory=2)))
    assert "pids <= 1024" in box.limits
    assert f"memory <= {2 << 30} bytes" in box.limits
    assert any(limit.startswith("file size") for limit in box.limits)


async def test_a_devbox_takes_over_its_parked_cgroups_whole(backend: LocalBackend) -> None:
    """The spawner parks each prepared init in a spare cgroup of every hierarchy the engine uses
    (cpuacct too); a devbox renames them all, so its init is never moved (a write per hierarchy)."""
    box = await backend.create_devbox(DevboxCreateParameters())
    cgroups = backend.devboxes.cgroups(box.id)
    if cgroups.version != 1:
        pytest.skip("spare cgroups are parked on cgroup v1 only (v2 cannot rename a cgroup)")
    assert cgroups.adopted
    init_pid = backend.devboxes._live[box.id].init_pid
    assert cgroups.procs_files and all(str(init_pid) in f.read_text().split() for f in cgroups.procs_files)
    assert cgroups.cpu_usage_dir is not None and cgroups.cpu_usage_dir.name == box.id
    assert [g for parent in group_parents() for g in parent.glob(f"spare-{init_pid}")] == []


async def test_a_fork_bomb_ends_contained(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters())
    bomb = await backend.execute(box.id, "bomb() { bomb | bomb & }; bomb; sleep 3", timeout_seconds=30)
    assert "process limit" in (bomb.stderr or "")
    after = await backend.execute(box.id, "ps -e --no-headers | wc -l")
    assert after.exit_status == 0 and int(after.stdout or "999") < 20  # the bomb is gone, the devbox works


async def test_a_memory_hog_is_killed_and_the_exec_says_so(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters(launch_parameters=LaunchParameters(custom_gb_memory=1)))
    hog = await backend.execute(box.id, "python3 -c 'x = bytearray(3 << 30); print(len(x))'", timeout_seconds=60)
    assert hog.exit_status == 137
    assert "out_of_memory" in (hog.stderr or "")
    assert (await backend.execute(box.id, "echo alive")).stdout == "alive\n"


async def test_writing_past_the_disk_cap_fails_the_devbox(fast_backend: LocalBackend) -> None:
    box = await fast_backend.create_devbox(
        DevboxCreateParameters(launch_parameters=LaunchParameters(custom_disk_size=1))
    )
    single = await fast_backend.execute(box.id, "head -c 1200M /dev/zero > big; echo $?", timeout_seconds=120)
    assert "size cap" in (single.stderr or "") or single.stdout.strip() != "0"  # one file stops at the cap
    await fast_backend.execute(box.id, "head -c 600M /dev/zero > a; head -c 600M /dev/zero > b", timeout_seconds=120)
    with anyio.fail_after(20):
        while (view := await fast_backend.get_devbox(box.id)).status == "running":
            await anyio.sleep(0.1)
    assert view.status == "failure" and view.failure_reason == "out_of_disk"
    with anyio.fail_after(20):  # the space is given back (removing 1.2 GB takes a moment)
        while (fast_backend.devboxes.boxes_dir / box.id / "upper").exists():
            await anyio.sleep(0.1)


async def test_keep_alive_time_shuts_the_devbox_down(fast_backend: LocalBackend) -> None:
    box = await fast_backend.create_devbox(
        DevboxCreateParameters(launch_parameters=LaunchParameters(keep_alive_time_seconds=1))
    )
    with anyio.fail_after(10):
        while (view := await fast_backend.get_devbox(box.id)).status == "running":
            await anyio.sleep(0.1)
    assert view.status == "shutdown" and view.shutdown_reason == "keep_alive_timeout"


async def test_keep_alive_extends_the_lifetime(fast_backend: LocalBackend) -> None:
    box = await fast_backend.create_devbox(
        DevboxCreateParameters(launch_parameters=LaunchParameters(keep_alive_time_seconds=2))
    )
    for _ in range(3):
        await anyio.sleep(1)
        await fast_backend.keep_alive_devbox(box.id)
    assert (await fast_backend.get_devbox(box.id)).status == "running"


async def test_suspend_freezes_and_resume_thaws(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters())
    await backend.execute(box.id, "(while :; do date +%s%N >> ticks; sleep 0.05; done) >/dev/null 2>&1 &")
    await anyio.sleep(0.3)
    suspended = await backend.suspend_devbox(box.id)
    assert suspended.status == "suspended"
    ticks = (backend.devboxes.boxes_dir / box.id / "upper" / "root" / "home" / "user" / "ticks").read_text()
    await anyio.sleep(0.4)
    assert (backend.devboxes.boxes_dir / box.id / "upper" / "root" / "home" / "user" / "ticks").read_text() == ticks
    with pytest.raises(Exception, match="suspended"):
        await backend.execute(box.id, "true")
    assert (await backend.resume_devbox(box.id)).status == "running"
    await anyio.sleep(0.3)
    assert len((await backend.read_file(box.id, "ticks")).splitlines()) > len(ticks.splitlines())


ABUSES = {
    "fork bomb": "bomb() { bomb | bomb & }; bomb; sleep 5",
    "memory hog": "python3 -c 'x = bytearray(3 << 30)'; sleep 5",
    "endless output": "yes 0123456789 | head -c 300000000",
    "cpu spin": "for i in 1 2 3 4; do (while :; do :; done) & done; sleep 5; kill %1 %2 %3 %4",
    "disk filler": "head -c 1500M /dev/zero > big; rm -f big",
}


@pytest.mark.parametrize("abuse", sorted(ABUSES))
async def test_other_runs_answer_fast_during_abuse(backend: LocalBackend, abuse: str) -> None:
    scenario = await backend.create_scenario(
        ScenarioCreateParameters(
            name="responsive",
            input_context=InputContext(problem_statement="p"),
            scoring_contract=ScoringContract(
                scoring_function_parameters=[
                    ScoringFunction(name="s", weight=1, scorer=BashScriptScorer(bash_script="echo 1"))
                ]
            ),
        )
    )
    noisy = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    quiet = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    await backend.execute_async(noisy.devbox_id, ABUSES[abuse], timeout_seconds=30)
    await anyio.sleep(0.5)  # let the abuse get going
    latencies = []
    for _ in range(20):
        started = time.perf_counter()
        await backend.get_run(quiet.id)
        latencies.append(time.perf_counter() - started)
        await anyio.sleep(0.05)
    assert statistics.median(latencies) < 0.05, latencies
    assert sorted(latencies)[-2] < 0.05, latencies  # all but the single worst sample
