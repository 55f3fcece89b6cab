"""Waiting a bounded time for an object to reach a state: by polling its view, or (a blueprint's
build, where the backend tells how it goes) by following its progress reports."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from ...backend import Backend, BuildProgressSource
from ...models import BUILD_ENDED, BlueprintView
from .spec import Progress

T = TypeVar("T")

POLL_INTERVAL = 0.1


async def poll(
    fetch: Callable[[], Awaitable[T]],
    ended: Callable[[T], bool],
    wait_seconds: float,
    progress: Progress | None = None,
    label: str = "",
) -> T:
    """The object once `ended`, or as it is after `wait_seconds`; with `progress`, a report each
    whole second waited (values increase, as the protocol wants)."""
    view = await fetch()
    started = anyio.current_time()
    reported = 0
    with anyio.move_on_after(wait_seconds):
        while not ended(view):
            await anyio.sleep(POLL_INTERVAL)
            view = await fetch()
            elapsed = int(anyio.current_time() - started)
            if progress is not None and elapsed > reported:
                reported = elapsed
                await progress(elapsed / (elapsed + 30), None, f"{label}: {elapsed} s")
    return view


class RisingProgress:
    """Passes a report on only when its value has grown: MCP wants every progress notification's
    value above the one before, and a build's reports may repeat one (a step's message)."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self.last = -math.inf
        self.total: float | None = None

    async def __call__(self, done: float, total: float | None, message: str) -> None:
        self.total = total if total is not None else self.total
        if self._progress is None or done <= self.last:
            return
        self.last = done
        await self._progress(done, total, message)


async def wait_for_build(
    backend: Backend, blueprint_id: str, wait_seconds: float, progress: Progress | None = None
) -> BlueprintView:
    """The blueprint once its build has ended, or as it is after `wait_seconds`. With `progress`,
    the build's own reports as they come (bytes of a pull, the steps) where the backend tells
    them; elsewhere a report each whole second waited."""
    if not isinstance(backend, BuildProgressSource):
        return await poll(
            lambda: backend.get_blueprint(blueprint_id),
            lambda b: b.status in BUILD_ENDED,
            wait_seconds,
            progress,
            f"building {blueprint_id}",
        )
    send = RisingProgress(progress)
    seen = 0
    view = await backend.get_blueprint(blueprint_id)
    with anyio.move_on_after(wait_seconds):
        while view.status not in BUILD_ENDED:
            reports = await backend.blueprint_progress(blueprint_id, after=seen)
            for report in reports or ():
                await send(report.done, report.total, report.message)
                seen = report.seq
            if not reports:  # no build under way: it has ended, or (queued by another engine) has not begun
                view = await backend.get_blueprint(blueprint_id)
                if view.status not in BUILD_ENDED:
                    await anyio.sleep(POLL_INTERVAL)
            elif reports[-1].done >= reports[-1].total:
                view = await backend.get_blueprint(blueprint_id)
    if view.status in BUILD_ENDED and send.total is not None:
        await send(send.total, send.total, view.status)
    return view
