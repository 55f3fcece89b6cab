"""Unpacking layer tars into overlayfs layers: what is kept, what is refused, and what overlay sees."""

from __future__ import annotations

import gzip
import io
import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from scenario_mcp.local.oci_layer import (
    COPY_CHUNK,
    BlobDecoder,
    BlobUnpack,
    LayerError,
    member_path,
    unpack_layer,
    zstd_module,
)
from scenario_mcp.local.registry import ImageError

from .oci_registry import Entry as TarEntry
from .oci_registry import (
    base_dirs,
    directory,
    file,
    hardlink,
    make_tar,
    opaque,
    sandbox_output,
    sha256,
    symlink,
    whiteout,
)

ROOT = os.geteuid() == 0
pytestmark = pytest.mark.anyio


def unpack(entries: list[TarEntry], dest: Path, **kw: bool) -> None:
    unpack_layer(io.BytesIO(make_tar(entries)), dest, **kw)  # type: ignore[arg-type]


def is_whiteout(path: Path) -> bool:
    st = path.lstat()
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def test_modes_owners_setuid_links_and_xattrs_are_kept(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    unpack(
        [
            directory("usr/bin", mode=0o755),
            file("usr/bin/su", b"#!su", mode=0o4755, uid=0, gid=0),
            file("usr/bin/wall", b"#!wall", mode=0o2755, uid=0, gid=5),
            file("home/u/notes", b"mine", mode=0o600, uid=1000, gid=1000),
            directory("srv/closed", mode=0o700, uid=1000, gid=1000),
            directory("tmp", mode=0o1777),
            symlink("etc/os", "/usr/lib/os-release"),
            symlink("escape", "../../../../etc/shadow"),
            hardlink("usr/bin/su2", "usr/bin/su"),
            file("with-xattr", b"x", xattrs={"user.origin": "tests"}),
            TarEntry("dev/null", "chardev"),
            TarEntry("run/fifo", "fifo", mode=0o600),
        ],
        layer,
    )
    su = (layer / "usr/bin/su").lstat()
    assert stat.S_IMODE(su.st_mode) == 0o4755
    assert stat.S_IMODE((layer / "usr/bin/wall").lstat().st_mode) == 0o2755
    assert stat.S_IMODE((layer / "tmp").lstat().st_mode) == 0o1777
    assert stat.S_IMODE((layer / "srv/closed").lstat().st_mode) == 0o700
    if ROOT:
        assert (layer / "home/u/notes").stat().st_uid == 1000
        assert (layer / "usr/bin/wall").stat().st_gid == 5
        assert (layer / "srv/closed").stat().st_uid == 1000
    assert os.readlink(layer / "etc/os") == "/usr/lib/os-release"
    assert os.readlink(layer / "escape") == "../../../../etc/shadow"  # kept as a link, never followed
    assert (layer / "usr/bin/su2").lstat().st_ino == su.st_ino
    assert os.getxattr(layer / "with-xattr", "user.origin") == b"tests"
    assert not (layer / "dev/null").exists()  # device nodes are skipped
    assert stat.S_ISFIFO((layer / "run/fifo").lstat().st_mode)
    assert (layer / "usr/bin").stat().st_mtime == 1_700_000_000


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([file("../outside", b"x")], "leaves the layer"),
        ([file("a/../../outside", b"x")], "leaves the layer"),
        ([file("/etc/passwd", b"x")], "absolute path"),
        ([symlink("link", "/tmp"), file("link/planted", b"x")], "symlink"),
        ([symlink("link", ".."), directory("link/sub")], "symlink"),
        ([hardlink("h", "../../etc/passwd")], "leaves the layer"),
        ([symlink("link", "/etc"), hardlink("h", "link/passwd")], "symlink"),
        ([whiteout("../x")], "leaves the layer"),
        ([file("f", b"x"), file("f/inside", b"x")], "not a directory"),
    ],
)
def test_escaping_entries_are_refused(tmp_path: Path, entries: list[TarEntry], message: str) -> None:
    outside = tmp_path / "outside"
    with pytest.raises(LayerError, match=message):
        unpack(entries, tmp_path / "deep" / "layer")
    assert not outside.exists()
    assert not (tmp_path / "x").exists()


def test_a_later_entry_replaces_an_earlier_one_and_never_writes_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    layer = tmp_path / "layer"
    unpack(
        [
            file("same", "first", mode=0o600),
            file("same", "second", mode=0o640),
            directory("was-dir"),
            file("was-dir/inner", "x"),
            file("was-dir", "now a file"),
            symlink("was-link", str(outside)),
            file("was-link", "a file, not through the link"),
            symlink("dir-link", str(outside)),
            directory("dir-link"),
            file("dir-link/new", "inside the layer"),
            file("was-file", "x"),
            directory("was-file"),
            file("to-link", "x"),
            symlink("to-link", "same"),
            file("to-hardlink", "x"),
            hardlink("to-hardlink", "same"),
        ],
        layer,
    )
    assert (layer / "same").read_text() == "second" and stat.S_IMODE((layer / "same").stat().st_mode) == 0o640
    assert (layer / "was-dir").read_text() == "now a file"
    assert not (layer / "was-link").is_symlink() and (layer / "was-link").read_text() == "a file, not through the link"
    assert not (layer / "dir-link").is_symlink() and (layer / "dir-link/new").read_text() == "inside the layer"
    assert list(outside.iterdir()) == []
    assert (layer / "was-file").is_dir()
    assert os.readlink(layer / "to-link") == "same"
    assert (layer / "to-hardlink").stat().st_ino == (layer / "same").stat().st_ino


def test_member_paths_are_normalised() -> None:
    assert member_path("./usr//bin/./ls") == "usr/bin/ls"
    assert member_path("./") == ""


@pytest.mark.skipif(not ROOT, reason="mknod of a whiteout needs root (unprivileged, xattr whiteouts are used)")
def test_whiteouts_are_char_devices_and_opaque_dirs_carry_the_user_overlay_xattr(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    unpack([directory("data"), whiteout("data/gone"), opaque("data/fresh"), file("data/fresh/new", b"n")], layer)
    assert is_whiteout(layer / "data/gone")
    assert not (layer / "data/.wh.gone").exists()
    assert os.getxattr(layer / "data/fresh", "user.overlay.opaque") == b"y"
    assert not (layer / "data/fresh/.wh..wh..opq").exists()


def test_xattr_whiteouts_where_mknod_is_not_allowed(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    unpack([directory("data"), whiteout("data/gone")], layer, mknod_whiteouts=False)
    gone = layer / "data/gone"
    assert stat.S_ISREG(gone.lstat().st_mode) and gone.lstat().st_size == 0
    assert os.getxattr(gone, "user.overlay.whiteout") == b""
    assert os.getxattr(layer / "data", "user.overlay.opaque") == b"x"


def test_image_supplied_overlay_xattrs_are_dropped(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    unpack(
        [directory("d", xattrs={"user.overlay.opaque": "y"}), file("f", b"x", xattrs={"user.overlay.redirect": "/"})],
        layer,
    )
    for path in (layer / "d", layer / "f"):
        assert not [name for name in os.listxattr(path) if ".overlay." in name]


def three_layers() -> list[list[TarEntry]]:
    """Bottom first: files, then a whiteout and an opaque dir, then a file back where one was removed."""
    return [
        [
            *base_dirs(),
            directory("data"),
            file("data/keep", "1"),
            file("data/gone", "1"),
            file("data/back", "1"),
            directory("data/dir"),
            file("data/dir/old1", "1"),
            file("data/dir/old2", "1"),
            directory("data/sub"),
            file("data/sub/a", "1"),
        ],
        [
            *base_dirs(),
            whiteout("data/gone"),
            whiteout("data/back"),
            opaque("data/dir"),
            file("data/dir/new2", "2"),
            whiteout("data/sub"),
            file("data/keep", "2"),
        ],
        [*base_dirs(), file("data/back", "3"), directory("data/sub"), file("data/sub/b", "3")],
    ]


EXPECTED_VIEW = """./back
./dir
./dir/new2
./keep
./sub
./sub/b
--
32
"""
VIEW_SCRIPT = "cd /data && find . -mindepth 1 | sort && echo -- && cat back keep && echo"


@pytest.mark.parametrize("mknod_whiteouts", [None, False], ids=["chardev-whiteouts", "xattr-whiteouts"])
async def test_overlay_shows_what_docker_would_across_three_layers(
    tmp_path: Path, mknod_whiteouts: bool | None
) -> None:
    layers = []
    for i, entries in enumerate(three_layers()):
        layers.append(tmp_path / f"l{i}")
        unpack(entries, layers[-1], mknod_whiteouts=mknod_whiteouts)  # type: ignore[arg-type]
    view = await sandbox_output(layers[::-1], tmp_path, VIEW_SCRIPT)
    assert view == EXPECTED_VIEW


async def test_the_engine_mount_honours_user_overlay_opaque_not_trusted(tmp_path: Path) -> None:
    """Why unpack writes `user.overlay.opaque`: overlay mounted with `userxattr` ignores trusted.*."""
    lower, upper_user, upper_trusted = tmp_path / "lower", tmp_path / "user", tmp_path / "trusted"
    unpack([*base_dirs(), directory("data"), file("data/below", "1")], lower)
    for layer in (upper_user, upper_trusted):
        unpack([*base_dirs(), directory("data"), file("data/above", "2")], layer)
    os.setxattr(upper_user / "data", "user.overlay.opaque", b"y")
    if ROOT:
        os.setxattr(upper_trusted / "data", "trusted.overlay.opaque", b"y")
    listing = "ls /data"
    assert await sandbox_output([upper_user, lower], tmp_path / "a", listing) == "above\n"
    assert await sandbox_output([upper_trusted, lower], tmp_path / "b", listing) == "above\nbelow\n"


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
