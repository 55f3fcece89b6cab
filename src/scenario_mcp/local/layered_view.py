"""A stack of layers read from the host as overlayfs merges them, without mounting it.

The engine mounts layers with `userxattr`, so overlayfs's marks are the ones oci_layer.py writes
and a step's upper dir holds: a whiteout is a 0/0 character device (or, where mknod is not
allowed, a zero-size file with `user.overlay.whiteout`), an opaque directory has
`user.overlay.opaque=y` (`x` only says it holds xattr whiteouts). A name is the topmost layer's
entry for it; a directory merges with the directories of that name below it, down to a whiteout,
a non-directory or an opaque one.

Nothing is followed on the host: symlinks are read and followed inside the image, as a sandbox
on it would (an absolute target starts again at the image's root).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .sandbox.rootfs import MAX_SYMLINKS, RootPathError

__all__ = ["OPAQUE_XATTR", "WHITEOUT_XATTR", "Entry", "Found", "LayeredView", "is_opaque", "is_whiteout"]

OPAQUE_XATTR = "user.overlay.opaque"  # "y": the directories below are hidden; "x": holds xattr whiteouts
WHITEOUT_XATTR = "user.overlay.whiteout"  # on a zero-size file: a whiteout (where mknod is not allowed)

# A name in a merged directory: its topmost entry's stat and host path, and for a directory, the
# host directories it merges (topmost first).
Entry = tuple[os.stat_result, str, list[str]]


@dataclass(frozen=True)
class Found:
    path: str  # in the image, every symlink resolved
    host: str  # the entry in the topmost layer that has it
    st: os.stat_result


def is_whiteout(path: str, st: os.stat_result) -> bool:
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        with contextlib.suppress(OSError):
            os.getxattr(path, WHITEOUT_XATTR, follow_symlinks=False)
            return True
    return False


def is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


class LayeredView:
    """An image's files as overlayfs shows them, read through its layers (topmost first).

    `remember=True` keeps what each lookup found (`seen`), for layers nobody writes to; a view
    whose top layer is being written must look again each time."""

    def __init__(self, layers: Sequence[Path], *, remember: bool = True) -> None:
        self.layers = [str(layer) for layer in layers]
        self._remember = remember
        self._children: dict[str, Entry | None] = {}

    @property
    def seen(self) -> Mapping[str, Entry | None]:
        """Every path looked at so far (`etc`, `etc/ssl`, ...), and what was found there."""
        return self._children

    def child(self, parent: str, dirs: list[str], name: str) -> Entry | None:
        """`name` in the merged directory `parent` (a path in the image, "" for its root) made
        of `dirs`; None where it is not there."""
        key = f"{parent}/{name}"
        if key in self._children:
            return self._children[key]
        top: tuple[os.stat_result, str] | None = None
        merged: list[str] = []
        for directory in dirs:
            path = f"{directory}/{name}"
            try:
                st = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if is_whiteout(path, st) or (top is not None and not stat.S_ISDIR(st.st_mode)):
                break
            if top is None:
                top = (st, path)
                if not stat.S_ISDIR(st.st_mode):
                    break
            merged.append(path)
            if is_opaque(path):
                break
        found = None if top is None else (top[0], top[1], merged)
        if self._remember:
            self._children[key] = found
        return found

    def walk(self, path: str) -> list[tuple[str, Entry | None]]:
        """`path` in the image, every symlink followed inside it: each name on the way, with what
        the image has there (None from where it has nothing: plain names). RootPathError where a
        non-directory is in the way, or links loop."""
        parts = [p for p in path.split("/") if p]
        done: list[tuple[str, Entry | None]] = []
        followed = 0
        while parts:
            name = parts.pop(0)
            if name in (".", ".."):
                if name == ".." and done:
                    done.pop()
                continue
            parent = "/".join(n for n, _ in done)
            dirs = self.layers if not done else (done[-1][1][2] if done[-1][1] else [])
            # At the root even with no layer at all: what an empty image was looked at for is
            # remembered too (`seen`: a layer put on it later that makes the path changes it).
            found = self.child(parent, dirs, name) if dirs or not done else None
            if found is not None and stat.S_ISLNK(found[0].st_mode):
                followed += 1
                if followed > MAX_SYMLINKS:
                    raise RootPathError(f"too many symlinks resolving {path!r}")
                target = os.readlink(found[1])
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p] + parts
                continue
            if found is not None and parts and not stat.S_ISDIR(found[0].st_mode):
                raise RootPathError(f"/{'/'.join([parent, name]).lstrip('/')} is not a directory (resolving {path!r})")
            done.append((name, found))
        return done

    def lookup(self, path: str) -> Found | None:
        """`path` in the image, every symlink followed inside it; None where it has nothing there."""
        try:
            done = self.walk(path)
        except RootPathError:
            return None
        if not done or any(entry is None for _, entry in done):
            return None
        entry = done[-1][1]
        assert entry is not None
        return Found("/" + "/".join(name for name, _ in done), entry[1], entry[0])

    def directory_for(self, path: str) -> str | None:
        """Where a file in directory `path` goes: the directory's real path (the part that exists
        resolved through symlinks, the rest as named), or None if a non-directory is in the way."""
        real = ""
        for name in (p for p in path.split("/") if p):
            found = self.lookup(f"{real}/{name}")
            if found is None:
                real = f"{real}/{name}"
            elif stat.S_ISDIR(found.st.st_mode):
                real = found.path
            else:
                return None
        return real or "/"

    def read_text(self, path: str) -> str:
        """A file's text (`path` resolved in the image); OSError where there is none."""
        found = self.lookup(path)
        if found is None or not stat.S_ISREG(found.st.st_mode):
            raise FileNotFoundError(f"{path} is not a file in the image")
        return Path(found.host).read_text(errors="replace")
