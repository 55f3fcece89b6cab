"""Directories the engine is done with (an ended devbox's disk, a scoring's sandboxes): moved
aside at once, removed in the background, many at a time, by one `rm -rf`.

Removed file by file from the server's worker threads, they took about a quarter of the server's
samples under load (py-spy, 32 runs at a time), and the GIL from its event loop meanwhile; `rm`
does the same unlinks in C, in a process of its own below the server in CPU priority. A directory
moved aside is gone for every caller at once (one rename); what a server that dies first leaves
in the trash goes at its next start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import uuid
from pathlib import Path

import anyio
import anyio.to_thread

from . import helper_processes
from .sandbox.spec import HOST_TOOLS_PATH

log = logging.getLogger(__name__)

BATCH_DELAY = 0.25  # seconds: what is put aside meanwhile goes in the same `rm`
BATCH_SIZE = 500  # directories per `rm` at most (its command line stays short)


class Trash:
    """A directory, on the data dir's file system, that directories are renamed into and emptied
    from in the background (`empty_forever`, started by the engine)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._elsewhere: list[Path] = []  # could not be moved here (another file system): removed where they are
        self._filled: anyio.Event | None = None

    def put(self, *paths: Path) -> None:
        """Move `paths` (those that exist) into the trash: one rename each, no waiting."""
        for path in paths:
            try:
                path.rename(self.directory / uuid.uuid4().hex)
            except OSError as exc:
                if not os.path.lexists(path):
                    continue  # gone already, or never made
                log.debug("cannot move %s into the trash (%s): it is removed where it is", path, exc)
                self._elsewhere.append(path)
            self._wake()

    def _wake(self) -> None:
        if self._filled is not None:
            self._filled.set()

    async def empty_forever(self) -> None:
        """Empty the trash (what a previous server left first), then each time something is put
        in, after a short wait that lets more come along."""
        while True:
            self._filled = anyio.Event()
            try:
                await self.empty()
            except Exception:  # never the engine's end: what is left goes at the next round
                log.exception("emptying the trash at %s failed", self.directory)
            await self._filled.wait()
            await anyio.sleep(BATCH_DELAY)

    async def empty(self) -> None:
        """Remove everything in the trash now."""
        elsewhere, self._elsewhere = self._elsewhere, []
        try:
            entries = sorted(self.directory.iterdir())
        except FileNotFoundError:
            entries = []
        for start in range(0, len(entries), BATCH_SIZE):
            batch = [str(entry) for entry in entries[start : start + BATCH_SIZE]]
            # --one-file-system: nothing mounted inside (there should be nothing) is entered.
            with contextlib.suppress(OSError):  # no `rm` here: the slow way below
                await helper_processes.run(
                    ["rm", "-rf", "--one-file-system", "--", *batch], env={"PATH": HOST_TOOLS_PATH, "LANG": "C.UTF-8"}
                )
        # What `rm` could not remove (an unprivileged server's mode-000 directory), and what was
        # never moved here, the slow way.
        left = [entry for entry in entries if os.path.lexists(entry)] + elsewhere
        if left:
            await anyio.to_thread.run_sync(remove_trees, *left)


def remove_trees(*paths: Path) -> None:
    """Remove directories whatever their modes."""
    for path in paths:
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            continue
        except OSError:
            # Not the server's to enter or change (overlayfs leaves a mode-000 `work/work`; a
            # devbox may chmod its files): open everything up, then remove what is left.
            _open_up(path)
            shutil.rmtree(path, ignore_errors=True)


def _open_up(top: Path) -> None:
    """`chmod -R u+rwx`, each directory before it is read."""
    stack = [str(top)]
    while stack:
        directory = stack.pop()
        with contextlib.suppress(OSError):
            os.chmod(directory, stat.S_IMODE(os.lstat(directory).st_mode) | 0o700)
            with os.scandir(directory) as entries:
                stack.extend(entry.path for entry in entries if entry.is_dir(follow_symlinks=False))
