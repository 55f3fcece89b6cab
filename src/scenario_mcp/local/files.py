"""Devbox files on the local engine: text read, written and listed under the devbox's home
directory; bytes uploaded and downloaded anywhere in the devbox.

Each operation is a small shell script run inside the devbox (its mount namespace, as its root),
so a path is resolved as the devbox sees it, symlinks included: an absolute symlink leads to the
devbox's own file of that name, never the host's. The text tools refuse a path that leads outside
/home/user (the agent's side of a scenario); uploads and downloads take any absolute path (Harbor
writes /tests and /solution and reads /logs), which reaches nothing a command in the devbox could
not reach. The scripts need only sh, cat and mkdir (and chown, in a devbox whose user is not
root), so they work on a minimal image too.

What a write or an upload makes belongs to the devbox's user (launch_parameters.user_parameters,
else the image's USER), as on Runloop: the file, and each directory it had to create. The scripts
run as the devbox's root and then hand those over with `chown -h` (a symlink planted at the path
is what changes hands, never what it points to).
"""

from __future__ import annotations

import builtins
import posixpath

from ..backend import InvalidRequestError
from ..conventions import HOME, list_argv, list_problem, listed_names
from .devboxes import Devboxes

_READ_SCRIPT = r"""
cd /home/user || exit 9
p=$(realpath -e -- "$1" 2>/dev/null) || { echo "no such file: $1" >&2; exit 2; }
case "$p" in /home/user/*) ;; *) echo "resolves to $p, outside /home/user" >&2; exit 3;; esac
[ -f "$p" ] || { echo "$1 is not a regular file" >&2; exit 4; }
exec cat -- "$p"
"""

# Shared by the writing scripts: `refuse CODE MESSAGE`, and `put FILE OWNER`, which writes stdin
# to FILE, making its missing parent directories, and gives what it made to OWNER (uid:gid) unless
# OWNER is empty. On refusal the contents are still read (and dropped), so the writer never hits a
# broken pipe.
_PUT = r"""
refuse() { echo "$2" >&2; cat > /dev/null; exit "$1"; }
put() {
    f=$1 o=$2 d=${1%/*}
    set --
    p=$d
    while [ -n "$p" ] && [ ! -e "$p" ] && [ ! -L "$p" ]; do set -- "$p" "$@"; p=${p%/*}; done
    [ -z "$d" ] || [ -d "$d" ] || mkdir -p -- "$d" || refuse 5 "cannot create the parent directory of $f"
    cat > "$f" || refuse 6 "cannot write $f"
    [ -z "$o" ] || chown -h -- "$o" "$@" "$f" || { echo "wrote $f but cannot give it to $o" >&2; exit 7; }
}
"""

_WRITE_SCRIPT = (
    _PUT
    + r"""
cd /home/user || refuse 9 "no home directory"
t=$(realpath -m -- "$1") || refuse 2 "cannot resolve $1"
case "$t" in /home/user/*) ;; *) refuse 3 "resolves to $t, outside /home/user";; esac
[ -d "$t" ] && refuse 4 "$1 is a directory"
put "$t" "$2"
"""
)

_DOWNLOAD_SCRIPT = r"""
[ -e "$1" ] || { echo "no such file: $1" >&2; exit 2; }
[ -d "$1" ] && { echo "$1 is a directory" >&2; exit 4; }
[ -f "$1" ] || { echo "$1 is not a regular file" >&2; exit 4; }
exec cat -- "$1"
"""

_UPLOAD_SCRIPT = (
    _PUT
    + r"""
[ -d "$1" ] && refuse 4 "$1 is a directory"
put "$1" "$2"
"""
)


def devbox_path(path: str) -> str:
    """An upload or download path as an absolute path in the devbox: relative ones are relative to
    /home/user, as Runloop's are."""
    if not path or "\x00" in path:
        raise InvalidRequestError("path must be a non-empty path without NUL bytes")
    absolute = posixpath.normpath(posixpath.join(HOME, path))
    if absolute.startswith("//"):
        absolute = "/" + absolute.lstrip("/")
    if absolute == "/":
        raise InvalidRequestError(f"path {path!r} names the root directory, not a file")
    return absolute


def home_relative(file_path: str) -> str:
    """Validate a file tool path: relative to /home/user (or absolute inside it), no escape."""
    if not file_path or "\x00" in file_path:
        raise InvalidRequestError("file_path must be a non-empty path without NUL bytes")
    joined = posixpath.normpath(posixpath.join(HOME, file_path))
    if joined != HOME and not joined.startswith(HOME + "/"):
        raise InvalidRequestError(
            f"file_path {file_path!r} escapes the devbox home {HOME}; give a path relative to {HOME} "
            "(e.g. `src/main.py`) or an absolute path inside it"
        )
    if joined == HOME:
        raise InvalidRequestError(f"file_path {file_path!r} names the home directory itself, not a file")
    return joined


class Files:
    def __init__(self, devboxes: Devboxes) -> None:
        self.devboxes = devboxes

    async def _owner(self, devbox_id: str) -> str:
        """`uid:gid` of the devbox's user, or "" for root (what the scripts write is root's already)."""
        user = (await self.devboxes.internal(devbox_id)).get("user")
        return f"{user['uid']}:{user['gid']}" if user else ""

    async def read_bytes(self, devbox_id: str, file_path: str) -> bytes:
        home_relative(file_path)
        sandbox = await self.devboxes.sandbox(devbox_id)
        code, out, err = await sandbox.run_quiet(["/bin/sh", "-c", _READ_SCRIPT, "read", file_path])
        if code != 0:
            raise InvalidRequestError(f"cannot read {file_path!r} on devbox {devbox_id}: {err.decode().strip()}")
        return out

    async def read_text(self, devbox_id: str, file_path: str) -> str:
        data = await self.read_bytes(devbox_id, file_path)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequestError(
                f"{file_path!r} is not UTF-8 text; download it as bytes or use execute_on_devbox "
                f"(e.g. `base64 {file_path}`)"
            ) from exc

    async def write_bytes(self, devbox_id: str, file_path: str, data: bytes) -> None:
        home_relative(file_path)
        sandbox = await self.devboxes.sandbox(devbox_id)
        owner = await self._owner(devbox_id)
        code, _out, err = await sandbox.run_quiet(
            ["/bin/sh", "-c", _WRITE_SCRIPT, "write", file_path, owner], stdin=data
        )
        if code != 0:
            raise InvalidRequestError(f"cannot write {file_path!r} on devbox {devbox_id}: {err.decode().strip()}")

    async def download(self, devbox_id: str, path: str) -> bytes:
        """A file's bytes, from any path in the devbox."""
        target = devbox_path(path)
        sandbox = await self.devboxes.sandbox(devbox_id)
        code, out, err = await sandbox.run_quiet(["/bin/sh", "-c", _DOWNLOAD_SCRIPT, "download", target])
        if code != 0:
            raise InvalidRequestError(f"cannot download {path!r} from devbox {devbox_id}: {err.decode().strip()}")
        return out

    async def upload(self, devbox_id: str, path: str, data: bytes) -> None:
        """Write bytes to any path in the devbox, making its parent directories (both the devbox
        user's)."""
        target = devbox_path(path)
        sandbox = await self.devboxes.sandbox(devbox_id)
        owner = await self._owner(devbox_id)
        code, _out, err = await sandbox.run_quiet(
            ["/bin/sh", "-c", _UPLOAD_SCRIPT, "upload", target, owner], stdin=data
        )
        if code != 0:
            raise InvalidRequestError(f"cannot upload to {path!r} on devbox {devbox_id}: {err.decode().strip()}")

    async def write_text(self, devbox_id: str, file_path: str, contents: str) -> None:
        await self.write_bytes(devbox_id, file_path, contents.encode("utf-8"))

    async def list(self, devbox_id: str, path: str) -> builtins.list[str]:
        if path not in ("", ".", "./"):
            home_relative(path)
        sandbox = await self.devboxes.sandbox(devbox_id)
        code, out, err = await sandbox.run_quiet(list_argv(path))
        if code != 0:
            raise InvalidRequestError(list_problem(devbox_id, path, err.decode()))
        return listed_names(out.decode("utf-8", errors="replace"))
