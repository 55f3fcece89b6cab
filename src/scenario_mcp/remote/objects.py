"""Storage objects on the remote API: Runloop's create → PUT to `upload_url` → complete, and
reads through presigned download URLs.

The API gives an object's upload URL only in the answer to its create, so this backend keeps the
URL of each object it created until the object is completed or deleted: `upload_object` works
for those, in the session that created them.
"""

from __future__ import annotations

from collections.abc import AsyncIterable

from ..backend import InvalidStateError
from ..models import (
    DEFAULT_DOWNLOAD_SECONDS,
    ObjectCreateParameters,
    ObjectDownloadURLView,
    ObjectListView,
    ObjectView,
)
from .http import RemoteHttp, dump


class ObjectsMixin:
    http: RemoteHttp
    upload_urls: dict[str, str]

    async def create_object(self, params: ObjectCreateParameters) -> ObjectView:
        view = await self.http.post("/v1/objects", ObjectView, dump(params))
        if view.upload_url:
            self.upload_urls[view.id] = view.upload_url
        return view

    async def get_object(self, object_id: str) -> ObjectView:
        return await self.http.get(f"/v1/objects/{object_id}", ObjectView)

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
        return await self.http.get(
            "/v1/objects",
            ObjectListView,
            limit=limit,
            starting_after=starting_after,
            name=name,
            content_type=content_type,
            state=state,
            search=search,
        )

    async def upload_object(self, object_id: str, content: bytes | AsyncIterable[bytes]) -> None:
        url = self.upload_urls.get(object_id)
        if url is None:
            raise InvalidStateError(
                f"no upload URL is known for object {object_id}: the API gives it only in the answer to create. "
                "Upload through the backend that created the object, before completing it, or PUT to the "
                "upload_url that create returned"
            )
        await self.http.presigned("PUT", url, content=content)

    async def complete_object(self, object_id: str) -> ObjectView:
        view = await self.http.post(f"/v1/objects/{object_id}/complete", ObjectView, {})
        self.upload_urls.pop(object_id, None)
        return view

    async def object_download_url(
        self, object_id: str, *, duration_seconds: int = DEFAULT_DOWNLOAD_SECONDS
    ) -> ObjectDownloadURLView:
        return await self.http.get(
            f"/v1/objects/{object_id}/download", ObjectDownloadURLView, duration_seconds=duration_seconds
        )

    async def download_object(self, object_id: str) -> bytes:
        url = (await self.object_download_url(object_id)).download_url
        return (await self.http.presigned("GET", url)).content

    async def delete_object(self, object_id: str) -> ObjectView:
        view = await self.http.post(f"/v1/objects/{object_id}/delete", ObjectView, {})
        self.upload_urls.pop(object_id, None)
        return view
