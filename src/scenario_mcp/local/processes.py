"""A live execution's process: started by the devbox's init, its bounded output, stdin, deadline
and kill.

A command is started by the devbox's init (its launcher, see launcher.py): a vfork inside every
namespace and cgroup of the devbox. The bookkeeping around it (records, views, waiting) is in
executions.py.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from anyio.abc import TaskGroup

from ..backend import BackendError, InvalidRequestError, InvalidStateError
from .launcher import LaunchedProcess, launch
from .output import OutputLog
from .secrets import Redactor

log = logging.getLogger(__name__)

TIMEOUT_EXIT_STATUS = 124
KILLED_EXIT_STATUS = 137
# Output a background process writes after its command exited is still logged, but the
# command's result does not wait for it longer than this.
DRAIN_GRACE = 0.05


@dataclass
class Execution:
    execution_id: str
    devbox_id: str
    command: str
    shell_name: str | None
    process: LaunchedProcess
    stdout: OutputLog
    stderr: OutputLog
    timeout: float
    done: anyio.Event = field(default_factory=anyio.Event)
    exit_status: int | None = None
    timed_out: bool = False
    killed: bool = False
    notes: list[str] = field(default_factory=list)
    _stdin: int | None = None  # the write end of the command's stdin, when attached
    _eofs: list[anyio.Event] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.exit_status is None

    async def send_stdin(self, text: str | None, sig: str | None) -> None:
        if not self.running:
            raise InvalidStateError(f"execution {self.execution_id} has completed; it takes no more input")
        if sig == "INTERRUPT":
            self.process.signal(signal.SIGINT, group=True)
            return
        if sig not in (None, "EOF"):
            raise InvalidRequestError(f"unknown signal {sig!r}; use EOF or INTERRUPT")
        if self._stdin is None:
            raise InvalidRequestError(
                f"execution {self.execution_id} was started without stdin (or its stdin was closed); "
                "start it with attach_stdin=true"
            )
        data = (text or "").encode("utf-8")
        while data:
            try:
                data = data[os.write(self._stdin, data) :]
            except BlockingIOError:
                await anyio.wait_writable(self._stdin)
            except BrokenPipeError as exc:
                raise InvalidStateError(f"execution {self.execution_id} no longer reads its stdin") from exc
        if sig == "EOF":
            self.close_stdin()

    def close_stdin(self) -> None:
        if self._stdin is not None:
            os.close(self._stdin)
            self._stdin = None

    def kill(self, *, process_group: bool = True) -> None:
        self.killed = True
        self.process.signal(signal.SIGKILL, group=process_group)


async def start_process(
    *,
    tg: TaskGroup,
    launcher_socket: Path,
    argv: list[str],
    direct: tuple[list[str], str] | None = None,
    env: dict[str, str],
    execution_id: str,
    devbox_id: str,
    command: str,
    shell_name: str | None,
    timeout: float,
    log_dir: Path,
    attach_stdin: bool,
    rlimits: dict[str, int],
    on_done: Callable[[Execution], Awaitable[None]],
    user: tuple[int, int] | None = None,
    redactor: Callable[[], Redactor] | None = None,
) -> Execution:
    """Have the devbox's init start a command (`direct`'s program from its directory when it can:
    see commands.py), and start the tasks that pump its output and enforce its deadline."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r, in_w = os.pipe() if attach_stdin else (os.open(os.devnull, os.O_RDONLY), None)
    try:
        process = launch(launcher_socket, argv, env, (in_r, out_w, err_w), rlimits=rlimits, direct=direct, user=user)
    except BaseException:
        for fd in (out_r, err_r, in_w):
            if fd is not None:
                os.close(fd)
        raise
    finally:
        for fd in (out_w, err_w, in_r):
            os.close(fd)
    if in_w is not None:
        os.set_blocking(in_w, False)
    execution = Execution(
        execution_id=execution_id,
        devbox_id=devbox_id,
        command=command,
        shell_name=shell_name,
        process=process,
        stdout=OutputLog(log_dir / f"{execution_id}.out", redactor=redactor() if redactor else None),
        stderr=OutputLog(log_dir / f"{execution_id}.err", redactor=redactor() if redactor else None),
        timeout=timeout,
        _stdin=in_w,
    )
    for fd, log in ((out_r, execution.stdout), (err_r, execution.stderr)):
        eof = anyio.Event()
        execution._eofs.append(eof)
        tg.start_soon(_pump, fd, log, eof)
    tg.start_soon(_supervise, execution, on_done)
    return execution


async def _pump(fd: int, log: OutputLog, eof: anyio.Event) -> None:
    os.set_blocking(fd, False)
    try:
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                await anyio.wait_readable(fd)
                continue
            if not chunk:
                break
            log.write(chunk)
    finally:
        os.close(fd)
        log.close()
        eof.set()


async def _supervise(execution: Execution, on_done: Callable[[Execution], Awaitable[None]]) -> None:
    process = execution.process
    try:
        with anyio.move_on_after(execution.timeout) as scope:
            await process.wait()
        if scope.cancelled_caught:
            execution.timed_out = True
            process.signal(signal.SIGKILL, group=True)
            await process.wait()
        if process.start_error is not None:
            execution.notes.append(process.start_error)
        with anyio.move_on_after(DRAIN_GRACE):
            for eof in execution._eofs:
                await eof.wait()
    finally:
        if process.returncode is None:  # the engine is going away: take the command with it
            process.signal(signal.SIGKILL, group=True)
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await process.wait()
        code = process.returncode
        if execution.timed_out:
            code = TIMEOUT_EXIT_STATUS
        elif code is None:
            code = KILLED_EXIT_STATUS
        elif code < 0:
            code = 128 - code  # killed by a signal: the shell's convention
        execution.exit_status = code
        with anyio.CancelScope(shield=True):
            execution.close_stdin()
            await process.aclose()
            # Persisted before anyone waiting is told: a returned result is an acknowledged one.
            try:
                await on_done(execution)
            except BackendError as exc:  # a full disk, say: the engine goes on, the waiter is told
                execution.notes.append(f"the execution's record could not be stored: {exc.message}")
                log.error("execution %s: its record could not be stored: %s", execution.execution_id, exc.message)
            finally:
                execution.done.set()
