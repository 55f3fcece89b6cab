"""Storage objects, the same assertions on both backends: the remote one uploads to the presigned
URL the REST server hands out and downloads from the one it signs, without the API key."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from scenario_mcp.backend import Backend, InvalidRequestError, InvalidStateError, NotFoundError
from scenario_mcp.models import ObjectCreateParameters

pytestmark = pytest.mark.anyio

CONTEXT = b"\x1f\x8b" + bytes(range(256)) * 64


async def parts(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_object_lifecycle(engine: Backend) -> None:
    params = ObjectCreateParameters(name="ctx.tar.gz", content_type="tgz", metadata={"k": "v"}, ttl_ms=600_000)
    view = await engine.create_object(params)
    assert view.id.startswith("obj_") and view.state == "UPLOADING" and view.upload_url
    assert view.delete_after_time_ms == view.create_time_ms + 600_000

    await engine.upload_object(view.id, parts(CONTEXT, 4096))
    done = await engine.complete_object(view.id)
    assert done.state == "READ_ONLY" and done.size_bytes == len(CONTEXT) and done.metadata == {"k": "v"}
    assert (await engine.get_object(view.id)).state == "READ_ONLY"
    listed = await engine.list_objects(name="ctx", content_type="tgz", state="READ_ONLY")
    assert [o.id for o in listed.objects] == [view.id] and not listed.has_more
    assert await engine.download_object(view.id) == CONTEXT
    assert (await engine.object_download_url(view.id, duration_seconds=30)).download_url

    assert (await engine.delete_object(view.id)).state == "DELETED"
    with pytest.raises(NotFoundError):
        await engine.get_object(view.id)
    with pytest.raises(NotFoundError):
        await engine.download_object(view.id)


async def test_object_states_refuse_out_of_order_calls(engine: Backend) -> None:
    view = await engine.create_object(ObjectCreateParameters(name="notes", content_type="text"))
    with pytest.raises(InvalidStateError, match="nothing has been uploaded"):
        await engine.complete_object(view.id)
    with pytest.raises(InvalidStateError, match="complete its upload first"):
        await engine.download_object(view.id)
    await engine.upload_object(view.id, b"hello")
    await engine.complete_object(view.id)
    with pytest.raises(InvalidStateError, match="already complete"):
        await engine.complete_object(view.id)
    with pytest.raises(InvalidStateError):
        await engine.upload_object(view.id, b"again")
    assert await engine.download_object(view.id) == b"hello"
    with pytest.raises(InvalidRequestError, match="unknown content_type"):
        await engine.list_objects(content_type="zip")
    with pytest.raises(NotFoundError):
        await engine.complete_object("obj_missing")
