"""One image layer's (uncompressed) tar, read once as a stream, unpacked into an overlayfs layer.

OCI whiteouts become overlayfs's own: `.wh.NAME` a 0/0 character device (where mknod is not
allowed, a zero-size file with `user.overlay.whiteout` in a directory marked
`user.overlay.opaque=x`, which overlayfs reads since Linux 6.7), and `.wh..wh..opq` the xattr
`user.overlay.opaque=y` (the engine mounts with `userxattr`, which reads `user.overlay.*`
only) plus `trusted.overlay.opaque=y` where we may write it, for mounts without `userxattr`.
Modes, owners (as root), symlinks, hard links, setuid bits and xattrs are kept where the kernel
allows; device nodes are skipped; paths that escape the layer are refused. Standard library only.
The blob around the tar is checked and decompressed by blob_decoder.py, the two together in two
threads by blob_unpack.py.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import shutil
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .blob_decoder import COPY_CHUNK
from .registry import ImageError

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTRS = ("user.overlay.opaque", "trusted.overlay.opaque")
XATTR_WHITEOUT = "user.overlay.whiteout"


class LayerError(ImageError):
    """A layer's contents are unsafe or malformed (an escaping path, a bad link)."""


@dataclass
class UnpackStats:
    entries: int = 0
    file_bytes: int = 0
    whiteouts: int = 0
    opaque_dirs: int = 0
    skipped_devices: int = 0
    skipped_xattrs: int = 0


def member_path(name: str) -> str:
    """A tar entry's path relative to the layer root ("" for the root); refuses escapes."""
    if name.startswith("/"):
        raise LayerError(f"refused: absolute path {name!r} in the layer")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"refused: path {name!r} leaves the layer")
    return "/".join(parts)


def unpack_layer(
    tar_stream: IO[bytes], dest: Path, *, mknod_whiteouts: bool | None = None, bufsize: int = COPY_CHUNK
) -> UnpackStats:
    """Unpack a layer's (uncompressed) tar, read once as a stream, into `dest` (created if missing).

    `mknod_whiteouts`: None tries a 0/0 character device and falls back to an xattr whiteout where
    mknod is not allowed; False always writes xattr whiteouts. Raises LayerError on unsafe entries;
    the caller unpacks into a scratch directory and discards it on any error."""
    unpacker = _Unpacker(dest, mknod_whiteouts)
    # Not tarfile's stream mode ("r|"): it slices its whole buffer on every 512-byte header read.
    with tarfile.open(fileobj=_ForwardOnly(tar_stream), mode="r:", bufsize=bufsize) as archive:
        for member in archive:
            unpacker.add(archive, member)
    unpacker.finish()
    return unpacker.stats


class _ForwardOnly(io.RawIOBase):
    """A stream read once, front to back, that tarfile may `seek` forward in (skipping bytes), or
    to where it already is: enough for reading members in order, each one's data before the next."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        data = self._stream.read(-1 if size is None else size)
        self._position += len(data)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self._position + offset
        if whence not in (io.SEEK_SET, io.SEEK_CUR) or target < self._position:
            raise io.UnsupportedOperation("the layer is read once, front to back")
        while self._position < target:
            if not self.read(min(target - self._position, COPY_CHUNK)):
                break
        return self._position


class _Unpacker:
    def __init__(self, dest: Path, mknod_whiteouts: bool | None) -> None:
        self.dest = str(dest)
        dest.mkdir(parents=True, exist_ok=True)
        self.root = os.geteuid() == 0
        self.mknod = mknod_whiteouts
        self.dirs: set[str] = {""}  # relative paths known to be real directories
        self.dir_meta: dict[str, tarfile.TarInfo] = {}
        self.stats = UnpackStats()

    def _abs(self, rel: str) -> str:
        return os.path.join(self.dest, rel) if rel else self.dest

    def _ensure_dir(self, rel: str) -> None:
        """Make sure every component of `rel` is a real directory in the layer, never a symlink."""
        if rel in self.dirs:
            return
        parent = rel.rpartition("/")[0]
        self._ensure_dir(parent)
        path = self._abs(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            os.mkdir(path, 0o755)
        else:
            if stat.S_ISLNK(st.st_mode):
                raise LayerError(f"refused: {rel!r} is a symlink, and an entry would be written through it")
            if not stat.S_ISDIR(st.st_mode):
                raise LayerError(f"refused: {rel!r} is not a directory, and an entry is inside it")
        self.dirs.add(rel)

    def _clear(self, rel: str, *, keep_dir: bool = False) -> bool:
        """Remove what is at `rel` (a later entry replaces an earlier one); True if a dir was kept."""
        path = self._abs(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            shutil.rmtree(path)
            self.dirs = {d for d in self.dirs if d != rel and not d.startswith(rel + "/")}
            self.dir_meta = {d: m for d, m in self.dir_meta.items() if d != rel and not d.startswith(rel + "/")}
        else:
            os.unlink(path)
        return False

    def add(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        rel = member_path(member.name)
        self.stats.entries += 1
        parent, _, base = rel.rpartition("/")
        if rel:
            self._ensure_dir(parent)
        if base == OPAQUE_MARKER:
            self._ensure_dir(parent)
            for name in OPAQUE_XATTRS:
                with contextlib.suppress(OSError):
                    os.setxattr(self._abs(parent), name, b"y")
            self.stats.opaque_dirs += 1
            return
        if base.startswith(WHITEOUT_PREFIX):
            hidden = base[len(WHITEOUT_PREFIX) :]
            if hidden.startswith(WHITEOUT_PREFIX) or not hidden:
                return  # aufs metadata (.wh..wh.plnk, ...): nothing for overlayfs
            target = f"{parent}/{hidden}" if parent else hidden
            self._clear(target)
            self._whiteout(target)
            self.stats.whiteouts += 1
            return
        path = self._abs(rel)
        if member.isdir():
            if rel:
                try:
                    os.mkdir(path, 0o700)
                except FileExistsError:  # an earlier entry: a directory stays, anything else goes
                    if not self._clear(rel, keep_dir=True):
                        os.mkdir(path, 0o700)
            self.dirs.add(rel)
            self.dir_meta[rel] = member
            self._xattrs(path, member)
            return
        if not rel:
            raise LayerError(f"refused: the layer root is a {member.type!r} entry")
        if member.ischr() or member.isblk():
            self.stats.skipped_devices += 1
            return
        if member.isreg():
            self._write_file(archive, member, rel, path)
            return
        if member.issym():
            make: Callable[[], None] = functools.partial(os.symlink, member.linkname, path)
        elif member.islnk():
            make = functools.partial(self._hard_link, member, path)
        elif member.isfifo():
            make = functools.partial(os.mkfifo, path, 0o600)
        else:
            raise LayerError(f"refused: {member.name!r} has unknown tar type {member.type!r}")
        try:
            make()
        except FileExistsError:  # a later entry replaces an earlier one
            self._clear(rel)
            make()
        if not member.islnk():  # a hard link shares its target's inode, owner and mode
            self._attributes(path, member)

    def _write_file(self, archive: tarfile.TarFile, member: tarfile.TarInfo, rel: str, path: str) -> None:
        """The file's data, owner, xattrs, mode and times, all through the one descriptor."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:  # a later entry replaces an earlier one
            self._clear(rel)
            fd = os.open(path, flags, 0o600)
        try:
            if member.sparse is not None:
                source = archive.extractfile(member)
                assert source is not None
                with os.fdopen(os.dup(fd), "wb") as out:
                    shutil.copyfileobj(source, out, COPY_CHUNK)
            else:  # straight from the stream, with none of extractfile's layers of buffering
                tar = archive.fileobj
                assert tar is not None
                tar.seek(member.offset_data)
                left = member.size
                while left:
                    data = tar.read(min(left, COPY_CHUNK))
                    if not data:
                        raise tarfile.ReadError(f"unexpected end of data in {member.name!r}")
                    left -= len(data)
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
            if self.root:
                os.fchown(fd, member.uid, member.gid)
            self._xattrs(fd, member)
            os.fchmod(fd, member.mode & 0o7777)  # after chown, which clears setuid bits
            mtime = int(member.mtime * 1_000_000_000)
            os.utime(fd, ns=(mtime, mtime))
        finally:
            os.close(fd)
        self.stats.file_bytes += member.size

    def _hard_link(self, member: tarfile.TarInfo, path: str) -> None:
        target = member_path(member.linkname)
        if not target:
            raise LayerError(f"refused: hard link {member.name!r} to the layer root")
        self._ensure_dir(target.rpartition("/")[0])
        try:
            if stat.S_ISDIR(os.lstat(self._abs(target)).st_mode):
                raise LayerError(f"refused: hard link {member.name!r} to directory {member.linkname!r}")
        except FileNotFoundError:
            raise LayerError(f"hard link {member.name!r} to {member.linkname!r}, which is not in the layer") from None
        os.link(self._abs(target), path, follow_symlinks=False)

    def _attributes(self, path: str, member: tarfile.TarInfo) -> None:
        if self.root:
            os.lchown(path, member.uid, member.gid)
        self._xattrs(path, member)
        if not member.issym():
            os.chmod(path, member.mode & 0o7777)  # after chown, which clears setuid bits
        mtime = int(member.mtime * 1_000_000_000)
        with contextlib.suppress(OSError):
            os.utime(path, ns=(mtime, mtime), follow_symlinks=False)

    def _xattrs(self, path: str | int, member: tarfile.TarInfo) -> None:
        if not member.pax_headers:
            return
        for key, value in member.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            name = key[len("SCHILY.xattr.") :]
            if ".overlay." in name:
                self.stats.skipped_xattrs += 1  # overlayfs's own metadata is ours to write, not the image's
                continue
            try:
                os.setxattr(path, name, value.encode("utf-8", "surrogateescape"), follow_symlinks=isinstance(path, int))
            except OSError:
                self.stats.skipped_xattrs += 1

    def _whiteout(self, rel: str) -> None:
        path = self._abs(rel)
        if self.mknod is not False:
            try:
                os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
                return
            except PermissionError:
                if self.mknod:
                    raise
        # Linux >= 6.7: a zero-size file marked as a whiteout, in a directory marked as holding them
        # (unless that directory is opaque already, which hides everything below it anyway).
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o000))
        os.setxattr(path, XATTR_WHITEOUT, b"")
        parent = os.path.dirname(path)
        try:
            opaque = os.getxattr(parent, OPAQUE_XATTRS[0])
        except OSError as exc:
            if exc.errno != errno.ENODATA:
                raise
            opaque = b""
        if opaque != b"y":
            os.setxattr(parent, OPAQUE_XATTRS[0], b"x")

    def finish(self) -> None:
        """Directories' owners, modes and times, deepest first (writing inside changes their mtime)."""
        for rel in sorted(self.dir_meta, key=lambda d: d.count("/"), reverse=True):
            path, member = self._abs(rel), self.dir_meta[rel]
            if self.root:
                os.lchown(path, member.uid, member.gid)
            os.chmod(path, member.mode & 0o7777)
            mtime = int(member.mtime * 1_000_000_000)
            os.utime(path, ns=(mtime, mtime))
