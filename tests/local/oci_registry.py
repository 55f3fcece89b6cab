"""A real OCI registry on loopback for the image tests, and what they push to it.

`docker-registry` (Debian's build of the CNCF distribution registry, installed by scripts/setup.sh
with the test extras) runs on a free loopback port with its storage in a temp dir. Images are
built here from small layer tarballs and pushed with the distribution push API. `RegistryFront` is
a loopback proxy in front of it that asks for a bearer token or Basic credentials, or corrupts
the blobs it passes on, as real registries and broken networks do.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from scenario_mcp.local.blob_decoder import zstd_module
from scenario_mcp.local.images import host_platform

REGISTRY_BIN = Path("/usr/bin/docker-registry")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx2.get(url, timeout=1.0)
            return
        except httpx2.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def run_registry(workdir: Path) -> Iterator[str]:
    """docker-registry on a free loopback port; yields its address (127.0.0.1:PORT)."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: error, accesslog: {disabled: true}}\n"
        f"storage: {{filesystem: {{rootdirectory: {workdir / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: {address}}}\n"
    )
    log = (workdir / "registry.log").open("wb")
    process = subprocess.Popen([str(REGISTRY_BIN), "serve", str(config)], stdout=log, stderr=log)
    try:
        wait_http(f"http://{address}/v2/")
        yield address
    finally:
        process.terminate()
        process.wait(10)
        log.close()


# -- layers ------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One tar entry: kind is file, dir, symlink, hardlink, chardev or fifo."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    target: str = ""
    xattrs: dict[str, str] = field(default_factory=dict)


def file(name: str, data: bytes | str = b"", mode: int = 0o644, **kw: Any) -> Entry:
    return Entry(name, "file", data.encode() if isinstance(data, str) else data, mode, **kw)


def directory(name: str, mode: int = 0o755, **kw: Any) -> Entry:
    return Entry(name, "dir", mode=mode, **kw)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, "symlink", mode=0o777, target=target)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, "hardlink", target=target)


def whiteout(path: str) -> Entry:
    parent, _, base = path.rpartition("/")
    return file(f"{parent}/.wh.{base}" if parent else f".wh.{base}")


def opaque(directory_path: str) -> Entry:
    return file(f"{directory_path}/.wh..wh..opq")


def make_tar(entries: list[Entry]) -> bytes:
    """An uncompressed layer tar (PAX, so xattrs travel as SCHILY.xattr.* headers)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.mode, info.uid, info.gid, info.mtime = e.mode, e.uid, e.gid, 1_700_000_000
            info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in e.xattrs.items()}
            kinds = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE}
            kinds |= {"hardlink": tarfile.LNKTYPE, "chardev": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}
            info.type = kinds[e.kind]
            info.linkname = e.target
            if e.kind == "file":
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            else:
                tar.addfile(info)
    return out.getvalue()


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def compressed(tar: bytes, compression: str) -> tuple[bytes, str]:
    """A layer blob and its media type: gzip (as `docker push`), zstd (as `buildx --compression
    zstd`, here with the zstd module the engine reads it with) or none."""
    if compression == "gzip":
        return gzip.compress(tar, mtime=0), LAYER_GZIP
    if compression == "zstd":
        module = zstd_module()
        assert module is not None, "no zstd module: backports.zstd is a dependency before Python 3.14"
        return bytes(module.compress(tar)), LAYER_ZSTD
    assert compression == "none", compression
    return tar, LAYER_TAR


# -- pushing -----------------------------------------------------------------------------------


class Pusher:
    """The distribution push API against a registry at `address` (plain HTTP, loopback)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.http = httpx2.Client(base_url=f"http://{address}", timeout=30.0)

    def blob(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        started = self.http.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["location"]
        sep = "&" if "?" in location else "?"
        done = self.http.put(
            f"{location}{sep}digest={digest}", content=data, headers={"Content-Type": "application/octet-stream"}
        )
        assert done.status_code == 201, done.text
        return digest

    def manifest(self, repo: str, ref: str, document: dict[str, Any], media_type: str = OCI_MANIFEST) -> str:
        data = json.dumps(document).encode()
        response = self.http.put(f"/v2/{repo}/manifests/{ref}", content=data, headers={"Content-Type": media_type})
        assert response.status_code == 201, response.text
        return sha256(data)

    def image(
        self,
        repo: str,
        tag: str,
        layers: list[bytes],
        *,
        config: dict[str, Any] | None = None,
        compression: str = "gzip",
        platform: str | None = None,
        diff_ids: list[str] | None = None,
    ) -> tuple[str, int]:
        """Push an image of these layer tars (each blob gzip'd, zstd'd or plain, as `compression`
        says: "gzip", "zstd" or "none"); returns (manifest digest, manifest size)."""
        descriptors = []
        for tar in layers:
            blob, media_type = compressed(tar, compression)
            descriptors.append({"mediaType": media_type, "digest": self.blob(repo, blob), "size": len(blob)})
        os_name, _, arch = (platform or host_platform()).partition("/")
        config_doc = {
            "architecture": arch.split("/")[0],
            "os": os_name,
            "config": config or {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids or [sha256(tar) for tar in layers]},
        }
        config_blob = json.dumps(config_doc).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": self.blob(repo, config_blob), "size": len(config_blob)},
            "layers": descriptors,
        }
        return self.manifest(repo, tag, manifest), len(json.dumps(manifest).encode())

    def index(self, repo: str, tag: str, entries: list[tuple[str, str, int]]) -> str:
        """An image index of (platform, manifest digest, size) entries."""
        manifests = []
        for platform, digest, size in entries:
            os_name, arch, *variant = platform.split("/")
            spec = {"os": os_name, "architecture": arch} | ({"variant": variant[0]} if variant else {})
            manifests.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": size, "platform": spec})
        return self.manifest(repo, tag, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}, OCI_INDEX)


# -- a realistic base: Debian's minbase ---------------------------------------------------------

MINBASE_CACHE = Path(__file__).resolve().parents[2] / ".tools" / "bench-images"
DEBIAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # as Debian's images set it


def minbase(cache: Path = MINBASE_CACHE) -> tuple[Path, str]:
    """A Debian bookworm minbase root (`mmdebstrap --variant=minbase`, ~180 MB; needs Debian's
    mirror and root) as a gzip'd layer tar and its diff_id, built once, cached under .tools/."""
    cache.mkdir(parents=True, exist_ok=True)
    tar, packed, meta = cache / "minbase-bookworm.tar", cache / "minbase-bookworm.tar.gz", cache / "meta.json"
    if not tar.exists():
        print(f"building the minbase with mmdebstrap (once; cached in {cache})", file=sys.stderr)
        scratch = cache / ".minbase-bookworm.tmp.tar"  # mmdebstrap picks its format by the suffix
        subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase", "bookworm", str(scratch)], check=True)
        scratch.rename(tar)
    if not packed.exists() or not meta.exists():
        diff = hashlib.sha256()
        with tar.open("rb") as src, gzip.GzipFile(cache / ".packing", "wb", compresslevel=6, mtime=0) as out:
            while chunk := src.read(1 << 20):
                diff.update(chunk)
                out.write(chunk)
        (cache / ".packing").rename(packed)
        meta.write_text(json.dumps({"diff_id": f"sha256:{diff.hexdigest()}", "tar_bytes": tar.stat().st_size}))
    return packed, json.loads(meta.read_text())["diff_id"]


def push_minbase(pusher: Pusher, repo: str, tag: str) -> str:
    """Push the minbase as a one-layer image (its blob as cached, not packed again), configured
    as Debian's own images are; returns the manifest digest."""
    packed, diff_id = minbase()
    blob = packed.read_bytes()
    os_name, _, arch = host_platform().partition("/")
    config = {
        "os": os_name,
        "architecture": arch,
        "config": {"Env": [f"PATH={DEBIAN_PATH}"], "Cmd": ["bash"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    config_blob = json.dumps(config).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": pusher.blob(repo, config_blob), "size": len(config_blob)},
        "layers": [{"mediaType": LAYER_GZIP, "digest": pusher.blob(repo, blob), "size": len(blob)}],
    }
    return pusher.manifest(repo, tag, manifest)


# -- a registry front: auth and corruption -----------------------------------------------------


class RegistryFront:
    """A loopback proxy to the registry. mode "token": /v2/ wants a bearer token from /token
    (which itself wants Basic `credentials` when given); "basic": /v2/ wants Basic credentials;
    "corrupt": blobs come back with one byte changed; "truncate": layer blobs end halfway;
    "stall": layer blobs send their first 1.5 MiB (more than a chunk the engine reads at once),
    then nothing more until the front stops."""

    TOKEN = "secret-token-for-tests"

    def __init__(self, upstream: str, mode: str, credentials: tuple[str, str] | None = None) -> None:
        self.upstream, self.mode, self.credentials = upstream, mode, credentials
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.token_requests: list[dict[str, str]] = []
        self.requests: list[str] = []
        app = Starlette(routes=[Route("/token", self.token), Route("/v2/{path:path}", self.proxy)])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> RegistryFront:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the registry front did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def _basic_ok(self, request: Request) -> bool:
        if self.credentials is None:
            return True
        expected = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
        return request.headers.get("authorization") == expected

    async def token(self, request: Request) -> Response:
        self.token_requests.append(dict(request.query_params))
        if not self._basic_ok(request):
            return JSONResponse({"errors": [{"code": "DENIED", "message": "bad credentials"}]}, status_code=401)
        return JSONResponse({"token": self.TOKEN})

    async def proxy(self, request: Request) -> Response:
        self.requests.append(request.url.path)
        if self.mode == "token" and request.headers.get("authorization") != f"Bearer {self.TOKEN}":
            repo = request.path_params["path"].rsplit("/", 2)[0]
            challenge = f'Bearer realm="http://{self.address}/token",service="front",scope="repository:{repo}:pull"'
            return Response(status_code=401, headers={"WWW-Authenticate": challenge})
        if self.mode == "basic" and (request.headers.get("authorization") is None or not self._basic_ok(request)):
            return Response(status_code=401, headers={"WWW-Authenticate": 'Basic realm="front"'})
        async with httpx2.AsyncClient(timeout=30.0, follow_redirects=True) as client:
            upstream = await client.get(
                f"http://{self.upstream}{request.url.path}", headers={"Accept": request.headers.get("accept", "*/*")}
            )
        body = upstream.content
        layer = "/blobs/" in request.url.path and len(body) > 4096  # layers, not configs
        headers = {k: v for k, v in upstream.headers.items() if k.lower() in ("content-type", "docker-content-digest")}
        if layer and self.mode == "corrupt":
            body = body[:50] + bytes([body[50] ^ 0xFF]) + body[51:]
        elif layer and self.mode == "truncate":
            body = body[: len(body) // 2]
        elif layer and self.mode == "stall":
            return StreamingResponse(self._stalled(body[: 3 << 19]), headers=headers)
        return Response(body, status_code=upstream.status_code, headers=headers)

    async def _stalled(self, head: bytes) -> AsyncIterator[bytes]:
        yield head
        while not self.server.should_exit:
            await anyio.sleep(0.05)


# -- looking at layers through the engine's own sandbox ----------------------------------------


async def sandbox_output(layers: list[Path], workdir: Path, script: str) -> str:
    """Run `script` with /bin/sh in a real sandbox whose root stacks `layers` (topmost first) as
    the engine stacks a devbox's: overlayfs with `userxattr`, inside its user namespace."""
    from scenario_mcp.local.layers import LayerStore
    from scenario_mcp.local.sandbox import Sandbox, SandboxSpec

    store = LayerStore(workdir / "store")
    store.ensure_base()
    spec = SandboxSpec(
        state_dir=workdir / "box", layers=tuple(layers), skeleton=store.skeleton, etc_mask=store.etc_mask
    )
    box = await Sandbox.start(spec)
    try:
        code, out, err = await box.run_quiet(["/bin/sh", "-c", script])
    finally:
        await box.stop()
    assert code == 0, err.decode()
    return out.decode()


def base_dirs() -> list[Entry]:
    """usr/ and etc/: the engine overlays each layer's usr and etc over the host's, so they must exist."""
    return [directory("usr"), directory("etc")]


BUSYBOX = Path("/bin/busybox")


def busybox_layer() -> bytes:
    """One layer: a static busybox and the links to its applets, as a tiny base image has."""
    entries = [directory("bin"), file("bin/busybox", BUSYBOX.read_bytes(), mode=0o755)]
    tools = ("sh", "cat", "echo", "id", "ls", "mkdir", "env", "pwd", "test", "touch", "rm", "sort")
    entries += [symlink(f"bin/{tool}", "busybox") for tool in tools]
    entries += [directory("etc"), file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")]
    return make_tar(entries)


TEST_IMAGES = Path(__file__).resolve().parents[2] / ".tools" / "test-images"


def debian_tar() -> Path:
    """Debian bookworm minbase with python3 and procps, made once with mmdebstrap from Debian's mirror and
    cached under .tools/test-images (about a minute the first time)."""
    tar = TEST_IMAGES / "debian-python-procps.tar"
    if tar.exists():
        return tar
    if shutil.which("mmdebstrap") is None:
        raise RuntimeError("needs mmdebstrap (installed by EXTRAS=test scripts/setup.sh as root)")
    TEST_IMAGES.mkdir(parents=True, exist_ok=True)
    with open(TEST_IMAGES / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build, even with two test runs at once
        if not tar.exists():
            scratch = TEST_IMAGES / f".debian-{os.getpid()}.tar"  # mmdebstrap picks its format by suffix
            subprocess.run(
                ["mmdebstrap", "--quiet", "--variant=minbase", "--include=python3,procps", "bookworm", str(scratch)],
                check=True,
                timeout=900,
            )
            scratch.rename(tar)
    return tar
