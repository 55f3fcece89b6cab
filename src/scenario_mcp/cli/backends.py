"""The backend a command opens: the local engine, or a remote Runloop-compatible API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..backend import Backend
    from ..local.trust import TrustSettings


@asynccontextmanager
async def open_backend(
    kind: str, data_dir: Path, trust: TrustSettings | None = None, retain_seconds: float | None = None
) -> AsyncIterator[Backend]:
    """The engine behind a surface: the local one, or a remote Runloop-compatible API."""
    if kind == "remote":
        from ..remote import RemoteBackend

        async with RemoteBackend.from_env() as remote:
            yield remote
    else:
        from ..local.engine import LocalBackend
        from ..local.retention import DEFAULT_RETAIN_SECONDS

        retain = DEFAULT_RETAIN_SECONDS if retain_seconds is None else retain_seconds
        async with LocalBackend(data_dir, trust=trust, retain_seconds=retain) as local:
            yield local
