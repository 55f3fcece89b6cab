"""A process about to become a command: a build step's process, and the exec every command ends in.

A build sandbox's init (init.py) forks each step's process ahead of its request (a spare): it
makes its own mount namespace with the step's /dev and /run, then waits; given its step, it
enters the step's root and locks itself in, or holds a root open for the server (COPY --from),
then execs the command (where no C compiler is: step_starter.c does the same, faster). Standard
library only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import shutil
import signal
import socket
import termios
from typing import Any

from . import libc, mount_plan
from .lockin import is_procfs, lock
from .protocol import MAX_MESSAGE

# The signals init handles (its _serve); every other is at its default.
HANDLED_SIGNALS = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGXFSZ)


def spare(sock: socket.socket, stage_plan: list[dict[str, Any]], user_ns: int) -> None:
    """A build step's process before its request (init forked it ahead): a mount namespace of its
    own, and in it the step's /dev and /run under the build's stage dir, beside the /proc init
    mounted there (its copy), which the step's plan moves into its root; then the request (the
    step, its stdin, stdout and stderr) on `sock`. Never returns."""
    try:
        signal.set_wakeup_fd(-1)
        keep = sorted({sock.fileno(), user_ns})
        for low, high in zip([2, *keep], [*keep, 1 << 16], strict=True):
            os.closerange(low + 1, high)  # init's listener and connections are not a step's
        problem: Exception | None = None
        try:
            libc.unshare(libc.CLONE_NEWNS, "unshare(step mount namespace)")
            for operation in mount_plan.decode(stage_plan):
                if not is_procfs(operation):  # init's (run): the one PID namespace's
                    operation.apply()
        except Exception as exc:  # said to the step's stderr once it comes
            problem = exc
        data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, 3)  # `sock` closes at the exec (init.py)
    except BaseException:
        os._exit(127)
    if not data or len(fds) != 3:
        os._exit(0)  # the build ended first
    if problem is not None:
        with contextlib.suppress(OSError):
            os.write(fds[2], f"the build step's root could not be made: {problem}\n".encode(errors="replace"))
        os._exit(127)
    message = json.loads(data)
    _step_child(message["step"], message, fds, user_ns)


def _step_child(step: dict[str, Any], message: dict[str, Any], fds: list[int], user_ns: int) -> None:
    """In a build step's process (spare), in its own mount namespace: its root, then the step."""
    try:
        for operation in mount_plan.decode(step["plan"]):
            operation.apply()
        if step.get("hold"):
            _hold(step["root"], fds)
        libc.pivot_into(step["root"])
        lock(user_ns)  # its /proc was hardened before the request (spare)
        env = message["env"]
        uid, gid = step.get("user") or (0, 0)  # resolved by the server (build_sandbox.py)
        if uid or gid:
            message = {**message, "user": [uid, gid]}
        cwd = message.get("cwd") or "/"
        os.makedirs(cwd, 0o755, exist_ok=True)  # as Docker makes a step's WORKDIR
        program = message["argv"][0]
        if "/" not in program:
            program = shutil.which(program, path=env.get("PATH", os.defpath)) or program
        exec_command({**message, "env": env, "argv": [program, *message["argv"][1:]]}, fds, argv0=message["argv"][0])
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(fds[2], f"{exc}\n".encode(errors="replace"))
    os._exit(127)


def _hold(root: str, fds: list[int]) -> None:
    """A COPY's root, held for the server: its descriptor sent on the step's socket (stdin),
    then held until the server closes it. Exits; never returns."""
    holder = socket.socket(fileno=os.dup(fds[0]))
    where = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    socket.send_fds(holder, [b"R"], [where])
    os.close(where)
    while holder.recv(4096):
        pass
    os._exit(0)


def exec_command(message: dict[str, Any], fds: list[int], argv0: str | None = None) -> None:
    """In the forked child: become the command, in its own session and process group."""
    try:
        signal.set_wakeup_fd(-1)
        for sig in HANDLED_SIGNALS:  # init ignores none (its _serve): these are all it changed
            signal.signal(sig, signal.SIG_DFL)
        with contextlib.suppress(OSError):
            os.setsid()  # fails only when the launcher already made it a group leader
        for target, source in enumerate(fds):
            os.dup2(source, target)
        os.closerange(3, 1 << 16)
        if message.get("tty"):  # a terminal's shell (scenario-mcp shell): its stdin is its controlling terminal
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        for name, value in (message.get("rlimits") or {}).items():
            if name in ("FSIZE", "AS", "NPROC"):
                resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (int(value), int(value)))
        if message.get("user"):  # the devbox's user: its own groups only, then its gid and uid
            uid, gid = (int(n) for n in message["user"])
            os.setgroups([gid])
            os.setgid(gid)
            os.setuid(uid)
        try:
            os.chdir(message.get("cwd") or "/")
        except OSError:
            os.chdir("/")
        argv = message["argv"] if argv0 is None else [argv0, *message["argv"][1:]]
        os.execve(message["argv"][0], argv, message["env"])
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(2, f"scenario-mcp: cannot start {message.get('argv')}: {exc}\n".encode())
    os._exit(127)
