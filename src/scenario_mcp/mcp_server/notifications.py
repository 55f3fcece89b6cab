"""Run change notifications, in both protocol eras.

Clients say which resources they care about: on the legacy wire with `resources/subscribe`, on the
current one with the URIs of a `subscriptions/listen` stream. While anyone listens, the notifier
polls the runs behind those URIs (the Backend has no change feed; a SQLite read is cheap) and, when
a run's state or score changes, sends `notifications/resources/updated` for `run://{id}` and
`run://{id}/logs`: to legacy subscribers on their session, to listen streams through the server's
subscription bus. Tool calls that change a run (score, complete, cancel ...) report it at once.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
)
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    EmptyResult,
    SubscribeRequestParams,
    SubscriptionsListenRequestParams,
    SubscriptionsListenResult,
    UnsubscribeRequestParams,
)

from ..backend import Backend, BackendError
from ..models import ScenarioRunView

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.25
_RUN_PREFIX = "run://"


def run_uris(run_id: str) -> tuple[str, str]:
    return f"run://{run_id}", f"run://{run_id}/logs"


def run_id_of(uri: str) -> str | None:
    """The run behind `run://{id}` or `run://{id}/logs`, else None."""
    if not uri.startswith(_RUN_PREFIX):
        return None
    rest = uri[len(_RUN_PREFIX) :]
    run_id, _, tail = rest.partition("/")
    return run_id if run_id and tail in ("", "logs") else None


class CountingBus(InMemorySubscriptionBus):
    """The SDK's in-process bus, knowing whether any listen stream is open."""

    def __init__(self) -> None:
        super().__init__()
        self.listeners = 0

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        unsubscribe = super().subscribe(listener)
        self.listeners += 1
        done = False

        def release() -> None:
            nonlocal done
            if not done:
                done = True
                self.listeners -= 1
            unsubscribe()

        return release


class RunNotifier:
    def __init__(self, backend: Backend, bus: CountingBus, *, poll_interval: float = POLL_INTERVAL) -> None:
        self._backend = backend
        self.bus = bus
        self._poll_interval = poll_interval
        self._listen = ListenHandler(bus)
        self._interest: Counter[str] = Counter()  # uri -> how many subscriptions want it
        self._legacy: dict[str, dict[int, ServerSession]] = {}  # uri -> connection key -> session
        self._last: dict[str, tuple[str, float | None]] = {}  # run id -> (state, score) last seen
        self._devbox_runs: dict[str, str] = {}  # devbox id -> run id, for log updates after executions
        self._loops: list[object] = []

    # --- lifecycle: one polling loop per server, whatever the number of connections ----------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Enter in the server's lifespan. Stdio and SSE enter it per connection: the first entrant polls."""
        token = object()
        self._loops.append(token)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._loop, token)
            try:
                yield
            finally:
                self._loops.remove(token)
                tg.cancel_scope.cancel()

    async def _loop(self, token: object) -> None:
        while True:
            await anyio.sleep(self._poll_interval)
            if self._loops and self._loops[0] is token and self._interest:
                try:
                    await self.poll()
                except Exception:
                    log.exception("polling runs for change notifications failed")

    async def poll(self) -> None:
        for run_id in sorted({r for uri in self._interest if (r := run_id_of(uri)) is not None}):
            try:
                run = await self._backend.get_run(run_id)
            except BackendError:
                continue
            await self.observe(run)

    # --- what changed --------------------------------------------------------------------------------

    async def observe(self, run: ScenarioRunView) -> None:
        """Record a run as just seen; notify its resources when its state or score moved."""
        self._devbox_runs[run.devbox_id] = run.id
        score = run.scoring_contract_result.score if run.scoring_contract_result else None
        now = (run.state.value, score)
        before = self._last.get(run.id)
        self._last[run.id] = now
        if before is not None and before != now:
            for uri in run_uris(run.id):
                await self.notify(uri)

    async def observe_result(self, result: Any) -> None:
        """Whatever a tool returned: runs it shows, or an execution on a run's devbox (its logs grew)."""
        runs: Iterable[Any] = ()
        if isinstance(result, ScenarioRunView):
            runs = [result]
        elif isinstance(getattr(result, "run", None), ScenarioRunView):
            runs = [result.run]
        elif isinstance(getattr(result, "runs", None), list):
            runs = result.runs
        for run in runs:
            if isinstance(run, ScenarioRunView):
                await self.observe(run)
        devbox_id = getattr(result, "devbox_id", None)
        if isinstance(devbox_id, str) and getattr(result, "execution_id", None):
            run_id = self._devbox_runs.get(devbox_id)
            if run_id is not None:
                await self.notify(f"run://{run_id}/logs")

    async def lists_changed(self) -> None:
        if self.bus.listeners:
            await self.bus.publish(ResourcesListChanged())

    async def notify(self, uri: str) -> None:
        if self.bus.listeners:
            await self.bus.publish(ResourceUpdated(uri=uri))
        for key, session in list(self._legacy.get(uri, {}).items()):
            try:
                await session.send_resource_updated(uri)
            except Exception:
                # The connection is gone: forget it.
                self._legacy.get(uri, {}).pop(key, None)
                self._interest[uri] -= 1
                if self._interest[uri] <= 0:
                    del self._interest[uri]

    async def _seed(self, uris: Iterable[str]) -> None:
        for uri in uris:
            run_id = run_id_of(uri)
            if run_id is not None and run_id not in self._last:
                with suppress(BackendError):
                    await self.observe(await self._backend.get_run(run_id))

    # --- request handlers ------------------------------------------------------------------------------

    async def subscribe(self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        """Legacy `resources/subscribe`: run resources are watched; others never change while served."""
        uri = str(params.uri)
        run_id = run_id_of(uri)
        if run_id is not None:
            try:
                await self._backend.get_run(run_id)
            except BackendError as exc:
                raise MCPError(INVALID_PARAMS, exc.message, data={"uri": uri}) from exc
        key = id(getattr(ctx.session, "_connection", ctx.session))
        sessions = self._legacy.setdefault(uri, {})
        if key not in sessions:
            sessions[key] = ctx.session
            self._interest[uri] += 1
        await self._seed([uri])
        return EmptyResult()

    async def unsubscribe(self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams) -> EmptyResult:
        uri = str(params.uri)
        key = id(getattr(ctx.session, "_connection", ctx.session))
        if self._legacy.get(uri, {}).pop(key, None) is not None:
            self._interest[uri] -= 1
            if self._interest[uri] <= 0:
                del self._interest[uri]
        return EmptyResult()

    async def listen(
        self, ctx: ServerRequestContext[Any, Any], params: SubscriptionsListenRequestParams
    ) -> SubscriptionsListenResult:
        """`subscriptions/listen` (2026-07-28): the SDK serves the stream; this notes which runs to watch."""
        uris = list(params.notifications.resource_subscriptions or [])
        self._interest.update(uris)
        try:
            await self._seed(uris)
            return await self._listen(ctx, params)
        finally:
            self._interest.subtract(uris)
            for uri in uris:
                if self._interest[uri] <= 0:
                    del self._interest[uri]
