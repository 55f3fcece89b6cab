"""One layer blob verified, decompressed (blob_decoder.py) and unpacked (oci_layer.py) by two
threads at once, with a bounded handoff of tar pieces between them."""

from __future__ import annotations

import io
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .blob_decoder import COPY_CHUNK, BlobDecoder
from .oci_layer import UnpackStats, unpack_layer
from .registry import ImageError


class Handoff:
    """A bounded queue of byte chunks from one thread to another. The writer ends it with
    `close(error)`: the reader gets what is queued, then b"" (or the error raised). The reader ends
    it with `abandon()`: a waiting `put` returns False at once, as does every later one. So neither
    side can be left waiting for the other, whichever of them stops first."""

    def __init__(self, depth: int) -> None:
        self._items: deque[bytes] = deque()
        self._depth = depth
        self._changed = threading.Condition()
        self._closed = self._abandoned = False
        self._error: BaseException | None = None

    def put(self, item: bytes) -> bool:
        """Queue `item`, waiting while the queue is full; False if the reader has abandoned it."""
        with self._changed:
            while len(self._items) >= self._depth and not self._abandoned:
                self._changed.wait()
            if self._abandoned:
                return False
            self._items.append(item)
            self._changed.notify_all()
            return True

    def get(self) -> bytes:
        """The next chunk, waiting for one; b"" once the writer closed it (or raises its error)."""
        with self._changed:
            while not self._items and not self._closed and not self._abandoned:
                self._changed.wait()
            if self._items:
                self._changed.notify_all()
                return self._items.popleft()
            if self._error is not None and not self._abandoned:
                raise self._error
            return b""

    def close(self, error: BaseException | None = None) -> None:
        with self._changed:
            if not self._closed:
                self._closed, self._error = True, error
                self._changed.notify_all()

    def abandon(self) -> None:
        with self._changed:
            self._abandoned = True
            self._items.clear()
            self._changed.notify_all()


class ChunkStream(io.RawIOBase):
    """The bytes of `source()` calls (b"" at the end) as a readable stream."""

    def __init__(self, source: Callable[[], bytes]) -> None:
        self._source = source
        self._buffer = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buffer and not self._eof:
            chunk = self._source()
            self._eof = not chunk
            self._buffer = memoryview(chunk)
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def drain(self) -> None:
        """Read (and drop) the rest, to the end."""
        self._buffer = memoryview(b"")
        while not self._eof:
            self._eof = not self._source()


class BlobUnpack:
    """One layer blob verified, decompressed and unpacked into `dest` by two threads at once, with
    a bounded handoff between them: `decode` (the digest, gunzip or zstd, the diff_id: hashlib,
    zlib and zstd let go of the GIL on large buffers) and `unpack` (tar entries to files). The
    caller runs both together, each in a thread of its own, and calls `stop()` when `unpack` has
    returned or raised: that wakes `decode` if it waits to hand a piece on. `decode` never raises:
    its error (a digest mismatch, a truncated blob, a stream that does not decompress) is raised
    in `unpack`, which returns only once the blob is checked whole and the tar unpacked; the
    caller commits `dest` only then, and discards it otherwise."""

    def __init__(self, digest: str, size: int | None, diff_id: str, dest: Path, depth: int = 8) -> None:
        self.decoder = BlobDecoder(digest, size)
        self.digest, self.diff_id, self.dest = digest, diff_id, dest
        self._handoff = Handoff(depth)

    def decode(self, chunks: Callable[[], bytes]) -> None:
        """Read the blob from `chunks()` (b"" at its end) and hand its tar to `unpack`."""
        try:
            while chunk := chunks():
                for piece in self.decoder.decode(chunk):
                    if not self._handoff.put(piece):
                        return  # the unpacker stopped; its error says why
            self.decoder.finish()
        except ImageError as exc:
            self._handoff.close(exc)
        except BaseException as exc:  # zlib or zstd: a stream that does not decompress
            self._handoff.close(ImageError(f"layer {self.digest}: cannot unpack: {type(exc).__name__}: {exc}"))
            if not isinstance(exc, Exception):
                raise
        else:
            self._handoff.close()

    def unpack(self) -> UnpackStats:
        stream = ChunkStream(self._handoff.get)
        try:
            stats = unpack_layer(io.BufferedReader(stream, COPY_CHUNK), self.dest)
            stream.drain()  # what follows the tar's end, up to the decoder's verdict on the blob
        except ImageError:
            raise
        except Exception as exc:  # tarfile, OSError: a layer we cannot unpack
            raise ImageError(f"layer {self.digest}: cannot unpack: {type(exc).__name__}: {exc}") from exc
        if self.decoder.diff_id != self.diff_id:
            raise ImageError(
                f"layer {self.digest}: diff_id mismatch (config says {self.diff_id}, got {self.decoder.diff_id})"
            )
        return stats

    def decoding_ended(self) -> None:
        """After `decode` returned, or was never run: `unpack` waits for no more pieces."""
        self._handoff.close(ImageError(f"layer {self.digest}: the blob was not read to its end"))

    def stop(self) -> None:
        """After `unpack` returned or raised (or was never run): `decode` hands no more pieces on."""
        self._handoff.abandon()
