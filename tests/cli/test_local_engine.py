"""`setup` and `gc` (cli/local_engine.py) through a real `scenario-mcp` process: what they report,
and their refusal of a data dir a running server holds."""

from __future__ import annotations

import fcntl
from pathlib import Path

import anyio

from scenario_mcp.local.blueprints import default_blueprint_id
from scenario_mcp.local.engine import LocalBackend

from ..conftest import seed_default_blueprint
from .helpers import scenario_mcp


def test_setup_reports_the_default_environment_ready_and_refuses_a_held_data_dir(
    tmp_path: Path, default_blueprint_cache: Path
) -> None:
    data_dir = tmp_path / "data"

    async def seed() -> None:
        async with LocalBackend(data_dir) as engine:
            await seed_default_blueprint(engine, default_blueprint_cache)

    anyio.run(seed)
    done = scenario_mcp("setup", data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"scenario-mcp setup: ready: default environment {default_blueprint_id()}")
    with open(data_dir / "engine.lock", "a") as held:  # as a running server holds it
        fcntl.lockf(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        busy = scenario_mcp("setup", data_dir=data_dir)
    assert busy.returncode == 1 and "scenario-mcp setup:" in busy.stderr


def test_gc_frees_an_unreferenced_layer_and_refuses_a_held_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    stray = data_dir / "layers" / "step-nothing-stands-on-this"
    stray.mkdir(parents=True)
    (stray / "big").write_bytes(b"x" * 2_000_000)
    done = scenario_mcp("gc", "--grace", "0", data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("freed 2.0 MB: 1 layer(s)"), done.stdout
    assert not stray.exists()

    with open(data_dir / "engine.lock", "a") as held:  # as a running server holds it
        fcntl.lockf(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        busy = scenario_mcp("gc", data_dir=data_dir)
    assert busy.returncode == 1 and "scenario-mcp gc:" in busy.stderr
