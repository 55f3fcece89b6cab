"""Long-lived Linux sandboxes: namespaces held by an init process, execs join them.

A sandbox gets its own user, mount, PID, IPC and UTS namespaces (and network namespace unless it
is given network). Its root is a stack of overlayfs mounts built inside its own mount namespace:

    /            overlay: the sandbox's layers over a skeleton (home, root, tmp, var, ...)
    /usr, /etc   overlay: the sandbox's layers over the host's own /usr and /etc
    /proc        a fresh procfs for its PID namespace
    /dev         a small tmpfs with the harmless device nodes bound in

Writes land in the sandbox's upper directories; the host's files are never written. Secrets in the
host's /etc are hidden by whiteouts in a mask layer (see layers.py). Execs enter the namespaces
with nsenter, so background processes started by one exec are there for the next.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import anyio
from anyio.abc import Process

# Host directories shown read-only at the bottom of the devbox's filesystem, each overlaid.
HOST_DIRS = ("usr", "etc")
SANDBOX_PATH = "/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_TOOLS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
HOME = "/home/user"


class SandboxError(Exception):
    """The sandbox could not be made or reached."""


def check_host_support() -> None:
    """Raise SandboxError with a fix when this machine cannot make sandboxes."""
    missing = [tool for tool in ("unshare", "nsenter", "mount", "pivot_root") if not _which(tool)]
    if missing:
        raise SandboxError(
            f"cannot make sandboxes: {', '.join(missing)} not found on PATH; "
            "install util-linux and mount (Debian: apt-get install util-linux mount)"
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
    """Everything needed to (re)build a sandbox's root."""

    state_dir: Path  # host dir holding upper/, work/ and the mount point
    layers: tuple[Path, ...]  # read-only layer trees, topmost first
    skeleton: Path  # bottom layer of `/`
    etc_mask: Path  # whiteouts over the host's /etc secrets
    network: bool = False
    hostname: str = "devbox"

    @property
    def mount_point(self) -> Path:
        return self.state_dir / "root"

    def upper(self, part: str) -> Path:
        return self.state_dir / "upper" / part

    def work(self, part: str) -> Path:
        return self.state_dir / "work" / part


def prepare_dirs(spec: SandboxSpec) -> None:
    for part in ("root", *HOST_DIRS):
        spec.upper(part).mkdir(parents=True, exist_ok=True)
        spec.work(part).mkdir(parents=True, exist_ok=True)
    spec.mount_point.mkdir(parents=True, exist_ok=True)


def _overlay(lower: list[Path], upper: Path, work: Path, target: str) -> str:
    # userxattr: the overlay is mounted inside a user namespace (kernel >= 5.11).
    options = f"userxattr,lowerdir={':'.join(str(p) for p in lower)},upperdir={upper},workdir={work}"
    return f"mount -t overlay overlay -o {shlex.quote(options)} {target}"


def setup_script(spec: SandboxSpec) -> str:
    """The shell script that builds the root inside fresh namespaces and becomes init."""
    root = shlex.quote(str(spec.mount_point))
    lines = ["set -e", f"R={root}"]
    lines.append(_overlay([*spec.layers, spec.skeleton], spec.upper("root"), spec.work("root"), "$R"))
    for part in HOST_DIRS:
        lower = [layer / part for layer in spec.layers]
        if part == "etc":
            lower.append(spec.etc_mask / "etc")
        lower.append(Path("/") / part)
        lines.append(_overlay(lower, spec.upper(part), spec.work(part), f"$R/{part}"))
    lines += [
        "mount -t proc -o nosuid,nodev,noexec proc $R/proc",
        "mount -t tmpfs -o mode=755,size=1m,nosuid tmpfs $R/dev",
        f"for d in {' '.join(DEVICES)}; do : > $R/dev/$d; mount --bind /dev/$d $R/dev/$d; done",
        "ln -s /proc/self/fd $R/dev/fd; ln -s /proc/self/fd/0 $R/dev/stdin",
        "ln -s /proc/self/fd/1 $R/dev/stdout; ln -s /proc/self/fd/2 $R/dev/stderr",
        "mkdir $R/dev/shm; mount -t tmpfs -o size=64m,nosuid,nodev tmpfs $R/dev/shm",
        "mount -t tmpfs -o size=16m,mode=755,nosuid,nodev tmpfs $R/run",
    ]
    if not spec.network:
        lines.append("ip link set lo up 2>/dev/null || true")
    lines += [
        f"echo {shlex.quote(spec.hostname)} > /proc/sys/kernel/hostname",
        # pivot_root(".", ".") stacks the old root over the new one; detaching it leaves only ours.
        "cd $R && pivot_root . . && umount -l . && cd /",
        "echo ready",
        "exec /bin/sh -c 'trap \"\" TERM INT HUP; while :; do sleep 2147483647 & wait; done'",
    ]
    return "\n".join(lines)


def _process_start_time(pid: int) -> int | None:
    """The kernel's start time of a pid, to tell a live init from a recycled pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


@dataclass
class Sandbox:
    spec: SandboxSpec
    init_pid: int
    init_start_time: int | None = None
    _keeper: Process | None = field(default=None, repr=False)

    @classmethod
    async def start(cls, spec: SandboxSpec) -> Sandbox:
        prepare_dirs(spec)
        argv = ["unshare", "--user", "--map-root-user", "--mount", "--pid", "--ipc", "--uts", "--fork"]
        if not spec.network:
            argv.append("--net")
        argv += ["/bin/sh", "-c", setup_script(spec)]
        keeper = await anyio.open_process(
            argv,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={"PATH": HOST_TOOLS_PATH, "LANG": "C.UTF-8"},
            start_new_session=True,
        )
        assert keeper.stdout is not None and keeper.stderr is not None
        ready = b""
        with anyio.move_on_after(30):
            async for chunk in keeper.stdout:
                ready += chunk
                if b"ready" in ready:
                    break
        if b"ready" not in ready:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(keeper.pid, signal.SIGKILL)
            err = b""
            with anyio.move_on_after(2):
                async for chunk in keeper.stderr:
                    err += chunk
            await keeper.wait()
            raise SandboxError(f"sandbox setup failed: {err.decode(errors='replace').strip() or 'no output'}")
        children = Path(f"/proc/{keeper.pid}/task/{keeper.pid}/children").read_text().split()
        init_pid = int(children[0])
        return cls(spec, init_pid, _process_start_time(init_pid), keeper)

    @classmethod
    def attach(cls, spec: SandboxSpec, init_pid: int, init_start_time: int | None) -> Sandbox:
        return cls(spec, init_pid, init_start_time)

    def alive(self) -> bool:
        return self.init_start_time is not None and _process_start_time(self.init_pid) == self.init_start_time

    def enter_argv(self) -> list[str]:
        """argv prefix that runs a program inside the sandbox, from its root."""
        return ["nsenter", "-t", str(self.init_pid), "-a", "-r", "-w", "--"]

    async def kill_all_but_init(self) -> None:
        """Stop every process in the sandbox except its init (scoring starts from rest)."""
        await self.run_quiet(["/bin/sh", "-c", "kill -9 -1 2>/dev/null; exit 0"])

    async def run_quiet(self, argv: list[str], stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
        """Run a short internal helper inside the sandbox and collect its output."""
        result = await anyio.run_process(
            [*self.enter_argv(), *argv],
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            check=False,
            env=sandbox_env(),
        )
        return result.returncode, result.stdout, result.stderr

    async def run(
        self,
        argv: list[str],
        *,
        stdout: IO[bytes],
        stderr: IO[bytes],
        timeout: float,
        env: dict[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> tuple[int, bool]:
        """Run a program inside the sandbox with a deadline; returns (exit status, timed out).

        On timeout, or when the caller is cancelled, the program's whole process group is killed.
        """
        process = await anyio.open_process(
            [*self.enter_argv(), *argv],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=sandbox_env(env),
            start_new_session=True,
        )
        timed_out = False
        try:
            if stdin is not None and process.stdin is not None:
                await process.stdin.send(stdin)
                await process.stdin.aclose()
            with anyio.move_on_after(timeout) as scope:
                await process.wait()
            timed_out = scope.cancelled_caught
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                with anyio.CancelScope(shield=True):
                    await process.wait()
            await process.aclose()
        assert process.returncode is not None
        return process.returncode, timed_out

    async def stop(self) -> None:
        """Kill init: the kernel then kills every process of the PID namespace, and the mount
        namespace (with all its overlays) goes away with its last process."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.init_pid, signal.SIGKILL)
        if self._keeper is not None:
            with anyio.move_on_after(5):
                await self._keeper.wait()
            await self._keeper.aclose()
            self._keeper = None
        else:
            with anyio.move_on_after(5):
                while _process_start_time(self.init_pid) == self.init_start_time is not None:
                    await anyio.sleep(0.01)


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
