"""One sandbox for a whole Dockerfile build: namespaces and network started once, a root per step.

A build sandbox's init (sandbox/init.py, `build`) holds the user, PID, IPC, UTS and network
namespaces (slirp4netns behind the devbox egress rules) for the whole build, and starts each step
in a fresh mount namespace whose root is planned here as a devbox's is (spec.root_plan): the
step's layers under a fresh upper directory, with /proc, /dev and /run. When a RUN's command
exits, init kills whatever it left before reporting, so its upper directory is the step's changes,
still, ready to be frozen into a layer. A hold is a step without a command: its root, held open
for the server to read from the host (COPY --from's stage).

What a step can reach is what a devbox can: its own root, locked in a nested user namespace; the
init that keeps the host's view is no process a step may inspect (it is not dumpable).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.to_thread

from .launcher import LaunchedProcess, launch
from .layered_view import LayeredView
from .sandbox import LAUNCHER_SOCKET, Sandbox, SandboxError, SandboxSpec
from .sandbox.mount_plan import encode
from .sandbox.rootfs import user_ids
from .sandbox.spec import clear_volatile_mark, prepare_dirs, root_plan, write_runtime_layer
from .sandbox.step_starter import compiled_step_starter, step_starter

STEP_DIRS_AHEAD = 2  # step dirs kept ready (_renew_used): one made while the sandbox starts


@dataclass(frozen=True)
class StepOutcome:
    exit_status: int
    timed_out: bool
    upper: Path  # the step's upper dirs (its changes in `root`), for LayerStore.adopt


@dataclass
class BuildSandbox:
    sandbox: Sandbox
    skeleton: Path
    hostname: str
    _numbers: itertools.count[int] = field(default_factory=itertools.count)
    _fresh: list[Path] = field(default_factory=list)  # step dirs ready for a step (_renew)
    _used: list[Path] = field(default_factory=list)  # step dirs steps have ended in, to make ready again
    _releasing: list[LaunchedProcess] = field(default_factory=list)  # holds let go, maybe not yet gone

    @classmethod
    async def start(
        cls,
        state_dir: Path,
        *,
        skeleton: Path,
        etc_mask: Path,
        network: bool,
        hostname: str,
        use_step_starter: bool = True,
    ) -> BuildSandbox:
        """A build sandbox; `use_step_starter=False` makes its steps' processes the slower way,
        forked from Python, as where no C compiler is (step_starter.py)."""
        starter = compiled_step_starter() if use_step_starter else None
        if use_step_starter and starter is None:  # compiled once per machine and release
            starter = await anyio.to_thread.run_sync(step_starter)
        spec = SandboxSpec(
            state_dir=state_dir,
            layers=(),
            skeleton=skeleton,
            etc_mask=etc_mask,
            network=network,
            hostname=hostname,
            image_root=True,
            build=True,
            step_starter=starter,
        )
        # The first step's dir; the next is made while the first RUN runs (_renew_used): the
        # first step waits for this, and on a busy disk each directory made counts.
        first = state_dir / "steps" / "first"

        def prepare_ahead() -> None:
            write_runtime_layer(_step_spec(spec, state_dir, ()))  # the steps' one runtime layer
            prepare_dirs(_step_spec(spec, first, ()))

        # Off the event loop (a busy disk makes each mkdir slow, and the build's COPYs go on
        # meanwhile): the dirs init needs at its start, then the steps' while it starts.
        await anyio.to_thread.run_sync(prepare_dirs, spec)
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, prepare_ahead)
            sandbox = await Sandbox.start(spec)
        return cls(sandbox, skeleton, hostname, _fresh=[first])

    @property
    def state_dir(self) -> Path:
        return self.sandbox.spec.state_dir

    @contextlib.contextmanager
    def _step_root(
        self, layers: tuple[Path, ...], *, special_mounts: bool = True
    ) -> Iterator[tuple[SandboxSpec, dict[str, Any]]]:
        """A directory for a step's root, and the step's part of its request.

        Directories are used again by later steps. On a busy disk removing a directory costs
        more than making one (most of all on one mounted with `discard`), so a used step dir is
        made ready again (_renew) while a later RUN's command runs, off the path of a step; a step
        that finds none ready gets a new one."""
        fresh = bool(self._fresh)
        state_dir = self._fresh.pop() if fresh else self.state_dir / "steps" / str(next(self._numbers))
        spec = _step_spec(self.sandbox.spec, state_dir, layers)
        if not fresh:
            prepare_dirs(spec)
        try:
            # A RUN's /proc, /dev and /run were made ahead by the process that takes the step (init.py).
            plan = root_plan(spec, special_mounts=special_mounts, staged=self.sandbox.spec.stage)
            yield spec, {"plan": encode(plan), "root": str(spec.mount_point)}
        finally:
            self._used.append(state_dir)  # made ready again while a later RUN runs (_renew_used)

    def _renew(self, state_dir: Path) -> None:
        """Make a step dir a step has ended in ready for another: the overlay's work dir, the
        mount point and the runtime files stay; the upper dir is new (the last step's having
        become its layer, or, unused, been put aside). Blocking."""
        spec = _step_spec(self.sandbox.spec, state_dir, ())
        upper = spec.upper("root")
        if upper.exists():  # a hold's that was not frozen (COPY --from's source), or a failed step's
            upper.rename(state_dir / f"unused-{next(self._numbers)}")
        upper.mkdir()
        clear_volatile_mark(spec)

    async def _renew_used(self) -> None:
        """Make ready the step dirs earlier steps ended in: their layers are frozen, and their holds,
        let go, end here (_settle), not on the path of the step after them."""
        await self._settle()
        used, self._used = self._used, []
        # New ones too, up to STEP_DIRS_AHEAD: else a hold, RUN, hold, RUN finds none ready at
        # its second RUN (its dir was the first hold's, renewed only during that RUN) and makes
        # one on its path (~2 ms).
        new = [
            self.state_dir / "steps" / str(next(self._numbers))
            for _ in range(STEP_DIRS_AHEAD - len(self._fresh) - len(used))
        ]
        if not used and not new:
            return

        def renew_all() -> None:
            for state_dir in used:
                self._renew(state_dir)
            for state_dir in new:
                prepare_dirs(_step_spec(self.sandbox.spec, state_dir, ()))

        await anyio.to_thread.run_sync(renew_all)
        self._fresh += used + new

    def _socket(self) -> Path:
        return self.state_dir / LAUNCHER_SOCKET

    async def run(
        self,
        layers: tuple[Path, ...],
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: str,
        user: str | None,
        output: IO[bytes],
        timeout: float,
    ) -> StepOutcome:
        """Run a RUN step's command over `layers` (topmost first), its output to `output`.

        `user`: a Docker USER spec, looked up in the step's own /etc/passwd and /etc/group (its
        layers', read from the host: RootPathError when it names nobody there); HOME is that
        user's unless `env` sets it. `cwd` is made when missing, as Docker makes WORKDIR."""
        uid, gid, home = user_ids(LayeredView(layers), user) if user else (0, 0, "/root")
        env = {"HOME": home, **env}
        with self._step_root(layers) as (spec, step):
            step["user"] = [uid, gid]
            devnull = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
            try:
                fds = (devnull, output.fileno(), output.fileno())
                process = launch(self._socket(), argv, env, fds, cwd=cwd, step=step)
            finally:
                os.close(devnull)
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._renew_used)  # while the command runs
                    with anyio.move_on_after(timeout) as scope:
                        code = await process.wait()
                    if scope.cancelled_caught:
                        process.signal(signal.SIGKILL, group=True)  # init then ends all the step left
                        with anyio.CancelScope(shield=True):
                            code = await process.wait()
            finally:
                await process.aclose()
            if process.start_error is not None:  # said where the step's output goes
                output.write(f"{process.start_error}\n".encode())
            return StepOutcome(code, scope.cancelled_caught, spec.state_dir / "upper")

    @contextlib.asynccontextmanager
    async def hold(self, layers: tuple[Path, ...]) -> AsyncIterator[tuple[Path, Path]]:
        """A root over `layers` for the server to read from, as a host path that
        resolves inside it (rootfs.resolve), and its upper dirs; released (the step's process
        gone, its mount with it) when the block ends."""
        # The overlay alone: what a COPY --from reads is the stage's (its /dev too).
        with self._step_root(layers, special_mounts=False) as (spec, step):
            step["hold"] = True
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            process: LaunchedProcess | None = None
            root_fd = -1
            try:
                with theirs:
                    fd = theirs.fileno()
                    process = launch(self._socket(), ["hold"], {}, (fd, fd, fd), step=step)
                root_fd = await _receive_root(ours)
                yield Path(f"/proc/self/fd/{root_fd}"), spec.state_dir / "upper"
            finally:
                if root_fd >= 0:
                    os.close(root_fd)  # the last reference to its mount but the step's own
                ours.close()  # the step's process exits at this end of file
                if process is not None:
                    # Waited for before its dir is used again (_renew_used), not here: its exit
                    # (its mount's teardown) overlaps the freeze of what was written, which no
                    # process writes any more, and the steps after it.
                    self._releasing.append(process)

    async def _settle(self) -> None:
        """Wait until every hold let go has ended (its mount gone): before its dir is used again."""
        while self._releasing:
            process = self._releasing.pop()
            with anyio.CancelScope(shield=True):
                await process.wait()
                await process.aclose()

    async def stop(self, *, remove: bool = True) -> None:
        """End the sandbox; `remove=False` leaves its directory to whoever owns the dir it is in."""
        for process in self._releasing:
            await process.aclose()
        await self.sandbox.stop()
        if remove:
            await anyio.to_thread.run_sync(shutil.rmtree, self.state_dir, True)


def _step_spec(build: SandboxSpec, state_dir: Path, layers: tuple[Path, ...]) -> SandboxSpec:
    """A step's root in a build sandbox (`build`): an image root, its overlay volatile (no disk
    sync at its unmount: the upper dir is renamed into the store after)."""
    return SandboxSpec(
        state_dir=state_dir,
        layers=layers,
        skeleton=build.skeleton,
        etc_mask=build.etc_mask,
        network=build.network,
        hostname=build.hostname,
        image_root=True,
        volatile=True,
        shared_runtime=build.state_dir / "runtime",  # one for all steps (BuildSandbox.start)
    )


async def _receive_root(sock: socket.socket) -> int:
    sock.setblocking(False)
    data = b""
    while True:
        await anyio.wait_readable(sock)
        try:
            chunk, fds, _flags, _addr = socket.recv_fds(sock, 4096, 1)
        except BlockingIOError:
            continue
        if fds:
            for extra in fds[1:]:
                os.close(extra)
            return fds[0]
        if not chunk:
            raise SandboxError(f"the build step's root could not be made: {data.decode(errors='replace').strip()}")
        data += chunk
