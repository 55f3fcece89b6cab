"""Layer blobs decoded as they stream (blob_decoder.py): gzip, zstd or a plain tar, multi-member,
in bounded pieces, checked against their digest and size."""

from __future__ import annotations

import gzip
import os
import sys

import pytest

from scenario_mcp.local.blob_decoder import COPY_CHUNK, BlobDecoder, zstd_module
from scenario_mcp.local.registry import ImageError

from .oci_registry import file, make_tar, sha256


def zstd_compress(data: bytes) -> bytes:
    module = zstd_module()
    assert module is not None, "backports.zstd (a dependency before Python 3.14) is missing"
    return bytes(module.compress(data))


COMPRESS = {"gzip": gzip.compress, "zstd": zstd_compress, "tar": bytes}


def chunked(blob: bytes, chunk: int = 7) -> list[bytes]:
    return [blob[i : i + chunk] for i in range(0, len(blob), chunk)]


@pytest.mark.parametrize("kind", ["gzip", "zstd", "tar"])
def test_a_blob_decoder_yields_the_tar_and_its_diff_id(kind: str) -> None:
    tar = make_tar([file("a", "hello"), file("b", os.urandom(3000))])
    blob = COMPRESS[kind](tar)
    decoder = BlobDecoder(sha256(blob), len(blob))
    assert decoder.decode_all(chunked(blob)) == tar
    assert decoder.diff_id == sha256(tar) and decoder.blob_bytes == len(blob)


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_a_multi_member_blob_is_read_whole(kind: str) -> None:
    tar = make_tar([file("a", "x" * 3000)])
    blob = COMPRESS[kind](tar[:1000]) + COMPRESS[kind](tar[1000:])
    for chunk in (7, len(blob)):  # members split across chunks, and all in one
        decoder = BlobDecoder(sha256(blob))
        assert decoder.decode_all(chunked(blob, chunk)) == tar
        assert decoder.diff_id == sha256(tar)


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_a_small_blob_does_not_swell_into_one_large_piece(kind: str) -> None:
    tar = make_tar([file("zeros", bytes(8 * COPY_CHUNK))])
    blob = COMPRESS[kind](tar)
    assert len(blob) < COPY_CHUNK // 8
    decoder = BlobDecoder(sha256(blob))
    pieces = list(decoder.decode(blob))
    assert max(map(len, pieces)) <= COPY_CHUNK and b"".join(pieces) == tar
    assert decoder.finish() == sha256(tar)


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_a_blob_decoder_refuses_a_wrong_digest_or_size_or_a_truncated_stream(kind: str) -> None:
    blob = COMPRESS[kind](make_tar([file("a", "hello")]))
    with pytest.raises(ImageError, match="digest mismatch"):
        BlobDecoder(sha256(b"other")).decode_all(chunked(blob))
    with pytest.raises(ImageError, match="longer than"):
        BlobDecoder(sha256(blob), len(blob) - 1).decode_all(chunked(blob))
    with pytest.raises(ImageError, match=f"the {kind} stream ends early"):
        BlobDecoder(sha256(blob[:-20])).decode_all(chunked(blob[:-20]))


def test_a_zstd_layer_without_a_zstd_module_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    blob = zstd_compress(make_tar([file("a", "hello")]))
    for name in ("compression.zstd", "backports.zstd"):
        monkeypatch.setitem(sys.modules, name, None)  # what an import finds where the module is not installed
    with pytest.raises(ImageError, match=r"zstd-compressed.*install the `backports.zstd` package"):
        BlobDecoder(sha256(blob)).decode_all([blob])
