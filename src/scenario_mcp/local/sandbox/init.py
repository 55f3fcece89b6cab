"""The devbox's init: PID 1 of its PID namespace, which builds its root and starts its commands.

Forked ahead of time by the spawner (spawner.py) into fresh user, PID, IPC and UTS namespaces, it
makes its own network namespace at once (network.py), then waits for its request. Given one, it
unshares its mount namespace from the host's current mounts, applies the request's mount plan
(mount_plan.py), sets the hostname, binds the launcher socket, pivots into the root, locks it
(a nested user namespace), and serves: it starts every command the server sends (a vfork, so a
command starts inside every namespace and cgroup of the devbox), reports its exit, and reaps
orphans. Standard library only.
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
from typing import Any, TypedDict

from . import libc, mount_plan, network


class Request(TypedDict):
    root: str  # the mount point that becomes `/`
    plan: list[dict[str, Any]]  # the mount plan, encoded (mount_plan.encode)
    network: bool  # outbound connectivity through slirp4netns (every sandbox has its own netns)
    hostname: str
    launcher_dir: str  # where init listens for commands to start (LAUNCHER_SOCKET in it)
    egress_allow: list[str] | None  # with network: only these addresses (an allowlist policy)


# init listens here for the server's commands: it starts them itself (a vfork), so a command starts
# inside every namespace and cgroup of the devbox (no nsenter, no cgroup move).
LAUNCHER_SOCKET = "launcher.sock"
MAX_MESSAGE = 1 << 20


# /proc entries that act on the whole host. The devbox's root is the host's uid 0 (when the
# server runs as root), which passes the owner check on them: they are made read-only or masked.
PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus", "fs", "acpi", "scsi", "driver", "mtrr")
PROC_MASKED = ("kcore", "keys", "timer_list", "sched_debug", "kallsyms", "kmsg")


def _harden_and_lock(mapper: _Mapper | None) -> None:
    """Protect /proc, then move into a nested user and mount namespace.

    Mounts made in a namespace owned by a more privileged user namespace are locked in the new
    one: the devbox's root cannot unmount or remount them (nor mount a fresh procfs, as its PID
    namespace belongs to the outer user namespace). Nor does it hold any capability over the
    network namespace (owned by the outer one): its routes and egress rules are not its to change.
    Ids stay the same (the host's when the server runs as root), so copy-on-write into the system
    directories works, but the devbox can no longer undo these.
    """
    proc_flags = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC
    for name in PROC_READ_ONLY:
        path = f"/proc/{name}"
        if not os.path.exists(path):
            continue
        libc.mount(path, path, None, libc.MS_BIND | libc.MS_REC, None)
        libc.mount(None, path, None, libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY | proc_flags, None)
    for name in PROC_MASKED:
        path = f"/proc/{name}"
        if os.path.exists(path):
            libc.mount("/dev/null", path, None, libc.MS_BIND, None)
    libc.unshare(libc.CLONE_NEWUSER | libc.CLONE_NEWNS, "unshare(nested user namespace)")
    if mapper is not None:
        mapper.map_ids()
        return
    # A process may map only its own ids into a user namespace it created, and then without
    # setgroups: uid and gid 0 stay 0.
    for name, text in (("setgroups", "deny"), ("uid_map", "0 0 1"), ("gid_map", "0 0 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


class _Mapper:
    """A child of init that stays in the outer user namespace, to write the nested one's id maps.

    Mapping more ids than one's own into a new user namespace takes CAP_SETUID in its parent,
    which init loses as it enters it: the child, forked before, still has it. It holds a
    descriptor of init's /proc directory (the host's procfs is mounted where it stays)."""

    def __init__(self) -> None:
        self.proc_dir = os.open("/proc/self", os.O_RDONLY | os.O_DIRECTORY)
        self.ask_r, self.ask_w = os.pipe()
        self.done_r, self.done_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            self._serve()
        for fd in (self.ask_r, self.done_w, self.proc_dir):
            os.close(fd)

    def _serve(self) -> None:
        status = 1
        try:
            keep = sorted((self.ask_r, self.done_w, self.proc_dir))
            for low, high in zip([-1, *keep], [*keep, 1 << 16], strict=True):
                os.closerange(low + 1, high)  # init's pipes (its report, its requests) are not ours
            if os.read(self.ask_r, 1) == b"M":
                for name in ("uid_map", "gid_map"):
                    fd = os.open(name, os.O_WRONLY, dir_fd=self.proc_dir)
                    try:
                        os.write(fd, libc.id_map(0).encode())
                    finally:
                        os.close(fd)
                os.write(self.done_w, b"D")
                status = 0
        finally:
            os._exit(status)

    def map_ids(self) -> None:
        os.write(self.ask_w, b"M")
        answer = os.read(self.done_r, 1)
        os.close(self.ask_w)
        os.close(self.done_r)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        if answer != b"D":
            raise libc.SpawnError("mapping the ids of the devbox's nested user namespace failed")

    def keep(self) -> list[int]:
        return [self.ask_w, self.done_r]


def run(report: int, requests: int, network_exit: int, ruleset: str) -> None:
    """PID 1 of the new PID namespace: wait for a request, build the root, become the init shell.

    `network_exit` (with network; else -1) is the write end of slirp4netns's exit pipe: held open
    by init alone, it closes when init ends, and slirp4netns with it."""
    networked = network_exit >= 0
    os.setsid()
    network.own_network(networked, ruleset)
    # A root server maps a range of ids (libc.id_map), the nested namespace too: a helper for it.
    mapper = _Mapper() if _outer_maps_a_range() else None
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
    # The mount namespace is made now, not when this process was forked ahead of time, so that
    # it starts from the host's current mounts.
    libc.unshare(libc.CLONE_NEWNS, "unshare(CLONE_NEWNS)")
    # Nothing mounted here propagates anywhere (as `unshare --mount` does by default).
    libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE, None)
    for step in mount_plan.decode(request["plan"]):
        step.apply()
    libc.sethostname(request["hostname"])
    listener = _listen(request["launcher_dir"])
    libc.pivot_into(request["root"])
    _harden_and_lock(mapper)
    os.dup2(0, 2)  # /dev/null, like 0 and 1
    keep = sorted({report, listener.fileno(), *([network_exit] if networked else [])})
    for low, high in zip([2, *keep], [*keep, 1 << 16], strict=True):
        os.closerange(low + 1, high)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    # "R" then end of file is how the spawner learns of success.
    os.write(report, b"R\n")
    os.close(report)
    _serve(listener)


def _outer_maps_a_range() -> bool:
    with open("/proc/self/uid_map") as f:
        return int(f.read().split()[2]) > 1


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


def _serve(listener: socket.socket) -> None:
    """PID 1 of the devbox: start the commands the server sends, report their exit, reap orphans.

    A request is one SOCK_SEQPACKET message, {"argv", "env", "cwd", "rlimits"} with the command's
    stdin, stdout and stderr attached (SCM_RIGHTS). The one reply on the same connection: {"exit",
    "pid"} when it ends, or {"error"}. {"signal", "group"} on it signals the command (or its group).
    When the server goes away the command runs on (a background process), unreported."""
    wake_r, wake_w = os.pipe()
    for fd in (wake_r, wake_w):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wake_w)
    # Handled, not ignored: a command starts with every signal at its default (exec resets
    # handlers, but an ignored signal would stay ignored in it).
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, lambda *_: None)
    launcher = _Launcher()
    while True:
        try:
            watched: list[socket.socket | int] = [listener, wake_r, *launcher.connections.values()]
            readable, _, _ = select.select(watched, [], [])
        except InterruptedError:
            continue
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
            elif isinstance(ready, socket.socket):
                launcher.handle(ready)


_RLIMITS = ("FSIZE", "AS", "NPROC")


class _Launcher:
    """Init's bookkeeping of the connections it serves and the commands it started."""

    def __init__(self) -> None:
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
            if "signal" in message:
                pid = self.pid_of.get(fd)
                if pid is not None:
                    with contextlib.suppress(OSError):
                        (os.killpg if message.get("group") else os.kill)(pid, int(message["signal"]))
                return
            if len(fds) != 3:
                raise ValueError("a command needs its stdin, stdout and stderr")
            pid = self.start(message, fds)
            self.pid_of[fd] = pid
            self.connection_of[pid] = conn  # no reply until it exits: the server does not wait for one
        except Exception as exc:
            with contextlib.suppress(OSError):
                conn.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
        finally:
            for passed in fds:
                os.close(passed)

    def start(self, message: dict[str, Any], fds: list[int]) -> int:
        """Start a command in its own session; its pid.

        subprocess's vfork (no copy of init's memory, no Python run in the child) is several
        times faster than a fork. It cannot set rlimits, so init takes a devbox's rlimits (the
        same for all its commands) on itself once, and its commands inherit them; a request
        asking for other limits, or to run as another user, is forked the slow way. (Not
        posix_spawn: glibc's leaves its two internal signals ignored in the command.)"""
        rlimits = {name: int(value) for name, value in (message.get("rlimits") or {}).items() if name in _RLIMITS}
        if not self.rlimits:
            for name, value in rlimits.items():
                resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (value, value))
            self.rlimits.update(rlimits)
        if rlimits != self.rlimits or message.get("user"):
            pid = os.fork()
            if pid == 0:
                _exec_command(message, fds)
            # Its own process group before the server hears of it, so a signal to the group at
            # once reaches it (the child's setsid may not have run yet; either suffices).
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


def _exec_command(message: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: become the command, in its own session and process group."""
    try:
        signal.set_wakeup_fd(-1)
        for sig in range(1, signal.NSIG):
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                signal.signal(sig, signal.SIG_DFL)
        with contextlib.suppress(OSError):
            os.setsid()  # fails only when the launcher already made it a group leader
        for target, source in enumerate(fds):
            os.dup2(source, target)
        os.closerange(3, 1 << 16)
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
        os.execve(message["argv"][0], message["argv"], message["env"])
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(2, f"scenario-mcp: cannot start {message.get('argv')}: {exc}\n".encode())
    os._exit(127)
