"""A layer blob's bytes decoded as they stream: checked against the manifest's digest and size,
decompressed (gzip, zstd or none, told by its first bytes, as Docker does) and hashed for its
diff_id. Standard library only, but for zstd: Python 3.14's compression.zstd, or its backport
(`backports.zstd`) before."""

from __future__ import annotations

import hashlib
import importlib
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from .registry import ImageError

COPY_CHUNK = 1 << 20


class BlobDecoder:
    """A layer blob's bytes in, its uncompressed tar out in pieces of at most COPY_CHUNK bytes (so
    a small blob cannot swell into a large buffer), hashing both on the way: the blob for its
    digest, the tar for its diff_id. The format is told by the blob's first bytes, as Docker does:
    gzip, zstd or a plain tar. `finish()` after the last chunk checks the size and the digest."""

    def __init__(self, digest: str, size: int | None = None) -> None:
        self.digest = digest
        self.size = size
        self.blob_sha = hashlib.sha256()
        self.tar_sha = hashlib.sha256()
        self.blob_bytes = 0
        self.tar_bytes = 0
        self.diff_id = ""
        self._inflater: _Inflater | None = None
        self._head = b""  # the first bytes, until there are enough to tell the format

    def decode(self, chunk: bytes) -> Iterator[bytes]:
        self.blob_sha.update(chunk)
        self.blob_bytes += len(chunk)
        if self.size is not None and self.blob_bytes > self.size:
            raise ImageError(f"layer {self.digest}: the blob is longer than the manifest's {self.size} bytes")
        if self._inflater is None:
            self._head += chunk
            if len(self._head) < 4:
                return
            chunk, self._head = self._head, b""
            self._inflater = _inflater_for(chunk, self.digest)
        for piece in self._inflater.feed(chunk):
            self.tar_sha.update(piece)
            self.tar_bytes += len(piece)
            yield piece

    def finish(self) -> str:
        """After the blob's last chunk: checks it whole; returns the diff_id (the tar's sha256)."""
        if self._inflater is None and self._head:  # a blob of under 4 bytes
            self._inflater = _inflater_for(self._head, self.digest)
            for piece in self._inflater.feed(self._head):
                self.tar_sha.update(piece)
                self.tar_bytes += len(piece)
        if self._inflater is not None and not self._inflater.complete:
            raise ImageError(f"layer {self.digest}: the {self._inflater.name} stream ends early")
        if self.size is not None and self.blob_bytes != self.size:
            raise ImageError(f"layer {self.digest}: got {self.blob_bytes} bytes, the manifest says {self.size}")
        actual = f"sha256:{self.blob_sha.hexdigest()}"
        if actual != self.digest:
            raise ImageError(f"layer {self.digest}: digest mismatch, the registry sent {actual}")
        self.diff_id = f"sha256:{self.tar_sha.hexdigest()}"
        return self.diff_id

    def decode_all(self, chunks: Iterable[bytes]) -> bytes:
        """The whole tar of a blob given as chunks (small blobs and tests), checked by finish()."""
        tar = b"".join(piece for chunk in chunks for piece in self.decode(chunk))
        self.finish()
        return tar


class _Inflater:
    name = "tar"
    complete = True

    def feed(self, data: bytes) -> Iterator[bytes]:
        for start in range(0, len(data), COPY_CHUNK):
            yield data[start : start + COPY_CHUNK]


class _Gunzip(_Inflater):
    """gzip, multi-member too (a member after another is read on, as `gzip -d` does)."""

    name = "gzip"

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(31)

    @property
    def complete(self) -> bool:  # type: ignore[override]
        return bool(self._zlib.eof)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            if self._zlib.eof and data:
                self._zlib = zlib.decompressobj(31)
            out = self._zlib.decompress(data, COPY_CHUNK)
            if out:
                yield out
            data = self._zlib.unused_data if self._zlib.eof else self._zlib.unconsumed_tail
            if not data and (self._zlib.eof or len(out) < COPY_CHUNK):
                return  # (a full piece may leave more output inside zlib: ask again)


class _Unzstd(_Inflater):
    """zstd, several frames too, with Python 3.14's compression.zstd or its backport."""

    name = "zstd"

    def __init__(self, module: Any) -> None:
        self._module = module
        self._zstd = module.ZstdDecompressor()

    @property
    def complete(self) -> bool:  # type: ignore[override]
        return bool(self._zstd.eof)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while True:
            if self._zstd.eof:
                if not data:
                    return
                self._zstd = self._module.ZstdDecompressor()
            out = self._zstd.decompress(data, COPY_CHUNK)
            if out:
                yield out
            if self._zstd.eof:
                data = self._zstd.unused_data
            elif self._zstd.needs_input:
                return
            else:
                data = b""  # more output is waiting inside the decompressor


def zstd_module() -> Any:
    """compression.zstd (Python >= 3.14) or the `backports.zstd` package; None if neither is here."""
    for name in ("compression.zstd", "backports.zstd"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _inflater_for(head: bytes, digest: str) -> _Inflater:
    if head[:2] == b"\x1f\x8b":
        return _Gunzip()
    if head[:4] == b"\x28\xb5\x2f\xfd":
        module = zstd_module()
        if module is None:
            raise ImageError(
                f"layer {digest} is zstd-compressed, and this Python has no zstd: install the `backports.zstd` "
                "package (`pip install backports.zstd`) or run on Python 3.14 or later"
            )
        return _Unzstd(module)
    return _Inflater()
