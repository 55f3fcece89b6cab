"""The layer store: read-only directory trees that devbox filesystems are stacked from.

A layer mirrors `/` (it may hold `usr/`, `etc/`, `home/user/`, ...). Blueprints and snapshots are
layers; a devbox stacks its environment's layers (topmost first) over the base: the skeleton for
`/` and the host's own `/usr` and `/etc` (secrets masked) for those directories.

Image layers (images.py) live apart, content-addressed by their diff_id and shared by every image
that has them: `_image-layers/<hex>/` is the unpacked tree itself (no marker file inside: it would
show in the devbox's `/`); being there at all means complete, since it is renamed into place
whole. Image records (`_images/<hex of the manifest digest>.json`) name their layers in order.
Trust layers (trust.py: an image's CA bundle with the host's added CAs) are kept there too, named
by the sha256 of their contents. `collect()` frees what nothing references.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import posixpath
import shutil
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from . import helper_processes
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
IMAGE_LAYERS = "_image-layers"
IMAGES = "_images"
STALE_SCRATCH_SECONDS = 3600


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


@dataclass(frozen=True)
class ImageConfig:
    """What an image's config says about running it (the OCI config's `config` object)."""

    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    exposed_ports: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_oci(cls, config: dict[str, Any] | None) -> ImageConfig:
        c = config or {}
        entrypoint, cmd = c.get("Entrypoint"), c.get("Cmd")
        return cls(
            env=tuple(c.get("Env") or ()),
            working_dir=c.get("WorkingDir") or "",
            user=c.get("User") or "",
            entrypoint=None if entrypoint is None else tuple(entrypoint),
            cmd=None if cmd is None else tuple(cmd),
            exposed_ports=tuple(sorted(c.get("ExposedPorts") or {})),
            labels=dict(c.get("Labels") or {}),
        )


@dataclass(frozen=True)
class ImageRecord:
    """A pulled image: which manifest, which layers (bottom first), how to run it."""

    manifest_digest: str  # the platform's image manifest (what `docker images --digests` shows)
    config_digest: str
    diff_ids: tuple[str, ...]  # bottom layer first, as in the config's rootfs.diff_ids
    config: ImageConfig
    platform: str  # linux/amd64
    references: tuple[str, ...] = ()  # docker.io/library/ubuntu:24.04, ... (normalised)
    index_digest: str | None = None  # the multi-arch index it was chosen from, if any
    size: int = 0  # compressed bytes of its layers
    pulled_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ImageRecord:
        data = json.loads(text)
        config = data.pop("config")
        for key in ("entrypoint", "cmd"):
            if config.get(key) is not None:
                config[key] = tuple(config[key])
        for key in ("env", "exposed_ports"):
            config[key] = tuple(config[key])
        return cls(
            config=ImageConfig(**config),
            diff_ids=tuple(data.pop("diff_ids")),
            references=tuple(data.pop("references")),
            **data,
        )


@dataclass
class CollectReport:
    """What a garbage collection freed."""

    image_layers: list[str] = field(default_factory=list)  # diff_ids
    layers: list[str] = field(default_factory=list)  # layer ids (blueprints, snapshots)
    images: list[str] = field(default_factory=list)  # manifest digests
    scratch: int = 0  # leftover scratch directories of pulls that died
    freed_bytes: int = 0


def _hex(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or len(hexdigest) != 64 or any(c not in "0123456789abcdef" for c in hexdigest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return hexdigest


def remove_tree(path: Path) -> None:
    """rmtree that also gets through directories without write permission (layers keep modes)."""

    def retry(func: Any, target: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
        with contextlib.suppress(FileNotFoundError):
            func(target)

    if path.is_symlink() or not path.exists():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    shutil.rmtree(path, onerror=retry)


class LayerStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root / f"_base-v{BASE_VERSION}"
        self.skeleton = self.base / "skeleton"
        self.etc_mask = self.base / "mask"
        self.image_layers = root / IMAGE_LAYERS
        self.images = root / IMAGES

    # -- image layers and records ------------------------------------------------------------

    def image_layer_path(self, diff_id: str) -> Path:
        """Where an image layer's tree is (there only once complete): a devbox's lowerdir."""
        return self.image_layers / _hex(diff_id)

    def has_image_layer(self, diff_id: str) -> bool:
        return self.image_layer_path(diff_id).is_dir()

    def image_layer_scratch(self, diff_id: str) -> Path:
        """A fresh scratch directory beside the store to unpack into, then `commit_image_layer`."""
        self.image_layers.mkdir(parents=True, exist_ok=True)
        scratch = self.image_layers / f".tmp-{_hex(diff_id)[:16]}-{os.getpid()}-{os.urandom(4).hex()}"
        scratch.mkdir()
        return scratch

    def commit_image_layer(self, scratch: Path, diff_id: str) -> bool:
        """Rename a fully unpacked scratch tree into place; False (scratch removed) if another pull
        put the same layer there first."""
        try:
            os.rename(scratch, self.image_layer_path(diff_id))
            return True
        except OSError:
            if not self.has_image_layer(diff_id):
                raise
            remove_tree(scratch)
            return False

    def save_image(self, record: ImageRecord) -> None:
        """Record an image (atomically); an earlier record of the same manifest keeps its references."""
        self.images.mkdir(parents=True, exist_ok=True)
        earlier = self.get_image(record.manifest_digest)
        if earlier is not None:
            references = tuple(dict.fromkeys((*record.references, *earlier.references)))
            record = ImageRecord(**{**record.__dict__, "references": references})
        # A reference names one image: a tag pulled again moves to the new manifest.
        for other in self.list_images():
            if other.manifest_digest != record.manifest_digest and set(other.references) & set(record.references):
                kept = tuple(r for r in other.references if r not in record.references)
                self._write_record(ImageRecord(**{**other.__dict__, "references": kept}))
        self._write_record(record)

    def _write_record(self, record: ImageRecord) -> None:
        path = self.images / f"{_hex(record.manifest_digest)}.json"
        scratch = path.with_suffix(f".tmp-{os.getpid()}")
        scratch.write_text(record.to_json())
        os.rename(scratch, path)

    def get_image(self, digest_or_reference: str) -> ImageRecord | None:
        """An image by manifest digest or by a normalised reference it was pulled as."""
        if digest_or_reference.startswith("sha256:"):
            try:
                return ImageRecord.from_json((self.images / f"{_hex(digest_or_reference)}.json").read_text())
            except (OSError, ValueError):
                return None
        for record in self.list_images():
            if digest_or_reference in record.references:
                return record
        return None

    def list_images(self) -> list[ImageRecord]:
        records = []
        for path in sorted(self.images.glob("*.json")) if self.images.is_dir() else []:
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
                records.append(ImageRecord.from_json(path.read_text()))
        return records

    def remove_image(self, manifest_digest: str) -> bool:
        """Forget an image; its layers stay until `collect` finds nothing else uses them."""
        try:
            (self.images / f"{_hex(manifest_digest)}.json").unlink()
            return True
        except FileNotFoundError:
            return False

    @contextlib.contextmanager
    def pull_lock(self, *, exclusive: bool = False) -> Iterator[None]:
        """Pulls hold this shared, `collect` exclusively: a layer unpacked for an image whose
        record is not written yet is never collected. Blocking: call it from a worker thread."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".images.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # releases the lock

    def collect(
        self,
        *,
        diff_ids: Iterable[str] = (),
        layer_ids: Iterable[str] | None = None,
        images: Iterable[str] | None = None,
    ) -> CollectReport:
        """Free the layers nothing references. Blocking: run it in a worker thread.

        Kept: every image layer of a kept image record or named in `diff_ids` (those a blueprint,
        snapshot or live devbox stacks directly). `images`: the manifest digests to keep; None keeps
        every recorded image (pulled images are a cache the user empties with `remove_image`).
        `layer_ids`: the blueprint and snapshot layers still referenced; None leaves those alone.
        Scratch trees of pulls that died (older than an hour) go too."""
        report = CollectReport()
        with self.pull_lock(exclusive=True):
            keep_images = None if images is None else set(images)
            keep_layers = set(diff_ids)
            for record in self.list_images():
                if keep_images is None or record.manifest_digest in keep_images:
                    keep_layers.update(record.diff_ids)
                elif self.remove_image(record.manifest_digest):
                    report.images.append(record.manifest_digest)
            keep_hex = {_hex(d) for d in keep_layers}
            for entry in sorted(self.image_layers.iterdir()) if self.image_layers.is_dir() else []:
                if entry.name.startswith(".tmp-"):
                    if time.time() - entry.lstat().st_mtime > STALE_SCRATCH_SECONDS:
                        report.freed_bytes += tree_size(entry)
                        remove_tree(entry)
                        report.scratch += 1
                elif entry.name not in keep_hex:
                    report.freed_bytes += tree_size(entry)
                    remove_tree(entry)
                    report.image_layers.append(f"sha256:{entry.name}")
            if layer_ids is not None:
                keep_ids = set(layer_ids)
                for entry in sorted(self.root.iterdir()):
                    if entry.name.startswith((".", "_")) or not entry.is_dir() or entry.name in keep_ids:
                        continue
                    report.freed_bytes += tree_size(entry)
                    remove_tree(entry)
                    report.layers.append(entry.name)
        return report

    def path(self, layer_id: str) -> Path:
        """Where a layer's tree is: an image layer by its diff_id (`sha256:...`), any other by id."""
        if layer_id.startswith("sha256:"):
            return self.image_layer_path(layer_id)
        return self.root / layer_id

    def exists(self, layer_id: str) -> bool:
        if layer_id.startswith("sha256:"):
            return self.has_image_layer(layer_id)
        # A layer is renamed into place whole (freeze), so one that is there is complete; no
        # marker inside it, where an image's root would show it.
        return self.path(layer_id).is_dir()

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
        return await self._copy_in(
            [(upper_root / "root", "")] + [(upper_root / part, part) for part in HOST_DIRS], layer_id
        )

    async def freeze_tree(self, tree: Path, layer_id: str) -> int:
        """freeze for a tree alone (a build step's changes, on another filesystem than the store's):
        copied as it is, without the empty HOST_DIRS (adopt_tree, where a rename can do)."""
        return await self._copy_in([(tree, "")], layer_id)

    async def _copy_in(self, parts: list[tuple[Path, str]], layer_id: str) -> int:
        """A new layer of the trees in `parts`, each copied to its place (a path in the layer)."""
        target = self.path(layer_id)
        staging = self.root / f".tmp-{layer_id}-{os.getpid()}-{os.urandom(4).hex()}"  # two builds of one step
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for source, where in parts:
            dest = staging / where
            dest.mkdir(parents=True, exist_ok=True)
            if source.exists() and any(source.iterdir()):
                code, _, err = await helper_processes.run(["cp", "-a", "--reflink=auto", f"{source}/.", f"{dest}/"])
                if code != 0:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise SandboxError(f"snapshot copy failed: {err.decode(errors='replace').strip()}")
        size = await anyio.to_thread.run_sync(tree_size, staging)
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():
                raise
            shutil.rmtree(staging, ignore_errors=True)  # made meanwhile by another build of the same step
        return size

    def adopt(self, upper_root: Path, layer_id: str) -> None:
        """Make a stopped image sandbox's upper tree (`upper/root`) a layer by moving it, not
        copying it: for a build step, whose sandbox is thrown away after. Blocking.

        No HOST_DIRS are added: an image root stacks the layer itself, where an empty `usr` or
        `etc` would be a directory the step did not make, over the image's own."""
        self.adopt_tree(upper_root / "root", layer_id)

    def adopt_tree(self, tree: Path, layer_id: str) -> None:
        """Make a directory tree nothing writes to any more a layer by moving it (adopt)."""
        target = self.path(layer_id)
        staging = self.root / f".tmp-{layer_id}-{os.getpid()}-{os.urandom(4).hex()}"
        os.rename(tree, staging)  # the same filesystem: the state dir is in the data dir
        try:
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():
                raise
            shutil.rmtree(staging, ignore_errors=True)  # made meanwhile by another build of the same step

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
            code, _, err = await helper_processes.run(["cp", "-a", "--reflink=auto", str(source), str(dest)])
            if code != 0:
                raise SandboxError(f"copying the agent's changes failed: {err.decode(errors='replace')}")

    async def changes_layer(self, upper_root: Path, layer_dir: Path, *, hidden: tuple[str, ...] = ()) -> None:
        """A layer holding all of a sandbox's changes (the scorer's view of the whole filesystem),
        less the `hidden` absolute paths (where the scorer's own files go)."""
        layer_dir.mkdir(parents=True, exist_ok=True)
        for part, dest in [("root", layer_dir)] + [(part, layer_dir / part) for part in HOST_DIRS]:
            source = upper_root / part
            dest.mkdir(parents=True, exist_ok=True)
            if source.exists() and any(source.iterdir()):
                result = await anyio.run_process(["cp", "-a", "--reflink=auto", f"{source}/.", f"{dest}/"], check=False)
                if result.returncode != 0:
                    raise SandboxError(f"copying the agent's changes failed: {result.stderr.decode(errors='replace')}")
        for path in hidden:
            first, _, rest = path.strip("/").partition("/")
            shutil.rmtree(layer_dir / first / rest if rest else layer_dir / first, ignore_errors=True)

    def remove(self, layer_id: str) -> None:
        shutil.rmtree(self.path(layer_id), ignore_errors=True)


def tree_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
