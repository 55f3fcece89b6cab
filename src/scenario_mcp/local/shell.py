"""`scenario-mcp shell DEVBOX_ID`: a person takes over a running devbox with an interactive shell.

The shell is started through the devbox's own launcher (its init), as every command is, as the
devbox's user with its environment, on a new pseudo-terminal it takes as its controlling
terminal: job control, Ctrl-C to the foreground job, and the window size (followed on SIGWINCH)
work as in any terminal. This process relays the bytes between its own terminal (put in raw
mode) and the pty; `exit` in the shell returns here with its status.

The engine serving the devbox keeps running: the devbox record is only read (SQLite allows
readers beside the server that holds the data dir), and the launcher socket takes connections
from any process of this user.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import pty
import signal
import sqlite3
import struct
import sys
import termios
import tty
from pathlib import Path
from typing import Any

import anyio

from .environments import Environment, RunAs
from .launcher import LaunchedProcess, launch, launcher_socket
from .sandbox import SandboxError, sandbox_env

DATABASE = "scenario-mcp.sqlite3"


class ShellRefused(Exception):
    """Why no shell can be opened in the devbox (printed as is)."""


def _devbox_record(data_dir: Path, devbox_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    database = data_dir / DATABASE
    if not database.exists():
        raise ShellRefused(f"no scenario-mcp data in {data_dir}; name the server's data dir with --data-dir")
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as db:
        row = db.execute("SELECT data, internal FROM devboxes WHERE id = ?", (devbox_id,)).fetchone()
    if row is None:
        raise ShellRefused(f"devbox {devbox_id!r} not found in {data_dir}; list devboxes to see which exist")
    return json.loads(row[0]), json.loads(row[1])


def start_shell(data_dir: Path, devbox_id: str, terminal: int) -> LaunchedProcess:
    """An interactive shell in the devbox on the pty whose slave end is `terminal`."""
    view, internal = _devbox_record(data_dir, devbox_id)
    status = view.get("status")
    if status != "running":
        raise ShellRefused(
            f"devbox {devbox_id} is `{status}`, not running: only a running devbox can be taken over "
            "(resume a suspended one, or create a new one)"
        )
    socket_path = launcher_socket(data_dir / "devboxes" / devbox_id)
    if socket_path is None:
        raise ShellRefused(f"devbox {devbox_id} has no launcher to start a shell through; is its server running?")
    environment = Environment.from_internal(internal)
    user = internal.get("user")
    env = sandbox_env(
        environment.process_env(
            {
                **(RunAs(**user).env() if user else {}),
                **internal.get("trust_env", {}),
                **(internal.get("env") or {}),
                "TERM": os.environ.get("TERM", "xterm-256color"),
            }
        )
    )
    shell = internal.get("shell", "/bin/bash")
    argv = [shell, "-i"]
    try:
        return launch(
            socket_path,
            argv,
            env,
            (terminal, terminal, terminal),
            cwd=environment.working_directory,
            user=(user["uid"], user["gid"]) if user else None,
            tty=True,
        )
    except SandboxError as exc:
        raise ShellRefused(f"devbox {devbox_id}: {exc}; is its server running?") from exc


def _copy_window_size(source: int, target: int) -> None:
    with contextlib.suppress(OSError):
        size = fcntl.ioctl(source, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
        fcntl.ioctl(target, termios.TIOCSWINSZ, size)


async def _relay(process: LaunchedProcess, master: int, stdin: int, stdout: int) -> int:
    async def pump(source: int, target: int) -> None:
        while True:
            await anyio.wait_readable(source)
            try:
                data = os.read(source, 65536)
            except BlockingIOError:
                continue
            except OSError as exc:  # EIO: every slave end closed
                if exc.errno == errno.EIO:
                    return
                raise
            if not data:
                return
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(target, view) :]
                except BlockingIOError:
                    await anyio.wait_writable(target)

    async def follow_window() -> None:
        with anyio.open_signal_receiver(signal.SIGWINCH) as signals:
            async for _ in signals:
                _copy_window_size(stdin, master)

    output_done = anyio.Event()

    async def output() -> None:
        try:
            await pump(master, stdout)
        finally:
            output_done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(pump, stdin, master)
        tg.start_soon(output)
        if os.isatty(stdin):
            tg.start_soon(follow_window)
        code = await process.wait()
        with anyio.move_on_after(0.5):  # what the shell wrote last, until its terminal closes
            await output_done.wait()
        tg.cancel_scope.cancel()
    await process.aclose()
    if process.start_error:
        print(f"scenario-mcp shell: {process.start_error}", file=sys.stderr)
    return 128 - code if code < 0 else code


def open_shell(data_dir: Path, devbox_id: str) -> int:
    """Run the shell on this process's terminal until it exits; its exit status."""
    master, slave = pty.openpty()
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    try:
        if os.isatty(stdin):
            _copy_window_size(stdin, master)
        try:
            process = start_shell(data_dir, devbox_id, slave)
        except ShellRefused as exc:
            print(f"scenario-mcp shell: {exc}", file=sys.stderr)
            return 1
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
        if saved is not None:
            tty.setraw(stdin, termios.TCSANOW)  # keep what was typed ahead
        try:
            return anyio.run(_relay, process, master, stdin, stdout)
        finally:
            if saved is not None:
                termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
    finally:
        with contextlib.suppress(OSError):
            os.close(master)
