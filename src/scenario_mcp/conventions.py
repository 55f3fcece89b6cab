"""The rules both backends share, each written once: the devbox's home, command timeouts, list
pages, shell names, where object content is served, snapshot notes, and the script that lists a
devbox directory.

Standard library only: the models and the sandbox's spec import it, so it must import neither.
A check answers a problem (a message for the caller) or None; the caller raises its own error.
"""

from __future__ import annotations

import posixpath
import re
from typing import Final

# Every devbox's home and default working directory; file tool paths are relative to it.
HOME: Final = "/home/user"


def under_home(path: str) -> str:
    """A working directory as given: an absolute path as it is, a relative one under HOME."""
    return path if path.startswith("/") else posixpath.join(HOME, path)


# A command's deadline in seconds: this when none is given, and at most MAX_EXEC_TIMEOUT.
# Runloop has no per-command timeout; the remote backend enforces these itself.
DEFAULT_EXEC_TIMEOUT: Final = 120.0
MAX_EXEC_TIMEOUT: Final = 3600

# List pages: the size when none is asked for, and the largest one.
DEFAULT_LIST_LIMIT: Final = 20
MAX_LIST_LIMIT: Final = 5000

# A named shell (commands with the same name run in order, like a terminal).
SHELL_NAME_PATTERN: Final = r"[A-Za-z0-9_.-]{1,64}"
SHELL_NAME: Final = re.compile(SHELL_NAME_PATTERN)

# Where a server that keeps storage objects' content answers their presigned URLs (`PUT` to
# upload, `GET` to download): `{OBJECT_STORAGE_PATH}/{object_id}?...`, without a bearer token.
OBJECT_STORAGE_PATH: Final = "/storage/objects"

# Characters a snapshot's commit message may have.
MAX_COMMIT_MESSAGE: Final = 1000


def exec_timeout(timeout_seconds: float | None) -> float:
    """A command's deadline: the one given, or the default. Check it with `exec_timeout_problem`."""
    return DEFAULT_EXEC_TIMEOUT if timeout_seconds is None else timeout_seconds


def exec_timeout_problem(timeout: float) -> str | None:
    if 0 < timeout <= MAX_EXEC_TIMEOUT:
        return None
    return f"timeout_seconds must be in (0, {MAX_EXEC_TIMEOUT:.0f}], got {timeout}"


# Lists a directory as the devbox sees it (symlinks resolved), refusing one outside the home:
# `sh -c LIST_SCRIPT list PATH`. Prints one name a line, directories with a trailing `/`.
LIST_SCRIPT: Final = r"""
cd /home/user || exit 9
p=$(realpath -e -- "$1" 2>/dev/null) || { echo "no such directory: $1" >&2; exit 2; }
case "$p" in /home/user|/home/user/*) ;; *) echo "resolves to $p, outside /home/user" >&2; exit 3;; esac
[ -d "$p" ] || { echo "$1 is not a directory" >&2; exit 4; }
cd -- "$p" || exit 2
for f in * .[!.]* ..?*; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  if [ -d "$f" ]; then printf '%s/\n' "$f"; else printf '%s\n' "$f"; fi
done
"""


def list_argv(path: str) -> list[str]:
    """The command that lists `path` (relative to HOME; empty is HOME itself)."""
    return ["/bin/sh", "-c", LIST_SCRIPT, "list", path or "."]


def listed_names(output: str) -> list[str]:
    """The names LIST_SCRIPT printed, sorted."""
    return sorted(line for line in output.splitlines() if line)


def list_problem(devbox_id: str, path: str, stderr: str) -> str:
    return f"cannot list {path!r} on devbox {devbox_id}: {stderr.strip()}"
