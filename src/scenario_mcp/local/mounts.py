"""A devbox's mounts on the local engine: what each comes to before the devbox starts.

- agent_mount: the agent's layer, read-only at agent_path (an overlay of the layer alone: no
  copy, nothing the devbox can write), its bin/ first on PATH;
- object_mount: an archive unpacked once into a layer of its own (an object never changes once
  uploaded), mounted the same way; any other object is written as a file;
- file_mount: a file written into the devbox's own layer;
- code_mount: a git repository cloned by the server (the only network it takes; the devbox needs
  none) into the devbox's own layer at /home/user/{repo_name}; its install_command runs in the
  devbox once it is up.

Files and clones are written into the devbox's upper directory before its root is mounted, so
nothing follows a path the devbox's layers could have planted. Paths are checked first: absolute
(a file's may be relative to /home/user), no `..`, nothing under /proc, /sys, /dev or /run.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import tarfile
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from ..backend import InvalidRequestError
from ..conventions import HOME
from ..models import AgentMount, CodeMount, FileMount, Mount, ObjectMount
from .agents import Agents
from .layers import LayerStore
from .sandbox.spec import HOST_DIRS

AGENTS_DIR = "/opt/agents"  # where an agent is mounted when no agent_path is given
CLONE_TIMEOUT = 300.0
# Not a place for a mount: the kernel's and the runtime's own trees.
RESERVED = ("/proc", "/sys", "/dev", "/run")
ARCHIVE_TYPES = ("tar", "tgz", "gzip")
GIT_NAME = re.compile(r"[A-Za-z0-9_.-]+")
# Only network protocols for a clone: never a host path (file://) nor a helper program (ext::).
GIT_PROTOCOLS = "http:https:git"

ObjectReader = Callable[[str], Awaitable[tuple[str, Path]]]  # object id -> (content type, bytes path)


def mount_path(path: str, what: str, *, relative_to_home: bool = False) -> str:
    """A mount's path, checked: absolute and normalised, or a clear error naming `what`."""
    if relative_to_home and not path.startswith("/"):
        path = posixpath.join(HOME, path)
    if not path.startswith("/"):
        raise InvalidRequestError(f"{what} {path!r} is not an absolute path; give one such as /home/user/agent")
    if "\0" in path or ".." in path.split("/"):
        raise InvalidRequestError(f"{what} {path!r} has a `..`: a mount stays inside the devbox; give a plain path")
    normal = posixpath.normpath(path)
    if normal == "/" or any(normal == r or normal.startswith(r + "/") for r in RESERVED):
        raise InvalidRequestError(f"{what} {path!r} is not a place for a mount; use one under /home/user or /opt")
    return normal


@dataclass
class PlannedMounts:
    """What a devbox's mounts come to: kept in its record (layers, PATH, commands)."""

    layers: list[tuple[str, str]] = field(default_factory=list)  # (layer id, path), read-only
    path_prefix: list[str] = field(default_factory=list)  # bin dirs first on PATH
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (path, content) written
    clones: list[tuple[str, str | None, str]] = field(default_factory=list)  # (url, ref, path)
    install_commands: list[tuple[str, str]] = field(default_factory=list)  # (command, working dir)

    def to_internal(self) -> dict[str, Any]:
        record: dict[str, Any] = {}
        if self.layers:
            record["mounts"] = [[layer, path] for layer, path in self.layers]
        if self.path_prefix:
            record["path_prefix"] = self.path_prefix
        return record


class Mounts:
    def __init__(self, agents: Agents, layers: LayerStore, read_object: ObjectReader) -> None:
        self.agents = agents
        self.layers = layers
        self.read_object = read_object

    async def plan(self, mounts: Sequence[Mount]) -> PlannedMounts:
        planned = PlannedMounts()
        for mount in mounts:
            if isinstance(mount, AgentMount):
                await self._agent(mount, planned)
            elif isinstance(mount, ObjectMount):
                await self._object(mount, planned)
            elif isinstance(mount, FileMount):
                planned.files.append(
                    (mount_path(mount.target, "file_mount target", relative_to_home=True), mount.content.encode())
                )
            else:
                self._code(mount, planned)
        _check_overlaps(planned)
        return planned

    async def _agent(self, mount: AgentMount, planned: PlannedMounts) -> None:
        view, layer_id, has_bin = await self.agents.mountable(agent_id=mount.agent_id, agent_name=mount.agent_name)
        if mount.agent_path is None and view.source is not None and view.source.type in ("git", "object"):
            raise InvalidRequestError(f"agent {view.id} comes from {view.source.type}: give agent_path, where it goes")
        default = f"{AGENTS_DIR}/{view.name}" if GIT_NAME.fullmatch(view.name) else f"{AGENTS_DIR}/{view.id}"
        path = mount_path(mount.agent_path or default, "agent_path")
        planned.layers.append((layer_id, path))
        planned.path_prefix.append(f"{path}/bin" if has_bin else path)

    async def _object(self, mount: ObjectMount, planned: PlannedMounts) -> None:
        path = mount_path(mount.object_path, "object_path")
        content_type, content = await self.read_object(mount.object_id)
        if content_type not in ARCHIVE_TYPES:
            planned.files.append((path, await anyio.to_thread.run_sync(content.read_bytes)))
            return
        layer_id = f"object-{mount.object_id}"
        if not self.layers.exists(layer_id):
            await anyio.to_thread.run_sync(_unpack_layer, self.layers, content, layer_id, mount.object_id)
        planned.layers.append((layer_id, path))

    @staticmethod
    def _code(mount: CodeMount, planned: PlannedMounts) -> None:
        url, name = _repository(mount)
        path = f"{HOME}/{name}"
        planned.clones.append((url, mount.git_ref, path))
        if mount.install_command:
            planned.install_commands.append((mount.install_command, path))


def _repository(mount: CodeMount) -> tuple[str, str]:
    """The clone URL (a token in it for https) and the repository's name."""
    if "://" in mount.repo_name:
        url = mount.repo_name
        scheme = url.split("://", 1)[0].lower()
        if scheme not in GIT_PROTOCOLS.split(":"):
            raise InvalidRequestError(
                f"code_mount repo_name {url!r}: a {scheme}:// repository is not cloned here; give an https, http "
                "or git URL (a mount never reads the server's own files)"
            )
        name = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    else:
        if not mount.repo_owner:
            raise InvalidRequestError("code_mount needs repo_owner with repo_name (or a full git URL in repo_name)")
        for part in (mount.repo_owner, mount.repo_name):
            if not GIT_NAME.fullmatch(part):
                raise InvalidRequestError(f"code_mount: {part!r} is not a GitHub owner or repository name")
        url, name = f"https://github.com/{mount.repo_owner}/{mount.repo_name}.git", mount.repo_name
    if not GIT_NAME.fullmatch(name) or name in (".", ".."):
        raise InvalidRequestError(f"code_mount: cannot tell the repository's name from {mount.repo_name!r}")
    if mount.token and url.lower().startswith("https://"):
        url = f"https://x-access-token:{mount.token}@{url[len('https://') :]}"
    return url, name


def _check_overlaps(planned: PlannedMounts) -> None:
    paths = [p for _, p in planned.layers] + [p for *_, p in planned.clones]
    for i, one in enumerate(paths):
        for other in paths[i + 1 :]:
            if one == other or one.startswith(other + "/") or other.startswith(one + "/"):
                raise InvalidRequestError(f"mounts at {one} and {other} overlap; give each its own path")
    for file_path, _ in planned.files:
        for layer_path in (p for _, p in planned.layers):
            if file_path.startswith(layer_path + "/"):
                raise InvalidRequestError(f"file {file_path} is inside the read-only mount at {layer_path}")


def _unpack_layer(layers: LayerStore, archive: Path, layer_id: str, object_id: str) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{layer_id}-", dir=layers.root))
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(staging, filter="data")
    except tarfile.TarError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise InvalidRequestError(f"object {object_id} is not a tar or tgz archive to unpack: {exc}") from exc
    os.chmod(staging, 0o755)
    try:
        os.rename(staging, layers.path(layer_id))
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # unpacked meanwhile by another devbox's mount
        if not layers.exists(layer_id):
            raise


def upper_path(state_dir: Path, path: str, image_root: bool) -> Path:
    """Where a file at `path` inside the devbox lives in its upper directories (spec.py's parts)."""
    rel = path.strip("/")
    first, _, rest = rel.partition("/")
    if not image_root and first in HOST_DIRS:
        return state_dir / "upper" / first / rest
    return state_dir / "upper" / "root" / rel


async def write_before_start(planned: PlannedMounts, state_dir: Path, image_root: bool) -> list[str]:
    """Write the files and clone the repositories into a devbox's upper directories (before its
    root exists); returns one log line per mount. Raises InvalidRequestError for a failed clone."""
    lines = []
    for path, content in planned.files:
        target = upper_path(state_dir, path, image_root)
        await anyio.to_thread.run_sync(_write, target, content)
        lines.append(f"file mount: wrote {path} ({len(content)} bytes)")
    for url, ref, path in planned.clones:
        target = upper_path(state_dir, path, image_root)
        await _clone(url, ref, target)
        lines.append(f"code mount: cloned {_redacted(url)}{f' at {ref}' if ref else ''} into {path}")
    return lines


def _write(target: Path, content: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)


async def _clone(url: str, ref: str | None, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="clone-home-") as home:
        # No config, credentials or hooks of the host's: an empty HOME, no system config, no template.
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ALLOW_PROTOCOL": GIT_PROTOCOLS,
        }
        steps = [["git", "clone", "--quiet", "--template=", "--", url, str(target)]]
        if ref:
            steps.append(["git", "-C", str(target), "checkout", "--quiet", ref, "--"])
        if _redacted(url) != url:  # the token was for the clone, not for the devbox to read in .git/config
            steps.append(["git", "-C", str(target), "remote", "set-url", "origin", _without_token(url)])
        for argv in steps:
            with anyio.move_on_after(CLONE_TIMEOUT) as scope:
                result = await anyio.run_process(argv, env=env, check=False)
            if scope.cancelled_caught:
                raise InvalidRequestError(f"code_mount: cloning {_redacted(url)} took over {CLONE_TIMEOUT:g} s")
            if result.returncode != 0:
                detail = result.stderr.decode(errors="replace").strip()[-1000:]
                raise InvalidRequestError(
                    f"code_mount: `git {argv[1]}` of {_redacted(url)} failed: {_redacted(detail)}"
                )


def _without_token(url: str) -> str:
    return re.sub(r"x-access-token:[^@\s]+@", "", url)


def _redacted(text: str) -> str:
    return re.sub(r"x-access-token:[^@\s]+@", "x-access-token:***@", text)
