"""`scenario-mcp shell`: a real terminal into a running devbox, driven through a pty as a person's
terminal would drive it (window size, Ctrl-C to the foreground job, `exit` returns)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import sys
import termios
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import DevboxCreateParameters

pytestmark = pytest.mark.anyio


class Terminal:
    """The person's side of a pty the CLI runs on."""

    def __init__(self, rows: int, cols: int) -> None:
        self.master, self.slave = pty.openpty()
        self.resize(rows, cols)
        os.set_blocking(self.master, False)
        self.seen = b""

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    async def expect(self, pattern: str, timeout: float = 10) -> str:
        """Read until `pattern` (a regex) shows in what was read since the last match."""
        with anyio.fail_after(timeout):
            while (found := re.search(pattern.encode(), self.seen)) is None:
                await anyio.wait_readable(self.master)
                try:
                    self.seen += os.read(self.master, 65536)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: the CLI has exited
                    break
        assert found is not None, f"{pattern!r} not in {self.seen[-2000:]!r}"
        self.seen = self.seen[found.end() :]
        return found.group(0).decode()


async def open_cli(data_dir: Path, devbox_id: str, terminal: Terminal) -> Process:
    process = await anyio.open_process(
        [sys.executable, "-m", "scenario_mcp", "shell", devbox_id, "--data-dir", str(data_dir)],
        stdin=terminal.slave,
        stdout=terminal.slave,
        stderr=terminal.slave,
        start_new_session=True,
    )
    os.close(terminal.slave)
    return process


async def test_a_shell_has_a_real_terminal_and_returns_on_exit(backend: LocalBackend, data_dir: Path) -> None:
    devbox = await backend.create_devbox(DevboxCreateParameters(name="takeover"))
    await backend.write_file(devbox.id, "marker.txt", "inside the devbox")
    terminal = Terminal(33, 101)
    cli = await open_cli(data_dir, devbox.id, terminal)
    try:
        await terminal.expect(r"[#$] ")  # the devbox's shell's prompt
        terminal.type("cat marker.txt; echo; stty size\r")
        await terminal.expect(r"inside the devbox")
        await terminal.expect(r"33 101")
        terminal.resize(40, 120)
        cli.send_signal(signal.SIGWINCH)
        await anyio.sleep(0.2)
        terminal.type("stty size\r")
        await terminal.expect(r"40 120")
        # Ctrl-C reaches the foreground job, not the shell, nor the CLI.
        terminal.type("sleep 100; echo slept\r")
        await anyio.sleep(0.5)
        terminal.type("\x03")
        terminal.type("echo after-$((6*7))\r")
        await terminal.expect(r"after-42", timeout=5)
        assert cli.returncode is None
        terminal.type("exit 7\r")
        with anyio.fail_after(10):
            assert await cli.wait() == 7
    finally:
        if cli.returncode is None:
            cli.kill()
            await cli.wait()
        os.close(terminal.master)
    # The devbox is still there, and took no harm.
    assert (await backend.get_devbox(devbox.id)).status == "running"


async def test_a_devbox_not_running_is_refused_clearly(backend: LocalBackend, data_dir: Path) -> None:
    devbox = await backend.create_devbox(DevboxCreateParameters(name="gone"))
    await backend.shutdown_devbox(devbox.id)
    terminal = Terminal(24, 80)
    cli = await open_cli(data_dir, devbox.id, terminal)
    try:
        message = await terminal.expect(r"devbox \S+ is `shutdown`, not running[^\r\n]*")
        assert "only a running devbox can be taken over" in message
        with anyio.fail_after(10):
            assert await cli.wait() == 1
    finally:
        os.close(terminal.master)
    terminal = Terminal(24, 80)
    cli = await open_cli(data_dir, "dbx_nothing", terminal)
    try:
        await terminal.expect(r"devbox 'dbx_nothing' not found")
        assert await cli.wait() == 1
    finally:
        os.close(terminal.master)
