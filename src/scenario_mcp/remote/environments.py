"""What devboxes start from, on the remote API: blueprints and disk snapshots."""

from __future__ import annotations

from ..models import (
    BUILD_ENDED,
    BlueprintBuildLogsListView,
    BlueprintCreateParameters,
    BlueprintListView,
    BlueprintView,
    DevboxSnapshotListView,
    DevboxSnapshotView,
    given,
)
from .errors import RemoteInvalidStateError, RemoteNotFoundError
from .http import RemoteHttp, dump, poll


def metadata_query(metadata: dict[str, list[str]]) -> dict[str, str]:
    """Runloop's metadata filter: `metadata[key]=value`, or `metadata[key][in]=a,b` for any of several."""
    query: dict[str, str] = {}
    for key, values in metadata.items():
        if len(values) == 1:
            query[f"metadata[{key}]"] = values[0]
        else:
            query[f"metadata[{key}][in]"] = ",".join(values)
    return query


class EnvironmentsMixin:
    http: RemoteHttp

    async def create_blueprint(self, params: BlueprintCreateParameters) -> BlueprintView:
        return await self.http.post("/v1/blueprints", BlueprintView, dump(params))

    async def get_blueprint(self, blueprint_id: str) -> BlueprintView:
        return await self.http.get(f"/v1/blueprints/{blueprint_id}", BlueprintView)

    async def wait_for_blueprint(self, blueprint_id: str, *, timeout_seconds: float = 1800) -> BlueprintView:
        return await poll(
            lambda: self.get_blueprint(blueprint_id),
            lambda b: b.status in BUILD_ENDED,
            timeout=timeout_seconds,
            what=f"the build of blueprint {blueprint_id}",
        )

    async def list_blueprints(
        self, *, limit: int = 20, starting_after: str | None = None, name: str | None = None
    ) -> BlueprintListView:
        return await self.http.get(
            "/v1/blueprints", BlueprintListView, limit=limit, starting_after=starting_after, name=name
        )

    async def blueprint_logs(self, blueprint_id: str) -> BlueprintBuildLogsListView:
        return await self.http.get(f"/v1/blueprints/{blueprint_id}/logs", BlueprintBuildLogsListView)

    async def delete_blueprint(self, blueprint_id: str) -> None:
        await self.http.request("POST", f"/v1/blueprints/{blueprint_id}/delete")

    # --- disk snapshots ------------------------------------------------------------------------

    async def snapshot_disk(
        self,
        devbox_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        commit_message: str | None = None,
    ) -> DevboxSnapshotView:
        body = given(name=name, metadata=metadata, commit_message=commit_message)
        return await self.http.post(f"/v1/devboxes/{devbox_id}/snapshot_disk", DevboxSnapshotView, body, timeout=1800)

    async def list_snapshots(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        devbox_id: str | None = None,
        source_blueprint_id: str | None = None,
        metadata: dict[str, list[str]] | None = None,
    ) -> DevboxSnapshotListView:
        return await self.http.get(
            "/v1/devboxes/disk_snapshots",
            DevboxSnapshotListView,
            limit=limit,
            starting_after=starting_after,
            devbox_id=devbox_id,
            source_blueprint_id=source_blueprint_id,
            **metadata_query(metadata or {}),
        )

    async def get_snapshot(self, snapshot_id: str) -> DevboxSnapshotView:
        # Runloop has no plain GET for one snapshot; its status view carries the snapshot.
        response = await self.http.request("GET", f"/v1/devboxes/disk_snapshots/{snapshot_id}/status")
        status = response.json()
        if not isinstance(status, dict) or not status.get("snapshot"):
            state = status.get("status") if isinstance(status, dict) else None
            detail = status.get("error_message") if isinstance(status, dict) else None
            if state == "deleted":
                raise RemoteNotFoundError(404, f"snapshot {snapshot_id!r} was deleted")
            raise RemoteInvalidStateError(
                409, f"snapshot {snapshot_id} is `{state}`" + (f": {detail}" if detail else "")
            )
        return DevboxSnapshotView.model_validate(status["snapshot"])

    async def update_snapshot(
        self,
        snapshot_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        commit_message: str | None = None,
    ) -> DevboxSnapshotView:
        body = given(name=name, metadata=metadata, commit_message=commit_message)
        path = f"/v1/devboxes/disk_snapshots/{snapshot_id}"
        return await self.http.post(path, DevboxSnapshotView, body, idempotent=True)

    async def delete_snapshot(self, snapshot_id: str) -> None:
        await self.http.request("POST", f"/v1/devboxes/disk_snapshots/{snapshot_id}/delete")
