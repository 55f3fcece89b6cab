"""What a sandbox is made of: its layers, its state directory, and the mount plan of its root.

    /            overlay: the sandbox's layers over a skeleton (home, root, tmp, var, ...)
    /usr, /etc   overlay: the sandbox's layers over the host's own /usr and /etc (with network, a
                 resolv.conf naming slirp4netns's DNS forwarder on top)
    /proc        a fresh procfs for its PID namespace
    /dev         a small tmpfs with the harmless device nodes bound in

Writes land in the sandbox's upper directories; the host's files are never written. Secrets in the
host's /etc are hidden by whiteouts in a mask layer (see layers.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ...conventions import HOME
from .mount_plan import Bind, Dir, File, Mount, Move, ReadOnlyLayer, SetupOp, Symlink
from .network import SLIRP_DNS

# Host directories shown read-only at the bottom of the devbox's filesystem, each overlaid.
HOST_DIRS = ("usr", "etc")
SANDBOX_PATH = "/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_TOOLS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
# What _special_mounts mounts under a root: a build step's are made ahead of its request, under
# the build's stage dir, and moved into its root (step_stage_plan, root_plan's `staged`).
SPECIAL_DIRS = ("proc", "dev", "run")


class SandboxError(Exception):
    """The sandbox could not be made or reached."""


def check_host_support() -> None:
    """Raise SandboxError with a fix when this machine cannot make sandboxes."""
    if not _which("nsenter"):
        raise SandboxError(
            "cannot make sandboxes: nsenter not found on PATH; install util-linux (Debian: apt-get install util-linux)"
        )
    max_userns = Path("/proc/sys/user/max_user_namespaces")
    if max_userns.exists() and max_userns.read_text().strip() == "0":
        raise SandboxError(
            "cannot make sandboxes: user namespaces are disabled (user.max_user_namespaces=0); "
            "enable them with `sysctl -w user.max_user_namespaces=15000`"
        )


def _which(tool: str) -> str | None:
    return shutil.which(tool, path=HOST_TOOLS_PATH)


@dataclass(frozen=True)
class SandboxSpec:
    """Everything needed to (re)build a sandbox's root.

    Host-based (the default environment): `/` is the layers over the skeleton, and `/usr` and
    `/etc` are the layers' over the host's own. Image-based (`image_root`): the bottom of `layers`
    is a container image's, and they make the whole root (over the skeleton, for mount points)."""

    state_dir: Path  # host dir holding upper/, work/ and the mount point
    layers: tuple[Path, ...]  # read-only layer trees, topmost first
    skeleton: Path  # bottom layer of `/`
    etc_mask: Path  # whiteouts over the host's /etc secrets (host-based only)
    network: bool = False
    hostname: str = "devbox"
    image_root: bool = False
    egress_allow: tuple[str, ...] | None = None  # with network: only these addresses (an allowlist)
    build: bool = False  # a build sandbox: no root of its own, each step gets one (init.py, build_sandbox.py)
    # A build sandbox's: the compiled C step starter (step_starter.py), or None for the Python spare.
    step_starter: Path | None = None
    # A build step's root: its overlay skips the sync of the disk at unmount (`volatile`), which
    # under a busy disk costs more than the step; the upper dir is renamed into the store after.
    volatile: bool = False
    # Layers shown read-only at a path (mounted agents and objects): (layer tree, absolute path).
    mounts: tuple[tuple[Path, str], ...] = ()
    # The runtime layer made once for many roots (a build's steps: the same hostname and
    # network), instead of one in `state_dir` each: on a busy disk each file made counts.
    shared_runtime: Path | None = None

    @property
    def mount_point(self) -> Path:
        return self.state_dir / "root"

    @property
    def runtime_layer(self) -> Path:
        """A read-only layer on top with the files a container runtime provides: with network, a
        resolv.conf naming slirp4netns's DNS forwarder (the host's own may be a loopback address,
        not reachable); on an image, /etc/hosts and /etc/hostname too, as Docker writes them."""
        return self.shared_runtime or self.state_dir / "runtime"

    @property
    def parts(self) -> tuple[str, ...]:
        """The overlays the root is made of: `/`, and on the host's base `/usr` and `/etc`."""
        return ("root",) if self.image_root else ("root", *HOST_DIRS)

    @property
    def stage(self) -> Path:
        """A build sandbox's: where each step's process mounts its /proc, /dev and /run, in its
        own mount namespace, before its request comes (init.py)."""
        return self.state_dir / "stage"

    def upper(self, part: str) -> Path:
        return self.state_dir / "upper" / part

    def work(self, part: str) -> Path:
        return self.state_dir / "work" / part


def runtime_files(spec: SandboxSpec) -> dict[str, str]:
    """What the runtime layer holds, by path under /etc."""
    files = {}
    if spec.image_root:
        files["hosts"] = (
            f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{spec.hostname}\n"
        )
        files["hostname"] = spec.hostname + "\n"
    if spec.network:
        files["resolv.conf"] = f"nameserver {SLIRP_DNS}\n"
    return files


def prepare_dirs(spec: SandboxSpec) -> None:
    if spec.build:  # its steps' roots are prepared step by step
        for name in SPECIAL_DIRS:
            (spec.stage / name).mkdir(parents=True, exist_ok=True)
        return
    # Top down, each directory once: a start makes a dozen, and pathlib's mkdir(parents=True)
    # tries the deepest first, failing up to the first that exists.
    spec.state_dir.mkdir(parents=True, exist_ok=True)
    for directory in (
        spec.upper(""),
        spec.work(""),
        *(spec.upper(part) for part in spec.parts),
        *(spec.work(part) for part in spec.parts),
        spec.mount_point,
    ):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory)
    if spec.mounts:
        (spec.state_dir / "empty").mkdir(exist_ok=True)  # the bottom of each read-only mount
    if spec.shared_runtime is None:
        write_runtime_layer(spec)


def write_runtime_layer(spec: SandboxSpec) -> None:
    files = runtime_files(spec)
    if files:
        etc = spec.runtime_layer / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (etc / name).write_text(text)


def _overlay(lower: list[Path], upper: Path, work: Path, target: str, *, volatile: bool = False) -> Mount:
    # userxattr: the overlay is mounted inside a user namespace (kernel >= 5.11).
    options = f"userxattr,lowerdir={':'.join(str(p) for p in lower)},upperdir={upper},workdir={work}"
    return Mount("overlay", target, "overlay", options + (",volatile" if volatile else ""))


def clear_volatile_mark(spec: SandboxSpec) -> None:
    """Let a volatile overlay's work dir serve the next mount: overlayfs refuses one that still
    holds the mark the last mount left (work/incompat/volatile)."""
    incompat = spec.work("root") / "work" / "incompat"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(incompat / "volatile" / "dirty")
    for directory in (incompat / "volatile", incompat):
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(directory)


def root_plan(spec: SandboxSpec, *, special_mounts: bool = True, staged: Path | None = None) -> list[SetupOp]:
    """The operations that build the sandbox's root inside its fresh namespaces (init.py);
    without /proc, /dev and /run for a root only the server writes into (a build's COPY), or
    with those a build step made ahead under `staged` (step_stage_plan) moved in."""
    root = str(spec.mount_point)
    runtime = [spec.runtime_layer] if runtime_files(spec) else []
    if spec.image_root:
        lower = [*runtime, *spec.layers, spec.skeleton]
        steps: list[SetupOp] = [_overlay(lower, spec.upper("root"), spec.work("root"), root, volatile=spec.volatile)]
    else:
        steps = [_overlay([*spec.layers, spec.skeleton], spec.upper("root"), spec.work("root"), root)]
        for part in HOST_DIRS:
            lower = [layer / part for layer in (*(runtime if part == "etc" else []), *spec.layers)]
            if part == "etc":
                lower.append(spec.etc_mask / "etc")
            lower.append(Path("/") / part)
            steps.append(_overlay(lower, spec.upper(part), spec.work(part), f"{root}/{part}"))
    # After every overlay of the root (a mount may be under /usr), before /proc and /dev exist.
    empty = spec.state_dir / "empty"
    steps += [ReadOnlyLayer(root, path, f"{layer}:{empty}") for layer, path in spec.mounts]
    if not special_mounts:
        return steps
    if staged is not None:
        return steps + [Move(f"{staged}/{name}", f"{root}/{name}") for name in SPECIAL_DIRS]
    return steps + _special_mounts(root)


def step_stage_plan(build: SandboxSpec) -> list[SetupOp]:
    """What a build sandbox's steps have mounted before their request comes, under the build's
    stage dir, moved into a step's root once that is mounted: its /dev and /run, fresh for each
    (each mounts them in a mount namespace of its own, on the same dirs), and /proc, the same for
    all (their one PID namespace's), mounted once by the sandbox's init (init.py)."""
    return _special_mounts(str(build.stage))


def _special_mounts(root: str) -> list[SetupOp]:
    """/proc, a small /dev of harmless devices, /dev/shm and /run."""
    dev = f"{root}/dev"
    steps: list[SetupOp] = [
        Mount("proc", f"{root}/proc", "proc", "nosuid,nodev,noexec"),
        Mount("tmpfs", dev, "tmpfs", "mode=755,size=1m,nosuid"),
    ]
    for device in DEVICES:
        steps += [File(f"{dev}/{device}"), Bind(f"/dev/{device}", f"{dev}/{device}")]
    steps += [
        Symlink("/proc/self/fd", f"{dev}/fd"),
        Symlink("/proc/self/fd/0", f"{dev}/stdin"),
        Symlink("/proc/self/fd/1", f"{dev}/stdout"),
        Symlink("/proc/self/fd/2", f"{dev}/stderr"),
        Dir(f"{dev}/shm"),
        Mount("tmpfs", f"{dev}/shm", "tmpfs", "size=64m,nosuid,nodev"),
        Mount("tmpfs", f"{root}/run", "tmpfs", "size=16m,mode=755,nosuid,nodev"),
    ]
    return steps


def sandbox_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every devbox process starts with: nothing of the host's."""
    env = {
        "PATH": SANDBOX_PATH,
        "HOME": HOME,
        "USER": "root",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "SHELL": "/bin/bash",
    }
    env.update(extra or {})
    return env
