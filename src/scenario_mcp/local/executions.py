"""Live executions: a process in a devbox, its bounded output, stdin, deadline and kill."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream, Process, TaskGroup

from ..backend import InvalidRequestError, InvalidStateError
from .output import OutputLog

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
    process: Process
    stdout: OutputLog
    stderr: OutputLog
    timeout: float
    done: anyio.Event = field(default_factory=anyio.Event)
    exit_status: int | None = None
    timed_out: bool = False
    killed: bool = False
    notes: list[str] = field(default_factory=list)
    _stdin: ByteSendStream | None = None
    _eofs: list[anyio.Event] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.exit_status is None

    async def send_stdin(self, text: str | None, sig: str | None) -> None:
        if not self.running:
            raise InvalidStateError(f"execution {self.execution_id} has completed; it takes no more input")
        if sig == "INTERRUPT":
            self._signal_group(signal.SIGINT)
            return
        if self._stdin is None:
            raise InvalidRequestError(
                f"execution {self.execution_id} was started without stdin; start it with attach_stdin=true"
            )
        if text:
            await self._stdin.send(text.encode("utf-8"))
        if sig == "EOF":
            await self._stdin.aclose()
            self._stdin = None
        elif sig not in (None, "INTERRUPT"):
            raise InvalidRequestError(f"unknown signal {sig!r}; use EOF or INTERRUPT")

    def kill(self, *, process_group: bool = True) -> None:
        self.killed = True
        if process_group:
            self._signal_group(signal.SIGKILL)
            return
        # nsenter forked the command: kill the command itself, not just nsenter.
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError):
            for pid in children.read_text().split():
                os.kill(int(pid), signal.SIGKILL)

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)


async def start_execution(
    *,
    tg: TaskGroup,
    argv: list[str],
    env: dict[str, str],
    execution_id: str,
    devbox_id: str,
    command: str,
    shell_name: str | None,
    timeout: float,
    log_dir: Path,
    attach_stdin: bool,
    on_done: Callable[[Execution], Awaitable[None]],
) -> Execution:
    """Start a process and the tasks that pump its output and enforce its deadline."""
    log_dir.mkdir(parents=True, exist_ok=True)
    process = await anyio.open_process(
        argv,
        stdin=subprocess.PIPE if attach_stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    execution = Execution(
        execution_id=execution_id,
        devbox_id=devbox_id,
        command=command,
        shell_name=shell_name,
        process=process,
        stdout=OutputLog(log_dir / f"{execution_id}.out"),
        stderr=OutputLog(log_dir / f"{execution_id}.err"),
        timeout=timeout,
        _stdin=process.stdin,
    )
    assert process.stdout is not None and process.stderr is not None
    for stream, log in ((process.stdout, execution.stdout), (process.stderr, execution.stderr)):
        eof = anyio.Event()
        execution._eofs.append(eof)
        tg.start_soon(_pump, stream, log, eof)
    tg.start_soon(_supervise, execution, on_done)
    return execution


async def _pump(stream: ByteReceiveStream, log: OutputLog, eof: anyio.Event) -> None:
    try:
        async for chunk in stream:
            log.write(chunk)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass
    finally:
        log.close()
        eof.set()


async def _supervise(execution: Execution, on_done: Callable[[Execution], Awaitable[None]]) -> None:
    process = execution.process
    try:
        with anyio.move_on_after(execution.timeout) as scope:
            await process.wait()
        if scope.cancelled_caught:
            execution.timed_out = True
            execution._signal_group(signal.SIGKILL)
            await process.wait()
        with anyio.move_on_after(DRAIN_GRACE):
            for eof in execution._eofs:
                await eof.wait()
    finally:
        if process.returncode is None:  # the engine is going away: take the command with it
            execution._signal_group(signal.SIGKILL)
            with anyio.CancelScope(shield=True):
                await process.wait()
        code = process.returncode
        if execution.timed_out:
            code = TIMEOUT_EXIT_STATUS
        elif code is not None and code < 0:
            code = 128 - code  # killed by a signal: the shell's convention
        execution.exit_status = code
        with anyio.CancelScope(shield=True):
            if execution._stdin is not None:
                await execution._stdin.aclose()
            # Persisted before anyone waiting is told: a returned result is an acknowledged one.
            try:
                await on_done(execution)
            finally:
                execution.done.set()
