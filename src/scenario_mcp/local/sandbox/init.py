"""The devbox's init: PID 1 of its PID namespace, which builds its root and starts its commands.

Forked ahead of time by the spawner (spawner.py) into fresh user, PID, IPC and UTS namespaces, it
takes the nested user namespace its parent made (mapping its ids), makes its own network
namespace (network.py) and mount namespace (a slave of the host's), then waits for its request.
Given one, it applies the request's mount plan (mount_plan.py), sets the hostname, binds the
launcher socket, pivots into the root, locks it (it enters the nested user namespace, and a
mount namespace of its own there), and serves: it starts every command the server sends (a
vfork, so a command starts inside every namespace and cgroup of the devbox), reports its exit,
and reaps orphans. Standard library only.

A build sandbox's init (`build` in the request) has no root of its own: it keeps its mount
namespace (the host's view, never shown to a step: it pivots nowhere, and no step may read its
/proc entries) and starts each Dockerfile step in a fresh mount namespace whose root is the step's
own plan, an overlay of the steps before it under a fresh upper directory; the step's processes
share the sandbox's user, PID and network namespaces, started once for the whole build. A step
locks itself in as a devbox's init does, and when its command exits every process it left is
killed before its exit is reported, so its upper directory is still when the server freezes it.
Each step's process is made ahead of its request, while the step before runs (a spare: its
start, its mount namespace, its /dev and /run off the path of the step); its /proc is init's,
mounted and hardened once. The spare is forked by the C step starter (step_starter.c), started
once while no step runs, or where no C compiler is, from init's Python (step_process.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import time
from typing import Any, TypedDict

from . import libc, lockin, mount_plan, network, proc_state, step_process
from .protocol import LAUNCHER_SOCKET, MAX_MESSAGE


class Request(TypedDict):
    root: str  # the mount point that becomes `/`
    plan: list[dict[str, Any]]  # the mount plan, encoded (mount_plan.encode)
    network: bool  # outbound connectivity through slirp4netns (every sandbox has its own netns)
    hostname: str
    launcher_dir: str  # where init listens for commands to start (LAUNCHER_SOCKET in it)
    egress_allow: list[str] | None  # with network: only these addresses (an allowlist policy)
    build: bool  # a build sandbox: no root of its own, each step in a root of its own (see above)
    step_starter: str | None  # a build sandbox's: the C step starter (step_starter.c), else Python's spare
    deadline: float | None  # wall-clock time (time.time()) at which init ends the sandbox by itself


def run(report: int, requests: int, network_exit: int, ruleset: str, nest: tuple[int, int]) -> None:
    """PID 1 of the new PID namespace: wait for a request, build the root, become the init shell.

    `network_exit` (with network; else -1) is the write end of slirp4netns's exit pipe: held open
    by init alone, it closes when init ends, and slirp4netns with it. `nest` is the pipe pair to
    its parent, which makes the nested user namespace (nest_user_namespace)."""
    networked = network_exit >= 0
    os.setsid()
    nested_user_ns = lockin.take_nested_user_namespace(*nest)
    network.own_network(networked, ruleset)
    # The mount namespace, made ahead of time too: a slave of the host's, so that it still
    # follows the host's mounts when the request comes, and nothing mounted here propagates back.
    libc.unshare(libc.CLONE_NEWNS, "unshare(CLONE_NEWNS)")
    libc.mount(None, "/", None, libc.MS_REC | libc.MS_SLAVE, None)
    os.write(report, b"N\n")  # the spawner may attach slirp4netns to this namespace now
    data = b""
    while chunk := os.read(requests, 1 << 16):
        data += chunk
    if not data:
        os._exit(0)  # the spawner is gone: nothing to start
    request: Request = json.loads(data)
    if request["network"] != networked:
        raise libc.SpawnError(f"internal error: a request for network={request['network']} went to the wrong process")
    if networked and request.get("egress_allow") is not None:
        # Before any command exists, while init still holds CAP_NET_ADMIN over its namespace.
        network.apply_ruleset(network.allowlist_ruleset(request["egress_allow"] or []))
    building = bool(request.get("build"))
    if building:  # its steps' procfs, the same for all (one PID namespace): the rest is each step's
        for operation in mount_plan.decode(request["plan"]):
            if isinstance(operation, mount_plan.Mount) and lockin.is_procfs(operation):
                operation.apply()
                lockin.harden_proc(operation.target)
    else:
        for step in mount_plan.decode(request["plan"]):
            step.apply()
    libc.sethostname(request["hostname"])
    listener = _listen(request["launcher_dir"])
    if building:
        libc.make_undumpable()
        os.chdir("/")
    else:
        libc.pivot_into(request["root"])
        lockin.harden_and_lock(nested_user_ns)
    os.dup2(0, 2)  # /dev/null, like 0 and 1
    keep = sorted({report, listener.fileno(), *([network_exit] if networked else [])})
    if building:
        keep = sorted({*keep, nested_user_ns})  # each step enters it
    for low, high in zip([2, *keep], [*keep, 1 << 16], strict=True):
        os.closerange(low + 1, high)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    # "R" then end of file is how the spawner learns of success.
    os.write(report, b"R\n")
    os.close(report)
    _serve(
        listener,
        nested_user_ns if building else None,
        request.get("deadline"),
        request["plan"],
        request.get("step_starter"),
    )


def _listen(directory: str) -> socket.socket:
    """The launcher socket, bound on the host's filesystem before the root is pivoted away.

    Bound by a relative name (socket paths are short) and readable by the server's uid only."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    os.chdir(directory)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(LAUNCHER_SOCKET)
    old_umask = os.umask(0o177)
    try:
        listener.bind(LAUNCHER_SOCKET)
    finally:
        os.umask(old_umask)
    listener.listen(128)
    return listener


def _serve(
    listener: socket.socket,
    build_user_ns: int | None = None,
    deadline: float | None = None,
    stage_plan: list[dict[str, Any]] | None = None,
    step_starter: str | None = None,
) -> None:
    """PID 1 of the devbox: start the commands the server sends, report their exit, reap orphans.

    A request is one SOCK_SEQPACKET message, {"argv", "env", "cwd", "rlimits"} with the command's
    stdin, stdout and stderr attached (SCM_RIGHTS). The one reply on the same connection: {"exit",
    "pid"} when it ends, or {"error"}. {"signal", "group"} on it signals the command (or its group).
    When the server goes away the command runs on (a background process), unreported.

    At `deadline` (the devbox's keep-alive time; {"op": "deadline", "at"} moves it) init exits,
    taking the devbox with it, whether or not a server is there to do it."""
    wake_r, wake_w = os.pipe()
    for fd in (wake_r, wake_w):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wake_w)
    # Handled, not ignored: a command starts with every signal at its default (exec resets
    # handlers, but an ignored signal would stay ignored in it). What the server was started
    # ignoring (a shell's `&` ignores SIGINT and SIGQUIT) goes back to the default first.
    for sig in range(1, signal.NSIG):
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            if signal.getsignal(sig) == signal.SIG_IGN:
                signal.signal(sig, signal.SIG_DFL)
    for sig in step_process.HANDLED_SIGNALS:
        signal.signal(sig, lambda *_: None)
    launcher = _Launcher(build_user_ns, deadline, stage_plan, step_starter)
    if build_user_ns is not None:
        launcher.make_spare()
    while True:
        wait = None if launcher.deadline is None else launcher.deadline - time.time()
        try:
            watched: list[socket.socket | int] = [
                listener,
                wake_r,
                *launcher.connections.values(),
                *launcher.starting.values(),
            ]
            # Past the deadline, what is already waiting is still read (a keep-alive sent while
            # the devbox was frozen, say) before init gives up.
            readable, _, _ = select.select(watched, [], [], None if wait is None else max(wait, 0))
        except InterruptedError:
            continue
        if not readable and wait is not None and wait <= 0:
            os._exit(0)  # the keep-alive time: as PID 1 goes, every process of the devbox goes
        if wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_r, 4096):
                    pass
        launcher.reap()
        for ready in readable:
            if ready is listener:
                with contextlib.suppress(OSError):
                    conn, _ = listener.accept()
                    launcher.connections[conn.fileno()] = conn
                    if select.select([conn], [], [], 0)[0]:  # its request, sent with the connect: now
                        launcher.handle(conn)
            elif isinstance(ready, socket.socket) and ready.fileno() in launcher.starting:
                launcher.step_started(ready)
            elif isinstance(ready, socket.socket):
                launcher.handle(ready)


_RLIMITS = ("FSIZE", "AS", "NPROC")
FORKER_TIMEOUT = 2.0  # seconds for the C step starter to hand a spare (a step may have stopped it)


class _Launcher:
    """Init's bookkeeping of the connections it serves and the commands it started."""

    def __init__(
        self,
        build_user_ns: int | None = None,
        deadline: float | None = None,
        stage_plan: list[dict[str, Any]] | None = None,
        step_starter: str | None = None,
    ) -> None:
        self.build_user_ns = build_user_ns  # a build sandbox's: the user namespace its steps enter
        self.stage_plan = stage_plan or []  # a build sandbox's: what a step prepares before its request
        # A build sandbox's procfs (its one PID namespace's), as init sees it: what a RUN left is found there.
        self.proc = next(
            (
                op.target
                for op in mount_plan.decode(self.stage_plan)
                if isinstance(op, mount_plan.Mount) and lockin.is_procfs(op)
            ),
            None,
        )
        self.step_starter = step_starter  # a build sandbox's C step starter, or None (Python's spare)
        self.spare: tuple[int, socket.socket] | None = None  # a build's next step's process, made ahead
        self.forker: tuple[int, socket.socket] | None = None  # a build's C step starter, which makes the spares
        self.starting: dict[int, socket.socket] = {}  # RUN steps' sockets, open until their exec (step_started)
        self.contained: set[int] = set()  # a build's RUN steps: all they left is killed when they end
        self.deadline = deadline
        self.connections: dict[int, socket.socket] = {}
        self.pid_of: dict[int, int] = {}  # connection fd -> its command's pid
        self.connection_of: dict[int, socket.socket] = {}  # command pid -> its connection
        # Kept until init reaps them, so subprocess never reaps one behind init's back.
        self.started: dict[int, subprocess.Popen[bytes]] = {}
        self.rlimits: dict[str, int] = {}  # the rlimits init took on itself: its commands inherit them

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.contained:  # reported once the rest is gone
                self.contained.discard(pid)
                self._end_the_rest()
            self._exited(pid, os.waitstatus_to_exitcode(status))
            if self.build_user_ns is not None and self.spare is None and not self.contained:
                # The step killed it, or the forker (restarted only now that no step runs): after
                # the reply, overlapping what the server does next.
                self.make_spare()

    def _end_the_rest(self) -> None:
        """After a build's RUN step: kill every process it left (a daemon, a background job) and
        reap them, so that nothing writes its upper directory any more or holds its mount
        namespace when the server hears the step ended. (No hold is open while a RUN runs.)

        All but init and the next step's spare, forked while the step ran (start_step): every
        process the namespace's procfs lists, again until none is left, as a process killed may
        have forked meanwhile. Blocking: nothing else runs in a build sandbox meanwhile."""
        assert self.proc is not None
        if self.spare is not None and proc_state.dying(self.spare[0], self.proc):
            self.spare[1].close()  # the step killed it: reaped below or later, and another made
            self.spare = None
        if self.forker is not None and proc_state.dying(self.forker[0], self.proc):
            self._drop_forker()  # the step killed it: started again now that no step runs (reap)
        spared = {1, *(made[0] for made in (self.spare, self.forker) if made is not None)}
        for pid in spared - {1}:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGCONT)  # the step may have stopped it
        while True:
            left = [int(name) for name in os.listdir(self.proc) if name.isdigit() and int(name) not in spared]
            if not left:
                return
            reaped = False
            for pid in left:
                with contextlib.suppress(OSError):  # gone meanwhile
                    os.kill(pid, signal.SIGKILL)
            for pid in left:
                try:
                    _, status = os.waitpid(pid, 0)
                except ChildProcessError:  # not init's (yet): it is once the process above it is gone
                    continue
                reaped = True
                self._exited(pid, os.waitstatus_to_exitcode(status))
            if not reaped:
                time.sleep(0.0002)  # a parent still being torn down

    def _exited(self, pid: int, code: int) -> None:
        if self.spare is not None and self.spare[0] == pid:  # killed with what a RUN step left
            self.spare[1].close()
            self.spare = None
        if self.forker is not None and self.forker[0] == pid:
            self._drop_forker()
        process = self.started.pop(pid, None)
        if process is not None:
            process.returncode = code
        conn = self.connection_of.pop(pid, None)
        if conn is not None:
            self.pid_of.pop(conn.fileno(), None)  # a late signal must not find a recycled pid
            with contextlib.suppress(OSError):
                conn.send(json.dumps({"exit": code, "pid": pid}).encode())

    def handle(self, conn: socket.socket) -> None:
        fd = conn.fileno()
        try:
            data, fds, _flags, _addr = socket.recv_fds(conn, MAX_MESSAGE, 3)
        except OSError:
            data, fds = b"", []
        if not data:  # the server hung up: the command (if any) runs on, unreported
            self.connections.pop(fd, None)
            pid = self.pid_of.pop(fd, None)
            if pid is not None:
                self.connection_of.pop(pid, None)
            conn.close()
            return
        try:
            message = json.loads(data)
            if message.get("op") == "exit":
                # The server gives up this devbox (it lost track of it in a crash): as PID 1 goes,
                # the kernel takes every process of the namespace, and the mounts go with them.
                os._exit(0)
            if message.get("op") == "deadline":
                self.deadline = None if message.get("at") is None else float(message["at"])
                return
            if "signal" in message:
                pid = self.pid_of.get(fd)
                if pid is not None:
                    with contextlib.suppress(OSError):
                        (os.killpg if message.get("group") else os.kill)(pid, int(message["signal"]))
                return
            if len(fds) != 3:
                raise ValueError("a command needs its stdin, stdout and stderr")
            pid = self.start_step(data, message, fds) if "step" in message else self.start(message, fds)
            self.pid_of[fd] = pid
            self.connection_of[pid] = conn  # no reply until it exits: the server does not wait for one
        except Exception as exc:
            with contextlib.suppress(OSError):
                conn.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
        finally:
            for passed in fds:
                os.close(passed)

    def start_step(self, data: bytes, message: dict[str, Any], fds: list[int]) -> int:
        """A build sandbox's step, in a mount namespace of its own (see the module's docstring):
        a RUN's command, or a hold (a root the server reads from the host, for COPY --from) that
        lasts until its stdin, a socket, closes. Its pid: the spare's, which takes the request."""
        if self.build_user_ns is None:
            raise ValueError("steps are for build sandboxes only")
        hold = bool(message["step"].get("hold"))
        for attempt in (1, 2):
            if self.spare is None:
                self.make_spare()  # no step runs: one is made, the C starter's or Python's
            if self.spare is None:
                raise OSError("no process could be made for the step")
            pid, sock = self.spare
            self.spare = None
            # In the spare's language: step_starter turns None only when no C spare is left.
            payload = data if self.step_starter is None else _starter_request(message)
            try:
                socket.send_fds(sock, [payload], fds)
                break
            except OSError:  # a step before killed it, and it is not reaped yet: another
                sock.close()
                if attempt == 2:
                    raise
        if hold:
            sock.close()
            self.make_spare()
        else:
            self.contained.add(pid)
            # The next step's process is made while this one runs, once its command is
            # started (a mount namespace made meanwhile would slow its mounts down): its
            # socket closes at its exec (step_started). The end of a RUN kills all the step
            # left but that spare and the forker (_end_the_rest).
            self.starting[sock.fileno()] = sock
        return pid

    def step_started(self, sock: socket.socket) -> None:
        """A RUN's command is started (or its process is gone): the next step's process now."""
        del self.starting[sock.fileno()]
        sock.close()
        if self.spare is None:
            self.make_spare()

    def make_spare(self) -> None:
        """Make the next build step's process ahead of its request: its start, its mount
        namespace and its /proc, /dev and /run are then off the path of the step."""
        if self.step_starter is not None:
            spare = self._spare_from_forker()
            if spare is not None or self.contained:
                self.spare = spare  # None while a step runs without a forker: made at its end (reap)
                return
            self.step_starter = None  # the forker cannot be started (its binary gone): Python's from now on
        self._fork_spare()

    def _spare_from_forker(self) -> tuple[int, socket.socket] | None:
        """A spare forked by the C step starter (step_starter.c), started first where it is not
        running. It is exec'd, and for an instant after its exec a process is dumpable (one of
        the same uid could open its /proc entries, the host's root among them): it is started
        only while no step runs. None when there is no spare to be had."""
        for _attempt in (1, 2):
            if self.forker is None:
                if self.contained:
                    return None
                try:
                    self._start_forker()
                except OSError:
                    return None
            assert self.forker is not None
            try:
                self.forker[1].send(b"F")
                data, fds, _flags, _addr = socket.recv_fds(self.forker[1], 64, 1)
                if len(fds) != 1:
                    for fd in fds:
                        os.close(fd)
                    raise OSError("the step starter is gone")
                return int(data), socket.socket(fileno=fds[0])
            except (OSError, ValueError):  # killed or stopped by a step (it is the same uid): another
                self._drop_forker()
        return None

    def _start_forker(self) -> None:
        assert self.build_user_ns is not None and self.step_starter is not None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with theirs:
                stage = [
                    mount_plan.starter_word(op)
                    for op in mount_plan.decode(self.stage_plan)
                    if not lockin.is_procfs(op)  # init's, mounted once (run)
                ]
                argv = [self.step_starter, str(theirs.fileno()), str(self.build_user_ns), *stage]
                process = subprocess.Popen(argv, pass_fds=(theirs.fileno(), self.build_user_ns), start_new_session=True)
        except BaseException:
            ours.close()
            raise
        ours.settimeout(FORKER_TIMEOUT)
        self.started[process.pid] = process
        self.forker = (process.pid, ours)

    def _drop_forker(self) -> None:
        if self.forker is not None:
            pid, sock = self.forker
            self.forker = None
            sock.close()
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)  # a stopped one too; reaped as init's child

    def _fork_spare(self) -> None:
        """Python's spare (step_process.spare), forked from init."""
        assert self.build_user_ns is not None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            ours.close()
            step_process.spare(theirs, self.stage_plan, self.build_user_ns)
        theirs.close()
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # its own group before any signal to it may come
        self.spare = (pid, ours)

    def start(self, message: dict[str, Any], fds: list[int]) -> int:
        """Start a command in its own session; its pid.

        subprocess's vfork (no copy of init's memory, no Python run in the child) is several
        times faster than a fork. It cannot set rlimits, so init takes a devbox's rlimits (the
        same for all its commands) on itself once, and its commands inherit them; a request
        asking for other limits, to run as another user, or to own a terminal, is forked the slow way. (Not
        posix_spawn: glibc's leaves its two internal signals ignored in the command.)"""
        rlimits = {name: int(value) for name, value in (message.get("rlimits") or {}).items() if name in _RLIMITS}
        if not self.rlimits:
            for name, value in rlimits.items():
                resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (value, value))
            self.rlimits.update(rlimits)
        if rlimits != self.rlimits or message.get("user") or message.get("tty"):
            pid = os.fork()
            if pid == 0:
                step_process.exec_command(message, fds)
            # Its own process group before the server hears of it, so a signal to the group at
            # once reaches it (the child's setsid may not have run yet; either suffices). Not for
            # a terminal's shell: a group leader cannot make the session whose terminal it takes.
            if not message.get("tty"):
                with contextlib.suppress(OSError):
                    os.setpgid(pid, pid)
            return pid
        cwd = message.get("cwd") or "/"
        if not os.path.isdir(cwd):
            cwd = "/"
        process = None
        if message.get("direct"):
            direct = message["direct"]
            # bash would have started in `cwd`, then cd'd: OLDPWD is where it started.
            env = {**message["env"], "PWD": direct["cwd"], "OLDPWD": cwd, "SHLVL": "1"}
            process = _start_program(direct["argv"], direct["cwd"], env, fds)
        if process is None:
            process = _popen(message["argv"], None, cwd, message["env"], fds)
        self.started[process.pid] = process
        return process.pid


def _starter_request(message: dict[str, Any]) -> bytes:
    """A step's request as the C step starter reads it (step_starter.c): NUL-separated strings."""
    step = message["step"]
    uid, gid = step.get("user") or (0, 0)  # resolved by the server (build_sandbox.py)
    ops = [mount_plan.starter_word(op) for op in mount_plan.decode(step["plan"])]
    if any(not name or "=" in name for name in message["env"]):
        raise ValueError("an environment variable's name is empty or holds '='")
    env = [f"{name}={value}" for name, value in message["env"].items()]
    words = [
        "hold" if step.get("hold") else "run",
        step["root"],
        message.get("cwd") or "/",
        *((str(uid), str(gid)) if uid or gid else ("", "")),
        str(len(ops)),
        *ops,
        str(len(message["argv"])),
        *message["argv"],
        str(len(env)),
        *env,
    ]
    if any("\0" in word for word in words):
        raise ValueError("a NUL character in the command, its environment or its directory")
    return b"".join(word.encode() + b"\0" for word in words)


def _start_program(argv: list[str], cwd: str, env: dict[str, str], fds: list[int]) -> subprocess.Popen[bytes] | None:
    """Start a program as bash would for a command of plain words (see commands.py); None when
    it cannot be started (not found, not executable, no such directory): bash then says why."""
    name = argv[0]
    program = name if "/" in name else shutil.which(name, path=env.get("PATH", os.defpath))
    if program is None:
        return None
    try:
        return _popen(argv, program, cwd, {**env, "_": program}, fds)
    except OSError:
        return None


def _popen(
    argv: list[str], program: str | None, cwd: str, env: dict[str, str], fds: list[int]
) -> subprocess.Popen[bytes]:
    # setsid happens before Popen returns: a signal to the group at once reaches the command.
    return subprocess.Popen(
        argv, executable=program, cwd=cwd, env=env, start_new_session=True, stdin=fds[0], stdout=fds[1], stderr=fds[2]
    )
