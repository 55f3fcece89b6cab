"""The command line's argument errors, as a user meets them: a real `scenario-mcp` process that
refuses at once with exit status 2 and says why on stderr, before it touches any data dir."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest


def scenario_mcp(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SCENARIO_MCP_TOKEN", "SCENARIO_MCP_API_TOKEN")}
    return subprocess.run(
        [sys.executable, "-m", "scenario_mcp", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_run_without_the_solver_role_is_refused(tmp_path: Path) -> None:
    done = scenario_mcp("serve", "--run", "scr_x", data_dir=tmp_path / "data")
    assert done.returncode == 2
    assert "--run pins a solver session to a run; add --role solver" in done.stderr
    assert done.stdout == ""  # stdout is the protocol: nothing but MCP goes there
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("api", "--host", "0.0.0.0"),
        ("serve", "--transport", "http", "--host", "0.0.0.0"),
        ("serve", "--transport", "sse", "--host", "0.0.0.0"),
    ],
)
def test_serving_off_loopback_without_a_token_is_refused(tmp_path: Path, args: tuple[str, ...]) -> None:
    done = scenario_mcp(*args, data_dir=tmp_path / "data")
    assert done.returncode == 2
    assert "refusing to serve on '0.0.0.0' without a bearer token" in done.stderr
    assert not (tmp_path / "data").exists()


def test_an_unknown_choice_is_an_argparse_error(tmp_path: Path) -> None:
    done = scenario_mcp("serve", "--role", "admin", data_dir=tmp_path / "data")
    assert done.returncode == 2
    assert "invalid choice: 'admin'" in done.stderr


def test_gc_frees_an_unreferenced_layer_and_refuses_a_held_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    stray = data_dir / "layers" / "step-nothing-stands-on-this"
    stray.mkdir(parents=True)
    (stray / "big").write_bytes(b"x" * 2_000_000)
    (stray / ".complete").touch()
    done = scenario_mcp("gc", "--grace", "0", data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("freed 2.0 MB: 1 layer(s)"), done.stdout
    assert not stray.exists()

    with open(data_dir / "engine.lock", "a") as held:  # as a running server holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        busy = scenario_mcp("gc", data_dir=data_dir)
    assert busy.returncode == 1 and "scenario-mcp gc:" in busy.stderr
