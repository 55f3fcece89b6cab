"""A sandbox's root seen from the host (`/proc/<init>/root`): paths resolved inside it, users.

Absolute symlinks in an image (`/bin -> /usr/bin`, `/etc/passwd -> /somewhere`) point inside the
image, but the host's kernel would follow them on the host's filesystem. Every path into a root
from the host goes through `resolve`, which follows symlinks as the sandbox itself would, and
never leaves the root.
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path
from typing import Protocol

MAX_SYMLINKS = 40  # as the kernel's


class RootPathError(ValueError):
    """A path that cannot be resolved inside the root (a symlink loop, a file used as a dir)."""


def resolve(root: Path, path: str) -> Path:
    """The host path of `path` inside `root`, every symlink followed inside the root; the last
    component need not exist (nor the ones before it: they are then plain names)."""
    parts = [p for p in posixpath.normpath("/" + path).split("/") if p]
    done: list[str] = []
    followed = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            if done:
                done.pop()
            continue
        if name == ".":
            continue
        candidate = root.joinpath(*done, name)
        try:
            mode = os.lstat(candidate).st_mode
        except FileNotFoundError:
            done.append(name)
            continue
        if stat.S_ISLNK(mode):
            followed += 1
            if followed > MAX_SYMLINKS:
                raise RootPathError(f"too many symlinks resolving {path!r}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        if parts and not stat.S_ISDIR(mode):
            raise RootPathError(f"{'/' + '/'.join([*done, name])} is not a directory (resolving {path!r})")
        done.append(name)
    return root.joinpath(*done)


class TextReader(Protocol):
    """A root read another way than through a directory (layered_view.LayeredView)."""

    def read_text(self, path: str) -> str: ...


def _read_db(root: Path | TextReader, name: str) -> list[list[str]]:
    try:
        if isinstance(root, Path):
            text = resolve(root, f"/etc/{name}").read_text(errors="replace")
        else:
            text = root.read_text(f"/etc/{name}")
    except (OSError, RootPathError):
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def passwd_entries(root: Path) -> list[list[str]]:
    """The root's /etc/passwd, each entry split at its colons."""
    return [e for e in _read_db(root, "passwd") if len(e) >= 6]


def user_ids(root: Path | TextReader, spec: str) -> tuple[int, int, str]:
    """uid, gid and home of a Docker `USER`/`--chown` spec (`name`, `uid`, `name:group`, `1:2`),
    names looked up in the root's /etc/passwd and /etc/group."""
    user, _, group = spec.partition(":")
    passwd = _read_db(root, "passwd")
    entry = next((e for e in passwd if len(e) >= 6 and (e[0] == user or e[2] == user)), None)
    if entry is not None:
        uid, gid, home = int(entry[2]), int(entry[3]), entry[5]
    elif user.isdigit():
        uid, gid, home = int(user), 0, "/"  # as Docker: a uid it cannot name runs in group 0
    else:
        raise RootPathError(f"user {user!r} is not in the image's /etc/passwd")
    if group:
        found = next((e for e in _read_db(root, "group") if len(e) >= 3 and group in (e[0], e[2])), None)
        if found is not None:
            gid = int(found[2])
        elif group.isdigit():
            gid = int(group)
        else:
            raise RootPathError(f"group {group!r} is not in the image's /etc/group")
    return uid, gid, home
