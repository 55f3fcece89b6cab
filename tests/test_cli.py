"""The command line's argument errors, as a user meets them: a real `scenario-mcp` process that
refuses at once with exit status 2 and says why on stderr, before it touches any data dir."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from scenario_mcp.local.blueprints import default_blueprint_id
from scenario_mcp.local.engine import LocalBackend

from .conftest import seed_default_blueprint


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


def test_an_unknown_toolset_is_refused(tmp_path: Path) -> None:
    done = scenario_mcp("serve", "--toolsets", "scenarios,nope", data_dir=tmp_path / "data")
    assert done.returncode == 2
    assert "--toolsets: unknown toolset 'nope'; known: scenarios, devboxes, runs" in done.stderr
    assert not (tmp_path / "data").exists()


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


@pytest.mark.parametrize("command", ["serve", "api"])
def test_an_extra_ca_file_that_cannot_be_used_is_refused_at_start(tmp_path: Path, command: str) -> None:
    (tmp_path / "notes.txt").write_text("not a certificate\n")
    done = scenario_mcp(command, "--extra-ca-certs", str(tmp_path / "notes.txt"), data_dir=tmp_path / "data")
    assert done.returncode == 2
    assert f"extra CA file {tmp_path / 'notes.txt'}: no certificate in it (PEM or DER)" in done.stderr
    assert not (tmp_path / "data").exists()


def test_extra_ca_files_from_the_environment_are_checked_too(tmp_path: Path) -> None:
    env = {**os.environ, "SCENARIO_MCP_EXTRA_CA_CERTS": str(tmp_path / "missing.pem")}
    done = subprocess.run(
        [sys.executable, "-m", "scenario_mcp", "serve", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert f"extra CA file {tmp_path / 'missing.pem'}: No such file or directory" in done.stderr


def test_the_trust_options_become_the_engines_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scenario_mcp.cli import build_parser
    from scenario_mcp.cli.options import trust_settings
    from scenario_mcp.local.trust import TrustSettings

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(tmp_path / "key")]
    pem = subprocess.run(
        ["openssl", "req", "-x509", *key, "-days", "1", "-subj", "/CN=cli-test"], capture_output=True, check=True
    ).stdout
    for name in ("one.pem", "two.pem"):
        (tmp_path / name).write_bytes(pem)
    monkeypatch.setenv("SCENARIO_MCP_EXTRA_CA_CERTS", str(tmp_path / "one.pem"))
    args = build_parser().parse_args(["api", "--extra-ca-certs", str(tmp_path / "two.pem"), "--no-host-ca-certs"])
    assert trust_settings(args) == TrustSettings(False, (tmp_path / "one.pem", tmp_path / "two.pem"))
    monkeypatch.delenv("SCENARIO_MCP_EXTRA_CA_CERTS")
    assert trust_settings(build_parser().parse_args(["serve"])) == TrustSettings()  # the host's CAs, by default
