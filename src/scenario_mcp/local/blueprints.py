"""Blueprints on the local engine: environments built once, their build logs, the default
environment, and the environment (layers, image) any devbox stands on.

A build (blueprint_build.py) runs in the background: `create` answers `queued` at once, as
Runloop does, and the status goes `building`, then `build_complete` or `failed`; `wait` waits for
that. At most MAX_CONCURRENT_BUILDS run at once, the others stay queued.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import logging
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup

from ..backend import (
    BuildProgress,
    EnvironmentUnavailableError,
    InvalidRequestError,
    InvalidStateError,
    NotFoundError,
    OperationTimeoutError,
)
from ..models import (
    BUILD_ENDED,
    BlueprintBuildLogsListView,
    BlueprintCreateParameters,
    BlueprintListView,
    BlueprintView,
    new_id,
    now_ms,
)
from .blueprint_build import BlueprintBuild, BuildOutcome
from .build_progress import BuildTracker, DeferredSaves
from .environments import Environment
from .layers import LayerStore
from .secrets import Secrets, check_secret_names
from .store import Store, Table
from .trust import TrustSettings

log = logging.getLogger(__name__)

MAX_BUILD_LOG = 16_000  # characters of the whole build log kept in the view (its end)
MAX_CONCURRENT_BUILDS = 2

DEFAULT_BLUEPRINT_NAME = "scenario-mcp-default"
# The default environment: the host's system dirs plus a Python venv with pip and pytest, whose
# bin dir is first on every devbox's PATH (Debian's system python has neither).
DEFAULT_BLUEPRINT_COMMANDS = (
    "python3 -m venv /opt/python",
    "/opt/python/bin/pip install --quiet --disable-pip-version-check pytest",
)

ContextOpener = Callable[[str], Awaitable[Path]]  # an object id -> the path of its bytes


def default_blueprint_id() -> str:
    """Stable per host Python and recipe, so a changed recipe builds a fresh default."""
    recipe = "\n".join(DEFAULT_BLUEPRINT_COMMANDS) + sys.version
    with contextlib.suppress(OSError):
        recipe += os.readlink("/usr/bin/python3")
    return "bpt_default" + hashlib.sha256(recipe.encode()).hexdigest()[:13]


class Blueprints:
    def __init__(self, store: Store, layers: LayerStore, boxes_dir: Path) -> None:
        self.store = store
        self.layers = layers
        self.boxes_dir = boxes_dir
        self._default_lock = anyio.Lock()
        self.limiter = anyio.CapacityLimiter(MAX_CONCURRENT_BUILDS)
        self._finished: dict[str, anyio.Event] = {}  # builds in flight
        self._trackers: dict[str, BuildTracker] = {}  # their progress, while they are in flight
        self._tg: TaskGroup | None = None
        self.open_context: ContextOpener | None = None  # set by the engine once objects exist
        self.trust = TrustSettings()  # the CAs and proxies build steps get (trust.py)
        self.secrets: Secrets | None = None  # set by the engine: what a build's `secrets` name
        # A blueprint's parameters never change once created, nor its environment once built:
        # they are read from the store once, not again on every devbox create.
        self._launch_defaults: dict[str, dict[str, Any]] = {}
        self._environments: dict[str, Environment] = {}

    def attach_task_group(self, tg: TaskGroup) -> None:
        self._tg = tg

    @property
    def building(self) -> bool:
        """Whether a build is queued or running (its layers may not be recorded yet)."""
        return bool(self._finished)

    # --- the environment of a devbox -----------------------------------------------------------

    async def environment(
        self, *, blueprint_id: str | None, blueprint_name: str | None, snapshot_id: str | None
    ) -> Environment:
        """What a devbox given these (at most one) stands on; the default environment for none."""
        if sum(x is not None for x in (blueprint_id, blueprint_name, snapshot_id)) > 1:
            raise InvalidRequestError("give at most one of blueprint_id, blueprint_name and snapshot_id")
        if snapshot_id is not None:
            row = await self.store.get("snapshots", snapshot_id)
            if row is None:
                raise NotFoundError("snapshot", snapshot_id)
            return Environment.from_internal(row.internal, row.data.get("source_blueprint_id"))
        if blueprint_name is not None:
            page = await self.store.list("blueprints", limit=1, name=blueprint_name, state="build_complete")
            if not page.rows:
                raise NotFoundError("blueprint named", blueprint_name)
            return Environment.from_internal(page.rows[0].internal, page.rows[0].id)
        if blueprint_id is not None:
            if (known := self._environments.get(blueprint_id)) is not None:
                return known
            row = await self.store.get("blueprints", blueprint_id)
            if row is None:
                raise NotFoundError("blueprint", blueprint_id)
            if row.data["status"] != "build_complete":
                raise InvalidStateError(
                    f"blueprint {blueprint_id} is `{row.data['status']}`, not build_complete"
                    + (
                        f": {row.data.get('failure_message') or row.data.get('failure_reason')}"
                        if row.data.get("failure_reason")
                        else "; wait for its build (get_blueprint) and retry"
                    )
                )
            environment = self._environments[blueprint_id] = Environment.from_internal(row.internal, blueprint_id)
            return environment
        default = await self.ensure_default()
        return Environment((default.id,), default.id)

    async def launch_defaults(self, blueprint_id: str | None) -> dict[str, Any]:
        """The launch parameters a blueprint gives the devboxes made from it."""
        if blueprint_id is None:
            return {}
        defaults = self._launch_defaults.get(blueprint_id)
        if defaults is None:
            row = await self.store.get("blueprints", blueprint_id)
            if row is None:
                return {}
            defaults = self._launch_defaults[blueprint_id] = dict(
                (row.data.get("parameters") or {}).get("launch_parameters") or {}
            )
        return dict(defaults)

    # --- building ------------------------------------------------------------------------------

    async def create(self, params: BlueprintCreateParameters) -> BlueprintView:
        """Queue a build; the answer is the `queued` blueprint (poll it, or `wait`)."""
        base = await self._base(params)
        secret_names = check_secret_names(params.secrets, "secrets")
        if secret_names:
            if self.secrets is None:
                raise InvalidRequestError("this engine keeps no secrets; leave secrets out")
            await self.secrets.check_exist(secret_names, "secrets")
        view = self._new_view(params, new_id("blueprint"), base)
        archive = await self._context(params, self._work(view.id))
        await self._save(view, {})
        finished = self._finished[view.id] = anyio.Event()
        self._trackers[view.id] = BuildTracker(params)
        assert self._tg is not None, "the engine's task group is not running"
        self._tg.start_soon(self._build_queued, view, base, archive, finished)
        return view

    async def wait(self, blueprint_id: str, *, timeout_seconds: float) -> BlueprintView:
        """The blueprint once its build has ended (build_complete or failed)."""
        finished = self._finished.get(blueprint_id)
        if finished is not None:
            with anyio.move_on_after(timeout_seconds):
                await finished.wait()
        view = await self.get(blueprint_id)
        if view.status not in BUILD_ENDED:
            raise OperationTimeoutError(
                f"blueprint {blueprint_id} is still `{view.status}` after {timeout_seconds:g} s; "
                "read its build logs and wait again"
            )
        return view

    async def _base(self, params: BlueprintCreateParameters) -> Environment:
        if params.dockerfile is not None and (params.base_blueprint_id or params.base_blueprint_name):
            raise InvalidRequestError(
                "give either a dockerfile or a base blueprint, not both: the Dockerfile's FROM names its base"
            )
        if params.dockerfile is not None and not params.dockerfile.strip():
            raise InvalidRequestError("dockerfile is empty; give the Dockerfile's text (starting with FROM)")
        if params.build_context is not None and params.dockerfile is None:
            raise InvalidRequestError("build_context is only read by a dockerfile's COPY and ADD; add the dockerfile")
        if params.base_blueprint_id or params.base_blueprint_name:
            return await self.environment(
                blueprint_id=params.base_blueprint_id, blueprint_name=params.base_blueprint_name, snapshot_id=None
            )
        return Environment(())

    def _work(self, blueprint_id: str) -> Path:
        return self.boxes_dir / f"build-{blueprint_id}"

    async def _remove_scratch(self, blueprint_id: str) -> None:
        await anyio.to_thread.run_sync(shutil.rmtree, self._work(blueprint_id), True)

    async def _context(self, params: BlueprintCreateParameters, work: Path) -> Path | None:
        """The build context's archive, linked into the build's own directory: the object may be
        deleted (or expire) while the build waits in the queue."""
        if params.build_context is None:
            return None
        if self.open_context is None:
            raise EnvironmentUnavailableError("this engine keeps no objects to read a build context from")
        source = await self.open_context(params.build_context.object_id)
        work.mkdir(parents=True, exist_ok=True)
        archive = work / "context.archive"
        try:
            os.link(source, archive)
        except OSError:  # another filesystem: a copy
            await anyio.to_thread.run_sync(shutil.copyfile, source, archive)
        return archive

    def _new_view(self, params: BlueprintCreateParameters, blueprint_id: str, base: Environment) -> BlueprintView:
        return BlueprintView(
            id=blueprint_id,
            name=params.name,
            status="queued",
            create_time_ms=now_ms(),
            parameters=params.model_dump(mode="json", exclude_none=True),
            base_blueprint_id=base.blueprint_id,
            metadata=params.metadata or {},
        )

    async def _build_queued(
        self, view: BlueprintView, base: Environment, archive: Path | None, finished: anyio.Event
    ) -> None:
        ends = contextlib.AsyncExitStack()
        try:
            async with self.limiter:
                await self._build(view, base, archive, ends)
        except Exception as exc:
            # A build runs in the engine's task group: what it did not foresee fails the
            # blueprint, never the server.
            log.exception("building blueprint %s failed unexpectedly", view.id)
            outcome = BuildOutcome()
            outcome.log(f"build failed: internal error: {type(exc).__name__}: {exc}", failed=True)
            outcome.failure = f"internal error: {type(exc).__name__}: {exc}"
            await self._save(self._finished_view(view, outcome), {"build_logs": outcome.logs})
        finally:
            finished.set()
            self._finished.pop(view.id, None)
            if (tracker := self._trackers.pop(view.id, None)) is not None and not tracker.ended:
                tracker.end("the build stopped")
            # Its sandbox stopped and its scratch removed once its waiters have the outcome: no one
            # waits for that (on a busy disk, removing a directory costs more than making it). A
            # server stopped first leaves the scratch to the next start (fail_interrupted).
            await ends.aclose()

    async def progress(self, blueprint_id: str, *, after: int = 0) -> list[BuildProgress] | None:
        """A build's progress reports after the `after`-th (see BuildTracker); None when none is under way."""
        tracker = self._trackers.get(blueprint_id)
        return None if tracker is None else await tracker.after(after)

    async def _build(
        self,
        view: BlueprintView,
        base: Environment,
        archive: Path | None,
        ends: contextlib.AsyncExitStack,
    ) -> BlueprintView:
        """The build, its record saved as it goes and at its end. `ends`: where it leaves what
        ends it (its sandbox's stop, then its scratch's removal), for after its waiters are told."""
        ends.push_async_callback(self._remove_scratch, view.id)
        view = view.model_copy(update={"status": "building"})
        await self._save(view, {})
        tracker = self._trackers.get(view.id)
        if tracker is not None:
            tracker.started()
        params = BlueprintCreateParameters.model_validate(view.parameters)
        build = BlueprintBuild(
            blueprint_id=view.id,
            params=params,
            base=base,
            layers=self.layers,
            work=self._work(view.id),
            context_archive=archive,
            trust=self.trust,
            tracker=tracker,
        )
        if params.secrets and self.secrets is not None:
            try:
                build.secrets = await self.secrets.values(params.secrets)
            except InvalidStateError as exc:
                build.outcome.failure = exc.message

        async def save_logs() -> None:
            await self._save(view, {"build_logs": build.outcome.logs})

        ends.push_async_callback(build.aclose)
        return await self._run_build(view, build, save_logs, tracker)

    async def _run_build(
        self,
        view: BlueprintView,
        build: BlueprintBuild,
        save_logs: Callable[[], Awaitable[None]],
        tracker: BuildTracker | None,
    ) -> BlueprintView:
        async with anyio.create_task_group() as saves:  # ends once the last log save is written
            build.on_log = DeferredSaves(saves, save_logs).request
            outcome = await build.run()
        view = self._finished_view(view, outcome)
        internal: dict[str, Any] = {"build_logs": outcome.logs}
        if outcome.environment is not None:
            internal.update(outcome.environment.to_internal())
        await self._save(view, internal)
        if tracker is not None:
            tracker.end(view.status if view.status == "build_complete" else f"{view.status}: {view.failure_message}")
        return view

    @staticmethod
    def _finished_view(view: BlueprintView, outcome: BuildOutcome) -> BlueprintView:
        update: dict[str, Any] = {
            "build_finish_time_ms": now_ms(),
            "build_log": "\n".join(outcome.text)[-MAX_BUILD_LOG:],
        }
        if outcome.failure is None:
            environment = outcome.environment
            if environment is not None and environment.image is not None:
                config = environment.image.to_json()
                config.pop("shell", None)  # the Dockerfile's SHELL is a build-time setting
                update["image_config"] = config
            return view.model_copy(update={"status": "build_complete", **update})
        failed = {"status": "failed", "failure_reason": "build_failed", "failure_message": outcome.failure}
        return view.model_copy(update={**failed, **update})

    async def fail_interrupted(self) -> None:
        """Builds an engine stopped in the middle of never finish: say so (at engine start)."""
        for status in ("queued", "building", "provisioning"):
            for row in (await self.store.list("blueprints", limit=100_000, state=status)).rows:
                view = BlueprintView.model_validate(row.data).model_copy(
                    update={
                        "status": "failed",
                        "build_finish_time_ms": now_ms(),
                        "failure_reason": "build_failed",
                        "failure_message": "the server stopped during this build; create the blueprint again",
                    }
                )
                await self._save(view, row.internal)
        # Their scratch (sandboxes' disks, unpacked contexts) goes too.
        for leftover in await anyio.to_thread.run_sync(lambda: [*self.boxes_dir.glob("build-*")]):
            await anyio.to_thread.run_sync(shutil.rmtree, leftover, True)

    async def ensure_default(self) -> BlueprintView:
        """The default environment, built once per data dir (it needs PyPI the first time)."""
        blueprint_id = default_blueprint_id()
        async with self._default_lock:
            row = await self.store.get("blueprints", blueprint_id)
            if row is not None and row.data["status"] == "build_complete" and self.layers.exists(blueprint_id):
                return BlueprintView.model_validate(row.data)
            log.warning("building the default devbox environment (Python venv with pytest); this happens once")
            params = BlueprintCreateParameters(
                name=DEFAULT_BLUEPRINT_NAME, system_setup_commands=list(DEFAULT_BLUEPRINT_COMMANDS)
            )
            async with contextlib.AsyncExitStack() as ends:
                view = await self._build(
                    self._new_view(params, blueprint_id, Environment(())), Environment(()), None, ends
                )
        if view.status != "build_complete":
            raise EnvironmentUnavailableError(
                "could not build the default devbox environment (a Python venv with pip and pytest): "
                f"{view.failure_message}. It needs network access to PyPI the first time; connect and retry, "
                "or name a blueprint_id / snapshot_id of your own"
            )
        return view

    # --- records -------------------------------------------------------------------------------

    async def _save(self, view: BlueprintView, internal: dict[str, Any]) -> None:
        await self.store.put(
            "blueprints", view.id, view.model_dump(mode="json"), internal=internal, name=view.name, state=view.status
        )

    async def get(self, blueprint_id: str) -> BlueprintView:
        row = await self.store.get("blueprints", blueprint_id)
        if row is None:
            raise NotFoundError("blueprint", blueprint_id)
        return BlueprintView.model_validate(row.data)

    async def list(
        self, *, limit: int, starting_after: str | None = None, name: str | None = None
    ) -> BlueprintListView:
        page = await self.store.list("blueprints", limit=limit, starting_after=starting_after, name=name)
        return BlueprintListView(
            blueprints=[BlueprintView.model_validate(r.data) for r in page.rows],
            has_more=page.has_more,
            total_count=page.total_count,
        )

    async def logs(self, blueprint_id: str) -> BlueprintBuildLogsListView:
        row = await self.store.get("blueprints", blueprint_id)
        if row is None:
            raise NotFoundError("blueprint", blueprint_id)
        return BlueprintBuildLogsListView(blueprint_id=blueprint_id, logs=row.internal.get("build_logs", []))

    async def delete(self, blueprint_id: str, scenarios_using: builtins.list[str]) -> None:
        await self.get(blueprint_id)
        await delete_environment_layer(self.store, self.layers, "blueprints", blueprint_id, scenarios_using)
        self._launch_defaults.pop(blueprint_id, None)
        self._environments.pop(blueprint_id, None)


async def delete_environment_layer(
    store: Store,
    layers: LayerStore,
    table: Literal["blueprints", "snapshots"],
    layer_id: str,
    scenarios_using: builtins.list[str],
) -> None:
    """Delete a snapshot or blueprint, and its layer, unless something still stands on it."""
    noun = table.removesuffix("s")
    if scenarios_using:
        raise InvalidStateError(
            f"{noun} {layer_id} is the environment of scenario(s) {', '.join(scenarios_using)}; "
            "archive or update them first"
        )
    users = []
    standing_on: tuple[Table, ...] = ("blueprints", "snapshots", "devboxes")
    for other in standing_on:
        for row in (await store.list(other, limit=100_000)).rows:
            if row.id == layer_id or (other == "devboxes" and row.data["status"] in ("shutdown", "failure")):
                continue
            if layer_id in row.internal.get("layers", []):
                users.append(row.id)
    if users:
        raise InvalidStateError(
            f"{noun} {layer_id} is a layer of {', '.join(users[:10])}; delete or shut down those first"
        )
    await store.delete(table, layer_id)
    await anyio.to_thread.run_sync(layers.remove, layer_id)
