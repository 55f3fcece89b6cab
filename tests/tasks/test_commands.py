"""`scenario-mcp scenario import` and `export` as a user runs them: a real process on a data dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scenario_mcp.local.engine import LocalBackend
from tests.local.conftest import seed_image

from .conftest import task_copy

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.anyio


def scenario_mcp(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scenario_mcp", "scenario", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


async def test_import_prints_a_table_and_export_writes_a_harbor_task(
    tmp_path: Path, debian_image: tuple[str, Path]
) -> None:
    reference, pulled = debian_image
    data_dir = tmp_path / "data"
    async with LocalBackend(data_dir) as engine:  # the image pulled once for the whole session
        seed_image(engine, pulled)
    task = task_copy(HERE / "harbor" / "etc-config", tmp_path / "etc-config", reference)

    first = scenario_mcp("import", str(task), data_dir=data_dir)
    assert first.returncode == 0, first.stderr
    header, row, totals = first.stdout.splitlines()
    assert header.split() == ["ACTION", "SCENARIO", "NAME", "BLUEPRINT"]
    action, scenario_id, name, blueprint_id = row.split()
    assert (action, name) == ("created", "etc-config") and scenario_id.startswith("scn_")
    assert blueprint_id.startswith("bpt_") and totals == "1 created, 0 updated, 0 unchanged"
    again = scenario_mcp("import", str(task), data_dir=data_dir)
    assert again.stdout.splitlines()[1].split() == ["unchanged", scenario_id, name, blueprint_id]

    out = tmp_path / "out"
    exported = scenario_mcp("export", scenario_id, str(out), data_dir=data_dir)
    assert exported.returncode == 0, exported.stderr
    assert (out / "task.toml").is_file() and (out / "tests" / "test.sh").read_text() == (
        task / "tests" / "test.sh"
    ).read_text()
    refused = scenario_mcp("export", scenario_id, str(out), data_dir=data_dir)
    assert refused.returncode == 1 and "is not empty" in refused.stderr
    missing = scenario_mcp("import", str(tmp_path / "nowhere"), data_dir=data_dir)
    assert missing.returncode == 1 and "is not a directory" in missing.stderr
