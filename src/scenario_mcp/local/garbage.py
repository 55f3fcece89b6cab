"""The layer garbage collector: frees every layer no blueprint, snapshot or devbox that has not
ended stands on (image layers, build-step layers, blueprint and snapshot layers), and pulled
images nothing built on keeps. Run by `scenario-mcp gc`, and after a blueprint or snapshot is
deleted.

A layer made a moment ago may not be recorded yet (a snapshot between its copy and its row, a
build between its steps and its blueprint): so nothing runs while a build is in flight, and a
layer younger than GRACE_SECONDS stays.
"""

from __future__ import annotations

import logging
import time

import anyio.to_thread
from anyio.abc import TaskGroup

from ..backend import InvalidStateError
from .agents import Agents
from .blueprints import Blueprints
from .layers import CollectReport, LayerStore
from .store import Store, Table

log = logging.getLogger(__name__)

GRACE_SECONDS = 600.0
STANDING_ON: tuple[Table, ...] = ("blueprints", "snapshots", "devboxes", "agents")
ENDED = ("shutdown", "failure")


class GarbageCollector:
    def __init__(self, store: Store, blueprints: Blueprints, tg: TaskGroup, agents: Agents | None = None) -> None:
        self.store = store
        self.blueprints = blueprints
        self.tg = tg
        self.agents = agents

    @property
    def building(self) -> bool:
        """A blueprint build or an agent install in flight (its layer may not be recorded yet)."""
        return self.blueprints.building or (self.agents is not None and self.agents.building)

    async def collect(self, *, grace_seconds: float = GRACE_SECONDS) -> CollectReport:
        if self.building:
            raise InvalidStateError(
                "a blueprint build or agent install is in flight; collect garbage once it has ended"
            )
        return await collect_garbage(self.store, self.blueprints.layers, grace_seconds=grace_seconds)

    def collect_soon(self) -> None:
        """After a delete, off the caller's path; skipped while a build is in flight."""
        self.tg.start_soon(self._collect_quietly)

    async def _collect_quietly(self) -> None:
        if self.building:
            return
        try:
            report = await collect_garbage(self.store, self.blueprints.layers)
        except OSError:
            log.exception("garbage collection failed")
            return
        if report.freed_bytes:
            log.info("freed %d bytes of layers nothing stands on", report.freed_bytes)


async def referenced_layers(store: Store) -> set[str]:
    """Every layer id (and image diff_id) a blueprint, snapshot or devbox not ended stands on."""
    referenced: set[str] = set()
    for table in STANDING_ON:
        for row in (await store.list(table, limit=1_000_000)).rows:
            if table == "devboxes" and row.data.get("status") in ENDED:
                continue
            referenced.update(row.internal.get("layers", ()))
            referenced.update(row.internal.get("extra_layers", ()))
            referenced.update(layer for layer, _path in row.internal.get("mounts", ()))  # mounted read-only
    return referenced


async def collect_garbage(store: Store, layers: LayerStore, *, grace_seconds: float = GRACE_SECONDS) -> CollectReport:
    referenced = await referenced_layers(store)
    young = await anyio.to_thread.run_sync(_young_layers, layers, grace_seconds)
    diff_ids = [layer for layer in referenced if layer.startswith("sha256:")]
    layer_ids = [layer for layer in referenced | young if not layer.startswith("sha256:")]
    young_images = {d for d in young if d.startswith("sha256:")}
    return await anyio.to_thread.run_sync(
        lambda: layers.collect(diff_ids=[*diff_ids, *young_images], layer_ids=layer_ids, images=())
    )


def _young_layers(layers: LayerStore, grace_seconds: float) -> set[str]:
    """Layers made within the grace period: perhaps not recorded yet."""
    cutoff = time.time() - grace_seconds
    young: set[str] = set()
    for directory, prefix in ((layers.root, ""), (layers.image_layers, "sha256:")):
        if not directory.is_dir():
            continue
        for entry in directory.iterdir():
            if entry.name.startswith((".", "_")):
                continue
            try:
                if entry.lstat().st_mtime > cutoff:
                    young.add(prefix + entry.name)
            except FileNotFoundError:
                continue
    return young
