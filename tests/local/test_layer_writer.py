"""A layer written from the host holds what the same writes through a real overlayfs mount of the
same layers leave in its upper directory: directories copied up with their modes, owners and
xattrs, symlinks followed inside the image, whiteouts and opaque directories obeyed; and nothing
is ever written outside the new layer."""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from scenario_mcp.local.build_sandbox import BuildSandbox
from scenario_mcp.local.layer_writer import LayerWriter
from scenario_mcp.local.layered_view import OPAQUE_XATTR
from scenario_mcp.local.layers import LayerStore
from scenario_mcp.local.sandbox.rootfs import RootPathError, resolve

pytestmark = pytest.mark.anyio

# Where each write goes, in the image, and what it meets there (see lower_layers).
WRITES = (
    "/deep/dir/new.txt",  # a directory only the bottom layer has, with its mode, owner, xattr
    "/link/via-link.txt",  # an absolute symlink to /deep/dir: followed inside the image
    "/gone/again/new.txt",  # a directory the top layer whites out: made anew
    "/opaque/sub/new.txt",  # an opaque directory: only the top layer's part shows
    "/fresh/a/b/new.txt",  # nothing there
    "/deep/file",  # a file the bottom layer has: replaced, its directory copied up
)


def lower_layers(tmp_path: Path) -> tuple[Path, ...]:
    """Two layers (topmost first) with what WRITES meets."""
    bottom, top = tmp_path / "bottom", tmp_path / "top"
    for path in ("deep/dir", "gone/again/old", "opaque/hidden", "opaque/sub"):
        (bottom / path).mkdir(parents=True)
    (bottom / "deep" / "file").write_text("bottom's\n")
    (bottom / "opaque" / "sub" / "below.txt").write_text("hidden by the opaque dir above\n")
    for path in (bottom / "deep", bottom / "deep" / "dir"):
        os.chown(path, 1000, 1001)
        os.chmod(path, 0o750)
        os.setxattr(path, "user.test", path.name.encode())
    (bottom / "link").symlink_to("/deep/dir")
    (top / "opaque" / "sub").mkdir(parents=True)
    os.setxattr(top / "opaque", OPAQUE_XATTR, b"y")
    os.chmod(top / "opaque" / "sub", 0o700)
    os.mknod(top / "gone", stat.S_IFCHR | 0o000, os.makedev(0, 0))  # overlayfs's whiteout
    return top, bottom


def write_all(resolve_path: Callable[[str], Path]) -> None:
    for path in WRITES:
        dest = resolve_path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(f"{path}\n")


def tree(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry under `root`: its kind, mode, owner, contents or target, and xattrs (not
    overlayfs's own bookkeeping)."""
    found: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file"
        data = os.readlink(path) if kind == "link" else path.read_text() if kind == "file" else None
        xattrs = sorted(
            (name, os.getxattr(path, name, follow_symlinks=False))
            for name in os.listxattr(path, follow_symlinks=False)
            if not name.startswith(("user.overlay.", "trusted.overlay."))
        )
        found[str(path.relative_to(root))] = (kind, oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid, data, xattrs)
    return found


async def test_writes_leave_what_they_leave_through_overlayfs(tmp_path: Path) -> None:
    layers = lower_layers(tmp_path)
    store = LayerStore(tmp_path / "store")
    store.ensure_base()
    box = await BuildSandbox.start(
        tmp_path / "build", skeleton=store.skeleton, etc_mask=store.etc_mask, network=False, hostname="x"
    )
    try:
        async with box.hold(layers) as (root, upper):
            write_all(lambda path: resolve(root, path))
            through_overlayfs = tree(upper / "root")
    finally:
        await box.stop()
    new = tmp_path / "new"
    new.mkdir()
    write_all(LayerWriter(new, layers).resolve)

    assert tree(new) == through_overlayfs
    assert tree(new)["deep"] == ("dir", "0o750", 1000, 1001, None, [("user.test", b"deep")])
    assert (new / "deep" / "dir" / "via-link.txt").read_text() == "/link/via-link.txt\n"
    assert not (new / "link").exists()  # followed, not replaced
    assert set(tree(new)) >= {"gone/again/new.txt", "opaque/sub/new.txt", "fresh/a/b/new.txt", "deep/file"}


def test_a_path_through_an_absolute_symlink_leads_inside_the_image_not_the_hosts(tmp_path: Path) -> None:
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    image = tmp_path / "image"
    image.mkdir()
    (image / "etc").symlink_to(host_dir)  # absolute: the image's own path, never the host's
    (image / "up").symlink_to("../../../..")  # out of the root: stops at it, as the kernel does
    new = tmp_path / "new"
    new.mkdir()
    writer = LayerWriter(new, (image,))

    assert writer.resolve("/etc/passwd") == new / str(host_dir).lstrip("/") / "passwd"
    assert writer.resolve("/up/etc/x") == new / str(host_dir).lstrip("/") / "x"
    assert not any(host_dir.iterdir())


def test_a_file_in_the_way_or_a_symlink_loop_is_an_error(tmp_path: Path) -> None:
    image = tmp_path / "image"
    image.mkdir()
    (image / "file").write_text("x")
    (image / "loop").symlink_to("/loop")
    writer = LayerWriter(tmp_path, (image,))
    with pytest.raises(RootPathError, match="not a directory"):
        writer.resolve("/file/x")
    with pytest.raises(RootPathError, match="too many symlinks"):
        writer.resolve("/loop/x")


def test_an_archive_moves_in_as_it_is_through_the_images_symlinks(tmp_path: Path) -> None:
    """ADD of a local archive: its entries keep their owners, modes and hard links; a directory
    of it merges with the image's (taking the archive's attributes), through the image's links."""
    image = tmp_path / "image"
    (image / "usr" / "bin").mkdir(parents=True)
    (image / "usr" / "bin" / "old").write_text("image's\n")
    (image / "bin").symlink_to("usr/bin")
    unpacked = tmp_path / "unpacked"
    (unpacked / "bin").mkdir(parents=True)
    (unpacked / "bin" / "tool").write_text("archive's\n")
    os.link(unpacked / "bin" / "tool", unpacked / "bin" / "same-tool")
    os.chown(unpacked / "bin" / "tool", 7, 8)
    os.chmod(unpacked / "bin", 0o711)
    new = tmp_path / "new"
    new.mkdir()

    LayerWriter(new, (image,)).move_in(unpacked, "/")

    assert sorted(tree(new)) == ["usr", "usr/bin", "usr/bin/same-tool", "usr/bin/tool"]
    tool = (new / "usr" / "bin" / "tool").lstat()
    assert (tool.st_uid, tool.st_gid, tool.st_nlink) == (7, 8, 2)
    assert stat.S_IMODE((new / "usr" / "bin").lstat().st_mode) == 0o711
    assert not (new / "bin").exists()  # the image's link is left as it is


def test_an_archive_moved_in_never_writes_through_a_link_to_the_host(tmp_path: Path) -> None:
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    image = tmp_path / "image"
    (image / "srv").mkdir(parents=True)
    (image / "srv" / "bundled").symlink_to(host_dir)
    unpacked = tmp_path / "unpacked"
    (unpacked / "bundled").mkdir(parents=True)
    (unpacked / "bundled" / "readme.txt").write_text("from the archive\n")
    new = tmp_path / "new"
    new.mkdir()

    LayerWriter(new, (image,)).move_in(unpacked, "/srv")

    assert not any(host_dir.iterdir())
    assert (new / str(host_dir).lstrip("/") / "readme.txt").read_text() == "from the archive\n"


def test_extracted_archives_are_what_tarfile_gives(tmp_path: Path) -> None:
    """move_in takes what tarfile's `data` filter extracted (the same filesystem, renamed in)."""
    archive_path = tmp_path / "a.tar"
    source = tmp_path / "source"
    (source / "d").mkdir(parents=True)
    (source / "d" / "f").write_text("f\n")
    with tarfile.open(archive_path, "w") as archive:
        archive.add(source / "d", arcname="d")
    unpacked = tmp_path / "unpacked"
    with tarfile.open(archive_path) as archive:
        archive.extractall(unpacked, filter="data")
    image = tmp_path / "image"
    image.mkdir()
    new = tmp_path / "new"
    new.mkdir()
    LayerWriter(new, (image,)).move_in(unpacked, "/opt")
    assert (new / "opt" / "d" / "f").read_text() == "f\n"
    assert not any(unpacked.rglob("f"))  # moved, not copied
