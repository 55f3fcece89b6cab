"""Unpacking layer tars into overlayfs layers: what is kept, what is refused, and what overlay sees."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from scenario_mcp.local.oci_layer import LayerError, member_path, unpack_layer

from .oci_registry import Entry as TarEntry
from .oci_registry import (
    base_dirs,
    directory,
    file,
    hardlink,
    make_tar,
    opaque,
    sandbox_output,
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
