"""The sandbox spawner: a small single-threaded helper process that starts sandbox inits.

The server cannot safely fork itself (it runs threads), and spawning `unshare` plus a shell that
runs a dozen `mount` commands costs tens of milliseconds. This helper, started once per server
(`python _spawner.py`, standard library only), reads one JSON request per line on stdin and answers
one JSON line on stdout: `{"ok": true, "pid": <host pid of init>}` or `{"ok": false, "error": ...}`.

The slow part of a start is done ahead of time, while the server has nothing to ask: the spawner
forks a child that unshares user, PID, IPC and UTS namespaces, writes the child's uid/gid maps
(root in the sandbox is the spawner's own uid; setgroups stays allowed when that is root), and the
child forks the future init, PID 1 of the new PID namespace, and exits. That process waits for its
request on a pipe. Given one, it unshares its mount namespace (and network, unless the sandbox
has it) from the host's current mounts, builds the root with direct mount syscalls following the
request's steps, brings up `lo`, sets the hostname, pivots into the root and execs a tiny shell
that only reaps and sleeps. The sandbox does not depend on the spawner: it keeps running when
the spawner or the server exits.

The spawner is a child subreaper, so inits (orphaned by their short-lived parents) are reaped by it
while it runs; after it is gone, by the host's init.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from typing import Any, TypedDict

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 0x2
MOUNT_FLAGS = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}

PR_SET_CHILD_SUBREAPER = 36
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
IFREQ = "16sH22x"  # struct ifreq: the name, then ifr_flags at the start of a 24-byte union

# pivot_root has no libc wrapper; its number depends on the architecture.
SYS_PIVOT_ROOT = {
    "x86_64": 155,
    "aarch64": 41,
    "arm64": 41,
    "riscv64": 41,
    "loongarch64": 41,
    "ppc64le": 203,
    "ppc64": 203,
    "s390x": 217,
    "i686": 217,
    "i386": 217,
    "armv7l": 218,
}

SETUP_TIMEOUT = 30.0


class Request(TypedDict):
    root: str  # the mount point that becomes `/`
    steps: list[list[str]]  # see _run_step
    network: bool  # keep the host's network namespace
    hostname: str
    launcher_dir: str  # where init listens for commands to start (LAUNCHER_SOCKET in it)


# init listens here for the server's commands: it starts them itself (a vfork), so a command starts
# inside every namespace and cgroup of the devbox (no nsenter, no cgroup move).
LAUNCHER_SOCKET = "launcher.sock"
MAX_MESSAGE = 1 << 20


class SpawnError(Exception):
    pass


class _StaleError(SpawnError):
    """The prepared init was gone before it got its request (killed from outside)."""


_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise SpawnError(f"{what}: {os.strerror(code)} (errno {errno.errorcode.get(code, code)})")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    result = _libc.mount(
        None if source is None else source.encode(),
        target.encode(),
        None if fstype is None else fstype.encode(),
        ctypes.c_ulong(flags),
        None if data is None else data.encode(),
    )
    _check(int(result), f"mount {fstype or source} on {target}" + (f" (-o {data})" if data else ""))


def _run_step(step: list[str]) -> None:
    """One step of building the root, in the spirit of the shell commands it replaces.

    ["mount", source, target, fstype, options]  options as for mount -o: flags and fs data
    ["bind", source, target]                     a bind mount
    ["file", path]                               an empty file (a bind target)
    ["dir", path]                                a directory
    ["symlink", target, path]
    """
    op, *args = step
    if op == "mount":
        source, target, fstype, options = args
        flags, data = 0, []
        for option in options.split(",") if options else []:
            if option in MOUNT_FLAGS:
                flags |= MOUNT_FLAGS[option]
            else:
                data.append(option)
        _mount(source, target, fstype, flags, ",".join(data) or None)
    elif op == "bind":
        source, target = args
        _mount(source, target, None, MS_BIND, None)
    elif op == "file":
        os.close(os.open(args[0], os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
    elif op == "dir":
        os.mkdir(args[0], 0o755)
    elif op == "symlink":
        os.symlink(args[0], args[1])
    else:
        raise SpawnError(f"unknown setup step {step!r}")


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(IFREQ, b"lo", 0)
        flags = struct.unpack(IFREQ, fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack(IFREQ, b"lo", flags | IFF_UP))


def _pivot_into(root: str) -> None:
    machine = os.uname().machine
    number = SYS_PIVOT_ROOT.get(machine)
    if number is None:
        raise SpawnError(f"pivot_root: unknown syscall number on {machine}")
    os.chdir(root)
    # pivot_root(".", ".") stacks the old root over the new one; detaching it leaves only ours.
    _check(int(_libc.syscall(ctypes.c_long(number), b".", b".")), f"pivot_root into {root}")
    _check(int(_libc.umount2(b".", ctypes.c_int(MNT_DETACH))), "detaching the host's root")
    os.chdir("/")


# /proc entries that act on the whole host. The devbox's root is the host's uid 0 (when the
# server runs as root), which passes the owner check on them: they are made read-only or masked.
PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus", "fs", "acpi", "scsi", "driver", "mtrr")
PROC_MASKED = ("kcore", "keys", "timer_list", "sched_debug", "kallsyms", "kmsg")
MS_REMOUNT = 0x20
# Read while still in the host's namespaces: only a root server needs the nested lock (run
# unprivileged, the devbox's root is the server's own uid and the host's /proc/sys is not its).
_SERVER_IS_ROOT = os.geteuid() == 0


def _harden_and_lock() -> None:
    """Protect /proc, then move into a nested user and mount namespace.

    Mounts made in a namespace owned by a more privileged user namespace are locked in the new
    one: the devbox's root cannot unmount or remount them (nor mount a fresh procfs, as its PID
    namespace belongs to the outer user namespace). Root in the devbox stays the host's uid 0 for
    files, so copy-on-write into the system directories works, but it can no longer undo these.
    """
    proc_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    for name in PROC_READ_ONLY:
        path = f"/proc/{name}"
        if not os.path.exists(path):
            continue
        _mount(path, path, None, MS_BIND | MS_REC, None)
        _mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | proc_flags, None)
    for name in PROC_MASKED:
        path = f"/proc/{name}"
        if os.path.exists(path):
            _mount("/dev/null", path, None, MS_BIND, None)
    if not _SERVER_IS_ROOT:
        return
    _check(int(_libc.unshare(ctypes.c_int(CLONE_NEWUSER | CLONE_NEWNS))), "unshare(nested user namespace)")
    # A process may map only its own ids into a user namespace it created, and then without
    # setgroups: uid and gid 0 stay 0.
    for name, text in (("setgroups", "deny"), ("uid_map", "0 0 1"), ("gid_map", "0 0 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def _init(report: int, requests: int, network: bool) -> None:
    """PID 1 of the new PID namespace: wait for a request, build the root, become the init shell."""
    os.setsid()
    if not network:
        _check(int(_libc.unshare(ctypes.c_int(CLONE_NEWNET))), "unshare(CLONE_NEWNET)")
        with contextlib.suppress(OSError):  # a sandbox without loopback is still usable
            _loopback_up()
    data = b""
    while chunk := os.read(requests, 1 << 16):
        data += chunk
    if not data:
        os._exit(0)  # the spawner is gone: nothing to start
    request: Request = json.loads(data)
    if request["network"] != network:
        raise SpawnError(f"internal error: a request for network={request['network']} went to the wrong process")
    # The mount namespace is made now, not when this process was forked ahead of time, so that
    # it starts from the host's current mounts.
    _check(int(_libc.unshare(ctypes.c_int(CLONE_NEWNS))), "unshare(CLONE_NEWNS)")
    # Nothing mounted here propagates anywhere (as `unshare --mount` does by default).
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    for step in request["steps"]:
        _run_step(step)
    name = request["hostname"].encode()
    _check(int(_libc.sethostname(name, ctypes.c_size_t(len(name)))), "sethostname")
    listener = _listen(request["launcher_dir"])
    _pivot_into(request["root"])
    _harden_and_lock()
    os.dup2(0, 2)  # /dev/null, like 0 and 1
    keep = sorted((report, listener.fileno()))
    for low, high in zip([2, *keep], [*keep, 1 << 16], strict=True):
        os.closerange(low + 1, high)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    # "R" then end of file is how the spawner learns of success.
    os.write(report, b"R\n")
    os.close(report)
    _serve(listener)


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
        asking for other limits is forked the slow way. (Not posix_spawn: glibc's leaves its two
        internal signals ignored in the command.)"""
        rlimits = {name: int(value) for name, value in (message.get("rlimits") or {}).items() if name in _RLIMITS}
        if not self.rlimits:
            for name, value in rlimits.items():
                resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (value, value))
            self.rlimits.update(rlimits)
        if rlimits != self.rlimits:
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
        try:
            os.chdir(message.get("cwd") or "/")
        except OSError:
            os.chdir("/")
        os.execve(message["argv"][0], message["argv"], message["env"])
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(2, f"scenario-mcp: cannot start {message.get('argv')}: {exc}\n".encode())
    os._exit(127)


def _child(report: int, go: int, requests: int, network: bool) -> None:
    """Unshare user, PID, IPC and UTS namespaces, wait for the id maps, fork the future init,
    report its pid and exit."""
    keep = sorted((report, go, requests))
    for low, high in zip([2, *keep], [*keep, 1 << 16], strict=True):
        os.closerange(low + 1, high)  # the spawner's other descriptors (another prepared init's)
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)  # the spawner's pipes to the server are not ours to hold open
    os.close(devnull)
    _check(int(_libc.unshare(ctypes.c_int(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS))), "unshare")
    os.write(report, b"U\n")
    if os.read(go, 1) != b"G":
        os._exit(1)  # the spawner gave up on us
    pid = os.fork()
    if pid == 0:
        try:
            _init(report, requests, network)
        except BaseException as exc:
            _report_error(report, exc)
        os._exit(1)
    os.write(report, f"P{pid}\n".encode())


def _report_error(report: int, exc: BaseException) -> None:
    message = str(exc) if isinstance(exc, SpawnError) else f"{type(exc).__name__}: {exc}"
    with contextlib.suppress(OSError):
        os.write(report, ("E" + message.replace("\n", " ") + "\n").encode(errors="replace"))


def _write_id_maps(pid: int) -> None:
    uid, gid = os.geteuid(), os.getegid()
    try:
        if uid != 0:
            # An unprivileged process may map only its own ids, and only without setgroups.
            with open(f"/proc/{pid}/setgroups", "w") as f:
                f.write("deny")
        with open(f"/proc/{pid}/uid_map", "w") as f:
            f.write(f"0 {uid} 1")
        with open(f"/proc/{pid}/gid_map", "w") as f:
            f.write(f"0 {gid} 1")
    except OSError as exc:
        raise SpawnError(f"writing the sandbox's uid/gid maps: {exc}") from exc


class _Lines:
    """Lines from the children's report pipe, with a deadline."""

    def __init__(self, fd: int, deadline: float) -> None:
        self.fd, self.deadline, self.buffer = fd, deadline, b""

    def next(self) -> bytes | None:
        """The next line, or None at end of file (every writer closed or exec'd)."""
        while b"\n" not in self.buffer:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise SpawnError(f"sandbox setup did not finish in {SETUP_TIMEOUT:g} s")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self.fd, 4096)
            if not chunk:
                if self.buffer:
                    line, self.buffer = self.buffer, b""
                    return line
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


class _Ready:
    """A future init, forked ahead of time, blocked reading its request."""

    def __init__(self, pid: int, requests: int, reports: _Lines) -> None:
        self.pid, self.requests, self.reports = pid, requests, reports


def prepare(network: bool) -> _Ready:
    """Fork a future init into fresh user, PID, IPC, UTS (and network) namespaces: the slow part
    of a start."""
    report_r, report_w = os.pipe()
    go_r, go_w = os.pipe()
    requests_r, requests_w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(report_r)
            os.close(go_w)
            os.close(requests_w)
            _child(report_w, go_r, requests_r, network)
        except BaseException as exc:
            _report_error(report_w, exc)
            os._exit(1)
        os._exit(0)
    for fd in (report_w, go_r, requests_r):
        os.close(fd)
    lines = _Lines(report_r, time.monotonic() + SETUP_TIMEOUT)
    try:
        line = lines.next()
        if line != b"U":
            raise SpawnError(_failure(line))
        _write_id_maps(child)
        os.write(go_w, b"G")
        line = lines.next()
        if line is None or not line.startswith(b"P"):
            raise SpawnError(_failure(line))
        return _Ready(int(line[1:]), requests_w, lines)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)  # its child, if any, reads end of file and exits
        os.close(report_r)
        os.close(requests_w)
        raise
    finally:
        os.close(go_w)


# cgroup directories (one per hierarchy) that prepared inits are moved into ahead of time, as
# `spare-<pid>`: moving a process between cgroups can cost milliseconds, and this way a start
# does not wait for it. The server adopts the spare by renaming it (see limits.py).
CGROUP_PARENTS: list[str] = []


def _place_in_spare_cgroups(pid: int) -> str | None:
    name = f"spare-{pid}"
    try:
        for parent in CGROUP_PARENTS:
            os.makedirs(os.path.join(parent, name), exist_ok=True)
            with open(os.path.join(parent, name, "cgroup.procs"), "w") as f:
                f.write(str(pid))
    except OSError:
        return None
    return name if CGROUP_PARENTS else None


def launch(ready: _Ready, request: Request) -> int:
    """Hand a request to a prepared init; its host pid once it runs the init shell."""
    try:
        data = json.dumps(request).encode()
        try:
            while data:
                data = data[os.write(ready.requests, data) :]
        except BrokenPipeError:
            raise _StaleError("the prepared sandbox process died before its request") from None
        os.close(ready.requests)
        ready.requests = -1
        ready.reports.deadline = time.monotonic() + SETUP_TIMEOUT
        line = ready.reports.next()
        if line != b"R":
            raise SpawnError(_failure(line))
        line = ready.reports.next()
        if line is not None:
            raise SpawnError(_failure(line))
        return ready.pid
    except SpawnError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(ready.pid, signal.SIGKILL)
        raise
    finally:
        if ready.requests != -1:
            os.close(ready.requests)
        os.close(ready.reports.fd)


def _failure(line: bytes | None) -> str:
    if line is None:
        return "the sandbox's setup process exited without a word"
    if line.startswith(b"E"):
        return line[1:].decode(errors="replace")
    return f"unexpected report from the sandbox's setup: {line!r}"


def _reap(_signum: int, _frame: Any) -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is for the server to handle
    signal.signal(signal.SIGCHLD, _reap)
    _libc.prctl(ctypes.c_int(PR_SET_CHILD_SUBREAPER), ctypes.c_ulong(1), 0, 0, 0)
    CGROUP_PARENTS.extend(sys.argv[1:])
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    ready: _Ready | None = None  # without network, the common case
    spare: str | None = None
    while True:
        if ready is None:
            # Get the next sandbox's slow part done while the server has no request for us.
            with contextlib.suppress(SpawnError):
                ready = prepare(network=False)
                spare = _place_in_spare_cgroups(ready.pid)
        line = stdin.readline()
        if not line:
            return  # the server is gone; the sandboxes live on (and `ready` sees end of file)
        reply: dict[str, Any]
        try:
            request: Request = json.loads(line)
            for attempt in range(2):
                current_spare = None
                if request["network"]:
                    current = prepare(network=True)
                elif ready is not None:
                    current, ready, current_spare, spare = ready, None, spare, None
                else:
                    current = prepare(network=False)
                try:
                    reply = {"ok": True, "pid": launch(current, request), "cgroup": current_spare}
                    break
                except _StaleError:
                    if attempt:
                        raise
        except SpawnError as exc:
            reply = {"ok": False, "error": str(exc)}
        except Exception as exc:
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        stdout.write(json.dumps(reply).encode() + b"\n")
        stdout.flush()


if __name__ == "__main__":
    main()
