"""Clean stops: SIGTERM and SIGINT stop a serving process the way its own end would.

The listener stops taking work, requests in flight get a short grace to finish (their state
changes commit), then the engine closes: its tasks end, the database checkpoints its WAL, and the
process exits 0. Devboxes keep running for the next server to reattach (see the README).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Generator

import anyio
import uvicorn

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# In-flight HTTP requests get this long once a stop is asked; the whole stop stays within 5 s.
GRACE_SECONDS = 2.0


class Server(uvicorn.Server):
    """uvicorn's server, minus its own signal handling: it would re-raise the signal once served,
    and the process would die by it before the engine closed."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def server_config(app: object, **options: object) -> uvicorn.Config:
    """uvicorn's config with the stop grace (`timeout_graceful_shutdown`) set."""
    return uvicorn.Config(app, timeout_graceful_shutdown=int(GRACE_SECONDS), **options)  # type: ignore[arg-type]


async def serve_until_stopped(
    serve: Callable[[], Awaitable[None]], ask_to_stop: Callable[[], None] | None = None
) -> None:
    """Run `serve` until it returns, or until a stop signal: then `ask_to_stop()` (an HTTP server
    stops listening and finishes its requests), cancelled after the grace, or at once without it."""
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
                async for signum in signals:
                    log.info("%s: stopping (devboxes keep running)", signal.Signals(signum).name)
                    if ask_to_stop is not None:
                        ask_to_stop()
                        await anyio.sleep(GRACE_SECONDS + 0.5)
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(watch)
        await serve()
        tg.cancel_scope.cancel()


class StdinLines:
    """stdin's lines for MCP's stdio transport, read so that a stop cancels the read: anyio's
    wrapped file reads in a worker thread that a cancelled server would wait on until the client
    wrote a line or closed the pipe."""

    def __init__(self, fd: int = 0) -> None:
        self._fd = fd
        self._buffer = b""
        self._eof = False

    def __aiter__(self) -> StdinLines:
        return self

    async def __anext__(self) -> str:
        while b"\n" not in self._buffer and not self._eof:
            await anyio.wait_readable(self._fd)
            chunk = os.read(self._fd, 1 << 16)  # readable: returns at once, blocking or not
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True
        if not self._buffer:
            raise StopAsyncIteration
        line, newline, self._buffer = self._buffer.partition(b"\n")
        return (line + newline).decode("utf-8", errors="replace")
