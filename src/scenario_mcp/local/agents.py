"""Agents on the local engine: installed once (agent_build.py) into a read-only layer that any
devbox mounts (mounts.py). The layer is named by what went into it (name, version, source), so a
second agent of the same makes no second install, and a changed one always does. Like a
blueprint, `create` answers `queued` and the install runs in the background (`wait` for it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..backend import InvalidRequestError, InvalidStateError, NotFoundError, OperationTimeoutError
from ..conventions import MAX_LIST_LIMIT
from ..models import (
    BUILD_ENDED,
    AgentBuildLogsListView,
    AgentCreateParameters,
    AgentListView,
    AgentView,
    new_id,
    now_ms,
)
from .agent_build import AgentBuild
from .blueprint_build import BuildOutcome
from .blueprints import MAX_BUILD_LOG, Blueprints
from .environments import Environment
from .store import Store


def agent_layer_id(params: AgentCreateParameters) -> str:
    """The layer an agent installs into: the same for the same name, version and source."""
    recipe = json.dumps(
        [params.name, params.version, params.source.model_dump(mode="json") if params.source else None],
        sort_keys=True,
    )
    return "agent-" + hashlib.sha256(recipe.encode()).hexdigest()[:40]


class Agents:
    def __init__(self, store: Store, blueprints: Blueprints) -> None:
        self.store = store
        self.blueprints = blueprints
        self.layers = blueprints.layers
        self._finished: dict[str, anyio.Event] = {}  # installs in flight, by agent id
        self._installing: dict[str, anyio.Event] = {}  # the same, by layer id
        self._tg: TaskGroup | None = None
        # What a mount needs of an installed agent (it never changes): kept, off a devbox's start
        # path; forgotten whenever any agent is written or deleted (by name: the newest may change).
        self._mountable: dict[tuple[str | None, str | None], tuple[AgentView, str, bool]] = {}

    def attach_task_group(self, tg: TaskGroup) -> None:
        self._tg = tg

    @property
    def building(self) -> bool:
        return bool(self._finished)

    async def create(self, params: AgentCreateParameters) -> AgentView:
        archive = await self._object_archive(params)
        view = AgentView(
            id=new_id("agent"),
            name=params.name,
            version=params.version,
            create_time_ms=now_ms(),
            source=params.source,
            status="queued",
        )
        layer_id = agent_layer_id(params)
        await self._save(view, {"layers": [layer_id], "build_logs": []})
        finished = self._finished[view.id] = anyio.Event()
        assert self._tg is not None, "the engine's task group is not running"
        self._tg.start_soon(self._install_queued, view, layer_id, archive, finished)
        return view

    async def _object_archive(self, params: AgentCreateParameters) -> Path | None:
        """An object source's content, checked now (a missing object is the caller's to fix)."""
        if params.source is None or params.source.object is None:
            return None
        if self.blueprints.open_context is None:
            raise InvalidRequestError("this engine keeps no objects to install an agent from")
        return await self.blueprints.open_context(params.source.object.object_id)

    async def _install_queued(
        self, view: AgentView, layer_id: str, archive: Path | None, finished: anyio.Event
    ) -> None:
        try:
            await self._install(view, layer_id, archive)
        finally:
            finished.set()
            self._finished.pop(view.id, None)

    async def _install(self, view: AgentView, layer_id: str, archive: Path | None) -> None:
        # One install per layer at a time: a second agent of the same source waits, then reuses it.
        while (other := self._installing.get(layer_id)) is not None:
            await other.wait()
        if self.layers.exists(layer_id):
            outcome = BuildOutcome()
            outcome.log(f"{view.name} {view.version or ''} from this source is installed already: layer {layer_id}")
            await self._finish(view, layer_id, outcome)
            return
        done = self._installing[layer_id] = anyio.Event()
        try:
            async with self.blueprints.limiter:
                view = view.model_copy(update={"status": "building"})
                await self._save(view, {"layers": [layer_id], "build_logs": []})
                work = self.blueprints.boxes_dir / f"build-{view.id}"
                try:
                    default = await self.blueprints.ensure_default()
                    build = AgentBuild(
                        name=view.name,
                        version=view.version,
                        source=view.source,
                        environment=Environment((default.id,), default.id),
                        layers=self.layers,
                        layer_id=layer_id,
                        work=work,
                        archive=await self._linked(archive, work),
                    )
                except Exception as exc:  # the default environment could not be built: say why
                    outcome = BuildOutcome()
                    outcome.failure = str(getattr(exc, "message", exc))
                    outcome.log(f"install failed: {outcome.failure}", failed=True)
                    await self._finish(view, layer_id, outcome)
                    return

                async def save_logs() -> None:
                    await self._save(view, {"layers": [layer_id], "build_logs": build.outcome.logs})

                build.on_log = save_logs
                await self._finish(view, layer_id, await build.run())
        finally:
            done.set()
            self._installing.pop(layer_id, None)

    @staticmethod
    async def _linked(archive: Path | None, work: Path) -> Path | None:
        """The object's bytes, linked into the install's own directory: the object may be deleted
        while the install waits for its turn."""
        if archive is None:
            return None
        work.mkdir(parents=True, exist_ok=True)
        linked = work / "object.archive"
        try:
            os.link(archive, linked)
        except OSError:
            await anyio.to_thread.run_sync(shutil.copyfile, archive, linked)
        return linked

    async def _finish(self, view: AgentView, layer_id: str, outcome: BuildOutcome) -> None:
        update: dict[str, Any] = {"build_finish_time_ms": now_ms()}
        if outcome.failure is None:
            update["status"] = "build_complete"
        else:
            update.update(status="failed", failure_message=outcome.failure[-MAX_BUILD_LOG:])
        await self._save(view.model_copy(update=update), {"layers": [layer_id], "build_logs": outcome.logs})

    async def wait(self, agent_id: str, *, timeout_seconds: float) -> AgentView:
        finished = self._finished.get(agent_id)
        if finished is not None:
            with anyio.move_on_after(timeout_seconds):
                await finished.wait()
        view = await self.get(agent_id)
        if view.status not in BUILD_ENDED:
            raise OperationTimeoutError(
                f"agent {agent_id} is still `{view.status}` after {timeout_seconds:g} s; read its logs and wait again"
            )
        return view

    async def fail_interrupted(self) -> None:
        """Installs an engine stopped in the middle of never finish: say so (at engine start)."""
        for status in ("queued", "building", "provisioning"):
            for row in (await self.store.list("agents", limit=100_000, state=status)).rows:
                view = AgentView.model_validate(row.data).model_copy(
                    update={
                        "status": "failed",
                        "build_finish_time_ms": now_ms(),
                        "failure_message": "the server stopped during this install; create the agent again",
                    }
                )
                await self._save(view, row.internal)

    # --- records -------------------------------------------------------------------------------

    async def _save(self, view: AgentView, internal: dict[str, Any]) -> None:
        self._mountable.clear()
        await self.store.put(
            "agents", view.id, view.model_dump(mode="json"), internal=internal, name=view.name, state=view.status
        )

    async def get(self, agent_id: str) -> AgentView:
        row = await self.store.get("agents", agent_id)
        if row is None:
            raise NotFoundError("agent", agent_id)
        return AgentView.model_validate(row.data)

    async def list(
        self,
        *,
        limit: int,
        starting_after: str | None = None,
        name: str | None = None,
        version: str | None = None,
        search: str | None = None,
    ) -> AgentListView:
        page = await self.store.list(
            "agents",
            limit=1 if version == "latest" else limit,
            starting_after=starting_after,
            data_fields={"version": None if version in (None, "latest") else version},
            contains=[*([(["name"], name)] if name else []), *([(["id", "name"], search)] if search else [])],
        )
        return AgentListView(
            agents=[AgentView.model_validate(r.data) for r in page.rows],
            has_more=page.has_more and version != "latest",
            total_count=page.total_count,
        )

    async def logs(self, agent_id: str) -> AgentBuildLogsListView:
        row = await self.store.get("agents", agent_id)
        if row is None:
            raise NotFoundError("agent", agent_id)
        return AgentBuildLogsListView(agent_id=agent_id, logs=row.internal.get("build_logs", []))

    async def mountable(self, *, agent_id: str | None, agent_name: str | None) -> tuple[AgentView, str, bool]:
        """An installed agent (by id, or the newest of a name), its layer, and whether the layer has
        a bin/ (else the agent's directory itself goes on PATH), for a mount."""
        known = self._mountable.get((agent_id, agent_name))
        if known is not None and self.layers.exists(known[1]):
            return known
        if agent_id is not None:
            row = await self.store.get("agents", agent_id)
            if row is None:
                raise NotFoundError("agent", agent_id)
        else:
            page = await self.store.list("agents", limit=1, name=agent_name, state="build_complete")
            if not page.rows:
                raise NotFoundError("installed agent named", str(agent_name))
            row = page.rows[0]
        view = AgentView.model_validate(row.data)
        if view.status != "build_complete":
            raise InvalidStateError(
                f"agent {view.id} is `{view.status}`, not build_complete"
                + (f": {view.failure_message}" if view.failure_message else "; wait for its install and retry")
            )
        layer_id = row.internal["layers"][0]
        if not self.layers.exists(layer_id):
            raise InvalidStateError(f"agent {view.id}'s layer is gone; create the agent again")
        has_bin = await anyio.to_thread.run_sync((self.layers.path(layer_id) / "bin").is_dir)
        found = self._mountable[(agent_id, agent_name)] = (view, layer_id, has_bin)
        return found

    async def delete(self, agent_id: str) -> None:
        """Delete the agent; its layer goes too unless another agent or a live devbox has it."""
        row = await self.store.get("agents", agent_id)
        if row is None:
            raise NotFoundError("agent", agent_id)
        if agent_id in self._finished:
            raise InvalidStateError(f"agent {agent_id} is being installed; wait for it (get_agent), then delete")
        self._mountable.clear()
        await self.store.delete("agents", agent_id)
        layer_id = row.internal["layers"][0]
        shared = any(
            layer_id in r.internal.get("layers", []) for r in (await self.store.list("agents", limit=100_000)).rows
        )
        # A devbox that has it mounted keeps it until it ends (the garbage collector frees it then).
        mounted = any(
            layer_id in (layer for layer, _path in r.internal.get("mounts", ()))
            for r in (await self.store.list("devboxes", limit=100_000)).rows
            if r.data.get("status") not in ("shutdown", "failure")
        )
        if not shared and not mounted:
            await anyio.to_thread.run_sync(self.layers.remove, layer_id)


class AgentCalls:
    """LocalBackend's agent calls (the Backend protocol's), each handed to its `agents`."""

    @property
    def agents(self) -> Agents:
        raise NotImplementedError  # LocalBackend's own

    async def create_agent(self, params: AgentCreateParameters) -> AgentView:
        return await self.agents.create(params)

    async def get_agent(self, agent_id: str) -> AgentView:
        return await self.agents.get(agent_id)

    async def wait_for_agent(self, agent_id: str, *, timeout_seconds: float = 1800) -> AgentView:
        return await self.agents.wait(agent_id, timeout_seconds=timeout_seconds)

    async def list_agents(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        name: str | None = None,
        version: str | None = None,
        search: str | None = None,
    ) -> AgentListView:
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidRequestError(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")
        return await self.agents.list(
            limit=limit, starting_after=starting_after, name=name, version=version, search=search
        )

    async def agent_logs(self, agent_id: str) -> AgentBuildLogsListView:
        return await self.agents.logs(agent_id)

    async def delete_agent(self, agent_id: str) -> None:
        await self.agents.delete(agent_id)
