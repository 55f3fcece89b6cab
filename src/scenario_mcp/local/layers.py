"""The layer store: read-only directory trees that devbox filesystems are stacked from.

A layer mirrors `/` (it may hold `usr/`, `etc/`, `home/user/`, ...). Blueprints and snapshots are
layers; a devbox stacks its environment's layers (topmost first) over the base: the skeleton for
`/` and the host's own `/usr` and `/etc` (secrets masked) for those directories.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import stat
from pathlib import Path

import anyio
import anyio.to_thread

from .sandbox import HOST_DIRS, SandboxError

SKELETON_DIRS = {
    "home": 0o755,
    "home/user": 0o755,
    "root": 0o700,
    "tmp": 0o1777,
    "var": 0o755,
    "var/tmp": 0o1777,
    "var/log": 0o755,
    "opt": 0o755,
    "srv": 0o755,
    "mnt": 0o755,
    "proc": 0o555,
    "dev": 0o755,
    "sys": 0o555,
    "run": 0o755,
    "usr": 0o755,
    "etc": 0o755,
}

BASE_VERSION = "2"


def host_secrets(top: Path = Path("/etc")) -> list[Path]:
    """What only root may read under the host's /etc: files others cannot read, directories
    others cannot enter. A devbox root is the host's uid 0 when the server runs as root, so it
    would pass the owner check on these; they are whited out of its /etc instead."""
    secrets: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(top):
        for name in list(dirnames):
            path = Path(dirpath) / name
            with contextlib.suppress(OSError):
                st = path.lstat()
                if stat.S_ISDIR(st.st_mode) and (st.st_mode & 0o005) != 0o005:
                    secrets.append(path)
                    dirnames.remove(name)  # hidden whole
        for name in filenames:
            path = Path(dirpath) / name
            with contextlib.suppress(OSError):
                st = path.lstat()
                if not stat.S_ISLNK(st.st_mode) and not st.st_mode & 0o004:
                    secrets.append(path)
    return secrets


class LayerStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root / f"_base-v{BASE_VERSION}"
        self.skeleton = self.base / "skeleton"
        self.etc_mask = self.base / "mask"

    def path(self, layer_id: str) -> Path:
        return self.root / layer_id

    def exists(self, layer_id: str) -> bool:
        return (self.path(layer_id) / ".complete").exists()

    def ensure_base(self) -> None:
        """Build the skeleton and the /etc mask once per data dir."""
        if (self.base / ".complete").exists():
            return
        tmp = self.root / f".tmp-base-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        skeleton, mask = tmp / "skeleton", tmp / "mask"
        for rel, mode in SKELETON_DIRS.items():
            (skeleton / rel).mkdir(parents=True, exist_ok=True)
            os.chmod(skeleton / rel, mode)
        for link in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
            host = Path("/") / link
            if host.is_symlink():
                os.symlink(os.readlink(host), skeleton / link)
        (mask / "etc").mkdir(parents=True)
        if os.geteuid() == 0:  # unprivileged, the devbox's root cannot read these anyway
            for secret in host_secrets():
                target = mask / secret.relative_to("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                # A 0/0 character device is overlayfs's whiteout: the file is gone below.
                os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        (tmp / ".complete").touch()
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(tmp, self.base)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another process built it first
            if not (self.base / ".complete").exists():
                raise

    async def freeze(self, upper_root: Path, layer_id: str) -> int:
        """Copy a sandbox's upper directories into a new read-only layer; returns its size.

        Costs what changed, not the disk's size: unchanged files live in lower layers.
        """
        target = self.path(layer_id)
        staging = self.root / f".tmp-{layer_id}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        parts = [("root", staging)] + [(part, staging / part) for part in HOST_DIRS]
        for part, dest in parts:
            source = upper_root / part
            dest.mkdir(parents=True, exist_ok=True)
            if source.exists() and any(source.iterdir()):
                result = await anyio.run_process(["cp", "-a", "--reflink=auto", f"{source}/.", f"{dest}/"], check=False)
                if result.returncode != 0:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise SandboxError(f"snapshot copy failed: {result.stderr.decode(errors='replace').strip()}")
        (staging / ".complete").touch()
        size = await anyio.to_thread.run_sync(tree_size, staging)
        os.rename(staging, target)
        return size

    async def subtree_layer(self, upper_root: Path, rel_dir: str, layer_dir: Path) -> None:
        """A layer holding only one directory of a sandbox's changes (the scorer's view of the agent)."""
        rel = posixpath.normpath(rel_dir).strip("/")
        if rel.startswith("..") or "/../" in f"/{rel}/":
            raise SandboxError(f"working directory {rel_dir!r} escapes the devbox")
        first, _, rest = rel.partition("/")
        source = upper_root / first / rest if first in HOST_DIRS else upper_root / "root" / rel
        dest = layer_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        for part in HOST_DIRS:
            (layer_dir / part).mkdir(parents=True, exist_ok=True)
        if source.exists():
            result = await anyio.run_process(["cp", "-a", "--reflink=auto", str(source), str(dest)], check=False)
            if result.returncode != 0:
                raise SandboxError(f"copying the agent's changes failed: {result.stderr.decode(errors='replace')}")

    def remove(self, layer_id: str) -> None:
        shutil.rmtree(self.path(layer_id), ignore_errors=True)


def tree_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
