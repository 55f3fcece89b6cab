"""Bounded calls: work that may outlast a client's patience runs in the background, and a call
waits for it at most `wait_seconds`.

A client cuts a call that takes too long (openai-agents after 5 s, desktop clients near 60 s), so
a tool whose work can take longer (creating a devbox while the default environment is still
being built, a snapshot, a validation, a run, a command) starts it as an operation in a task group
the server holds for its session, waits at most the caller's bound while reporting progress, and
then answers either with the result or with what it knows (the caller is told to call the same
tool with the same arguments to keep waiting). That second call finds the operation under way,
or its result once it ended, and never starts the work twice. A call cancelled by its client
(rather than one that stopped waiting) cancels the operation it was waiting for.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup
from pydantic import BaseModel

from ..backend import BackendError
from .tools.spec import Progress

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
KEEP_FINISHED_SECONDS = 900.0  # an unfinished answer's result waits this long for its caller

Work = Callable[[Progress], Awaitable[BaseModel]]


async def _no_progress(done: float, total: float | None = None, message: str | None = None) -> None:
    return None


@dataclass
class Operation:
    key: str
    started: float = field(default_factory=anyio.current_time)
    done: anyio.Event = field(default_factory=anyio.Event)
    result: BaseModel | None = None
    error: BaseException | None = None
    finished: float | None = None
    last_message: str = ""
    reporter: Progress = _no_progress
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    async def report(self, done: float, total: float | None = None, message: str | None = None) -> None:
        if message:
            self.last_message = message
        await self.reporter(done, total, message)

    def outcome(self) -> BaseModel:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def operation_key(tool: str, arguments: dict[str, Any]) -> str:
    """Which calls are the same call: the tool and its arguments, less how long to wait."""
    same = {name: value for name, value in arguments.items() if name != "wait_seconds"}
    return tool + json.dumps(same, sort_keys=True, default=str)


class Operations:
    def __init__(self) -> None:
        self._running: dict[str, Operation] = {}
        self._groups: list[TaskGroup] = []

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Enter in the server's lifespan: operations started meanwhile run in its task group."""
        async with anyio.create_task_group() as tg:
            self._groups.append(tg)
            try:
                yield
            finally:
                self._groups.remove(tg)
                tg.cancel_scope.cancel()

    async def call(
        self, key: str, work: Work, wait_seconds: float, progress: Progress, *, heartbeat: bool = True
    ) -> Operation:
        """The operation for `key` (started now unless one is under way or has a result waiting),
        after waiting at most `wait_seconds` for it to end. Ended, it is forgotten here."""
        self._forget_stale()
        operation = self._running.get(key)
        if operation is None:
            operation = Operation(key)
            self._running[key] = operation
            self._start(operation, work)
        operation.reporter = progress
        try:
            with anyio.move_on_after(wait_seconds):
                await self._wait(operation, progress if heartbeat else None)
        except anyio.get_cancelled_exc_class():
            operation.scope.cancel()  # the caller gave up on it: so does the server
            self._running.pop(key, None)
            raise
        finally:
            operation.reporter = _no_progress
        if operation.done.is_set():
            self._running.pop(key, None)
        return operation

    def _start(self, operation: Operation, work: Work) -> None:
        async def run() -> None:
            with operation.scope:
                try:
                    operation.result = await work(operation.report)
                except Exception as exc:
                    operation.error = exc
            if operation.result is None and operation.error is None:
                operation.error = BackendError("this call was canceled before it ended; call it again")
            operation.finished = anyio.current_time()
            operation.done.set()

        if not self._groups:
            raise RuntimeError("bounded tools run in the server's lifespan: connect a client to the server")
        self._groups[-1].start_soon(run)

    @staticmethod
    async def _wait(operation: Operation, heartbeat: Progress | None) -> None:
        while not operation.done.is_set():
            with anyio.move_on_after(HEARTBEAT_SECONDS):
                await operation.done.wait()
            if heartbeat is not None and not operation.done.is_set():
                elapsed = anyio.current_time() - operation.started
                await heartbeat(elapsed, None, f"still working: {elapsed:.0f} s")

    def _forget_stale(self) -> None:
        now = anyio.current_time()
        for key, operation in list(self._running.items()):
            if operation.finished is not None and now - operation.finished > KEEP_FINISHED_SECONDS:
                del self._running[key]
