"""A new layer written from the host over a stack of layers, as writes through their overlayfs
mount would make it, with no mount and no sandbox: what a build's COPY and ADD need.

Every path is resolved in the merged view of the new layer over the stack (layered_view.py):
symlinks are followed inside the image, never on the host, so an image's `/bin -> /usr/bin` or a
hostile `/srv -> /etc` leads where it leads in the image. A directory the path goes through that
a lower layer has is *copied up* as overlayfs copies it: made in the new layer with its mode,
owner, times and xattrs (not overlayfs's own marks), so the layer holds what a `docker build`
layer would. Nothing is ever written outside the new layer's tree, which only this writer
touches until it is frozen.

Whiteouts are never needed: nothing is removed, and a name written in the new layer hides the
names below it. A directory made where a lower layer has a whiteout merges with nothing below
that whiteout, as overlayfs stops its lookup there too.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .layered_view import LayeredView

__all__ = ["Directory", "LayerWriter"]

# xattrs a copy-up leaves behind: overlayfs's own marks (the engine mounts with `userxattr`) and
# the trusted namespace, which a sandbox's overlayfs (in a user namespace) cannot read.
_NOT_COPIED = ("user.overlay.", "trusted.")


@dataclass(frozen=True)
class Directory:
    """A directory of the image, resolved and made in the new layer (LayerWriter.directory)."""

    path: str  # in the image, every symlink resolved
    host: Path  # in the new layer
    merged: list[str]  # the host directories it merges, the new layer's first


class LayerWriter:
    """Writes into `tree` (an empty directory, the new layer) over `layers` (topmost first)."""

    def __init__(self, tree: Path, layers: Sequence[Path]) -> None:
        self.tree = tree
        # Not remembered: the new layer changes under it as it is written.
        self.view = LayeredView([tree, *layers], remember=False)

    def resolve(self, path: str) -> Path:
        """The host path in the new layer of `path` in the image, every symlink followed inside
        the image (the new layer's own too). The directories on the way, and the last component
        if it is one, are copied up; the rest need not exist (they are then plain names, for the
        caller to make). RootPathError where a non-directory is in the way or links loop."""
        return self._resolve(path)[0]

    def directory(self, path: str) -> Directory:
        """`path` resolved as `resolve` does, and made a directory in the new layer where it is none
        yet, for its entries to be resolved one name at a time (resolve_in)."""
        host, real, merged = self._resolve(path)
        host.mkdir(parents=True, exist_ok=True)
        return Directory(real, host, merged if merged and merged[0] == str(host) else [str(host), *merged])

    def resolve_in(self, directory: Directory, name: str) -> Path:
        """`resolve` of `name` in `directory`, with one lookup, not one for each component of its
        path: where the image has a symlink or a directory there, the whole way."""
        found = self.view.child(directory.path, directory.merged, name)
        if found is not None and (stat.S_ISLNK(found[0].st_mode) or stat.S_ISDIR(found[0].st_mode)):
            return self.resolve(posixpath.join(directory.path, name))
        return directory.host / name

    def _resolve(self, path: str) -> tuple[Path, str, list[str]]:
        """resolve's host path, the image path it resolves to, and the host directories the last
        component merges (the new layer's first) where it is a directory the image has."""
        done = self.view.walk(posixpath.normpath("/" + path))
        here = self.tree
        merged: list[str] = []
        for name, entry in done:
            here = here / name
            merged = entry[2] if entry is not None else []
            if merged and merged[0] != str(here):  # a directory only a lower layer has
                _copy_up(merged[0], here)
                merged = [str(here), *merged]
        return here, "/" + "/".join(name for name, _ in done), merged

    def move_in(self, tree: Path, target: str) -> None:
        """Move the entries of `tree` (a directory on the same filesystem, an extracted archive)
        to `target` in the image as they are (owners, modes, times, hard links), each name
        resolved in the image: its directories merge with the image's, taking their attributes."""
        dest = self.resolve(target)
        dest.mkdir(parents=True, exist_ok=True)
        with os.scandir(tree) as found:
            entries = sorted(found, key=lambda entry: entry.name)
        for entry in entries:
            inner = posixpath.join(target, entry.name)
            if entry.is_dir(follow_symlinks=False):
                self.move_in(Path(entry.path), inner)
                _copy_attributes(entry.path, self.resolve(inner))
            else:
                # A link or file is put where it is named (replacing what is there), not followed.
                os.replace(entry.path, dest / entry.name)


def _copy_up(lower: str, upper: Path) -> None:
    """Make `upper` the directory `lower` is, as overlayfs's copy-up does."""
    upper.mkdir()
    _copy_attributes(lower, upper)


def _copy_attributes(source: str, dest: Path) -> None:
    """A directory's owner, mode, xattrs and times onto another (never through a symlink)."""
    st = os.lstat(source)
    with contextlib.suppress(PermissionError):  # unprivileged: every id in a layer is ours anyway
        os.lchown(dest, st.st_uid, st.st_gid)
    os.chmod(dest, stat.S_IMODE(st.st_mode))
    with contextlib.suppress(OSError):  # a filesystem without xattrs has none to copy
        for name in os.listxattr(source, follow_symlinks=False):
            if name.startswith(_NOT_COPIED):
                continue
            with contextlib.suppress(OSError):  # one the kernel will not let us set
                os.setxattr(dest, name, os.getxattr(source, name, follow_symlinks=False), follow_symlinks=False)
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
