"""The shared options (cli/options.py): what image devboxes trust, from the flags and the
environment, and an extra CA file that cannot be used, refused at start with exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import scenario_mcp


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
