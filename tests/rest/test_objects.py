"""Storage objects over the REST API, on a real server on 127.0.0.1: the API calls with the bearer
token, the presigned upload and download URLs without it, as Runloop's SDKs use them (1.32's client
and its high-level `storage_object` helpers, the same code as 3.x's that Harbor calls)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx2
import pytest
from runloop_api_client import AsyncRunloop, ConflictError
from runloop_api_client.sdk import AsyncRunloopSDK

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.remote import RemoteBackend

from .helpers import error, ok
from .server import TOKEN, serve_rest

pytestmark = pytest.mark.anyio

CONTENT = bytes(range(256)) * 9000  # 2.2 MiB (more than one write batch), every byte value


@pytest.fixture
async def served(backend: LocalBackend) -> AsyncIterator[str]:
    async with serve_rest(backend) as url:
        yield url


@pytest.fixture
async def api(served: str) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=served, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        yield c


@pytest.fixture
async def anonymous() -> AsyncIterator[httpx2.AsyncClient]:
    """What a presigned URL is fetched with: no bearer token, no base URL."""
    async with httpx2.AsyncClient(timeout=30) as client:
        yield client


async def created(api: httpx2.AsyncClient, name: str = "ctx.tar.gz") -> dict[str, str]:
    return dict(ok(await api.post("/v1/objects", json={"name": name, "content_type": "tgz", "ttl_ms": 600_000})))


async def test_create_put_complete_read_download_delete(
    api: httpx2.AsyncClient, anonymous: httpx2.AsyncClient, served: str
) -> None:
    view = await created(api)
    assert view["state"] == "UPLOADING" and view["size_bytes"] is None
    assert view["delete_after_time_ms"] == view["create_time_ms"] + 600_000  # type: ignore[operator]
    assert view["upload_url"].startswith(f"{served}/storage/objects/{view['id']}?token=")

    put = await anonymous.put(view["upload_url"], content=CONTENT)
    assert put.status_code == 200, put.text
    done = ok(await api.post(f"/v1/objects/{view['id']}/complete"))
    assert done["state"] == "READ_ONLY" and done["size_bytes"] == len(CONTENT) and done["upload_url"] is None
    assert ok(await api.get(f"/v1/objects/{view['id']}")) == done
    listed = ok(await api.get("/v1/objects", params={"name": "ctx", "state": "READ_ONLY", "content_type": "tgz"}))
    assert [o["id"] for o in listed["objects"]] == [view["id"]] and listed["total_count"] == 1
    assert ok(await api.get("/v1/objects", params={"include_total_count": "false"}))["total_count"] is None
    assert ok(await api.get("/v1/objects/list_public")) == {"objects": [], "has_more": False, "total_count": 0}

    link = ok(await api.get(f"/v1/objects/{view['id']}/download", params={"duration_seconds": 60}))
    assert link["download_url"].startswith(f"{served}/storage/objects/{view['id']}?expires=")
    fetched = await anonymous.get(link["download_url"])
    assert fetched.status_code == 200 and fetched.content == CONTENT

    gone = ok(await api.post(f"/v1/objects/{view['id']}/delete", json={}))
    assert gone["state"] == "DELETED"
    assert "not found" in error(await api.get(f"/v1/objects/{view['id']}"), 404)
    assert "not found" in error(await anonymous.get(link["download_url"]), 404)


async def test_an_upload_url_takes_only_its_own_objects_upload(
    api: httpx2.AsyncClient, anonymous: httpx2.AsyncClient, served: str
) -> None:
    mine, other = await created(api, "mine"), await created(api, "other")
    base, _, token = mine["upload_url"].partition("?token=")
    other_token = other["upload_url"].partition("?token=")[2]
    assert "not the one of object" in error(await anonymous.put(f"{base}?token=wrong", content=b"x"), 403)
    assert "not the one of object" in error(await anonymous.put(f"{base}?token={other_token}", content=b"x"), 403)
    assert "has no token" in error(await anonymous.put(base, content=b"x"), 403)
    assert "not found" in error(await anonymous.put(f"{served}/storage/objects/obj_nope?token={token}"), 404)

    assert (await anonymous.put(mine["upload_url"], content=b"mine")).status_code == 200
    assert ok(await api.post(f"/v1/objects/{mine['id']}/complete", json={}))["size_bytes"] == 4
    assert "cannot change" in error(await anonymous.put(mine["upload_url"], content=b"again"), 409)
    assert "already complete" in error(await api.post(f"/v1/objects/{mine['id']}/complete"), 409)

    # The presigned paths are open; the API itself is not.
    assert (await anonymous.get(f"{served}/v1/objects/{mine['id']}")).status_code == 401
    assert (await anonymous.post(f"{served}/v1/objects", json={"name": "n", "content_type": "tgz"})).status_code == 401
    assert (await anonymous.get(f"{served}/storage/objects")).status_code == 401  # not a presigned path


async def test_refusals_say_what_to_do(
    api: httpx2.AsyncClient, anonymous: httpx2.AsyncClient, backend: LocalBackend
) -> None:
    view = await created(api)
    assert "complete its upload first" in error(await api.get(f"/v1/objects/{view['id']}/download"), 409)
    assert "nothing has been uploaded" in error(await api.post(f"/v1/objects/{view['id']}/complete"), 409)
    duration = error(await api.get(f"/v1/objects/{view['id']}/download", params={"duration_seconds": 0}), 400)
    assert "duration_seconds must be between 1 and 604800" in duration
    assert "content_type" in error(await api.post("/v1/objects", json={"name": "n", "content_type": "zip"}), 400)
    assert "ttl_ms" in error(await api.post("/v1/objects", json={"name": "n", "content_type": "tgz", "ttl_ms": 0}), 400)
    assert "unknown object state" in error(await api.get("/v1/objects", params={"state": "DONE"}), 400)

    backend.objects.max_bytes = 1000
    assert "over this server's limit of 1000 bytes" in error(
        await anonymous.put(view["upload_url"], content=CONTENT), 413
    )
    link = f"/storage/objects/{view['id']}"
    assert "incomplete" in error(await api.get(link, params={"expires": "1"}), 403)
    assert "not valid" in error(await api.get(link, params={"expires": "1", "signature": "00"}), 403)


async def test_sdk_client_objects(backend: LocalBackend, served: str, anonymous: httpx2.AsyncClient) -> None:
    """SDK 1.32's generated client: create, PUT to its upload_url, complete, retrieve, list, download."""
    async with AsyncRunloop(bearer_token=TOKEN, base_url=served, max_retries=0) as client:
        view = await client.objects.create(name="build-context", content_type="tgz", metadata={"k": "v"})
        assert view.state == "UPLOADING" and view.upload_url
        assert (await anonymous.put(view.upload_url, content=b"context bytes")).status_code == 200
        done = await client.objects.complete(view.id)
        assert done.state == "READ_ONLY" and done.size_bytes == len(b"context bytes")
        got = await client.objects.retrieve(view.id)
        assert got.state == "READ_ONLY" and got.metadata == {"k": "v"} and got.content_type == "tgz"
        assert [o.id async for o in client.objects.list(state="READ_ONLY")] == [view.id]
        link = await client.objects.download(view.id, duration_seconds=120)
        assert (await anonymous.get(link.download_url)).content == b"context bytes"
        with pytest.raises(ConflictError):
            await client.objects.complete(view.id)
        assert (await client.objects.delete(view.id)).state == "DELETED"


async def test_sdk_upload_from_dir_as_harbor_calls_it(served: str, tmp_path: Path) -> None:
    """`storage_object.upload_from_dir` (content_type "tgz", ttl_ms, an unauthenticated PUT):
    the code of SDK 3.x that Harbor's Runloop environment calls, shipped in 1.32 too."""
    context = tmp_path / "environment"
    (context / "src").mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM ubuntu:24.04\nCOPY src /app\n")
    (context / "src" / "main.py").write_text("print('hi')\n")
    sdk = AsyncRunloopSDK(bearer_token=TOKEN, base_url=served, max_retries=0)
    try:
        obj = await sdk.storage_object.upload_from_dir(context, ttl=timedelta(hours=1))
        view = await obj.refresh()
        assert view.state == "READ_ONLY" and view.content_type == "tgz" and view.name == "environment.tar.gz"
        assert view.delete_after_time_ms == view.create_time_ms + 3_600_000
        with tarfile.open(fileobj=io.BytesIO(await obj.download_as_bytes()), mode="r:gz") as tar:
            dockerfile = tar.extractfile("Dockerfile")
            assert dockerfile is not None and dockerfile.read().startswith(b"FROM ubuntu:24.04")
            assert "src/main.py" in tar.getnames()
    finally:
        await sdk.aclose()


async def test_a_server_over_a_remote_api_passes_its_urls_on(
    served: str, anonymous: httpx2.AsyncClient, backend: LocalBackend
) -> None:
    """`scenario-mcp api` over the remote backend: the URLs are the remote server's, as it gave them,
    and this server's own presigned paths answer that it keeps no content."""
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        RemoteBackend(served, TOKEN) as remote,
        serve_rest(remote) as front,
        httpx2.AsyncClient(base_url=front, headers=bearer) as api,
    ):
        view = await created(api)
        assert view["upload_url"].startswith(f"{served}/storage/objects/")
        assert (await anonymous.put(view["upload_url"], content=b"via the remote")).status_code == 200
        ok(await api.post(f"/v1/objects/{view['id']}/complete"))
        link = ok(await api.get(f"/v1/objects/{view['id']}/download"))["download_url"]
        assert link.startswith(f"{served}/storage/objects/")
        assert (await anonymous.get(link)).content == b"via the remote"
        own = f"{front}/storage/objects/{view['id']}?{view['upload_url'].partition('?')[2]}"
        assert "keeps no object content" in error(await anonymous.put(own, content=b"x"), 404)
