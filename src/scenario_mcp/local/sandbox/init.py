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
Each step's process is forked ahead of its request, while the step before runs (a spare: its
fork, its mount namespace, its /dev and /run off the path of the step); its /proc is init's,
mounted and hardened once. A RUN followed by a RUN names the root of the next one: as soon as it
ends, the spare enters that root (the ended step's upper dir, opened while it ran, among its
lower layers), and the next step, naming it, starts there (prepare_next).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
import resource
import select
import shutil
import signal
import socket
import subprocess
import termios
import time
from typing import Any, TypedDict

from . import libc, mount_plan, network, rootfs


class Request(TypedDict):
    root: str  # the mount point that becomes `/`
    plan: list[dict[str, Any]]  # the mount plan, encoded (mount_plan.encode)
    network: bool  # outbound connectivity through slirp4netns (every sandbox has its own netns)
    hostname: str
    launcher_dir: str  # where init listens for commands to start (LAUNCHER_SOCKET in it)
    egress_allow: list[str] | None  # with network: only these addresses (an allowlist policy)
    build: bool  # a build sandbox: no root of its own, each step in a root of its own (see above)
    deadline: float | None  # wall-clock time (time.time()) at which init ends the sandbox by itself


# init listens here for the server's commands: it starts them itself (a vfork), so a command starts
# inside every namespace and cgroup of the devbox (no nsenter, no cgroup move).
LAUNCHER_SOCKET = "launcher.sock"
MAX_MESSAGE = 1 << 20


# /proc entries that act on the whole host. The devbox's root is the host's uid 0 (when the
# server runs as root), which passes the owner check on them: they are made read-only or masked.
PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus", "fs", "acpi", "scsi", "driver", "mtrr")
PROC_MASKED = ("kcore", "keys", "timer_list", "sched_debug", "kallsyms", "kmsg")
# The signals init handles (_serve); every other is at its default.
HANDLED_SIGNALS = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGXFSZ)


def _harden_and_lock(nested_user_ns: int) -> None:
    """Protect /proc, then lock the root in (_lock)."""
    _harden_proc("/proc")
    _lock(nested_user_ns)


def _is_procfs(operation: mount_plan.SetupOp) -> bool:
    return isinstance(operation, mount_plan.Mount) and operation.fstype == "proc"


def _harden_proc(proc: str) -> None:
    """Make the entries of the procfs at `proc` that act on the whole host read-only or masked."""
    proc_flags = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC
    for name in PROC_READ_ONLY:
        path = f"{proc}/{name}"
        if not os.path.exists(path):
            continue
        libc.mount(path, path, None, libc.MS_BIND | libc.MS_REC, None)
        libc.mount(None, path, None, libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY | proc_flags, None)
    for name in PROC_MASKED:
        path = f"{proc}/{name}"
        if os.path.exists(path):
            libc.mount("/dev/null", path, None, libc.MS_BIND, None)


def _lock(nested_user_ns: int) -> None:
    """Move into the nested user namespace (made ahead of time, see nest_user_namespace) and a
    mount namespace of its own there.

    Mounts made in a namespace owned by a more privileged user namespace are locked in the new
    one: the devbox's root cannot unmount or remount them (nor mount a fresh procfs, as its PID
    namespace belongs to the outer user namespace). Nor does it hold any capability over the
    network namespace (owned by the outer one): its routes and egress rules are not its to change.
    Ids stay the same (the host's when the server runs as root), so copy-on-write into the system
    directories works, but the devbox can no longer undo these.
    """
    libc.setns(nested_user_ns, libc.CLONE_NEWUSER, "setns(nested user namespace)")
    os.close(nested_user_ns)
    libc.unshare(libc.CLONE_NEWNS, "unshare(nested mount namespace)")


def nest_user_namespace(to_init: int, from_init: int) -> None:
    """In init's parent, once init is forked: make the user namespace init will move into, nested
    in the outer one, and hand it over (init maps its ids and holds it; then this process exits).

    Made ahead of time, off the path of a start; by this process because it is there anyway (a
    user namespace lives only while a process or a descriptor holds it)."""
    try:
        libc.unshare(libc.CLONE_NEWUSER, "unshare(nested user namespace)")
        os.write(to_init, f"{os.getpid()}\n".encode())
    except libc.SpawnError as exc:
        os.write(to_init, f"E{exc}\n".encode())
    os.read(from_init, 1)  # init holds it now (or is gone)


def _take_nested_user_namespace(from_parent: int, to_parent: int) -> int:
    """A descriptor of the user namespace init's parent nested in the outer one, its ids mapped
    as the outer namespace's are. Mapping more ids than one's own takes CAP_SETUID in the parent
    namespace, which init has here (the outer one) and would lose once inside."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(from_parent, 4096)
        if not chunk:
            break
        line += chunk
    os.close(from_parent)
    text = line.decode(errors="replace").strip()
    if not text.isdigit():
        raise libc.SpawnError(text[1:] if text.startswith("E") else "making the nested user namespace failed")
    proc = f"/proc/{text}"
    with open("/proc/self/uid_map") as f:
        outer_range = int(f.read().split()[2]) > 1
    if not outer_range:
        # An unprivileged server's namespace maps only its own id, and without setgroups.
        with open(f"{proc}/setgroups", "w") as f:
            f.write("deny")
    # The same ids as the outer namespace: a root server's range, else root alone.
    mapping = f"0 0 {libc.ID_RANGE}" if outer_range else "0 0 1"
    for name in ("uid_map", "gid_map"):
        with open(f"{proc}/{name}", "w") as f:
            f.write(mapping)
    nested = os.open(f"{proc}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    os.write(to_parent, b"D")
    os.close(to_parent)
    return nested


def run(report: int, requests: int, network_exit: int, ruleset: str, nest: tuple[int, int]) -> None:
    """PID 1 of the new PID namespace: wait for a request, build the root, become the init shell.

    `network_exit` (with network; else -1) is the write end of slirp4netns's exit pipe: held open
    by init alone, it closes when init ends, and slirp4netns with it. `nest` is the pipe pair to
    its parent, which makes the nested user namespace (nest_user_namespace)."""
    networked = network_exit >= 0
    os.setsid()
    nested_user_ns = _take_nested_user_namespace(*nest)
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
            if isinstance(operation, mount_plan.Mount) and _is_procfs(operation):
                operation.apply()
                _harden_proc(operation.target)
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
        _harden_and_lock(nested_user_ns)
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
    _serve(listener, nested_user_ns if building else None, request.get("deadline"), request["plan"])


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
    for sig in HANDLED_SIGNALS:
        signal.signal(sig, lambda *_: None)
    launcher = _Launcher(build_user_ns, deadline, stage_plan)
    if build_user_ns is not None:
        launcher.fork_spare()
    while True:
        wait = None if launcher.deadline is None else launcher.deadline - time.time()
        try:
            watched: list[socket.socket | int] = [listener, wake_r, *launcher.connections.values()]
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
            elif isinstance(ready, socket.socket):
                launcher.handle(ready)


_RLIMITS = ("FSIZE", "AS", "NPROC")
# Where a step process that enters a root ahead of its step (prepare_next) holds the directory
# the step before left (its upper dir, renamed once the server hears of the end): the plan it is
# sent names it as /proc/self/fd/NEXT_LOWER_FD among the overlay's lower layers.
NEXT_LOWER_FD = 1000
PREPARED_WAIT = 2.0  # seconds init waits for a step process to say it entered a root prepared ahead


class _Launcher:
    """Init's bookkeeping of the connections it serves and the commands it started."""

    def __init__(
        self,
        build_user_ns: int | None = None,
        deadline: float | None = None,
        stage_plan: list[dict[str, Any]] | None = None,
    ) -> None:
        self.build_user_ns = build_user_ns  # a build sandbox's: the user namespace its steps enter
        self.stage_plan = stage_plan or []  # a build sandbox's: what a step prepares before its request
        # A build sandbox's procfs (its one PID namespace's), as init sees it: what a RUN left is found there.
        self.proc = next(
            (
                op.target
                for op in mount_plan.decode(self.stage_plan)
                if isinstance(op, mount_plan.Mount) and _is_procfs(op)
            ),
            None,
        )
        self.spare: tuple[int, socket.socket] | None = None  # a build's next step, forked ahead
        # A spare told to enter the root a RUN step named for the step after it (prepare_next):
        # its token, pid and socket; and what each RUN step named, by pid, until it ends.
        self.ready: tuple[str, int, socket.socket] | None = None
        self.next_of: dict[int, dict[str, Any]] = {}
        self.on_prepared: set[int] = set()  # steps started in a root prepared for them: said in their exit
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
            code = os.waitstatus_to_exitcode(status)
            if pid in self.contained:  # reported once the rest is gone
                self.contained.discard(pid)
                self._end_the_rest()
                following = self.next_of.pop(pid, None)
                if following is not None and code == 0:
                    self.prepare_next(following)  # before the reply: it overlaps what the server does next
            self._exited(pid, code)
            if self.build_user_ns is not None and self.spare is None and self.ready is None and not self.contained:
                self.fork_spare()  # a step killed it: after the reply, overlapping what the server does next

    def _end_the_rest(self) -> None:
        """After a build's RUN step: kill every process it left (a daemon, a background job) and
        reap them, so that nothing writes its upper directory any more or holds its mount
        namespace when the server hears the step ended. (No hold is open while a RUN runs.)

        All but init and the next step's spare, forked while the step ran (start_step): every
        process the namespace's procfs lists, again until none is left, as a process killed may
        have forked meanwhile. Blocking: nothing else runs in a build sandbox meanwhile."""
        assert self.proc is not None
        if self.spare is not None and not _alive(f"{self.proc}/{self.spare[0]}/status"):
            self.spare[1].close()  # the step killed it: reaped below or later, and another forked
            self.spare = None
        spared = {1} | ({self.spare[0]} if self.spare else set()) | ({self.ready[1]} if self.ready else set())
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
        if self.ready is not None and self.ready[1] == pid:  # killed too, or gone on its own
            self.ready[2].close()
            self.ready = None
        process = self.started.pop(pid, None)
        if process is not None:
            process.returncode = code
        conn = self.connection_of.pop(pid, None)
        if conn is not None:
            self.pid_of.pop(conn.fileno(), None)  # a late signal must not find a recycled pid
            reply: dict[str, Any] = {"exit": code, "pid": pid}
            if pid in self.on_prepared:
                self.on_prepared.discard(pid)
                reply["prepared"] = True
            with contextlib.suppress(OSError):
                conn.send(json.dumps(reply).encode())

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
        lasts until its stdin, a socket, closes. Its pid: the spare's, which takes the request:
        the one that entered the root prepared for it (prepare_next) where the step names it."""
        if self.build_user_ns is None:
            raise ValueError("steps are for build sandboxes only")
        step = message["step"]
        pid, entered = self._start_prepared(step.get("prepared"), data, fds)
        if entered and pid is not None:
            self.on_prepared.add(pid)
        for attempt in (1, 2):
            if pid is not None:
                break
            if self.spare is None:
                self.fork_spare()
            assert self.spare is not None
            spare_pid, sock = self.spare
            self.spare = None
            try:
                socket.send_fds(sock, [data], fds)
                pid = spare_pid
            except OSError:  # a step before killed it, and it is not reaped yet: another
                if attempt == 2:
                    raise
            finally:
                sock.close()
        assert pid is not None
        following = None
        if not step.get("hold"):
            self.contained.add(pid)
            following = step.get("next")
            if following:
                if entered and following.get("open_if_prepared"):
                    following = {**following, "open": following["open_if_prepared"]}  # its upper dir
                self.next_of[pid] = following
        # The next step's, made while this one runs (its fork is the slowest thing init does):
        # the end of a RUN kills all the step left but it (_end_the_rest).
        self.fork_spare(following["open"] if following else None)
        return pid

    def _start_prepared(self, token: str | None, data: bytes, fds: list[int]) -> tuple[int | None, bool]:
        """Hand the step to the spare told to enter the root `token` names: its pid, and whether it
        entered it (one that did not, its layer gone, did nothing yet: it takes the step as any
        spare). (None, False) where there is none, or it is not that root (it is then let go: it
        exits at the end of its socket)."""
        if self.ready is None:
            return None, False
        ready_token, pid, sock = self.ready
        self.ready = None
        try:
            if token is None or token != ready_token:
                return None, False
            # Whether it entered that root ("E") or not ("F"): it says so as soon as it is done,
            # which the step would have waited for anyway.
            if not select.select([sock], [], [], PREPARED_WAIT)[0]:
                return None, False
            entered = sock.recv(1) == b"E"
            socket.send_fds(sock, [data], fds)
            return pid, entered
        except OSError:  # gone meanwhile
            return None, False
        finally:
            sock.close()

    def prepare_next(self, following: dict[str, Any]) -> None:
        """Have the spare enter the root the RUN step that just ended named for the step after it
        (its layers, the ended step's upper dir among them), while the server hears of the end,
        freezes that layer and decides the next step; that step names it (start_step)."""
        if self.ready is not None:  # an older one nobody took: let go
            self.ready[2].close()
            self.ready = None
        if self.spare is None:
            return
        pid, sock = self.spare
        try:
            # What the step left, as it is before the server hears of its end: the step process
            # opens it by name, and mounts it only if it is still this directory.
            st = os.stat(following["open"], follow_symlinks=False)
            sock.send(json.dumps({"prepare": {**following, "dev": st.st_dev, "ino": st.st_ino}}).encode())
        except OSError:
            return  # nothing to enter, or the spare is gone: the step goes the usual way
        self.spare = None
        self.ready = (str(following["id"]), pid, sock)

    def fork_spare(self, lower: str | None = None) -> None:
        """Fork the next build step's process ahead of its request (_spare): the fork, its mount
        namespace and its /proc, /dev and /run are then off the path of the step. `lower`: the
        running step's upper dir, for it to open at once, should it enter the next root
        (prepare_next)."""
        assert self.build_user_ns is not None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            ours.close()
            _spare(theirs, self.stage_plan, self.build_user_ns, lower)
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
                _exec_command(message, fds)
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


def _alive(status: str) -> bool:
    """Whether the process whose /proc/PID/status this is lives on: not exited, and no SIGKILL
    pending (sent, but it has not run since to exit)."""
    try:
        with open(status) as f:
            fields = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    except OSError:
        return False
    sigkill = 1 << (signal.SIGKILL - 1)
    pending = int(fields.get("SigPnd", "0"), 16) | int(fields.get("ShdPnd", "0"), 16)
    return not fields.get("State", "Z").strip().startswith(("Z", "X")) and not pending & sigkill


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


def _spare(sock: socket.socket, stage_plan: list[dict[str, Any]], user_ns: int, lower: str | None) -> None:
    """A build step's process before its request (init forked it ahead): a mount namespace of its
    own, and in it the step's /dev and /run under the build's stage dir, beside the /proc init
    mounted there (its copy), which the step's plan moves into its root; the running step's upper
    dir (`lower`) opened, should it enter the next root ahead (prepare_next); then the request
    (the step, its stdin, stdout and stderr) on `sock`. Never returns."""
    try:
        signal.set_wakeup_fd(-1)
        keep = sorted({sock.fileno(), user_ns})
        for low, high in zip([2, *keep], [*keep, 1 << 16], strict=True):
            os.closerange(low + 1, high)  # init's listener and connections are not a step's
        problem: Exception | None = None
        try:
            libc.unshare(libc.CLONE_NEWNS, "unshare(step mount namespace)")
            for operation in mount_plan.decode(stage_plan):
                if not _is_procfs(operation):  # init's (run): the one PID namespace's
                    operation.apply()
        except Exception as exc:  # said to the step's stderr once it comes
            problem = exc
        held = _open_lower(lower) if lower is not None and problem is None else -1
        data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, 3)
        entered = False
        if data and not fds:  # the root of the step to come, to enter before it comes (prepare_next)
            if problem is None:
                try:
                    entered = _enter_prepared(json.loads(data)["prepare"], held, user_ns)
                except Exception as exc:  # said to the step's stderr once it comes
                    entered, problem = True, exc
            sock.send(b"E" if entered else b"F")  # init hands it the step only if it entered that root
            data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, 3)
        sock.close()
    except BaseException:
        os._exit(127)
    if not data or len(fds) != 3:
        os._exit(0)  # the build ended first, or the root prepared is not the one its step needs
    if problem is not None:
        with contextlib.suppress(OSError):
            os.write(fds[2], f"the build step's root could not be made: {problem}\n".encode(errors="replace"))
        os._exit(127)
    message = json.loads(data)
    _step_child(message["step"], message, fds, user_ns, entered=entered)


def _open_lower(path: str) -> int:
    """The running step's upper dir, opened in this mount namespace (a mount takes only its own
    namespace's paths) while that step runs: its name is renamed into the store after; -1 if not."""
    try:
        return os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return -1


def _enter_prepared(prepare: dict[str, Any], held: int, user_ns: int) -> bool:
    """Enter the root prepared for the step to come, its lower layers holding the directory the
    step before left (`held`, opened while it ran, or now), checked to be the directory init
    found at the step's end (a name gone, or made anew, is no layer); False, nothing done, where
    it is not (the step then goes the usual way)."""
    lower = held if held >= 0 else _open_lower(prepare["open"])
    if lower < 0:
        return False
    try:
        st = os.fstat(lower)
        if (st.st_dev, st.st_ino) != (prepare["dev"], prepare["ino"]):
            return False
        os.dup2(lower, NEXT_LOWER_FD, inheritable=False)
    finally:
        os.close(lower)
    try:
        operations = mount_plan.decode(prepare["plan"])
        try:
            operations[0].apply()  # the overlay: where it cannot be mounted, nothing is done yet
        except Exception:
            return False
        for operation in operations[1:]:
            operation.apply()
    finally:
        os.close(NEXT_LOWER_FD)
    libc.pivot_into(prepare["root"])
    _lock(user_ns)  # its /proc was hardened before the request (_spare)
    return True


def _enter_root(step: dict[str, Any], user_ns: int) -> None:
    """A RUN step's root: mounted from its plan, pivoted into, locked in (a nested user namespace)."""
    for operation in mount_plan.decode(step["plan"]):
        operation.apply()
    libc.pivot_into(step["root"])
    _lock(user_ns)  # its /proc was hardened before the request (_spare)


def _step_child(
    step: dict[str, Any], message: dict[str, Any], fds: list[int], user_ns: int, *, entered: bool = False
) -> None:
    """In a build step's process (_spare), in its own mount namespace: its root (unless `entered`
    before the request came), then the step."""
    try:
        if step.get("hold"):
            for operation in mount_plan.decode(step["plan"]):
                operation.apply()
            _hold(step["root"], fds)
        if not entered:
            _enter_root(step, user_ns)
        env = dict(message["env"])
        home = "/root"
        if step.get("user"):
            uid, gid, home = rootfs.user_ids(pathlib.Path("/"), step["user"])
            if uid or gid:
                message = {**message, "user": [uid, gid]}
        env.setdefault("HOME", home)
        cwd = message.get("cwd") or "/"
        os.makedirs(cwd, 0o755, exist_ok=True)  # as Docker makes a step's WORKDIR
        program = message["argv"][0]
        if "/" not in program:
            program = shutil.which(program, path=env.get("PATH", os.defpath)) or program
        _exec_command({**message, "env": env, "argv": [program, *message["argv"][1:]]}, fds, argv0=message["argv"][0])
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(fds[2], f"{exc}\n".encode(errors="replace"))
    os._exit(127)


def _hold(root: str, fds: list[int]) -> None:
    """A COPY's root, held for the server: its descriptor sent on the step's socket (stdin),
    then held until the server closes it. Exits; never returns."""
    holder = socket.socket(fileno=os.dup(fds[0]))
    where = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    socket.send_fds(holder, [b"R"], [where])
    os.close(where)
    while holder.recv(4096):
        pass
    os._exit(0)


def _exec_command(message: dict[str, Any], fds: list[int], argv0: str | None = None) -> None:
    """In the forked child: become the command, in its own session and process group."""
    try:
        signal.set_wakeup_fd(-1)
        for sig in HANDLED_SIGNALS:  # init ignores none (_serve): these are all it changed
            signal.signal(sig, signal.SIG_DFL)
        with contextlib.suppress(OSError):
            os.setsid()  # fails only when the launcher already made it a group leader
        for target, source in enumerate(fds):
            os.dup2(source, target)
        os.closerange(3, 1 << 16)
        if message.get("tty"):  # a terminal's shell (scenario-mcp shell): its stdin is its controlling terminal
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        for name, value in (message.get("rlimits") or {}).items():
            if name in ("FSIZE", "AS", "NPROC"):
                resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (int(value), int(value)))
        if message.get("user"):  # the devbox's user: its own groups only, then its gid and uid
            uid, gid = (int(n) for n in message["user"])
            os.setgroups([gid])
            os.setgid(gid)
            os.setuid(uid)
        try:
            os.chdir(message.get("cwd") or "/")
        except OSError:
            os.chdir("/")
        argv = message["argv"] if argv0 is None else [argv0, *message["argv"][1:]]
        os.execve(message["argv"][0], argv, message["env"])
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(2, f"scenario-mcp: cannot start {message.get('argv')}: {exc}\n".encode())
    os._exit(127)
