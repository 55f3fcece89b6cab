"""Storage objects on the local engine, called directly: the lifecycle, the states, the upload
token and the download signature, the size cap, expiry, and what a crash or a failed upload leaves."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest

from scenario_mcp.backend import (
    AccessDeniedError,
    InvalidRequestError,
    InvalidStateError,
    NotFoundError,
    PayloadTooLargeError,
)
from scenario_mcp.conventions import OBJECT_STORAGE_PATH
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.objects import Objects
from scenario_mcp.models import ObjectCreateParameters, ObjectView

pytestmark = pytest.mark.anyio

CONTENT = b"FROM scratch\n" * 1000


def tgz(name: str = "context.tar.gz", **extra: object) -> ObjectCreateParameters:
    return ObjectCreateParameters.model_validate({"name": name, "content_type": "tgz", **extra})


def token_of(view: ObjectView) -> str:
    assert view.upload_url is not None
    return parse_qs(urlsplit(view.upload_url).query)["token"][0]


def leftovers(objects: Objects) -> list[str]:
    return sorted(str(p.relative_to(objects.root)) for p in objects.root.rglob("*"))


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def stored(backend: LocalBackend, content: bytes = CONTENT, **extra: object) -> ObjectView:
    view = await backend.create_object(tgz(**extra))
    await backend.upload_object(view.id, content)
    return await backend.complete_object(view.id)


async def test_create_upload_complete_read_delete(backend: LocalBackend) -> None:
    created = await backend.create_object(tgz(metadata={"task": "t1"}))
    assert created.id.startswith("obj_") and created.state == "UPLOADING" and created.size_bytes is None
    assert created.metadata == {"task": "t1"} and created.delete_after_time_ms is None
    assert created.upload_url == f"{OBJECT_STORAGE_PATH}/{created.id}?token={token_of(created)}"
    assert len(token_of(created)) >= 40
    fetched = await backend.get_object(created.id)
    assert fetched.upload_url is None and fetched.state == "UPLOADING"  # the URL only on create

    await backend.upload_object(created.id, chunks(CONTENT[:5000], CONTENT[5000:]))
    done = await backend.complete_object(created.id)
    assert done.state == "READ_ONLY" and done.size_bytes == len(CONTENT) and done.upload_url is None
    assert await backend.get_object(created.id) == done
    assert [o.id for o in (await backend.list_objects()).objects] == [created.id]
    assert await backend.download_object(created.id) == CONTENT
    path = await backend.objects.content_path(created.id)
    assert path.read_bytes() == CONTENT

    deleted = await backend.delete_object(created.id)
    assert deleted.state == "DELETED" and deleted.id == created.id
    assert not path.exists() and leftovers(backend.objects) == []
    for call in (backend.get_object, backend.objects.content_path, backend.delete_object, backend.complete_object):
        with pytest.raises(NotFoundError, match=created.id):
            await call(created.id)
    assert (await backend.list_objects()).objects == []


async def test_each_state_refuses_what_it_cannot_do_and_says_what_to_do(backend: LocalBackend) -> None:
    view = await backend.create_object(tgz())
    with pytest.raises(InvalidStateError, match=r"nothing has been uploaded .* PUT its content to the upload_url"):
        await backend.complete_object(view.id)
    for read in (backend.objects.content_path, backend.download_object, backend.object_download_url):
        with pytest.raises(InvalidStateError, match="is UPLOADING: complete its upload first"):
            await read(view.id)

    await backend.upload_object(view.id, b"first")
    await backend.upload_object(view.id, b"second")  # before complete, a new upload replaces the last
    assert (await backend.complete_object(view.id)).size_bytes == len(b"second")
    with pytest.raises(InvalidStateError, match=r"already complete .* create a new object"):
        await backend.complete_object(view.id)
    with pytest.raises(InvalidStateError, match="its content cannot change"):
        await backend.upload_object(view.id, b"third")
    assert await backend.download_object(view.id) == b"second"


async def test_an_upload_is_taken_only_with_its_own_objects_token(backend: LocalBackend) -> None:
    mine, other = await backend.create_object(tgz("mine")), await backend.create_object(tgz("other"))
    for wrong in ("", "nope", "é", token_of(other), token_of(mine) + "x"):
        with pytest.raises(AccessDeniedError, match=f"not the one of object {mine.id}"):
            await backend.receive_object_upload(mine.id, wrong, chunks(b"evil"))
    with pytest.raises(NotFoundError):
        await backend.receive_object_upload("obj_unknown", token_of(mine), chunks(b"x"))
    await backend.receive_object_upload(mine.id, token_of(mine), chunks(b"good"), size=4)
    assert (await backend.complete_object(mine.id)).size_bytes == 4
    with pytest.raises(InvalidStateError, match="cannot change"):  # the right token, too late
        await backend.receive_object_upload(mine.id, token_of(mine), chunks(b"later"))
    assert await backend.download_object(mine.id) == b"good"


async def test_size_cap_refuses_before_or_while_reading_and_keeps_nothing(backend: LocalBackend) -> None:
    backend.objects.max_bytes = 10
    view = await backend.create_object(tgz())
    await backend.upload_object(view.id, b"0123456789")  # exactly the cap

    async def never_read() -> AsyncIterator[bytes]:
        raise AssertionError("a declared size over the cap is refused before reading")
        yield b""

    with pytest.raises(PayloadTooLargeError, match="over this server's limit of 10 bytes"):
        await backend.receive_object_upload(view.id, token_of(view), never_read(), size=11)
    with pytest.raises(PayloadTooLargeError, match="SCENARIO_MCP_MAX_OBJECT_BYTES"):
        await backend.upload_object(view.id, chunks(b"012345", b"6789", b"X"))
    assert leftovers(backend.objects) == [view.id, f"{view.id}/content"]
    assert (await backend.complete_object(view.id)).size_bytes == 10


async def test_a_broken_upload_leaves_the_last_whole_one(backend: LocalBackend) -> None:
    view = await backend.create_object(tgz())
    await backend.upload_object(view.id, b"whole")

    async def broken() -> AsyncIterator[bytes]:
        yield b"half of a"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await backend.upload_object(view.id, broken())
    assert leftovers(backend.objects) == [view.id, f"{view.id}/content"]
    assert (await backend.complete_object(view.id)).size_bytes == len(b"whole")
    assert await backend.download_object(view.id) == b"whole"


@pytest.mark.parametrize("finish", ["complete", "delete"])
async def test_an_upload_that_finishes_after_complete_or_delete_is_dropped(backend: LocalBackend, finish: str) -> None:
    view = await backend.create_object(tgz(finish))
    await backend.upload_object(view.id, b"first")
    release = anyio.Event()
    failures: list[Exception] = []

    async def slow() -> AsyncIterator[bytes]:
        yield b"late "
        await release.wait()
        yield b"bytes"

    async def upload() -> None:
        try:
            await backend.upload_object(view.id, slow())
        except (InvalidStateError, NotFoundError) as exc:
            failures.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(upload)
        await anyio.sleep(0.05)
        await (backend.complete_object if finish == "complete" else backend.delete_object)(view.id)
        release.set()
    assert len(failures) == 1
    if finish == "complete":
        assert await backend.download_object(view.id) == b"first"
    assert [p for p in leftovers(backend.objects) if "upload" in p] == []


async def test_ttl_deletes_the_object_when_asked_for_and_in_the_sweep(backend: LocalBackend) -> None:
    keep = await stored(backend, b"kept", ttl_ms=3_600_000)
    assert keep.delete_after_time_ms == keep.create_time_ms + 3_600_000
    asked = await stored(backend, b"a", ttl_ms=30)
    swept = await stored(backend, b"s", ttl_ms=30)
    await anyio.sleep(0.1)
    with pytest.raises(NotFoundError):
        await backend.get_object(asked.id)
    assert await backend._store.get("objects", asked.id) is None
    assert await backend._store.get("objects", swept.id) is not None  # not asked for yet
    await backend.objects.expire()
    assert await backend._store.get("objects", swept.id) is None
    assert leftovers(backend.objects) == [keep.id, f"{keep.id}/content"]
    assert [o.id for o in (await backend.list_objects()).objects] == [keep.id]


async def test_list_filters_and_pages_newest_first(backend: LocalBackend) -> None:
    a = await stored(backend, name="Harbor_env_a.tar.gz")
    b = await backend.create_object(tgz("harbor_env_b.tar.gz"))
    c = await backend.create_object(ObjectCreateParameters(name="notes", content_type="text"))

    async def ids(**filters: str) -> list[str]:
        return [o.id for o in (await backend.list_objects(**filters)).objects]

    assert await ids() == [c.id, b.id, a.id]
    assert await ids(name="HARBOR_env") == [b.id, a.id]  # a part of the name, in any case
    assert await ids(content_type="text") == [c.id]
    assert await ids(state="READ_ONLY") == [a.id]
    assert await ids(state="UPLOADING", name="harbor") == [b.id]
    assert await ids(search=a.id[4:12]) == [a.id]
    assert await ids(search="notes") == [c.id]
    first = await backend.list_objects(limit=2)
    assert [o.id for o in first.objects] == [c.id, b.id] and first.has_more and first.total_count == 3
    rest = await backend.list_objects(limit=2, starting_after=b.id)
    assert [o.id for o in rest.objects] == [a.id] and not rest.has_more
    with pytest.raises(InvalidRequestError, match="unknown content_type 'zip'; use one of unspecified, text"):
        await backend.list_objects(content_type="zip")
    with pytest.raises(InvalidRequestError, match="unknown object state 'done'"):
        await backend.list_objects(state="done")
    with pytest.raises(InvalidRequestError, match="limit"):
        await backend.list_objects(limit=0)


async def test_a_download_url_opens_its_object_only_until_it_expires(backend: LocalBackend) -> None:
    one, two = await stored(backend, b"one"), await stored(backend, b"two")
    url = (await backend.object_download_url(one.id, duration_seconds=60)).download_url
    path, _, query = url.partition("?")
    assert path == f"{OBJECT_STORAGE_PATH}/{one.id}"
    params = {k: v[0] for k, v in parse_qs(query).items()}
    expires, signature = int(params["expires"]), params["signature"]
    assert time.time() + 55 < expires <= time.time() + 60
    assert (await backend.object_download_path(one.id, expires, signature)).read_bytes() == b"one"

    for object_id, at, sig in ((two.id, expires, signature), (one.id, expires + 1, signature), (one.id, expires, "é")):
        with pytest.raises(AccessDeniedError, match="not valid"):
            await backend.object_download_path(object_id, at, sig)
    past = int(time.time()) - 1
    with pytest.raises(AccessDeniedError, match="has expired; ask for a new one"):
        await backend.object_download_path(one.id, past, backend.objects._signature(one.id, past))
    for duration in (0, 8 * 24 * 3600):
        with pytest.raises(InvalidRequestError, match="duration_seconds must be between 1 and 604800"):
            await backend.object_download_url(one.id, duration_seconds=duration)
    await backend.delete_object(one.id)
    with pytest.raises(NotFoundError):
        await backend.object_download_path(one.id, expires, signature)


async def test_objects_outlive_a_restart_and_the_first_sweep_clears_what_a_crash_left(data_dir: Path) -> None:
    async with LocalBackend(data_dir) as engine:
        kept = await stored(engine, b"kept")
        pending = await engine.create_object(tgz("pending"))
    root = data_dir / "objects"
    (root / "obj_gone").mkdir()  # deleted, but the crash came before its directory went
    (root / "obj_gone" / "content").write_bytes(b"x")
    (root / kept.id / ".upload-dead").write_bytes(b"half")  # an upload cut off by the crash

    async with LocalBackend(data_dir, sweep_interval=0.05) as engine:
        assert (await engine.objects.content_path(kept.id)).read_bytes() == b"kept"
        assert (await engine.get_object(pending.id)).state == "UPLOADING"
        with anyio.fail_after(5):
            while (root / "obj_gone").exists() or (root / kept.id / ".upload-dead").exists():
                await anyio.sleep(0.02)
        assert leftovers(engine.objects) == [kept.id, f"{kept.id}/content"]
        # The token is the engine's, not the process's: the upload URL still works after a restart.
        await engine.receive_object_upload(pending.id, token_of(pending), chunks(b"late"))
        assert (await engine.complete_object(pending.id)).size_bytes == 4
