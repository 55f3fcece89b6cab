"""A stack of layers read as overlayfs merges them: the topmost entry wins, a whiteout or a
non-directory hides what is below, an opaque directory merges with nothing below it, and
symlinks are followed inside the image."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from scenario_mcp.local.layered_view import OPAQUE_XATTR, LayeredView


def layers(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Three layers, topmost first."""
    top, middle, bottom = (tmp_path / name for name in ("top", "middle", "bottom"))
    for layer in (top, middle, bottom):
        layer.mkdir()
    (bottom / "etc").mkdir()
    (bottom / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (bottom / "etc" / "gone").write_text("whited out above\n")
    (bottom / "opaque").mkdir()
    (bottom / "opaque" / "below").write_text("hidden\n")
    (bottom / "file-then-dir").write_text("a file below\n")
    (middle / "etc").mkdir()
    os.mknod(middle / "etc" / "gone", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    (middle / "etc" / "hostname").write_text("middle\n")
    (middle / "opaque").mkdir()
    os.setxattr(middle / "opaque", OPAQUE_XATTR, b"y")
    (middle / "opaque" / "own").write_text("mine\n")
    (top / "etc").mkdir()
    (top / "etc" / "hostname").write_text("top\n")
    (top / "link").symlink_to("/etc")  # absolute: the image's /etc, never the host's
    return top, middle, bottom


def test_an_image_of_no_layers_remembers_what_it_was_looked_at_for() -> None:
    view = LayeredView([])
    assert view.lookup("/etc/ssl/certs/ca-certificates.crt") is None
    assert dict(view.seen) == {"/etc": None}


def test_the_topmost_entry_wins_and_directories_merge(tmp_path: Path) -> None:
    top, middle, bottom = layers(tmp_path)
    view = LayeredView((top, middle, bottom))
    assert view.read_text("/etc/hostname") == "top\n"
    assert view.read_text("/etc/passwd").startswith("root:")
    found = view.lookup("/etc/passwd")
    assert found is not None and found.host == str(bottom / "etc" / "passwd")


def test_whiteouts_and_opaque_directories_hide_what_is_below(tmp_path: Path) -> None:
    view = LayeredView(layers(tmp_path))
    assert view.lookup("/etc/gone") is None
    assert view.lookup("/opaque/own") is not None
    assert view.lookup("/opaque/below") is None


def test_symlinks_are_followed_inside_the_image(tmp_path: Path) -> None:
    view = LayeredView(layers(tmp_path))
    found = view.lookup("/link/hostname")
    assert found is not None and found.path == "/etc/hostname"
    assert view.read_text("/link/passwd").startswith("root:")
    assert view.directory_for("/link/new/dir") == "/etc/new/dir"
    assert view.directory_for("/file-then-dir/x") is None  # a file is in the way
