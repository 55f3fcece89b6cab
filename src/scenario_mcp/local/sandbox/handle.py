"""A running sandbox: started through the spawner helper, entered, stopped.

The init that holds a sandbox's namespaces is started by a small helper process with direct
syscalls (spawner.py); it does not depend on the server and outlives it. Init starts the devbox's
commands itself (launcher.py), so background processes started by one command are there for the
next; internal helpers enter with nsenter.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import anyio
import anyio.lowlevel
import anyio.to_thread
from anyio.lowlevel import RunVar

from .. import helper_processes
from ..limits import remove_spare, spare_cgroup_parents
from . import mount_plan, spawner
from .init import Request
from .proc_state import dying
from .rootfs import resolve
from .spec import HOST_TOOLS_PATH, SandboxError, SandboxSpec, prepare_dirs, root_plan, sandbox_env, step_stage_plan

# A start waits for its init to build the root (mounts): with one helper, starts queue behind
# each other's setup however many cores there are. A few helpers let them overlap.
SPAWNERS = max(2, min(4, os.cpu_count() or 2))
_SPAWN_QUEUE: RunVar[anyio.CapacityLimiter] = RunVar("scenario_mcp_spawn_queue")


def _queue() -> anyio.CapacityLimiter:
    """This event loop's queue for the spawners: one token per helper."""
    try:
        return _SPAWN_QUEUE.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(SPAWNERS)
        _SPAWN_QUEUE.set(limiter)
        return limiter


class _Spawner:
    """The client side of this process's spawner helper (spawner.py), started on first use.

    Per process, not per event loop: requests are pipe round trips, one at a time. The helper
    exits when this process does (its stdin closes); the sandboxes it started do not.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    def _ensure(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is not None:
            self._forget()  # it died (killed from outside, say): a new one, its pipes closed
        if self._process is None:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", spawner.__file__, *(str(p) for p in spare_cgroup_parents())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={"PATH": HOST_TOOLS_PATH, "LANG": "C.UTF-8"},
                start_new_session=True,  # a Ctrl-C at the server's terminal is not for it
            )
        return self._process

    async def spawn_if_free(self, line: bytes) -> tuple[int, str | None] | None:
        """Start a sandbox if no other start holds this helper (None if one does). Awaited in this
        event loop: a start takes a few milliseconds, and a worker thread would add a hop each way
        (callers shield this from cancellation: a reply is never left unread)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            fd = self._send(line)
            answer = b""
            while not answer.endswith(b"\n"):
                await anyio.wait_readable(fd)
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                answer += chunk
            return self._answer(answer)
        finally:
            self._lock.release()

    def _spawn_blocking(self, line: bytes) -> tuple[int, str | None]:
        with self._lock:
            fd = self._send(line)
            answer = b""
            while not answer.endswith(b"\n") and (chunk := os.read(fd, 1 << 16)):
                answer += chunk
            return self._answer(answer)

    def _send(self, line: bytes) -> int:
        """Send a request (starting the helper again if it died since the last one); the
        descriptor its answer comes on. Under the lock."""
        for attempt in range(2):
            process = self._ensure()
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(line)
                process.stdin.flush()
            except BrokenPipeError:  # it died since the last request: start a new one
                self._forget()
                if attempt:
                    raise SandboxError("the sandbox spawner exits as soon as it starts") from None
                continue
            return process.stdout.fileno()  # read raw: one answer per request, nothing buffered
        raise AssertionError("unreachable")

    def _answer(self, answer: bytes) -> tuple[int, str | None]:
        if not answer.endswith(b"\n"):
            self._forget()
            raise SandboxError("the sandbox spawner died while starting a sandbox; try again")
        reply = json.loads(answer)
        if not reply["ok"]:
            raise SandboxError(f"sandbox setup failed: {reply['error']}")
        return int(reply["pid"]), reply.get("cgroup")

    def _forget(self) -> None:
        if self._process is not None:
            with contextlib.suppress(OSError):
                self._process.kill()
            self._process.wait()
            for pipe in (self._process.stdin, self._process.stdout):
                # Closed now, its unsent request dropped: closed by the collector, it would raise there.
                with contextlib.suppress(OSError):
                    if pipe is not None:
                        pipe.close()
            self._process = None

    def pid(self) -> int | None:
        """The helper's pid while it runs."""
        process = self._process
        return None if process is None or process.returncode is not None else process.pid

    def close(self) -> None:
        """At exit: close its stdin so that it ends (sandboxes live on)."""
        if not self._lock.acquire(timeout=5):
            return  # a request is stuck: our exit closes the pipe all the same
        try:
            if self._process is not None:
                with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                    self._process.communicate(timeout=2)
                self._process = None
        finally:
            self._lock.release()


class _Spawners:
    """This process's spawner helpers, each started on first use."""

    def __init__(self, count: int) -> None:
        self.helpers = [_Spawner() for _ in range(count)]

    async def spawn(self, request: Request) -> tuple[int, str | None]:
        """The host pid of a new sandbox init, and the spare cgroup it already sits in.

        This loop's callers queue on an async limiter, not in worker threads (32 starts at once
        would take every worker thread, and with them every SQLite read); only while other
        threads' or loops' starts hold every helper does one wait for a helper in a thread."""
        line = json.dumps(request).encode() + b"\n"
        async with _queue():
            for helper in self.helpers:
                started = await helper.spawn_if_free(line)
                if started is not None:
                    return started
            return await anyio.to_thread.run_sync(self.helpers[0]._spawn_blocking, line)

    def pids(self) -> set[int]:
        """The pids of the helpers that run now."""
        return {pid for helper in self.helpers if (pid := helper.pid()) is not None}

    def close(self) -> None:
        for helper in self.helpers:
            helper.close()


_SPAWNERS = _Spawners(SPAWNERS)
atexit.register(_SPAWNERS.close)


def _parent_pid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _process_start_time(pid: int, *, dead_too: bool = False) -> int | None:
    """The kernel's start time of a pid, to tell our init from a recycled pid. None when there is
    no such process or (unless dead_too) it is a zombie: dead, waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X") and not dead_too:
        return None
    return int(fields[19])


def _feed(pipe: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError), pipe:  # BrokenPipe: the program did not read it all
        pipe.write(data)


@dataclass
class Sandbox:
    spec: SandboxSpec
    init_pid: int
    init_start_time: int | None = None
    # Cgroups init already sits in, to be adopted (limits.py); None once adopted.
    spare_cgroup: str | None = None

    @classmethod
    async def start(cls, spec: SandboxSpec, *, deadline: float | None = None) -> Sandbox:
        """A new sandbox; its init ends it by itself at `deadline` (time.time()) if nobody has."""
        prepare_dirs(spec)
        request: Request = {
            "root": str(spec.mount_point),
            # A build sandbox's plan is what each step prepares ahead (its root comes with it).
            "plan": mount_plan.encode(step_stage_plan(spec) if spec.build else root_plan(spec)),
            "network": spec.network,
            "hostname": spec.hostname,
            "launcher_dir": str(spec.state_dir),
            "egress_allow": None if spec.egress_allow is None else list(spec.egress_allow),
            "build": spec.build,
            "step_starter": None if spec.step_starter is None else str(spec.step_starter),
            "deadline": deadline,
        }
        # Shielded: a sandbox started for a caller who is gone would run on with nobody to stop it.
        with anyio.CancelScope(shield=True):
            init_pid, spare_cgroup = await _SPAWNERS.spawn(request)
            sandbox = cls(spec, init_pid, _process_start_time(init_pid), spare_cgroup)
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await sandbox.stop()
            raise
        return sandbox

    @classmethod
    def attach(cls, spec: SandboxSpec, init_pid: int, init_start_time: int | None) -> Sandbox:
        return cls(spec, init_pid, init_start_time)

    def alive(self) -> bool:
        """Its init runs, and is not dying: a devbox that can still serve."""
        return self._exists() and not dying(self.init_pid)

    def _exists(self) -> bool:
        return self.init_start_time is not None and _process_start_time(self.init_pid) == self.init_start_time

    def enter_argv(self, *, cwd: str | None = None, uid: int = 0, gid: int = 0) -> list[str]:
        """argv prefix that runs a program inside the sandbox, from its root (in `cwd`, as
        `uid`:`gid` when given; ids other than 0 need a root server's id range).

        The sandbox's own namespaces only (not `-a`: an unprivileged server may not enter the
        host's cgroup namespace, even to stay where it is)."""
        namespaces = ["-U", "-m", "-p", "-i", "-u", "-n"]
        # Unprivileged, setgroups is denied in the sandbox: keep our ids (root inside) as they are.
        credentials = [] if os.geteuid() == 0 else ["--preserve-credentials"]
        if uid or gid:
            credentials = [f"--setuid={uid}", f"--setgid={gid}"]
        # nsenter opens --wd in its own (the host's) view: name the directory through init's root.
        where = f"--wd={resolve(Path(f'/proc/{self.init_pid}/root'), cwd)}" if cwd else "-w"
        return ["nsenter", "-t", str(self.init_pid), *namespaces, *credentials, "-r", where, "--"]

    async def kill_all_but_init(self) -> None:
        """Stop every process in the sandbox except its init (scoring starts from rest)."""
        await self.run_quiet(["/bin/sh", "-c", "kill -9 -1 2>/dev/null; exit 0"])

    async def run_quiet(self, argv: list[str], stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
        """Run a short internal helper inside the sandbox and collect its output."""
        return await helper_processes.run([*self.enter_argv(), *argv], input=stdin, env=sandbox_env())

    async def run(
        self,
        argv: list[str],
        *,
        stdout: IO[bytes],
        stderr: IO[bytes],
        timeout: float,
        env: dict[str, str] | None = None,
        stdin: bytes | None = None,
        cwd: str | None = None,
        uid: int = 0,
        gid: int = 0,
    ) -> tuple[int, bool]:
        """Run a program inside the sandbox with a deadline; returns (exit status, timed out).

        On timeout, or when the caller is cancelled, the program's whole process group is killed.
        """
        process = await helper_processes.start(
            [*self.enter_argv(cwd=cwd, uid=uid, gid=gid), *argv],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=sandbox_env(env),
        )
        timed_out = False
        try:
            if stdin is not None and process.stdin is not None:
                await anyio.to_thread.run_sync(_feed, process.stdin, stdin, abandon_on_cancel=True)
            with anyio.move_on_after(timeout) as scope:
                await helper_processes.wait(process)
            timed_out = scope.cancelled_caught
        finally:
            await helper_processes.end(process)
        return process.returncode, timed_out

    async def stop(self) -> None:
        """Kill init: the kernel then kills every process of the PID namespace, and the mount
        namespace (with all its overlays) goes away with its last process.

        Returns once init has exited (at most 5 s), and has been reaped if that is quick: the
        spawner reaps the inits it started at once; an init from before a server restart is
        reaped by the host's init, in its own time.

        A spare cgroup its init sat in and that nobody adopted goes with it."""
        try:
            await self._kill_init()
        finally:
            if self.spare_cgroup is not None:
                spare, self.spare_cgroup = self.spare_cgroup, None
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(remove_spare, spare)

    async def _kill_init(self) -> None:
        if not self._exists():
            return
        try:
            pidfd = os.pidfd_open(self.init_pid)
        except ProcessLookupError:
            return
        try:
            if not self._exists():  # the pid was recycled before we held it
                return
            # Our spawner reaps the inits it started the moment they exit; an init from before a
            # restart (or a killed spawner) has another parent, which reaps in its own time.
            ours = _parent_pid(self.init_pid) in _SPAWNERS.pids()
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            with anyio.move_on_after(5):
                await anyio.wait_readable(pidfd)  # readable once it has exited
            if not ours:
                return  # it has exited: its namespaces and mounts are gone; the reaping is not ours
            with anyio.move_on_after(0.5):
                while _process_start_time(self.init_pid, dead_too=True) == self.init_start_time:
                    await anyio.sleep(0.001)
        finally:
            os.close(pidfd)
