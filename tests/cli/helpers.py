"""A real `scenario-mcp` process, as a user starts it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


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
