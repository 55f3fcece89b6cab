"""A layer blob decoded and unpacked by two threads at once (blob_unpack.py): neither is left
waiting, whichever stops first, and the decoder's verdict reaches the caller."""

from __future__ import annotations

import gzip
import os
import threading
from pathlib import Path

import pytest

from scenario_mcp.local.blob_decoder import COPY_CHUNK
from scenario_mcp.local.blob_unpack import BlobUnpack
from scenario_mcp.local.oci_layer import LayerError
from scenario_mcp.local.registry import ImageError

from .oci_registry import directory, file, make_tar, sha256
from .test_blob_decoder import chunked


def run_blob_unpack(blob: bytes, diff_id: str, dest: Path, *, digest: str | None = None) -> None:
    """BlobUnpack as pull_image runs it: the decoder in a thread of its own, fed 64 KiB chunks,
    the unpacker here; the decoder must be gone when this returns, whatever happened."""
    job = BlobUnpack(digest or sha256(blob), None, diff_id, dest, depth=2)
    chunks = iter(chunked(blob, 64 << 10))
    decoder = threading.Thread(target=job.decode, args=(lambda: next(chunks, b""),))
    decoder.start()
    try:
        job.unpack()
    finally:
        job.stop()
        decoder.join(10)
        assert not decoder.is_alive(), "the decoder was left waiting"


def test_blob_unpack_unpacks_a_large_layer_and_checks_its_diff_id(tmp_path: Path) -> None:
    data = os.urandom(3 * COPY_CHUNK)
    tar = make_tar([directory("d"), file("d/big", data), file("small", "s")])
    run_blob_unpack(gzip.compress(tar), sha256(tar), tmp_path / "ok")
    assert (tmp_path / "ok/d/big").read_bytes() == data and (tmp_path / "ok/small").read_text() == "s"
    with pytest.raises(ImageError, match="diff_id mismatch"):
        run_blob_unpack(gzip.compress(tar), sha256(b"another tar"), tmp_path / "lie")


def test_blob_unpack_stops_both_threads_on_a_refused_path_with_much_left_to_decode(tmp_path: Path) -> None:
    # The refusal comes first; behind it, many pieces the decoder is waiting to hand on.
    tar = make_tar([file("../escape", "x"), file("big", os.urandom(6 * COPY_CHUNK))])
    with pytest.raises(LayerError, match="leaves the layer"):
        run_blob_unpack(gzip.compress(tar), sha256(tar), tmp_path / "refused")
    assert not (tmp_path / "escape").exists()


def test_blob_unpack_raises_the_decoders_error_a_wrong_digest_or_a_truncated_blob(tmp_path: Path) -> None:
    tar = make_tar([file("big", os.urandom(2 * COPY_CHUNK))])
    blob = gzip.compress(tar, compresslevel=6)
    other = gzip.compress(tar, compresslevel=1)  # the same tar, so only the blob's digest tells
    with pytest.raises(ImageError, match="digest mismatch"):
        run_blob_unpack(other, sha256(tar), tmp_path / "digest", digest=sha256(blob))
    with pytest.raises(ImageError, match="gzip stream ends early"):
        run_blob_unpack(blob[: len(blob) // 2], sha256(tar), tmp_path / "truncated")
    flipped = blob[:100] + bytes([blob[100] ^ 0xFF]) + blob[101:]
    with pytest.raises(ImageError, match=r"(digest mismatch|cannot unpack)"):
        run_blob_unpack(flipped, sha256(tar), tmp_path / "flipped", digest=sha256(blob))
