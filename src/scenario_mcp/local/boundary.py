"""The local engine's boundary: one engine per data dir, no SandboxError past the seam, and the
checks of arguments every listing shares."""

from __future__ import annotations

import errno
import fcntl
import functools
import inspect
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from ..backend import EnvironmentUnavailableError, InvalidRequestError
from ..conventions import MAX_LIST_LIMIT
from ..models import COLLECTION_PATHS, MetadataKind
from .sandbox import SandboxError


class DataDirLock:
    """One engine per data dir: it alone writes the database and holds the devboxes' state.

    A POSIX record lock, not flock: it belongs to this process, so it goes the instant the process
    dies. (An flock belongs to the open file, which a child being forked (before its exec) shares:
    a server killed then would keep its data dir locked a moment longer, and a restart at once
    would be refused.) Such a lock does not keep out a second engine of this same process, which
    this process's own register does."""

    _held: ClassVar[set[str]] = set()

    def __init__(self, data_dir: Path) -> None:
        path = str((data_dir / "engine.lock").resolve())
        # Checked before the file is opened: closing any descriptor of it would let our lock go.
        if path in self._held:
            raise _in_use(data_dir)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                raise _in_use(data_dir) from None
            raise
        self._held.add(path)
        self.path, self.fd = path, fd

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # releases the lock
            self.fd = -1
            self._held.discard(self.path)


def _in_use(data_dir: Path) -> RuntimeError:
    return RuntimeError(
        f"another scenario-mcp engine is using the data dir {data_dir}; stop it, or give this one "
        "another --data-dir (or SCENARIO_MCP_DATA_DIR)"
    )


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _converting_sandbox_errors(method: F) -> F:
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except SandboxError as exc:
            raise EnvironmentUnavailableError(
                f"the local engine could not make or reach a sandbox: {exc}. Check the devbox with get_devbox "
                "(create a new one if it has failed) and retry; `scenario-mcp setup` checks this machine"
            ) from exc

    return call  # type: ignore[return-value]


def sandbox_errors_as_backend_errors(cls: type) -> None:
    """Every public call of the engine answers a SandboxError that got this far as an
    EnvironmentUnavailableError: the surfaces (MCP, REST) know only BackendError."""
    # Its own calls and those of the *Calls classes it is made of (agents, benchmarks, ...).
    for name in dir(cls):
        member = inspect.getattr_static(cls, name)
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            setattr(cls, name, _converting_sandbox_errors(member))


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequestError(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")
    return limit


def metadata_kind(kind: str) -> MetadataKind:
    # The kind names a table: only the known ones reach SQL.
    for known in COLLECTION_PATHS:
        if kind == known:
            return known
    raise InvalidRequestError(f"unknown kind {kind!r}; use one of {', '.join(COLLECTION_PATHS)}")
