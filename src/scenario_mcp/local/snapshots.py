"""Disk snapshots on the local engine: a running devbox's writable layer frozen into a read-only
one, which devboxes and scenarios then stand on (copying nothing)."""

from __future__ import annotations

import builtins

import anyio.to_thread

from ..backend import EnvironmentUnavailableError, InvalidRequestError, InvalidStateError, NotFoundError
from ..conventions import MAX_COMMIT_MESSAGE
from ..models import DevboxSnapshotListView, DevboxSnapshotView, DevboxStatus, given, new_id, now_ms
from .blueprints import delete_environment_layer
from .devboxes import Devboxes
from .environments import Environment
from .sandbox import SandboxError
from .store import Store
from .trust import strip_added_cas


def _check_commit_message(commit_message: str | None) -> None:
    if commit_message is not None and len(commit_message) > MAX_COMMIT_MESSAGE:
        raise InvalidRequestError(f"commit_message is limited to {MAX_COMMIT_MESSAGE} characters")


class Snapshots:
    def __init__(self, store: Store, devboxes: Devboxes) -> None:
        self.store = store
        self.devboxes = devboxes

    async def create(
        self,
        devbox_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        commit_message: str | None = None,
    ) -> DevboxSnapshotView:
        view = await self.devboxes.get(devbox_id)
        if view.status != DevboxStatus.RUNNING:
            raise InvalidStateError(
                f"devbox {devbox_id} is `{view.status.value}`; only a running devbox can be snapshotted"
            )
        _check_commit_message(commit_message)
        internal = await self.devboxes.internal(devbox_id)
        snapshot_id = new_id("snapshot")
        try:
            size = await self.devboxes.layers.freeze(self.devboxes.boxes_dir / devbox_id / "upper", snapshot_id)
            # What the devbox copied up of its trust layer is the host's CAs, not the devbox's.
            layer = self.devboxes.layers.path(snapshot_id)
            await anyio.to_thread.run_sync(strip_added_cas, layer, internal.get("trust_files", ()))
        except SandboxError as exc:
            raise EnvironmentUnavailableError(
                f"could not snapshot devbox {devbox_id}: {exc}; check the data dir's free space and retry"
            ) from exc
        snapshot = DevboxSnapshotView(
            id=snapshot_id,
            name=name,
            create_time_ms=now_ms(),
            metadata=metadata or {},
            source_devbox_id=devbox_id,
            source_blueprint_id=view.blueprint_id,
            commit_message=commit_message,
            size_bytes=size,
        )
        await self.store.put(
            "snapshots",
            snapshot_id,
            snapshot.model_dump(mode="json"),
            internal=Environment.from_internal(internal).on_top(snapshot_id).to_internal(),
            name=name,
            parent_id=devbox_id,
            state="complete",
        )
        return snapshot

    async def get(self, snapshot_id: str) -> DevboxSnapshotView:
        row = await self.store.get("snapshots", snapshot_id)
        if row is None:
            raise NotFoundError("snapshot", snapshot_id)
        return DevboxSnapshotView.model_validate(row.data)

    async def update(
        self, snapshot_id: str, *, name: str | None, metadata: dict[str, str] | None, commit_message: str | None
    ) -> DevboxSnapshotView:
        """A new name, metadata or commit message (each replaced whole when given); its disk stays."""
        _check_commit_message(commit_message)
        view = await self.get(snapshot_id)
        update = given(name=name, metadata=metadata, commit_message=commit_message)
        if not update:
            return view
        updated = view.model_copy(update=update)
        await self.store.put(
            "snapshots",
            snapshot_id,
            updated.model_dump(mode="json"),
            name=updated.name,
            parent_id=updated.source_devbox_id,
            state="complete",
        )
        return updated

    async def list(
        self,
        *,
        limit: int,
        starting_after: str | None,
        devbox_id: str | None,
        source_blueprint_id: str | None = None,
        metadata: dict[str, builtins.list[str]] | None = None,
    ) -> DevboxSnapshotListView:
        """Newest first; `metadata` keeps snapshots whose every given key has one of its values."""
        page = await self.store.list(
            "snapshots",
            limit=limit,
            starting_after=starting_after,
            parent_id=devbox_id,
            data_fields={"source_blueprint_id": source_blueprint_id},
            metadata=metadata,
        )
        return DevboxSnapshotListView(
            snapshots=[DevboxSnapshotView.model_validate(r.data) for r in page.rows],
            has_more=page.has_more,
            total_count=page.total_count,
        )

    async def delete(self, snapshot_id: str, scenarios_using: builtins.list[str]) -> None:
        await self.get(snapshot_id)
        await delete_environment_layer(self.store, self.devboxes.layers, "snapshots", snapshot_id, scenarios_using)
