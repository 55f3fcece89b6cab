"""Waiting a bounded time for an object to reach a state, by polling its view."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

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
