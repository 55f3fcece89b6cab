"""A sandbox's root as a closed list of typed setup operations (as bubblewrap's SetupOp list).

The server plans (spec.py); the sandbox's init applies the plan inside its fresh mount namespace,
before it pivots into the root. Plans cross the spawner's pipe as JSON: each operation is a dict
with its `op` name and its fields, and nothing else decodes. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, ClassVar

from . import libc


@dataclass(frozen=True)
class Mount:
    """A filesystem mount; `options` as for `mount -o`: flags (ro, nosuid, ...) and fs data."""

    source: str
    target: str
    fstype: str
    options: str = ""
    op: ClassVar[str] = "mount"

    def flags_and_data(self) -> tuple[int, str]:
        flags, data = 0, []
        for option in self.options.split(",") if self.options else []:
            if option in libc.MOUNT_FLAGS:
                flags |= libc.MOUNT_FLAGS[option]
            else:
                data.append(option)
        return flags, ",".join(data)

    def apply(self) -> None:
        flags, data = self.flags_and_data()
        libc.mount(self.source, self.target, self.fstype, flags, data or None)


@dataclass(frozen=True)
class Bind:
    source: str
    target: str
    op: ClassVar[str] = "bind"

    def apply(self) -> None:
        libc.mount(self.source, self.target, None, libc.MS_BIND, None)


@dataclass(frozen=True)
class Move:
    """A mount (with all mounted below it) moved to another place: a build step's /proc, /dev and
    /run, made ahead of its request (init.py), into its root once that is mounted."""

    source: str
    target: str
    op: ClassVar[str] = "move"

    def apply(self) -> None:
        libc.mount(self.source, self.target, None, libc.MS_MOVE, None)


@dataclass(frozen=True)
class File:
    """An empty file: the target of a bind mount."""

    path: str
    op: ClassVar[str] = "file"

    def apply(self) -> None:
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


@dataclass(frozen=True)
class Dir:
    path: str
    op: ClassVar[str] = "dir"

    def apply(self) -> None:
        os.mkdir(self.path, 0o755)


@dataclass(frozen=True)
class Symlink:
    target: str
    path: str
    op: ClassVar[str] = "symlink"

    def apply(self) -> None:
        os.symlink(self.target, self.path)


@dataclass(frozen=True)
class ReadOnlyLayer:
    """A layer shown read-only at `path` inside `root` (a mounted agent or object): an overlay of
    the layer alone, which has no upper directory and so can never be written, nor remounted
    writable. The mount point is made one directory at a time without following a symlink (a
    snapshot's `/home/user/agent -> /` cannot turn it into a mount over the host's tree), and the
    mount is made on that very directory (through its descriptor)."""

    root: str
    path: str  # absolute inside root, normalised, no `..`
    lowerdir: str  # the layer, then an empty directory (an overlay without upper needs two)
    op: ClassVar[str] = "ro_layer"

    def apply(self) -> None:
        fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for name in self.path.strip("/").split("/"):
                if name in ("", ".", ".."):
                    raise libc.SpawnError(f"mount path {self.path!r} is not a plain absolute path")
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o755, dir_fd=fd)
                try:
                    inner = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                except OSError as exc:
                    raise libc.SpawnError(
                        f"mount path {self.path!r}: {name!r} is not a directory (a symlink?)"
                    ) from exc
                os.close(fd)
                fd = inner
            flags = libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NODEV
            libc.mount("overlay", f"/proc/self/fd/{fd}", "overlay", flags, f"userxattr,lowerdir={self.lowerdir}")
        finally:
            os.close(fd)


SetupOp = Mount | Bind | Move | File | Dir | Symlink | ReadOnlyLayer
OPERATIONS: dict[str, type[SetupOp]] = {
    kind.op: kind for kind in (Mount, Bind, Move, File, Dir, Symlink, ReadOnlyLayer)
}


def encode(plan: list[SetupOp]) -> list[dict[str, Any]]:
    # vars(), not dataclasses.asdict: the fields are plain strings, and asdict's deep copy costs
    # a tenth of a millisecond per plan, on the path of every start.
    return [{"op": step.op, **vars(step)} for step in plan]


def starter_word(operation: SetupOp) -> str:
    """An operation as the C step starter reads it (step_starter.c): its letter, then its fields,
    separated by \\x1f. Not a read-only layer's (no build step has one)."""
    match operation:
        case Mount():
            flags, data = operation.flags_and_data()
            fields = ["M", operation.source, operation.target, operation.fstype, str(flags), data]
        case Bind():
            fields = ["B", operation.source, operation.target]
        case Move():
            fields = ["V", operation.source, operation.target]
        case File():
            fields = ["F", operation.path]
        case Dir():
            fields = ["D", operation.path]
        case Symlink():
            fields = ["L", operation.target, operation.path]
        case _:
            raise libc.SpawnError(f"the step starter has no {operation.op!r} operation")
    if any("\x1f" in field or "\0" in field for field in fields):
        raise libc.SpawnError(f"a setup operation's field holds a separator: {fields!r}")
    return "\x1f".join(fields)


def decode(data: list[dict[str, Any]]) -> list[SetupOp]:
    plan: list[SetupOp] = []
    for item in data:
        fields = dict(item)
        kind = OPERATIONS.get(fields.pop("op", None))
        if kind is None:
            raise libc.SpawnError(f"unknown setup operation {item!r}")
        plan.append(kind(**fields))
    return plan
