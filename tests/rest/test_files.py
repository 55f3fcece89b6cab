"""Files over the wire (text, multipart uploads, downloads, body caps), then snapshots and devbox updates."""

from __future__ import annotations

import httpx2
import pytest

from .helpers import error, ok

pytestmark = pytest.mark.anyio


async def test_files_over_the_wire(http: httpx2.AsyncClient) -> None:
    box = ok(await http.post("/v1/devboxes", json={}))
    base = f"/v1/devboxes/{box['id']}"
    written = ok(await http.post(f"{base}/write_file_contents", json={"file_path": "a/b.txt", "contents": "text"}))
    assert written["exit_status"] == 0
    read = await http.post(f"{base}/read_file_contents", json={"file_path": "a/b.txt"})
    assert read.status_code == 200 and read.text == "text" and read.headers["content-type"].startswith("text/plain")
    upload = await http.post(f"{base}/upload_file", data={"path": "bin/x"}, files={"file": ("x", b"\x00\xff")})
    assert upload.status_code == 200, upload.text
    download = await http.post(f"{base}/download_file", json={"path": "bin/x"})
    assert download.content == b"\x00\xff" and download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"] == 'attachment; filename="x"'
    # Bytes go anywhere in the devbox (Harbor's /tests, /logs/verifier); text stays under home.
    ok(await http.post(f"{base}/upload_file", data={"path": "/logs/verifier/r ü.txt"}, files={"file": ("r", b"1")}))
    download = await http.post(f"{base}/download_file", json={"path": "/logs/verifier/r ü.txt"})
    assert download.content == b"1" and download.headers["content-disposition"] == 'attachment; filename="r__.txt"'
    assert "no such file" in error(await http.post(f"{base}/download_file", json={"path": "/logs/none"}), 400)
    assert "path: required" in error(await http.post(f"{base}/upload_file", files={"file": ("x", b"1")}), 400)
    assert "multipart" in error(await http.post(f"{base}/upload_file", json={"path": "x"}), 415)
    assert "escapes" in error(
        await http.post(f"{base}/read_file_contents", json={"file_path": "../../etc/shadow"}), 400
    )
    huge = b'{"file_path": "big", "contents": "' + b"a" * (64 * 1024 * 1024) + b'"}'
    assert "larger than" in error(await http.post(f"{base}/write_file_contents", content=huge), 413)

    snap = ok(await http.post(f"{base}/snapshot_disk_async", json={"name": "n"}))
    status = ok(await http.get(f"/v1/devboxes/disk_snapshots/{snap['id']}/status"))
    assert status["status"] == "complete" and status["snapshot"]["id"] == snap["id"]
    assert "metadata.a" in error(
        await http.post(f"/v1/devboxes/disk_snapshots/{snap['id']}", json={"metadata": {"a": 1}}), 400
    )
    relabeled = ok(await http.post(f"/v1/devboxes/disk_snapshots/{snap['id']}", json={"commit_message": "c"}))
    assert relabeled["name"] == "n" and relabeled["commit_message"] == "c"
    ok(await http.post(f"/v1/devboxes/disk_snapshots/{snap['id']}/delete"))
    error(await http.get(f"/v1/devboxes/disk_snapshots/{snap['id']}/status"), 404)

    # POST on a devbox's own path updates it; GET still reads it.
    assert "nme: unknown field" in error(await http.post(base, json={"nme": "x"}), 400)
    assert ok(await http.post(base, json={"name": "renamed"}))["name"] == "renamed"
    assert ok(await http.get(base))["name"] == "renamed"
    error(await http.post("/v1/devboxes/dbx_nope", json={"name": "x"}), 404)


async def test_an_upload_belongs_to_the_devboxs_user(http: httpx2.AsyncClient) -> None:
    """Harbor's way in: a devbox whose launch_parameters.user_parameters name a non-root user gets
    uploads it owns (the file and the directories made for it), as on Runloop."""
    launch = {"user_parameters": {"username": "agent", "uid": 4321}}
    box = ok(await http.post("/v1/devboxes", json={"launch_parameters": launch}))
    base = f"/v1/devboxes/{box['id']}"
    ok(await http.post(f"{base}/upload_file", data={"path": "/solution/solve.sh"}, files={"file": ("s", b"true")}))
    seen = ok(await http.post(f"{base}/execute", json={"command": "stat -c %u:%g /solution /solution/solve.sh"}))
    assert seen["stdout"] == "4321:4321\n4321:4321\n", seen
