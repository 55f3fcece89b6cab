"""Disk snapshots: take one of a devbox, list (with Runloop's metadata filters), read, relabel, delete."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response

from ..models import DevboxSnapshotListView, Metadata
from .common import (
    RouteTable,
    backend,
    body,
    json_response,
    model_response,
    path_param,
    query_limit,
    query_str,
)


class SnapshotBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    metadata: Metadata | None = None
    commit_message: str | None = None


async def snapshot_disk(request: Request) -> Response:
    snap = await body(request, SnapshotBody, required=False)
    view = await backend(request).snapshot_disk(
        path_param(request, "id"), name=snap.name, metadata=snap.metadata, commit_message=snap.commit_message
    )
    return model_response(view)


def metadata_filter(request: Request) -> dict[str, list[str]]:
    """`metadata[key]=value`, and `metadata[key][in]=a,b` for any of several values."""
    wanted: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        if name.startswith("metadata[") and name.endswith("]"):
            key = name[len("metadata[") : -1]
            values = value.split(",") if key.endswith("][in") else [value]
            known = wanted.setdefault(key.removesuffix("][in"), [])
            known.extend(v for v in dict.fromkeys(values) if v not in known)
    return wanted


async def list_snapshots(request: Request) -> Response:
    page = await backend(request).list_snapshots(
        limit=query_limit(request),
        starting_after=query_str(request, "starting_after"),
        devbox_id=query_str(request, "devbox_id"),
        source_blueprint_id=query_str(request, "source_blueprint_id"),
        metadata=metadata_filter(request) or None,
    )
    return model_response(page)


async def list_public_snapshots(request: Request) -> Response:
    # Runloop's public snapshots are shared across its accounts; nothing here is published.
    query_limit(request)
    return model_response(DevboxSnapshotListView(snapshots=[], has_more=False, total_count=0))


async def get_snapshot(request: Request) -> Response:
    return model_response(await backend(request).get_snapshot(path_param(request, "id")))


async def update_snapshot(request: Request) -> Response:
    snap = await body(request, SnapshotBody, required=False)
    view = await backend(request).update_snapshot(
        path_param(request, "id"), name=snap.name, metadata=snap.metadata, commit_message=snap.commit_message
    )
    return model_response(view)


async def snapshot_status(request: Request) -> Response:
    # Snapshots here are made before snapshot_disk_async answers: any that exists is complete.
    snapshot = await backend(request).get_snapshot(path_param(request, "id"))
    return json_response({"status": "complete", "snapshot": snapshot.model_dump(mode="json"), "error_message": None})


async def delete_snapshot(request: Request) -> Response:
    await backend(request).delete_snapshot(path_param(request, "id"))
    return json_response({})


# Before the devbox routes: `/v1/devboxes/disk_snapshots` is not a devbox id.
ROUTES: RouteTable = [
    ("GET", "/v1/devboxes/disk_snapshots", list_snapshots),
    ("GET", "/v1/devboxes/disk_snapshots/list_public", list_public_snapshots),
    ("GET", "/v1/devboxes/disk_snapshots/{id}", get_snapshot),
    ("POST", "/v1/devboxes/disk_snapshots/{id}", update_snapshot),
    ("GET", "/v1/devboxes/disk_snapshots/{id}/status", snapshot_status),
    ("POST", "/v1/devboxes/disk_snapshots/{id}/delete", delete_snapshot),
    ("POST", "/v1/devboxes/{id}/snapshot_disk", snapshot_disk),
    ("POST", "/v1/devboxes/{id}/snapshot_disk_async", snapshot_disk),
]
