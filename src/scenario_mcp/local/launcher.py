"""The server's side of a devbox's launcher: ask its init to start a command.

Init listens on a unix socket in the devbox's state directory (see sandbox/init.py). Starting a
command there is one message and a vfork inside the devbox: no nsenter, and no move into the
devbox's cgroups, which the kernel makes slow (several ms) when nothing moved for a while.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import struct
from pathlib import Path
from typing import Any

import anyio

from .sandbox import LAUNCHER_SOCKET, MAX_MESSAGE, SandboxError, spawns_settled

# A command init could not start (as a shell reports a command it cannot execute).
START_FAILED_EXIT_STATUS = 126
# sun_path holds 108 bytes; a longer socket path is reached through its directory's fd.
_MAX_SOCKET_PATH = 100


def launcher_socket(state_dir: Path) -> Path | None:
    path = state_dir / LAUNCHER_SOCKET
    return path if path.exists() else None


class LaunchedProcess:
    """A command handed to a devbox's init; the connection that started it carries its exit.

    Init replies once: {"exit", "pid"} when the command ends, or {"error"} when it could not start
    it; a command not started ends with START_FAILED_EXIT_STATUS and `start_error` saying why. The
    launch waits for no reply (one round trip less per command): init handles a connection's
    messages in order, so a signal sent at once still finds the command started. (Inits of an
    earlier release also reply {"pid"} first.)"""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.pid: int | None = None  # in the devbox's PID namespace, once init has said
        self.start_error: str | None = None
        self._returncode: int | None = None

    @property
    def returncode(self) -> int | None:
        return self._returncode

    async def wait(self) -> int:
        while self._returncode is None:
            message = await _receive(self._sock)
            if message is None:
                self._returncode = -9  # init is gone, and the devbox with it
            elif "exit" in message:
                self.pid = message.get("pid", self.pid)
                self._returncode = int(message["exit"])
            elif "pid" in message:
                self.pid = int(message["pid"])
            elif "error" in message:
                self.start_error = f"the devbox could not start the command: {message['error']}"
                self._returncode = START_FAILED_EXIT_STATUS
        return self._returncode

    def signal(self, sig: int, *, group: bool) -> None:
        if self._returncode is None:
            with contextlib.suppress(OSError):
                self._sock.send(json.dumps({"signal": int(sig), "group": group}).encode())

    async def aclose(self) -> None:
        self._sock.close()


def launch(
    socket_path: Path,
    argv: list[str],
    env: dict[str, str],
    fds: tuple[int, int, int],
    *,
    cwd: str = "/",
    rlimits: dict[str, int] | None = None,
    direct: tuple[list[str], str] | None = None,
    user: tuple[int, int] | None = None,
    step: dict[str, Any] | None = None,
    tty: bool = False,
) -> LaunchedProcess:
    """Hand `argv` to the devbox whose launcher listens at `socket_path`, on the given stdio.

    `direct`, a program's argv and its working directory, is started instead of `argv` where
    init can (commands.py). `tty`: stdin is a terminal the command takes as its controlling one. A
    local unix connect and one small send: microseconds, not worth a
    thread hop."""
    request: dict[str, Any] = {"argv": argv, "env": env, "cwd": cwd, "rlimits": rlimits or {}}
    if direct is not None:
        request["direct"] = {"argv": direct[0], "cwd": direct[1]}
    if user is not None:  # uid and gid the command runs as (root when absent)
        request["user"] = list(user)
    if step is not None:  # a build sandbox's step: its root's plan (build_sandbox.py)
        request["step"] = step
    if tty:
        request["tty"] = True
    payload = json.dumps(request).encode()
    if len(payload) > MAX_MESSAGE:
        raise SandboxError(f"the command is too long to start ({len(payload)} bytes, at most {MAX_MESSAGE})")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        _connect(sock, socket_path)
        socket.send_fds(sock, [payload], list(fds))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise SandboxError(f"cannot reach the devbox's init: {exc}") from exc
    return LaunchedProcess(sock)


def terminate(socket_path: Path) -> bool:
    """Tell a devbox's init to exit, taking the devbox with it; False when nothing answered."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        try:
            _connect(sock, socket_path)
            sock.send(json.dumps({"op": "exit"}).encode())
        except OSError:
            return False
    return True


def move_deadline(socket_path: Path, at: float | None) -> bool:
    """Tell a devbox's init when to end the devbox by itself (time.time(); None: never); False
    when nothing answered."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        try:
            _connect(sock, socket_path)
            sock.send(json.dumps({"op": "deadline", "at": at}).encode())
        except OSError:
            return False
    return True


def end_stray_init(state_dir: Path, timeout: float = 5.0) -> bool:
    """End the init of a sandbox that has no record (its server died while starting it, or before
    writing its pid down), and wait until it has exited; False when none answered.

    Blocking. A start into `state_dir` still in flight in a dead server's spawner settles first:
    it was ended there, or its init answers here."""
    with spawns_settled(str(state_dir)):
        socket_path = launcher_socket(state_dir)
        if socket_path is None:
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
            try:
                _connect(sock, socket_path)
                # The process that listens: init (its pid as seen from here).
                pid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
                pidfd = os.pidfd_open(pid)
            except OSError:
                return False
            try:
                with contextlib.suppress(OSError):  # exiting already: waited for all the same
                    sock.send(json.dumps({"op": "exit"}).encode())
                select.select([pidfd], [], [], timeout)  # readable once it has exited
            finally:
                os.close(pidfd)
    return True


def _connect(sock: socket.socket, path: Path) -> None:
    if len(str(path)) <= _MAX_SOCKET_PATH:
        sock.connect(str(path))
        return
    directory = os.open(path.parent, os.O_PATH)
    try:
        sock.connect(f"/proc/self/fd/{directory}/{path.name}")
    finally:
        os.close(directory)


async def _receive(sock: socket.socket) -> dict[str, Any] | None:
    while True:
        try:
            data = sock.recv(MAX_MESSAGE)
        except BlockingIOError:
            await anyio.wait_readable(sock)
            continue
        except OSError:
            return None
        if not data:
            return None
        message: dict[str, Any] = json.loads(data)
        return message
