"""The engine's boundary: one engine per data dir, let go the instant its process dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scenario_mcp.backend import EnvironmentUnavailableError
from scenario_mcp.local.boundary import DataDirLock, sandbox_errors_as_backend_errors
from scenario_mcp.local.sandbox import SandboxError

# An engine's process that forks a child (as it does, an instant before each exec of a helper),
# which lives on: it must not keep the data dir locked after the engine is killed.
HOLDER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from scenario_mcp.local.boundary import DataDirLock
    lock = DataDirLock(Path(sys.argv[1]))
    child = os.fork()
    if child == 0:
        time.sleep(30)
        os._exit(0)
    print(child, flush=True)
    time.sleep(30)
    """
)


def _locked_elsewhere(data_dir: Path) -> bool:
    """Whether another process finds the data dir locked."""
    probe = "import sys; from pathlib import Path; from scenario_mcp.local.boundary import DataDirLock; "
    probe += "DataDirLock(Path(sys.argv[1]))"
    return (
        subprocess.run([sys.executable, "-c", probe, str(data_dir)], capture_output=True, check=False).returncode != 0
    )


def test_a_killed_engine_lets_its_data_dir_go_at_once(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE) as engine:
        assert engine.stdout is not None
        child = int(engine.stdout.readline())
        try:
            with pytest.raises(RuntimeError, match="another scenario-mcp engine"):
                DataDirLock(tmp_path)
            engine.send_signal(signal.SIGKILL)
            engine.wait()
            # Its forked child still runs, with every descriptor the engine had.
            DataDirLock(tmp_path).release()
        finally:
            os.kill(child, signal.SIGKILL)


def test_one_engine_per_data_dir_in_one_process_too(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    with pytest.raises(RuntimeError, match="another scenario-mcp engine"):
        DataDirLock(tmp_path)
    assert _locked_elsewhere(tmp_path)  # the refused second one did not let the first one's lock go
    first.release()
    assert not _locked_elsewhere(tmp_path)


class _SandboxCalls:
    async def start_in_a_sandbox(self) -> None:
        raise SandboxError("the spawner is gone")


class _Engine(_SandboxCalls):
    async def own_call(self) -> None:
        raise SandboxError("init died")


@pytest.mark.anyio
async def test_sandbox_errors_reach_callers_as_backend_errors_from_mixed_in_calls_too() -> None:
    sandbox_errors_as_backend_errors(_Engine)
    for call in (_Engine().own_call, _Engine().start_in_a_sandbox):
        with pytest.raises(EnvironmentUnavailableError):
            await call()
    with pytest.raises(SandboxError):  # the mixin itself, used elsewhere, is left as it is
        await _SandboxCalls().start_in_a_sandbox()
