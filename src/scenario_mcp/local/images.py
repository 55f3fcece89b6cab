"""Pulling container images into the layer store, with no Docker daemon.

`pull_image("ubuntu:24.04", store)` resolves the reference (registry.py), picks this machine's
platform from a multi-arch index, fetches the config, and streams each layer the store does not
have yet through digest checks and decompression (blob_decoder.py) straight into its unpacker
(oci_layer.py; the two in threads of their own, blob_unpack.py), in a
scratch directory renamed into place only once both its digest and its diff_id are right. Layers
are keyed by diff_id, so one shared by many images is fetched and unpacked once.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import platform as host
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread

from .blob_unpack import BlobUnpack
from .layers import ImageConfig, ImageRecord, LayerStore, remove_tree
from .registry import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    Endpoint,
    ImageError,
    ImageReference,
    RegistryClient,
    parse_reference,
)

__all__ = ["ImageError", "ProgressCallback", "find_image", "host_platform", "pull_image"]

ProgressCallback = Callable[[int, int, str], Awaitable[None] | None]
"""(done bytes, total bytes, message): of the layers being fetched, the blob bytes that have
reached the decoder (the unpacker is at most a bounded handoff behind them)."""

PARALLEL_LAYERS = 3  # as `docker pull`
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm/v7"}


def host_platform() -> str:
    """The platform this machine runs: linux/amd64 on x86_64, linux/arm64 on aarch64."""
    machine = host.machine().lower()
    return f"linux/{_ARCHES.get(machine, machine)}"


def find_image(store: LayerStore, reference: str) -> ImageRecord | None:
    """A pulled image by the reference a user writes (`ubuntu:24.04`) or by manifest digest."""
    if reference.startswith("sha256:"):
        return store.get_image(reference)
    ref = parse_reference(reference)
    found = store.get_image(ref.name)
    if found is None and ref.digest:
        found = store.get_image(ref.digest) or next(
            (r for r in store.list_images() if r.index_digest == ref.digest), None
        )
    return found if found and all(store.has_image_layer(d) for d in found.diff_ids) else None


async def pull_image(
    reference: str,
    store: LayerStore,
    *,
    platform: str | None = None,
    progress: ProgressCallback | None = None,
    auths: dict[str, tuple[str, str]] | None = None,
) -> ImageRecord:
    """Pull an image (any reference a Docker user writes) into `store`; returns its record.

    A reference by digest already pulled needs no registry; a tag is resolved again, as `docker
    pull` does, and only missing layers are fetched. `auths` (host -> user, password) replaces
    ~/.docker/config.json. Raises ImageError with a message fit for the user."""
    ref = parse_reference(reference)
    if ref.digest and (known := find_image(store, ref.name)):
        return _with_reference(store, known, ref)
    endpoints = Endpoint.for_registry(ref.registry)
    problems: list[ImageError] = []
    for endpoint in endpoints:
        try:
            async with RegistryClient(endpoint, ref.repository, auths) as client:
                return await _Pull(client, ref, store, platform or host_platform(), progress).run()
        except ImageError as exc:
            problems.append(exc)
    if len(problems) == 1:
        raise problems[0]
    # Each endpoint's own reason (a mirror's first): the last alone would hide why the mirror failed.
    raise ImageError("; then ".join(str(problem) for problem in problems)) from problems[-1]


def _with_reference(store: LayerStore, record: ImageRecord, ref: ImageReference) -> ImageRecord:
    record = ImageRecord(**{**record.__dict__, "references": (ref.name, *record.references)})
    store.save_image(record)
    return store.get_image(record.manifest_digest) or record


def choose_platform(index: dict[str, Any], want: str, name: str) -> dict[str, Any]:
    """The index entry for `want` (os/arch[/variant]); a clear error naming what the image has."""
    os_name, _, rest = want.partition("/")
    arch, _, variant = rest.partition("/")
    have: list[str] = []
    matches: list[dict[str, Any]] = []
    for entry in index.get("manifests") or []:
        p = entry.get("platform") or {}
        if p.get("os") in (None, "unknown") or p.get("architecture") in (None, "unknown"):
            continue  # attestations and other non-images
        have.append("/".join(filter(None, (p.get("os"), p.get("architecture"), p.get("variant")))))
        if p.get("os") == os_name and p.get("architecture") == arch and (not variant or p.get("variant") == variant):
            matches.append(entry)
    if not matches:
        listed = ", ".join(sorted(set(have))) or "none"
        raise ImageError(f"{name} has no {want} image; the platforms it has: {listed}")
    # arm64: v8 or no variant at all are the same thing; prefer the plainest.
    matches.sort(key=lambda e: (e.get("platform") or {}).get("variant") not in (None, "", "v8"))
    return matches[0]


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _verify(data: bytes, digest: str, what: str) -> None:
    if _digest(data) != digest:
        raise ImageError(f"{what}: digest mismatch (expected {digest}, got {_digest(data)})")


@dataclass
class _Layer:
    digest: str
    size: int
    diff_id: str


class _Pull:
    def __init__(
        self,
        client: RegistryClient,
        ref: ImageReference,
        store: LayerStore,
        platform: str,
        progress: ProgressCallback | None,
    ) -> None:
        self.client, self.ref, self.store, self.platform = client, ref, store, platform
        self.progress = progress
        self.done = self.total = 0
        self._reported = 0.0

    async def report(self, message: str, *, force: bool = True) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if not force and now - self._reported < 0.1:
            return
        self._reported = now
        result = self.progress(self.done, self.total, message)
        if inspect.isawaitable(result):
            await result

    async def run(self) -> ImageRecord:
        name = self.ref.name
        await self.report(f"resolving {name}")
        data, media_type = await self.client.manifest(self.ref.manifest_ref)
        manifest_digest, index_digest = _digest(data), None
        if self.ref.digest and manifest_digest != self.ref.digest:
            raise ImageError(f"{name}: the registry sent a manifest with digest {manifest_digest}")
        document = _json(data, f"manifest of {name}")
        if media_type in INDEX_TYPES or (not media_type and "manifests" in document):
            index_digest = manifest_digest
            entry = choose_platform(document, self.platform, name)
            manifest_digest = entry["digest"]
            data, media_type = await self.client.manifest(manifest_digest)
            _verify(data, manifest_digest, f"{self.platform} manifest of {name}")
            document = _json(data, f"manifest of {name}")
        if media_type not in MANIFEST_TYPES and not (not media_type and "layers" in document):
            raise ImageError(f"{name}: unsupported manifest type {media_type!r} (schema 1 images are not supported)")
        config_digest = document["config"]["digest"]
        config_blob = await self.client.blob_bytes(config_digest)
        _verify(config_blob, config_digest, f"config of {name}")
        config = _json(config_blob, f"config of {name}")
        self._check_platform(config, name, index_digest is not None)
        diff_ids = tuple(config.get("rootfs", {}).get("diff_ids") or ())
        descriptors = document.get("layers") or []
        if len(diff_ids) != len(descriptors):
            raise ImageError(
                f"{name}: {len(descriptors)} layers in the manifest, {len(diff_ids)} diff_ids in its config"
            )
        layers = [
            _Layer(d["digest"], int(d.get("size", 0)), diff) for d, diff in zip(descriptors, diff_ids, strict=True)
        ]
        lock = self.store.pull_lock()
        await anyio.to_thread.run_sync(lock.__enter__)
        try:
            missing = list({layer.diff_id: layer for layer in layers if not self.store.has_image_layer(layer.diff_id)})
            todo = [next(layer for layer in layers if layer.diff_id == diff) for diff in missing]
            self.total = sum(layer.size for layer in todo)
            await self.report(f"pulling {name}: {len(todo)} of {len(layers)} layers to fetch")
            limiter = anyio.CapacityLimiter(PARALLEL_LAYERS)
            try:
                async with anyio.create_task_group() as tg:
                    for layer in todo:
                        tg.start_soon(self._fetch_limited, limiter, layer)
            except* ImageError as group:
                raise group.exceptions[0] from None
            record = ImageRecord(
                manifest_digest=manifest_digest,
                config_digest=config_digest,
                diff_ids=diff_ids,
                config=ImageConfig.from_oci(config.get("config")),
                platform=self.platform,
                references=(name,),
                index_digest=index_digest,
                size=sum(layer.size for layer in layers),
                pulled_at=time.time(),
            )
            await anyio.to_thread.run_sync(self.store.save_image, record)
        finally:
            lock.__exit__(None, None, None)
        await self.report(f"pulled {name} ({manifest_digest})")
        return self.store.get_image(manifest_digest) or record

    def _check_platform(self, config: dict[str, Any], name: str, chosen: bool) -> None:
        os_name, _, arch = self.platform.partition("/")
        arch = arch.split("/")[0]
        have = f"{config.get('os')}/{config.get('architecture')}"
        if not chosen and (config.get("os"), config.get("architecture")) != (os_name, arch):
            raise ImageError(f"{name} is a {have} image; this machine runs {self.platform}")

    async def _fetch_limited(self, limiter: anyio.CapacityLimiter, layer: _Layer) -> None:
        async with limiter:
            await self.fetch_layer(layer)

    async def fetch_layer(self, layer: _Layer) -> None:
        """Stream one blob through its checks into its unpacker; commit it only if all checks pass.

        Three stages at once: the download (this event loop), the decoder (digests and
        decompression) and the unpacker, each of the last two in a thread of its own (see
        BlobUnpack), on a limiter of their own: the two must run together, never one waiting for
        a worker thread the other holds. Whichever stops first, the others are woken and stop."""
        scratch = await anyio.to_thread.run_sync(self.store.image_layer_scratch, layer.diff_id)
        send, receive = anyio.create_memory_object_stream[bytes](8)
        job = BlobUnpack(layer.digest, layer.size or None, layer.diff_id, scratch)
        threads = anyio.CapacityLimiter(2)
        download_errors: list[Exception] = []
        unpack_errors: list[Exception] = []
        downloading = anyio.CancelScope()

        async def download() -> None:
            with downloading:
                try:
                    async with send, self.client.blob(layer.digest) as chunks:
                        async for chunk in chunks:
                            await send.send(chunk)
                            await self.report(f"layer {layer.digest[:19]}", force=False)
                except anyio.BrokenResourceError:
                    pass  # the unpacker stopped first; its error says why
                except Exception as exc:
                    download_errors.append(exc)

        async def take() -> bytes:
            chunk = await receive.receive()
            self.done += len(chunk)  # counted as the decoder takes it: the unpacker is a handoff behind
            return chunk

        def next_chunk() -> bytes:
            try:
                return anyio.from_thread.run(take)
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                return b""

        async def decode() -> None:
            try:
                await anyio.to_thread.run_sync(job.decode, next_chunk, limiter=threads)
            finally:  # a decoder cancelled before its thread started must not leave the unpacker waiting
                job.decoding_ended()

        async def unpack() -> None:
            try:
                await anyio.to_thread.run_sync(job.unpack, limiter=threads)
            except Exception as exc:
                unpack_errors.append(exc)
                downloading.cancel()  # however long the registry would take to send the rest
            finally:  # wake the decoder, wherever it waits: for a chunk, or to hand a piece on
                job.stop()
                receive.close()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(download)
                tg.start_soon(decode)
                tg.start_soon(unpack)
            if download_errors or unpack_errors:  # the download's error is the cause of the unpacker's
                raise (download_errors + unpack_errors)[0]
            await anyio.to_thread.run_sync(self.store.commit_image_layer, scratch, layer.diff_id)
        finally:  # nothing half-made stays (a committed layer is no longer at `scratch`)
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(remove_tree, scratch)
        await self.report(f"layer {layer.digest[:19]} unpacked")


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise ImageError(f"{what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ImageError(f"{what} is not a JSON object")
    return value
