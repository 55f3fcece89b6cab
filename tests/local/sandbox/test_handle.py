"""A sandbox's handle: a spare cgroup nobody adopted goes when its sandbox stops; a killed spawner is
replaced by the next start."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.limits import group_parents
from scenario_mcp.local.sandbox import Sandbox
from scenario_mcp.local.sandbox.handle import _SPAWNERS
from scenario_mcp.models import DevboxCreateParameters

pytestmark = pytest.mark.anyio


async def test_a_sandbox_nobody_adopted_removes_its_spare_cgroup_when_it_stops(
    backend: LocalBackend, tmp_path: Path
) -> None:
    environment = await backend.devboxes.blueprints.environment(
        blueprint_id=None, blueprint_name=None, snapshot_id=None
    )
    spec = environment.spec(backend.devboxes.layers, tmp_path / "box", network=False, hostname="build")
    sandbox = await Sandbox.start(spec)  # as a build step's or a scorer's sandbox starts
    spare = sandbox.spare_cgroup
    assert spare is not None
    parked = [parent / spare for parent in group_parents()]
    assert all(group.is_dir() for group in parked)
    await sandbox.stop()
    assert [group for group in parked if group.exists()] == []


async def test_a_killed_spawner_is_replaced_by_the_next_create(backend: LocalBackend) -> None:
    before = await backend.create_devbox(DevboxCreateParameters())
    killed = [helper._process for helper in _SPAWNERS.helpers if helper._process is not None]
    assert killed
    for process in killed:  # every helper that runs: the next create cannot miss them
        process.kill()
        process.wait()
    after = await backend.create_devbox(DevboxCreateParameters())
    assert after.status == "running"
    assert _SPAWNERS.pids() and not _SPAWNERS.pids() & {process.pid for process in killed}
    # Devboxes outlive the spawner that started them.
    assert (await backend.execute(before.id, "echo alive")).stdout == "alive\n"
    assert (await backend.execute(after.id, "echo new")).stdout == "new\n"
