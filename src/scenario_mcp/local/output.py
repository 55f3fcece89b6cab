"""Bounded execution output: a capped head on disk, a capped tail in memory, a count of the rest.

Endless output costs neither memory nor disk beyond the caps; the log says how much was dropped.
Offsets are positions in the whole logical stream, so a reader can stream from where it stopped.
"""

from __future__ import annotations

import contextlib
import json
from collections import deque
from pathlib import Path
from typing import BinaryIO

from .secrets import Redactor

HEAD_CAP = 1024 * 1024  # kept on disk from the start of the stream
FIRST_CAP = 64 * 1024  # also kept in memory: what an execution result shows inline
TAIL_CAP = 256 * 1024  # kept from the end of the stream


class OutputLog:
    def __init__(
        self, path: Path, *, head_cap: int = HEAD_CAP, tail_cap: int = TAIL_CAP, redactor: Redactor | None = None
    ) -> None:
        self.path = path
        self.redactor = redactor if redactor else None  # secret values never reach the log (secrets.py)
        self.head_cap = head_cap
        self.tail_cap = tail_cap
        self.total = 0
        self._head: BinaryIO | None = None  # the file is made when the first byte arrives
        self._head_len = 0
        self._first = bytearray()  # the first FIRST_CAP bytes, for inline results without a read
        self._tail: deque[bytes] = deque()
        self._tail_len = 0
        self.closed = False

    @property
    def dropped(self) -> int:
        return self.total - self._head_len - self._tail_len

    def write(self, data: bytes) -> None:
        if self.redactor is not None:
            data = self.redactor.feed(data)
        self._append(data)

    def _append(self, data: bytes) -> None:
        self.total += len(data)
        if len(self._first) < FIRST_CAP:
            self._first += data[: FIRST_CAP - len(self._first)]
        room = self.head_cap - self._head_len
        if room > 0:
            try:
                if self._head is None:
                    self._head = _create(self.path)
                self._head.write(data[:room])
            except OSError:
                # The data dir's disk is full: the head ends here, the rest is counted and its
                # tail kept in memory, and the command goes on.
                self.head_cap = self._head_len
            else:
                self._head_len += min(room, len(data))
                data = data[room:]
        if data:
            self._tail.append(data)
            self._tail_len += len(data)
            while self._tail_len - len(self._tail[0]) >= self.tail_cap:
                self._tail_len -= len(self._tail.popleft())
            if self._tail_len > self.tail_cap:  # trim the oldest chunk's front
                excess = self._tail_len - self.tail_cap
                self._tail[0] = self._tail[0][excess:]
                self._tail_len -= excess

    def read(self, offset: int, limit: int = 64 * 1024) -> tuple[bytes, int]:
        """Bytes from `offset` (a position in the whole stream), and the offset after them.

        Dropped bytes cannot be read: an offset inside the dropped span resumes at the tail.
        """
        offset = max(0, offset)
        if offset < self._head_len:
            if self._head is not None and not self.closed:
                self._head.flush()
            with open(self.path, "rb") as f:
                f.seek(offset)
                data = f.read(min(limit, self._head_len - offset))
            return data, offset + len(data)
        tail_start = self.total - self._tail_len
        offset = max(offset, tail_start)
        tail = b"".join(self._tail)
        data = tail[offset - tail_start : offset - tail_start + limit]
        return data, offset + len(data)

    def head(self, cap: int) -> tuple[str, bool]:
        """The first `cap` bytes as text, and whether the stream was longer."""
        data = bytes(self._first[:cap]) if cap <= FIRST_CAP else self.read(0, cap)[0]
        return data.decode("utf-8", errors="replace"), self.total > cap

    def close(self) -> None:
        """Persist the tail beside the head so the whole kept log survives a restart."""
        if self.closed:
            return
        if self.redactor is not None:  # what was held back to see whether a value began there
            self._append(self.redactor.flush())
        self.closed = True
        # A full disk loses what was not yet on it (the command's result still says it all).
        with contextlib.suppress(OSError):
            if self._head is not None:
                self._head.close()
        if self._tail_len:  # only a long stream has a tail, and an account of what was dropped
            with contextlib.suppress(OSError):
                self.path.with_suffix(self.path.suffix + ".tail").write_bytes(b"".join(self._tail))
                self.path.with_suffix(self.path.suffix + ".json").write_text(
                    json.dumps(
                        {"total": self.total, "head": self._head_len, "tail": self._tail_len, "dropped": self.dropped}
                    )
                )

    def text(self) -> str:
        """The kept log as text, with a marker where bytes were dropped."""
        head, _ = self.read(0, self._head_len)
        parts = [head.decode("utf-8", errors="replace")]
        if self.dropped:
            parts.append(f"\n[... {self.dropped} bytes of output dropped ...]\n")
        if self._tail_len:
            parts.append(b"".join(self._tail).decode("utf-8", errors="replace"))
        return "".join(parts)


def _create(path: Path) -> BinaryIO:
    try:
        return open(path, "wb")  # closed by OutputLog.close()
    except FileNotFoundError:  # the first output of its directory
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "wb")
