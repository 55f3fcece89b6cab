"""The host directories an MCP caller may name (a Dockerfile's build context), and packing one
into the archive a blueprint build reads.

A caller names a directory on the server's machine; the server reads it. So only directories
under those the server was started with (`--allow-dir`; over stdio, by default, the directory it
was started in; over HTTP, none) may be named: a remote caller cannot read the host's files into
a build and then out of a devbox.
"""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ..backend import InvalidRequestError

MAX_CONTEXT_BYTES = 512 * 1024 * 1024  # of the packed archive


@dataclass(frozen=True)
class HostDirs:
    allowed: tuple[Path, ...] = ()

    @classmethod
    def of(cls, dirs: list[str] | tuple[str, ...]) -> HostDirs:
        return cls(tuple(Path(os.path.realpath(d)) for d in dirs))

    def resolve(self, path: str, *, field: str = "build_context_path", existing: bool = True) -> Path:
        """The real directory `path` names, when it is under an allowed one; a clear error if not.
        `existing=False`: a directory to write, which may not exist yet."""
        if not self.allowed:
            raise InvalidRequestError(
                "this server reads no directory of its host (start it with --allow-dir DIR to allow "
                f"{field} under DIR)" + ("; upload the context as an object instead" if existing else "")
            )
        if not os.path.isabs(path):
            raise InvalidRequestError(f"{field} {path!r} is relative; give an absolute directory path")
        real = Path(os.path.realpath(path))
        if not any(real == root or real.is_relative_to(root) for root in self.allowed):
            roots = ", ".join(str(root) for root in self.allowed)
            raise InvalidRequestError(
                f"{field} {path} is not under a directory this server allows ({roots}); "
                "move it there, or restart the server with --allow-dir"
            )
        if existing and not real.is_dir():
            raise InvalidRequestError(f"{field} {path} is not a directory")
        return real


def pack_directory(directory: Path, limit: int = MAX_CONTEXT_BYTES) -> bytes:
    """A gzip'd tar of the directory's contents (names relative to it), symlinks kept as links.
    Blocking: run it in a worker thread."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for entry in sorted(directory.iterdir()):
            tar.add(entry, arcname=entry.name, recursive=True)
            if buffer.tell() > limit:
                raise InvalidRequestError(
                    f"the build context {directory} packs to more than {limit >> 20} MiB; list what the "
                    "build does not need in its .dockerignore, or give a smaller directory"
                )
    return buffer.getvalue()
