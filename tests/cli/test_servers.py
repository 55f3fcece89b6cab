"""`serve` and `api` (cli/servers.py): their argument errors, as a user meets them: a real
`scenario-mcp` process that refuses at once with exit status 2 and says why on stderr, before it
touches any data dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import scenario_mcp


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


def test_an_unknown_toolset_is_refused(tmp_path: Path) -> None:
    done = scenario_mcp("serve", "--toolsets", "scenarios,nope", data_dir=tmp_path / "data")
    assert done.returncode == 2
    assert "--toolsets: unknown toolset 'nope'; known: scenarios, devboxes, runs" in done.stderr
    assert not (tmp_path / "data").exists()
