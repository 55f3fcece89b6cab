"""A sandbox's handle: a spare cgroup its init sat in and that nobody adopted goes when it stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.limits import _v1_parents
from scenario_mcp.local.sandbox import Sandbox

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
    parked = [parent / spare for parent in _v1_parents().values()]
    assert all(group.is_dir() for group in parked)
    await sandbox.stop()
    assert [group for group in parked if group.exists()] == []
