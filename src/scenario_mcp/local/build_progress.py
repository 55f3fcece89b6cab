"""How far one blueprint build is, told as it goes: steps done out of the steps its Dockerfile has
(each RUN, COPY and ADD; the setup commands one more), an image's pull a fraction of the step it
belongs to by the bytes fetched and unpacked. The reports are kept, so a waiter that comes late
(or reads slowly) misses none, and `done` never goes down, as MCP progress notifications want.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskGroup

from ..backend import BuildProgress
from ..models import BlueprintCreateParameters
from .dockerfile import DockerfileError, parse

LAYER_STEPS = ("RUN", "COPY", "ADD")
MAX_REPORTS = 10_000  # a long pull's byte counts: the oldest go first
PULL_SHARE = 0.99  # of its step, a pull's bytes take at most this: the step ends only with its log


def planned_steps(params: BlueprintCreateParameters) -> int:
    steps = 0
    if params.dockerfile:
        try:
            steps = sum(1 for instruction in parse(params.dockerfile) if instruction.keyword in LAYER_STEPS)
        except DockerfileError:
            steps = 0  # the build itself will say what is wrong
    if params.file_mounts or params.system_setup_commands:
        steps += 1
    return max(steps, 1)


class BuildTracker:
    def __init__(self, params: BlueprintCreateParameters) -> None:
        self.total = planned_steps(params)
        self.completed = 0
        self.reports: list[BuildProgress] = []
        self.ended = False
        self._fraction = 0.0
        self._changed = anyio.Event()
        self._report(0.0, "queued")

    def _report(self, done: float, message: str) -> None:
        last = self.reports[-1].done if self.reports else 0.0
        seq = self.reports[-1].seq + 1 if self.reports else 1
        self.reports.append(BuildProgress(seq, min(max(done, last), self.total), self.total, message))
        del self.reports[:-MAX_REPORTS]
        self._changed.set()
        self._changed = anyio.Event()

    def started(self) -> None:
        self._report(0.0, "building")

    def pulling(self, done: int, total: int, message: str) -> None:
        """A pull's report (images.py's ProgressCallback): bytes fetched and unpacked of the layers to fetch."""
        if total:
            self._fraction = max(self._fraction, PULL_SHARE * min(done / total, 1.0))
            message = f"{message} ({done / 2**20:.1f} of {total / 2**20:.1f} MiB)"
        self._report(self.completed + self._fraction, message)

    def step(self, message: str) -> None:
        """A step done (built, or found in the cache)."""
        self.completed = min(self.completed + 1, self.total)
        self._fraction = 0.0
        self._report(self.completed, f"step {self.completed} of {self.total} done: {message}")

    def end(self, status: str) -> None:
        self.completed = self.total
        self._report(self.total, status)
        self.ended = True

    async def after(self, seq: int) -> list[BuildProgress]:
        """The reports after `seq`, waiting for one unless the build has ended."""
        while not self.ended and (not self.reports or self.reports[-1].seq <= seq):
            await self._changed.wait()
        return [report for report in self.reports if report.seq > seq]


class DeferredSaves:
    """A build's record saved as its log grows, off the path of its steps: a save is started in
    `tg` (it runs while the next step's command runs), and one asked for while another is under
    way is folded into one more after it. Every save writes the whole log so far, so none is lost;
    the task group's end is when the last has been written. A save that fails does not stop the
    build (the record is written again at its end, awaited, which raises what is wrong)."""

    def __init__(self, tg: TaskGroup, save: Callable[[], Awaitable[None]]) -> None:
        self._tg = tg
        self._save = save
        self._wanted = False
        self._running = False
        self.error: Exception | None = None  # the last save's that failed

    async def request(self) -> None:
        self._wanted = True
        if not self._running:
            self._running = True
            self._tg.start_soon(self._drain)

    async def _drain(self) -> None:
        try:
            while self._wanted:
                self._wanted = False
                try:
                    await self._save()
                except Exception as exc:  # not the build's end: its final save (awaited) says what is wrong
                    self.error = exc
        finally:
            self._running = False
