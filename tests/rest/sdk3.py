"""Runloop's current SDK (runloop-api-client 3.x) in a virtualenv of its own, and its driver.

The project's test extra pins SDK 1.32.0 (the last with scenarios), so 3.x cannot share `.venv`: it
lives in the git-ignored `.tools/sdk3-venv`, made here once (about ten seconds, from PyPI) and
reused by every later run. The driver (`sdk3_driver.py`) runs in that venv as a subprocess and
answers what it saw as JSON; the tests assert on it.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

ROOT = Path(__file__).resolve().parents[2]
SDK3_VERSION = "3.0.0"  # the newest 3.x on PyPI when this was written; Harbor 0.25 resolves it
SDK3_VENV = ROOT / ".tools" / "sdk3-venv"
DRIVER = Path(__file__).with_name("sdk3_driver.py")


def _installed_version(python: Path) -> str | None:
    if not python.exists():
        return None
    probe = subprocess.run(
        [str(python), "-c", "from importlib.metadata import version; print(version('runloop-api-client'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def sdk3_python() -> Path:
    """The python of a venv holding runloop-api-client==SDK3_VERSION, made if missing."""
    python = SDK3_VENV / "bin" / "python"
    if _installed_version(python) == SDK3_VERSION:
        return python
    SDK3_VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(SDK3_VENV.parent / ".sdk3.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install, even with two test runs at once
        if _installed_version(python) != SDK3_VERSION:
            if not python.exists():
                subprocess.run([sys.executable, "-m", "venv", str(SDK3_VENV)], check=True, timeout=120)
            install = subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", f"runloop-api-client=={SDK3_VERSION}"],
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
            )
            if install.returncode != 0:
                pytest.fail(f"could not install runloop-api-client=={SDK3_VERSION} into {SDK3_VENV}:\n{install.stderr}")
    return python


async def drive(python: Path, scenario: str, base_url: str, token: str, **args: Any) -> dict[str, Any]:
    """Run one scenario of the driver against `base_url`; what it saw, as a dict."""
    # Harbor's way of pointing the SDK at a server: the environment, not arguments.
    env = {**os.environ, "RUNLOOP_BASE_URL": base_url, "RUNLOOP_API_KEY": token}
    result = await anyio.run_process([str(python), str(DRIVER), scenario, json.dumps(args)], env=env, check=False)
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, f"the SDK {SDK3_VERSION} driver failed ({scenario}):\n{stderr}"
    seen: dict[str, Any] = json.loads(result.stdout)
    return seen
