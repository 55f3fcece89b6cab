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

# A networked devbox's own network: a TAP device in its network namespace, served by slirp4netns
# (user-mode TCP/IP on the host side: each connection the devbox opens becomes a socket of the
# slirp4netns process). slirp4netns's fixed addresses:
SLIRP_NETWORK = "10.0.2.0/24"
SLIRP_DNS = "10.0.2.3"  # its DNS forwarder, to the host's resolver
SLIRP_TAP = "tap0"
# Destinations a devbox never reaches, whatever its policy: the host's loopback and link-local
# ranges (cloud metadata services live at 169.254.169.254), and the rest of slirp's network (its
# gateway 10.0.2.2 would be the host's loopback, were slirp4netns not told to refuse).
ALWAYS_BLOCKED_V4 = ("127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/8", SLIRP_NETWORK)
ALWAYS_BLOCKED_V6 = ("::1/128", "fe80::/10", "::ffff:0:0/96")
NETWORK_TOOLS = {"slirp4netns": "slirp4netns", "nft": "nftables"}  # program -> Debian package


class Request(TypedDict):
    root: str  # the mount point that becomes `/`
    steps: list[list[str]]  # see _run_step
    network: bool  # outbound connectivity through slirp4netns (every sandbox has its own netns)
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


def host_addresses() -> tuple[list[str], list[str]]:
    """The host's own IPv4 and IPv6 addresses (read in the host's network namespace): a devbox's
    connection to one of them would reach the host's services through slirp4netns's sockets."""
    v4: list[str] = []
    with contextlib.suppress(OSError), open("/proc/net/fib_trie") as trie:
        last = ""
        for line in trie:
            text = line.strip()
            if text.startswith("|-- "):
                last = text[4:]
            elif text == "/32 host LOCAL" and last and not last.startswith("127.") and last not in v4:
                v4.append(last)
    v6: list[str] = []
    with contextlib.suppress(OSError), open("/proc/net/if_inet6") as table:
        for line in table:
            digits = line.split()[0]
            address = ":".join(digits[i : i + 4] for i in range(0, 32, 4))
            if address not in v6:
                v6.append(address)
    return v4, v6


def egress_ruleset(blocked_v4: list[str], blocked_v6: list[str]) -> str:
    """The nftables rules of a networked devbox's namespace: what it may not reach.

    Installed by init before the devbox's commands exist, from the user namespace that owns the
    network namespace; the commands run in a nested one, without CAP_NET_ADMIN over it, so they
    cannot change them. Outbound traffic not matched here goes to slirp4netns. (An allowlist of
    hostnames becomes one more rule here: `ip daddr != @allowed reject`.)"""
    v4 = ", ".join([*ALWAYS_BLOCKED_V4, *blocked_v4])
    v6 = ", ".join([*ALWAYS_BLOCKED_V6, *blocked_v6])
    return f"""table inet scenario_mcp {{
    chain egress {{
        type filter hook output priority 0; policy accept;
        oif "lo" accept
        ip daddr {SLIRP_DNS} meta l4proto {{ tcp, udp }} th dport 53 accept
        ip daddr {{ {v4} }} meta l4proto tcp reject with tcp reset
        ip daddr {{ {v4} }} reject with icmp type admin-prohibited
        ip6 daddr {{ {v6} }} meta l4proto tcp reject with tcp reset
        ip6 daddr {{ {v6} }} reject with icmpv6 type admin-prohibited
    }}
}}
"""


def _network_tool(name: str) -> str:
    path = shutil.which(name, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        missing = " ".join(NETWORK_TOOLS.values())
        raise SpawnError(
            f"a devbox with network needs {name}, which is not installed; install {missing} "
            f"(Debian: apt-get install {missing}), or create the devbox without network"
        )
    return path


def _own_network(network: bool, ruleset: str) -> None:
    """In init, before any request: its own network namespace, `lo` up, root's usual rights in it
    (binding ports below 1024, pinging) though commands hold no capability over it, and (with
    network) the egress rules."""
    _check(int(_libc.unshare(ctypes.c_int(CLONE_NEWNET))), "unshare(CLONE_NEWNET)")
    with contextlib.suppress(OSError):  # a sandbox without loopback is still usable
        _loopback_up()
    for name, value in (("ip_unprivileged_port_start", "0"), ("ping_group_range", "0 0")):
        with contextlib.suppress(OSError), open(f"/proc/sys/net/ipv4/{name}", "w") as f:
            f.write(value)
    if network:
        nft = subprocess.run(
            [_network_tool("nft"), "-f", "-"], input=ruleset.encode(), capture_output=True, check=False
        )
        if nft.returncode != 0:
            raise SpawnError(f"installing the devbox's egress rules: {nft.stderr.decode(errors='replace').strip()}")


def _start_slirp(pid: int, exit_fd: int) -> subprocess.Popen[bytes]:
    """Attach slirp4netns to a prepared init's network namespace; returns once `tap0` is up.

    It refuses the gateway's mapping to the host's loopback, confines itself (seccomp; as root,
    its sandbox too), forwards no port, and exits when init does (`exit_fd` closes)."""
    ready_r, ready_w = os.pipe()
    try:
        process = subprocess.Popen(
            [
                _network_tool("slirp4netns"),
                "--configure",
                "--mtu=65520",
                "--disable-host-loopback",
                # As root, its own sandbox drops every capability but binding low ports. (Not
                # otherwise: 1.2.0's fails to take the devbox's gid there, and it holds nothing
                # the server's user does not.)
                *(["--enable-sandbox"] if os.geteuid() == 0 else []),
                "--enable-seccomp",
                f"--exit-fd={exit_fd}",
                f"--ready-fd={ready_w}",
                f"--userns-path=/proc/{pid}/ns/user",
                "--netns-type=path",
                f"/proc/{pid}/ns/net",
                SLIRP_TAP,
            ],
            pass_fds=(exit_fd, ready_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    finally:
        os.close(ready_w)
    try:
        ready, _, _ = select.select([ready_r], [], [], SETUP_TIMEOUT)
        if not ready or os.read(ready_r, 1) != b"1":
            process.kill()
            _, err = process.communicate()
            reason = err.decode(errors="replace").strip()[-500:]
            if "/dev/net/tun" in reason:
                reason += " (a server not run as root needs it open to all, as udev makes it: chmod 0666 /dev/net/tun)"
            raise SpawnError(f"slirp4netns did not bring the devbox's network up: {reason}")
    finally:
        os.close(ready_r)
    assert process.stderr is not None
    process.stderr.close()
    return process


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


def _harden_and_lock() -> None:
    """Protect /proc, then move into a nested user and mount namespace.

    Mounts made in a namespace owned by a more privileged user namespace are locked in the new
    one: the devbox's root cannot unmount or remount them (nor mount a fresh procfs, as its PID
    namespace belongs to the outer user namespace). Nor does it hold any capability over the
    network namespace (owned by the outer one): its routes and egress rules are not its to change.
    Root in the devbox stays the same uid for files (the host's 0 when the server runs as root),
    so copy-on-write into the system directories works, but it can no longer undo these.
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
    _check(int(_libc.unshare(ctypes.c_int(CLONE_NEWUSER | CLONE_NEWNS))), "unshare(nested user namespace)")
    # A process may map only its own ids into a user namespace it created, and then without
    # setgroups: uid and gid 0 stay 0.
    for name, text in (("setgroups", "deny"), ("uid_map", "0 0 1"), ("gid_map", "0 0 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def _init(report: int, requests: int, network_exit: int, ruleset: str) -> None:
    """PID 1 of the new PID namespace: wait for a request, build the root, become the init shell.

    `network_exit` (with network; else -1) is the write end of slirp4netns's exit pipe: held open
    by init alone, it closes when init ends, and slirp4netns with it."""
    network = network_exit >= 0
    os.setsid()
    _own_network(network, ruleset)
    os.write(report, b"N\n")  # the spawner may attach slirp4netns to this namespace now
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
    keep = sorted({report, listener.fileno(), *([network_exit] if network else [])})
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


def _child(report: int, go: int, requests: int, network_exit: int, ruleset: str) -> None:
    """Unshare user, PID, IPC and UTS namespaces, wait for the id maps, fork the future init,
    report its pid and exit."""
    keep = sorted({report, go, requests, *([network_exit] if network_exit >= 0 else [])})
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
            _init(report, requests, network_exit, ruleset)
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
        self.slirp: subprocess.Popen[bytes] | None = None  # its network, when it has one


def prepare(network: bool) -> _Ready:
    """Fork a future init into fresh user, PID, IPC, UTS and network namespaces (with network,
    slirp4netns attached to the latter): the slow part of a start."""
    ruleset = egress_ruleset(*host_addresses()) if network else ""
    exit_r = exit_w = -1
    if network:
        _network_tool("nft")
        _network_tool("slirp4netns")
        exit_r, exit_w = os.pipe()
    report_r, report_w = os.pipe()
    go_r, go_w = os.pipe()
    requests_r, requests_w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(report_r)
            os.close(go_w)
            os.close(requests_w)
            if network:
                os.close(exit_r)
            _child(report_w, go_r, requests_r, exit_w, ruleset)
        except BaseException as exc:
            _report_error(report_w, exc)
            os._exit(1)
        os._exit(0)
    for fd in (report_w, go_r, requests_r, *([exit_w] if network else [])):
        os.close(fd)
    lines = _Lines(report_r, time.monotonic() + SETUP_TIMEOUT)
    pid = None
    try:
        line = lines.next()
        if line != b"U":
            raise SpawnError(_failure(line))
        _write_id_maps(child)
        os.write(go_w, b"G")
        seen = {lines.next(), lines.next()}  # the child's "P<pid>" and init's "N", in either order
        pids = [line for line in seen if line and line.startswith(b"P")]
        if not pids or b"N" not in seen:
            raise SpawnError(_failure(next((line for line in seen if line not in (b"N", *pids)), None)))
        pid = int(pids[0][1:])
        ready = _Ready(pid, requests_w, lines)
        if network:
            ready.slirp = _start_slirp(pid, exit_r)
        return ready
    except BaseException:
        for doomed in (child, pid):
            if doomed is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(doomed, signal.SIGKILL)  # an init, if any, reads end of file and exits
        os.close(report_r)
        os.close(requests_w)
        raise
    finally:
        os.close(go_w)
        if network:
            os.close(exit_r)


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
    # The next sandbox's slow part, done while the server has no request for us: one without
    # network (the common case), and one with network once the server has asked for one.
    ready: dict[bool, _Ready | None] = {False: None, True: None}
    spare: dict[bool, str | None] = {False: None, True: None}
    wanted = {False}
    while True:
        for network in sorted(wanted):
            if ready[network] is None:
                with contextlib.suppress(SpawnError):
                    prepared = prepare(network)
                    ready[network], spare[network] = prepared, _place_in_spare_cgroups(prepared.pid)
        line = stdin.readline()
        if not line:
            return  # the server is gone; the sandboxes live on (and `ready` sees end of file)
        reply: dict[str, Any]
        try:
            request: Request = json.loads(line)
            network = bool(request["network"])
            wanted.add(network)
            for attempt in range(2):
                current, current_spare = ready[network], spare[network]
                ready[network] = spare[network] = None
                if current is None:
                    current = prepare(network)
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
