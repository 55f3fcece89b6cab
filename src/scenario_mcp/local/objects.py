"""Storage objects on the local engine: their rows, their content on disk, their presigned URLs.

An object's content is `<root>/<id>/content`, put there only by renaming a whole, fsynced upload
into place (it streams into an `.upload-*` file beside it first): no reader sees half an upload,
and a PUT that was answered survives a crash. Its upload URL carries a token made for it at create
time (kept in the row's `internal`, never in its view): only a PUT with that object's id and token
is taken, and only while the object is UPLOADING. A download URL is signed (HMAC-SHA256 with a key
made at each engine start) over the object's id and the URL's expiry: it opens that object only,
until it expires or the engine restarts. Both URLs are paths under OBJECT_STORAGE_PATH; the REST
API serving this engine answers them (rest/objects.py) and puts its own host in front.

In process there is no URL to use: `upload`, `download` and `content_path` take and give the bytes
directly (LocalBackend.upload_object, download_object; the blueprint build reads `content_path`).

Deleting removes the row, then the directory. `ttl_ms` sets `delete_after_time_ms`: an object past
it is deleted when next asked for, and by the engine's expiry sweep (`expire`), whose first run
also removes what a crash left behind (directories without a row, stray uploads).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from ..backend import AccessDeniedError, InvalidRequestError, InvalidStateError, NotFoundError, PayloadTooLargeError
from ..conventions import MAX_LIST_LIMIT, OBJECT_STORAGE_PATH
from ..models import (
    CONTENT_TYPES,
    DEFAULT_DOWNLOAD_SECONDS,
    MAX_DOWNLOAD_SECONDS,
    OBJECT_STATES,
    ObjectCreateParameters,
    ObjectDownloadURLView,
    ObjectListView,
    ObjectView,
    new_id,
    now_ms,
)
from .store import Store, Table

TABLE: Table = "objects"
MAX_OBJECT_BYTES_ENV = "SCENARIO_MCP_MAX_OBJECT_BYTES"
DEFAULT_MAX_OBJECT_BYTES = 1 << 30
# Received chunks are written in batches of about this size: one thread hop each, not one a chunk.
WRITE_BATCH = 1 << 20
CONTENT = "content"
UPLOAD_PREFIX = ".upload-"


def max_object_bytes_from_env() -> int:
    """The largest object this engine takes: MAX_OBJECT_BYTES_ENV, or 1 GiB."""
    raw = os.environ.get(MAX_OBJECT_BYTES_ENV)
    if not raw:
        return DEFAULT_MAX_OBJECT_BYTES
    if not raw.isdigit() or int(raw) == 0:
        raise ValueError(f"{MAX_OBJECT_BYTES_ENV} must be a positive number of bytes, got {raw!r}")
    return int(raw)


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(temp: Path, target: Path) -> None:
    os.replace(temp, target)
    _fsync_dir(target.parent)


class Objects:
    """The engine's storage objects: rows in the store, content under `root`."""

    def __init__(self, store: Store, root: Path, *, max_bytes: int | None = None) -> None:
        self.store = store
        self.root = root
        self.max_bytes = max_object_bytes_from_env() if max_bytes is None else max_bytes
        self._signing_key = secrets.token_bytes(32)
        # Held across every state change (an upload's rename, complete, delete): an upload that
        # finishes as its object is completed or deleted cannot land after that.
        self._lock = anyio.Lock()
        self._receiving: set[Path] = set()
        self._left_behind_checked = False

    def _dir(self, object_id: str) -> Path:
        return self.root / object_id

    # --- rows ----------------------------------------------------------------------------------

    async def _save(self, view: ObjectView, internal: dict[str, Any] | None = None) -> None:
        data = view.model_dump(mode="json", exclude={"upload_url"})
        await self.store.put(TABLE, view.id, data, internal=internal, name=view.name, state=view.state)

    async def _row(self, object_id: str) -> tuple[ObjectView, dict[str, Any]]:
        """The object and its internal state; NotFoundError if unknown, deleted or expired."""
        row = await self.store.get(TABLE, object_id)
        if row is None:
            raise NotFoundError("object", object_id)
        view = ObjectView.model_validate(row.data)
        if view.delete_after_time_ms is not None and view.delete_after_time_ms <= now_ms():
            await self._remove(object_id)
            raise NotFoundError("object", object_id)
        return view, row.internal

    async def _remove(self, object_id: str) -> None:
        await self.store.delete(TABLE, object_id)
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(self._dir(object_id), ignore_errors=True))

    # --- the lifecycle -------------------------------------------------------------------------

    async def create(self, params: ObjectCreateParameters) -> ObjectView:
        created = now_ms()
        view = ObjectView(
            id=new_id("object"),
            name=params.name,
            state="UPLOADING",
            content_type=params.content_type,
            create_time_ms=created,
            delete_after_time_ms=None if params.ttl_ms is None else created + params.ttl_ms,
            metadata=params.metadata or {},
        )
        token = secrets.token_urlsafe(32)  # URL-safe as it is: no quoting needed
        await self._save(view, {"upload_token": token})
        return view.model_copy(update={"upload_url": f"{OBJECT_STORAGE_PATH}/{view.id}?token={token}"})

    async def get(self, object_id: str) -> ObjectView:
        return (await self._row(object_id))[0]

    async def list(
        self,
        *,
        limit: int,
        starting_after: str | None = None,
        name: str | None = None,
        content_type: str | None = None,
        state: str | None = None,
        search: str | None = None,
    ) -> ObjectListView:
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidRequestError(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")
        if content_type is not None and content_type not in CONTENT_TYPES:
            raise InvalidRequestError(f"unknown content_type {content_type!r}; use one of {', '.join(CONTENT_TYPES)}")
        if state is not None and state not in OBJECT_STATES:
            raise InvalidRequestError(f"unknown object state {state!r}; use one of {', '.join(OBJECT_STATES)}")
        await self.expire()
        contains: list[tuple[tuple[str, ...], str]] = [(("name",), name)] if name else []
        if search:
            contains.append((("id", "name"), search))
        page = await self.store.list(
            TABLE,
            limit=limit,
            starting_after=starting_after,
            data_fields={"content_type": content_type},
            contains=contains,
            state=state,
        )
        return ObjectListView(
            objects=[ObjectView.model_validate(row.data) for row in page.rows],
            has_more=page.has_more,
            total_count=page.total_count,
        )

    async def upload(
        self,
        object_id: str,
        chunks: bytes | AsyncIterable[bytes],
        *,
        token: str | None = None,
        size: int | None = None,
    ) -> None:
        """Take the object's content, replacing any earlier upload. `token` is the one its upload
        URL carried (None: an in-process caller); `size`, when declared, is checked first."""
        view, internal = await self._row(object_id)
        expected = str(internal.get("upload_token", "")).encode()
        if token is not None and not hmac.compare_digest(token.encode(), expected):
            raise AccessDeniedError(
                f"this upload URL is not the one of object {object_id}; PUT to the upload_url that creating it returned"
            )
        _check_uploading(view)
        if size is not None and size > self.max_bytes:
            raise self._too_large(size)
        directory = self._dir(object_id)
        await anyio.to_thread.run_sync(lambda: directory.mkdir(parents=True, exist_ok=True))
        temp = directory / f"{UPLOAD_PREFIX}{secrets.token_hex(8)}"
        self._receiving.add(temp)
        try:
            await self._receive(temp, _one_chunk(chunks) if isinstance(chunks, bytes) else chunks)
            async with self._lock:
                _check_uploading((await self._row(object_id))[0])  # not completed or deleted meanwhile
                await anyio.to_thread.run_sync(_publish, temp, directory / CONTENT)
        finally:
            self._receiving.discard(temp)
            await anyio.to_thread.run_sync(lambda: temp.unlink(missing_ok=True))

    def _too_large(self, size: int) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"the upload is {size} bytes or more, over this server's limit of {self.max_bytes} bytes "
            f"(set {MAX_OBJECT_BYTES_ENV} where the server runs to change it); upload less, "
            "e.g. a smaller build context"
        )

    async def _receive(self, temp: Path, chunks: AsyncIterable[bytes]) -> None:
        """Stream the chunks into `temp` and fsync it; refused once over max_bytes."""
        received = 0
        batch: list[bytes] = []
        batched = 0
        async with await anyio.open_file(temp, "xb") as out:
            async for chunk in chunks:
                received += len(chunk)
                if received > self.max_bytes:
                    raise self._too_large(received)
                batch.append(chunk)
                batched += len(chunk)
                if batched >= WRITE_BATCH:
                    await out.write(b"".join(batch))
                    batch, batched = [], 0
            await out.write(b"".join(batch))
            await out.flush()
            await anyio.to_thread.run_sync(os.fsync, out.wrapped.fileno())

    async def complete(self, object_id: str) -> ObjectView:
        async with self._lock:
            view, _ = await self._row(object_id)
            if view.state != "UPLOADING":
                raise InvalidStateError(
                    f"object {object_id} is already complete ({view.state}): it can be downloaded, not completed "
                    "or uploaded to again; create a new object for other content"
                )
            content = self._dir(object_id) / CONTENT
            try:
                size = (await anyio.to_thread.run_sync(content.stat)).st_size
            except FileNotFoundError:
                raise InvalidStateError(
                    f"nothing has been uploaded to object {object_id} yet; PUT its content to the upload_url that "
                    "creating it returned (in process: upload_object), then complete it"
                ) from None
            view = view.model_copy(update={"state": "READ_ONLY", "size_bytes": size})
            await self._save(view)
        return view

    async def delete(self, object_id: str) -> ObjectView:
        async with self._lock:
            view, _ = await self._row(object_id)
            await self._remove(object_id)
        return view.model_copy(update={"state": "DELETED"})

    # --- reading -------------------------------------------------------------------------------

    async def content_path(self, object_id: str) -> Path:
        """Where a completed object's content is on disk, while the object lives.

        NotFoundError if the object is unknown, deleted or expired; InvalidStateError if its upload
        is not complete yet."""
        view, _ = await self._row(object_id)
        if view.state != "READ_ONLY":
            raise InvalidStateError(
                f"object {object_id} is {view.state}: complete its upload first "
                f"(POST /v1/objects/{object_id}/complete, or complete_object), then use it"
            )
        return self._dir(object_id) / CONTENT

    async def download(self, object_id: str) -> bytes:
        path = await self.content_path(object_id)
        return await anyio.to_thread.run_sync(path.read_bytes)

    def _signature(self, object_id: str, expires: int) -> str:
        return hmac.new(self._signing_key, f"{object_id}\n{expires}".encode(), hashlib.sha256).hexdigest()

    async def download_url(
        self, object_id: str, duration_seconds: int = DEFAULT_DOWNLOAD_SECONDS
    ) -> ObjectDownloadURLView:
        if not 1 <= duration_seconds <= MAX_DOWNLOAD_SECONDS:
            raise InvalidRequestError(
                f"duration_seconds must be between 1 and {MAX_DOWNLOAD_SECONDS}, got {duration_seconds}"
            )
        await self.content_path(object_id)
        expires = int(time.time()) + duration_seconds
        signature = self._signature(object_id, expires)
        return ObjectDownloadURLView(
            download_url=f"{OBJECT_STORAGE_PATH}/{object_id}?expires={expires}&signature={signature}"
        )

    async def download_path(self, object_id: str, expires: int, signature: str) -> Path:
        """The content a download URL opens: its signature must be this engine's for this object
        and expiry, and the expiry not past."""
        if not hmac.compare_digest(signature.encode(), self._signature(object_id, expires).encode()):
            raise AccessDeniedError(
                "this download URL is not valid (made for another object, altered, or made before the server "
                f"restarted); ask for a new one: GET /v1/objects/{object_id}/download"
            )
        if time.time() > expires:
            raise AccessDeniedError(
                f"this download URL has expired; ask for a new one: GET /v1/objects/{object_id}/download"
            )
        return await self.content_path(object_id)

    # --- expiry --------------------------------------------------------------------------------

    async def expire(self) -> None:
        """Delete the objects whose delete_after_time_ms has passed; the first time, also what a
        crash left behind."""
        for object_id in await self.store.expired(TABLE, "delete_after_time_ms", now_ms()):
            async with self._lock:
                await self._remove(object_id)
        if not self._left_behind_checked:
            self._left_behind_checked = True
            await self._remove_left_behind()

    async def _remove_left_behind(self) -> None:
        names = await anyio.to_thread.run_sync(_object_dirs, self.root)
        orphans = [name for name in names if await self.store.get(TABLE, name) is None]
        # An object's row is written before its directory, and ids are never reused: a directory
        # without a row stays without one.
        await anyio.to_thread.run_sync(_clear_left_behind, self.root, names, set(orphans), self._receiving)


def _object_dirs(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _clear_left_behind(root: Path, names: list[str], orphans: set[str], receiving: set[Path]) -> None:
    """Remove the orphan directories, and the uploads no one is receiving. `receiving` is the live
    set: an upload is in it before its file exists, so a file not in it is no one's."""
    for name in names:
        if name in orphans:
            shutil.rmtree(root / name, ignore_errors=True)
            continue
        for path in (root / name).glob(f"{UPLOAD_PREFIX}*"):
            if path not in receiving:
                path.unlink(missing_ok=True)


def _check_uploading(view: ObjectView) -> None:
    if view.state != "UPLOADING":
        raise InvalidStateError(
            f"object {view.id} is {view.state}: its upload was completed and its content cannot change; "
            "create a new object to upload other content"
        )


class ObjectCalls:
    """LocalBackend's storage-object calls (the Backend protocol's, and ObjectTransfers' for the
    REST API that serves its URLs), each handed to its `objects`."""

    @property
    def objects(self) -> Objects:
        raise NotImplementedError  # LocalBackend's own

    async def create_object(self, params: ObjectCreateParameters) -> ObjectView:
        return await self.objects.create(params)

    async def get_object(self, object_id: str) -> ObjectView:
        return await self.objects.get(object_id)

    async def list_objects(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        name: str | None = None,
        content_type: str | None = None,
        state: str | None = None,
        search: str | None = None,
    ) -> ObjectListView:
        return await self.objects.list(
            limit=limit,
            starting_after=starting_after,
            name=name,
            content_type=content_type,
            state=state,
            search=search,
        )

    async def upload_object(self, object_id: str, content: bytes | AsyncIterable[bytes]) -> None:
        await self.objects.upload(object_id, content)

    async def complete_object(self, object_id: str) -> ObjectView:
        return await self.objects.complete(object_id)

    async def object_download_url(
        self, object_id: str, *, duration_seconds: int = DEFAULT_DOWNLOAD_SECONDS
    ) -> ObjectDownloadURLView:
        return await self.objects.download_url(object_id, duration_seconds)

    async def download_object(self, object_id: str) -> bytes:
        return await self.objects.download(object_id)

    async def delete_object(self, object_id: str) -> ObjectView:
        return await self.objects.delete(object_id)

    async def receive_object_upload(
        self, object_id: str, token: str, chunks: AsyncIterable[bytes], *, size: int | None = None
    ) -> None:
        await self.objects.upload(object_id, chunks, token=token, size=size)

    async def object_download_path(self, object_id: str, expires: int, signature: str) -> Path:
        return await self.objects.download_path(object_id, expires, signature)
