"""Commands on a remote devbox: execute, execute_async, waits, output, kill and stdin.

Waiting is done with the API's own bounded long polls, never by tight polling. A command's
timeout, which Runloop does not have, is enforced here by killing the execution.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import time
import uuid
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..backend import BackendError, InvalidRequestError, check_command_id
from ..conventions import exec_timeout, exec_timeout_problem, under_home
from ..models import ExecutionOutputChunk, ExecutionStatus, ExecutionView, given
from .errors import (
    RemoteInvalidRequestError,
    RemoteInvalidStateError,
    RemoteTimeoutError,
    answered,
    raise_for_status,
)
from .http import LONG_POLL_MARGIN, RemoteHttp

log = logging.getLogger(__name__)

# The server holds an execution wait at most 25 s.
EXECUTION_LONG_POLL = 25.0
# Runloop returns the last `last_n` lines of output inline (100 by default); ask for all of it.
LAST_N = "1000000"
TIMEOUT_EXIT_STATUS = 124


def uuid7() -> str:
    """A UUIDv7 (RFC 9562: milliseconds since the epoch, then random bits), as Runloop's
    `command_id` wants; Python has uuid7 only from 3.14."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # the RFC's variant
    return str(uuid.UUID(int=value))


def in_directory(command: str, working_directory: str | None) -> str:
    """Runloop has no working directory per command: change to it in the command itself."""
    if not working_directory:
        return command
    return f"cd -- {shlex.quote(under_home(working_directory))} && eval {shlex.quote(command)}"


def checked_timeout(timeout_seconds: float | None) -> float:
    """The same command deadline the local engine applies, so both backends behave alike."""
    timeout = exec_timeout(timeout_seconds)
    if problem := exec_timeout_problem(timeout):
        raise InvalidRequestError(problem)
    return timeout


class RemoteExecutions:
    """The execution calls of a RemoteBackend, and the watchers that enforce their deadlines."""

    def __init__(self, http: RemoteHttp) -> None:
        self.http = http
        # Set while the backend is open: deadline watchers of execute_async run in it.
        self.watchers: TaskGroup | None = None

    @staticmethod
    def _path(devbox_id: str, execution_id: str) -> str:
        return f"/v1/devboxes/{devbox_id}/executions/{execution_id}"

    async def execute(
        self,
        devbox_id: str,
        command: str,
        *,
        timeout_seconds: float | None = None,
        working_directory: str | None = None,
        shell_name: str | None = None,
        command_id: str | None = None,
    ) -> ExecutionView:
        """`execute` (one request: it waits for the command up to its optimistic timeout), then
        bounded long polls until it completes or its deadline kills it.

        Not execute_async + wait_for_status: that is two round trips for every command, and
        execute_async cannot be sent again safely; `execute`'s command_id makes it idempotent
        (the caller's, or a fresh one that this call's own retries repeat)."""
        timeout = checked_timeout(timeout_seconds)
        if command_id is not None:
            check_command_id(command_id, False)
        deadline = anyio.current_time() + timeout
        hold = min(EXECUTION_LONG_POLL, timeout)
        # an integer in Runloop's API; a shorter deadline polls
        started = await self._execute(devbox_id, command, working_directory, shell_name, command_id, int(hold))
        if started.status == ExecutionStatus.COMPLETED:
            return started
        while (remaining := deadline - anyio.current_time()) > 0:
            try:
                return await self._wait_once(devbox_id, started.execution_id, ["completed"], remaining)
            except RemoteTimeoutError:
                continue
        return await self._time_out(devbox_id, started.execution_id, timeout)

    async def _execute(
        self,
        devbox_id: str,
        command: str,
        working_directory: str | None,
        shell_name: str | None,
        command_id: str | None,
        optimistic_timeout: int,
    ) -> ExecutionView:
        body: dict[str, Any] = {
            "command": in_directory(command, working_directory),
            "command_id": command_id or uuid7(),
            "optimistic_timeout": optimistic_timeout,
        }
        if shell_name is not None:
            body["shell_name"] = shell_name
        return await self.http.post(
            f"/v1/devboxes/{devbox_id}/execute",
            ExecutionView,
            body,
            timeout=optimistic_timeout + LONG_POLL_MARGIN,
            idempotent=True,
            last_n=LAST_N,
        )

    async def _wait_once(
        self, devbox_id: str, execution_id: str, statuses: list[str], remaining: float
    ) -> ExecutionView:
        hold = min(EXECUTION_LONG_POLL, remaining)
        return await self.http.post(
            f"{self._path(devbox_id, execution_id)}/wait_for_status",
            ExecutionView,
            {"statuses": statuses, "timeout_seconds": hold},
            timeout=hold + LONG_POLL_MARGIN,
            last_n=LAST_N,
        )

    async def _time_out(self, devbox_id: str, execution_id: str, timeout: float) -> ExecutionView:
        try:
            view = await self.kill(devbox_id, execution_id, kill_process_group=True)
        except (RemoteInvalidStateError, RemoteInvalidRequestError):
            view = await self.get(devbox_id, execution_id)  # it completed meanwhile
            if view.status == ExecutionStatus.COMPLETED:
                return view
        note = f"\n[scenario-mcp] timed out after {timeout:g} s; the command and its process group were killed"
        return view.model_copy(
            update={
                "status": ExecutionStatus.COMPLETED,
                "exit_status": TIMEOUT_EXIT_STATUS,
                "stderr": (view.stderr or "") + note,
            }
        )

    async def execute_async(
        self,
        devbox_id: str,
        command: str,
        *,
        timeout_seconds: float | None = None,
        working_directory: str | None = None,
        shell_name: str | None = None,
        attach_stdin: bool = False,
        command_id: str | None = None,
    ) -> ExecutionView:
        timeout = checked_timeout(timeout_seconds)
        if command_id is not None:
            # Runloop's execute_async takes no command_id; its `execute` does, and answers at once
            # with an optimistic timeout of 0.
            check_command_id(command_id, attach_stdin)
            started = await self._execute(devbox_id, command, working_directory, shell_name, command_id, 0)
        else:
            body: dict[str, Any] = {"command": in_directory(command, working_directory)}
            if shell_name is not None:
                body["shell_name"] = shell_name
            if attach_stdin:
                body["attach_stdin"] = True
            started = await self.http.post(f"/v1/devboxes/{devbox_id}/execute_async", ExecutionView, body)
        if timeout_seconds is not None and started.status != ExecutionStatus.COMPLETED:
            assert self.watchers is not None
            self.watchers.start_soon(self._deadline, devbox_id, started.execution_id, timeout)
        return started

    async def _deadline(self, devbox_id: str, execution_id: str, timeout: float) -> None:
        await anyio.sleep(timeout)
        try:
            view = await self.get(devbox_id, execution_id)
            if view.status != ExecutionStatus.COMPLETED:
                log.info("execution %s on %s reached its %g s timeout; killing it", execution_id, devbox_id, timeout)
                await self.kill(devbox_id, execution_id, kill_process_group=True)
        except BackendError as exc:
            log.info("could not enforce the timeout of execution %s: %s", execution_id, exc.message)

    async def get(self, devbox_id: str, execution_id: str) -> ExecutionView:
        return await self.http.get(self._path(devbox_id, execution_id), ExecutionView, last_n=LAST_N)

    async def wait(
        self, devbox_id: str, execution_id: str, *, statuses: list[str] | None = None, timeout_seconds: float = 30
    ) -> ExecutionView:
        deadline = anyio.current_time() + timeout_seconds
        while True:
            try:
                return await self._wait_once(
                    devbox_id, execution_id, statuses or ["completed"], max(0.0, deadline - anyio.current_time())
                )
            except RemoteTimeoutError:
                if anyio.current_time() >= deadline:
                    raise

    async def kill(self, devbox_id: str, execution_id: str, *, kill_process_group: bool = True) -> ExecutionView:
        return await self.http.post(
            f"{self._path(devbox_id, execution_id)}/kill",
            ExecutionView,
            {"kill_process_group": kill_process_group},
            last_n=LAST_N,
        )

    async def send_stdin(
        self, devbox_id: str, execution_id: str, *, text: str | None = None, signal: str | None = None
    ) -> ExecutionView:
        await self.http.request(
            "POST", f"{self._path(devbox_id, execution_id)}/send_std_in", json_body=given(text=text, signal=signal)
        )
        return await self.get(devbox_id, execution_id)

    async def output(
        self, devbox_id: str, execution_id: str, *, stream: str = "stdout", offset: int = 0
    ) -> ExecutionOutputChunk:
        """The next slice of output from `offset`, read off the SSE stream; waits at most one long poll."""
        if stream not in ("stdout", "stderr"):
            raise InvalidRequestError(f"stream must be stdout or stderr, got {stream!r}")
        path = f"{self._path(devbox_id, execution_id)}/stream_{stream}_updates"
        output, next_offset, ended = "", offset, False
        timeout = self.http.read_timeout(EXECUTION_LONG_POLL + LONG_POLL_MARGIN)
        with anyio.move_on_after(EXECUTION_LONG_POLL):
            async with self.http.client.sse(path, params={"offset": str(offset)}, timeout=timeout) as source:
                if source.response.status_code >= 400:
                    await source.response.aread()
                    raise_for_status(source.response, f"GET {path}")
                async for event in source:
                    if event.event == "error":
                        _raise_unless_hold_ended(event.data, path)
                        break
                    data = json.loads(event.data)
                    output = str(data.get("output", ""))
                    reported = data.get("offset")
                    next_offset = int(reported) if reported is not None else offset + len(output.encode())
                    break
                else:
                    ended = True
        return ExecutionOutputChunk(
            execution_id=execution_id,
            stream="stdout" if stream == "stdout" else "stderr",
            offset=offset,
            output=output,
            next_offset=next_offset,
            done=ended,
        )


def _raise_unless_hold_ended(data: str, path: str) -> None:
    """An `error` event on an output stream is an error, unless it is the 408 that ends the
    server's hold: nothing more yet."""
    try:
        error = json.loads(data)
        code, message = int(error.get("code", 500)), str(error.get("message", data))
    except (json.JSONDecodeError, AttributeError, ValueError):
        code, message = 500, data
    if code != 408:
        raise answered(code, message, f"GET {path}")
