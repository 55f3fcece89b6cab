"""What COPY and ADD copy: sources in a build context (less what .dockerignore leaves out), their
digest for the build cache, and their placement into a new layer (layer_writer.py), as Docker
places them: a directory's contents, links as links, ADD's local archives unpacked."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from .layer_writer import LayerWriter

__all__ = [
    "ARCHIVE_SUFFIXES",
    "SMALL_COPY_BYTES",
    "SMALL_COPY_ENTRIES",
    "Skip",
    "digest_tree",
    "dockerignore",
    "ignored",
    "place",
    "skipper",
    "small_tree",
]

SMALL_COPY_ENTRIES = 64  # COPY sources up to these many entries and bytes are copied inline
SMALL_COPY_BYTES = 1 << 20
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")

Skip = Callable[[Path], bool] | None  # a source file .dockerignore leaves out


def skipper(context: Path, rules: list[tuple[bool, str]]) -> Skip:
    if not rules:
        return None
    return lambda path: ignored(str(path.relative_to(context)), rules)


def small_tree(paths: list[Path]) -> bool:
    """Whether COPY's sources are at most SMALL_COPY_ENTRIES entries and SMALL_COPY_BYTES bytes;
    the walk stops as soon as they are not."""
    entries, size = 0, 0
    pending = list(paths)
    while pending:
        path = pending.pop()
        st = path.lstat()
        entries += 1
        if stat.S_ISREG(st.st_mode):
            size += st.st_size
        if entries + len(pending) > SMALL_COPY_ENTRIES or size > SMALL_COPY_BYTES:
            return False
        if stat.S_ISDIR(st.st_mode):
            with os.scandir(path) as found:
                for entry in found:
                    pending.append(Path(entry.path))
                    if entries + len(pending) > SMALL_COPY_ENTRIES:
                        return False
    return True


def digest_tree(paths: list[Path], skip: Skip) -> str:
    """What COPY would copy, hashed: names, modes, link targets and contents."""
    digest = hashlib.sha256()
    for top in paths:
        entries = [top] if not top.is_dir() or top.is_symlink() else sorted(top.rglob("*"))
        for path in entries:
            if skip is not None and skip(path):
                continue
            st = path.lstat()
            digest.update(f"{path.relative_to(top.parent)}\0{st.st_mode}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                digest.update(os.readlink(path).encode())
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    while chunk := f.read(1 << 20):
                        digest.update(chunk)
    return digest.hexdigest()


def place(
    paths: list[Path],
    writer: LayerWriter,
    target: str,
    as_dir: bool,
    owner: tuple[int, int] | None,
    mode: int | None,
    extract: bool,
    skip: Skip,
) -> None:
    """Copy sources to `target` in the new layer as COPY does: a directory's contents, not itself.

    Every destination is resolved in the image (writer.resolve) before it is written, not only
    the top one: the image's symlinks, absolute ones too, point inside the image, and the host's
    kernel would follow them on the host's filesystem."""
    for path in paths:
        if extract and path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES):
            # Unpacked apart, then moved in name by name: the archive's paths lead where they
            # lead in the image (through its symlinks), and never out of the new layer.
            unpacked = Path(tempfile.mkdtemp(prefix=f"{writer.tree.name}-add-", dir=writer.tree.parent))
            with tarfile.open(path) as archive:
                archive.extractall(unpacked, filter="data")  # refuses members that leave it
            writer.move_in(unpacked, target)
            continue
        placed: list[Path] = []
        if path.is_dir() and not path.is_symlink():
            _copy_tree(path, writer, target, skip, placed)
        else:
            where = posixpath.join(target, path.name) if as_dir else target
            dest = writer.resolve(where)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_dir():  # resolved: a directory, not a link to one
                dest = writer.resolve(posixpath.join(where, path.name))
            _copy_entry(path, dest)
            placed.append(dest)
        _own(placed, owner, mode)


def _copy_tree(source: Path, writer: LayerWriter, where: str, skip: Skip, placed: list[Path]) -> None:
    """shutil.copytree(symlinks=True, dirs_exist_ok=True) into the new layer, each entry resolved."""
    directory = writer.directory(where)
    dest = directory.host
    placed.append(dest)
    with os.scandir(source) as found:
        entries = sorted(found, key=lambda entry: entry.name)
    for entry in entries:
        if skip is not None and skip(Path(entry.path)):
            continue
        inner = posixpath.join(where, entry.name)
        if entry.is_dir(follow_symlinks=False):
            _copy_tree(Path(entry.path), writer, inner, skip, placed)
            continue
        # A link is made where it is named (replacing what is there); a file is written where
        # the name leads in the image.
        target = dest / entry.name if entry.is_symlink() else writer.resolve_in(directory, entry.name)
        _copy_entry(Path(entry.path), target)
        placed.append(target)
    shutil.copystat(source, dest)


def _copy_entry(source: Path, dest: Path) -> None:
    """A file or a symlink (as a symlink) to `dest`, a path with no symlink left in it but
    perhaps its last component (then replaced)."""
    if source.is_symlink():
        if os.path.lexists(dest) and not (dest.is_dir() and not dest.is_symlink()):
            os.unlink(dest)
        os.symlink(os.readlink(source), dest)
        return
    if dest.is_symlink():  # not followed on the host: replaced
        os.unlink(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)  # where a link inside the root led
    shutil.copy2(source, dest, follow_symlinks=False)


def _own(paths: list[Path], owner: tuple[int, int] | None, mode: int | None) -> None:
    """--chown and --chmod on what a COPY placed (never through a symlink)."""
    for item in paths:
        if owner is not None:
            os.lchown(item, *owner)
        if mode is not None and not item.is_symlink():
            os.chmod(item, mode)


def dockerignore(context: Path | None) -> list[tuple[bool, str]]:
    """The context's .dockerignore: (negated, pattern) in order; the last match decides."""
    if context is None or not (context / ".dockerignore").is_file():
        return []
    rules = []
    for line in (context / ".dockerignore").read_text(errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = posixpath.normpath(line.lstrip("!").strip().lstrip("/"))
        rules.append((negated, pattern))
    return rules


def ignored(name: str, rules: list[tuple[bool, str]]) -> bool:
    ignored = False
    parts = name.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for negated, pattern in rules:
        regex = pattern.replace("**/", "*/").replace("/**", "/*")
        if any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, regex) for p in prefixes):
            ignored = not negated
    return ignored
