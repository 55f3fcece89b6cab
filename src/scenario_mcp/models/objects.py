"""Storage objects: bytes uploaded once, then read-only (Runloop carries build contexts in them).

The lifecycle is Runloop's: create (state UPLOADING, an `upload_url` in the answer), PUT the bytes
to that URL, complete (READ_ONLY, `size_bytes` known), then download through a presigned URL, and
delete (DELETED: gone). `ttl_ms` makes an object delete itself that long after its creation.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, Field

from .base import Metadata, _Model

ContentType = Literal["unspecified", "text", "binary", "gzip", "tar", "tgz"]
ObjectState = Literal["UPLOADING", "READ_ONLY", "DELETED", "ERROR"]
CONTENT_TYPES: tuple[ContentType, ...] = get_args(ContentType)
OBJECT_STATES: tuple[ObjectState, ...] = get_args(ObjectState)

# A download URL's lifetime when none is asked for, and the longest one (S3's own limit: 7 days).
DEFAULT_DOWNLOAD_SECONDS = 3600
MAX_DOWNLOAD_SECONDS = 7 * 24 * 3600


class ObjectCreateParameters(_Model):
    name: str
    content_type: ContentType
    metadata: Metadata | None = None
    ttl_ms: int | None = Field(
        default=None, gt=0, description="Delete the object this many milliseconds after its creation."
    )


class ObjectView(BaseModel):
    id: str
    name: str
    state: ObjectState
    content_type: ContentType
    create_time_ms: int
    size_bytes: int | None = Field(default=None, description="The content's size; null until the upload completes.")
    delete_after_time_ms: int | None = None
    metadata: Metadata | None = Field(default_factory=dict)  # Runloop's may be null
    upload_url: str | None = Field(
        default=None,
        description=(
            "Where to PUT the content, without authentication: only in the answer to create. The local "
            "engine gives a path (`/storage/objects/...`) that the REST API serving it (`scenario-mcp api`) "
            "turns into a URL on its own host; in process, upload with the backend's upload_object instead."
        ),
    )


class ObjectListView(BaseModel):
    objects: list[ObjectView]
    has_more: bool
    total_count: int | None = None


class ObjectDownloadURLView(BaseModel):
    download_url: str = Field(
        description=(
            "A presigned URL to GET the content from, without authentication, until it expires. The local "
            "engine gives a path that the REST API serving it turns into a URL on its own host."
        )
    )
