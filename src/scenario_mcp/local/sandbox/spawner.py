"""The sandbox spawner: a small single-threaded helper process that starts sandbox inits.

The server cannot safely fork itself (it runs threads), and spawning `unshare` plus a shell that
runs a dozen `mount` commands costs tens of milliseconds. This helper, started once per server
(`python -I -S spawner.py`, standard library only), reads one JSON request per line on stdin and
answers one JSON line on stdout: `{"ok": true, "pid": <host pid of init>}` or `{"ok": false,
"error": ...}`.

The slow part of a start is done ahead of time, while the server has nothing to ask: the spawner
forks a child that unshares user, PID, IPC and UTS namespaces, writes the child's uid/gid maps
(root in the sandbox is the spawner's own uid; setgroups stays allowed when that is root), and the
child forks the future init (init.py), PID 1 of the new PID namespace; then it makes a user
namespace nested in its own, hands it to init (which maps its ids) and exits. Init makes its own
network and mount namespaces; with network, the spawner then attaches slirp4netns to the former
(network.py).
Init waits for its request on a pipe, then builds the root from the request's mount plan and
serves the devbox's commands. The sandbox does not depend on the spawner: it keeps running when
the spawner or the server exits.

A sandbox its server cannot hear of never runs: a restarted server may already have looked for it.
While a start is in flight the spawner holds the sandbox's state directory (a shared flock); it
starts nothing for a server that is gone (a request still in the pipe when the server died), and
ends a sandbox whose answer finds no reader before it lets the directory go. A restarted server
takes the directory exclusively before it looks there for an init it has no record of
(`spawns_settled`). When its server is gone, the spawner ends its prepared inits too.

The spawner is a child subreaper, so inits (orphaned by their short-lived parents) are reaped by it
while it runs; after it is gone, by the host's init.
"""

from __future__ import annotations

# Run as a script (python -I -S spawner.py: no site-packages, nothing of the user's environment),
# this file's siblings become the modules of a bare package, so the relative imports below find
# them without running the package's __init__ (which needs the server's dependencies). PEP 366.
if not __package__:
    import os as _os
    import sys as _sys
    import types as _types

    _bare = _types.ModuleType("scenario_mcp_sandbox")
    _bare.__path__ = [_os.path.dirname(_os.path.abspath(__file__))]
    _sys.modules[_bare.__name__] = _bare
    __package__ = _bare.__name__

import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

from . import init, libc, lockin, network
from .libc import SpawnError

SETUP_TIMEOUT = 30.0
# Below the server in CPU priority, and so is every sandbox (its init and all it starts inherit
# it): a server whose devboxes keep the cores busy still answers at once.
SANDBOX_NICE = 5


class _StaleError(SpawnError):
    """The prepared init was gone before it got its request (killed from outside)."""


def _child(report: int, go: int, requests: int, network_exit: int, ruleset: str) -> None:
    """Unshare user, PID, IPC and UTS namespaces, wait for the id maps, fork the future init,
    report its pid, make the user namespace init will nest its own in, and exit."""
    keep = sorted({report, go, requests, *([network_exit] if network_exit >= 0 else [])})
    for low, high in zip([2, *keep], [*keep, 1 << 16], strict=True):
        os.closerange(low + 1, high)  # the spawner's other descriptors (another prepared init's)
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)  # the spawner's pipes to the server are not ours to hold open
    os.close(devnull)
    libc.unshare(libc.CLONE_NEWUSER | libc.CLONE_NEWPID | libc.CLONE_NEWIPC | libc.CLONE_NEWUTS, "unshare")
    os.write(report, b"U\n")
    if os.read(go, 1) != b"G":
        os._exit(1)  # the spawner gave up on us
    to_init_r, to_init_w = os.pipe()
    from_init_r, from_init_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(to_init_w)
            os.close(from_init_r)
            init.run(report, requests, network_exit, ruleset, (to_init_r, from_init_w))
        except BaseException as exc:
            _report_error(report, exc)
        os._exit(1)
    os.write(report, f"P{pid}\n".encode())
    # Init's pipes to the spawner and slirp4netns are its alone: the spawner learns of init's
    # success from the end of file of `report`, slirp4netns ends at that of `network_exit`.
    for fd in {report, go, requests, network_exit, to_init_r, from_init_w} - {-1}:
        os.close(fd)
    lockin.nest_user_namespace(to_init_w, from_init_r)


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
            f.write(libc.id_map(uid))
        with open(f"/proc/{pid}/gid_map", "w") as f:
            f.write(libc.id_map(gid))
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


def prepare(networked: bool) -> _Ready:
    """Fork a future init into fresh user, PID, IPC, UTS and network namespaces (with network,
    slirp4netns attached to the latter): the slow part of a start."""
    ruleset = network.egress_ruleset(*network.host_addresses()) if networked else ""
    exit_r = exit_w = -1
    if networked:
        network.network_tool("nft")
        network.network_tool("slirp4netns")
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
            if networked:
                os.close(exit_r)
            _child(report_w, go_r, requests_r, exit_w, ruleset)
        except BaseException as exc:
            _report_error(report_w, exc)
            os._exit(1)
        os._exit(0)
    for fd in (report_w, go_r, requests_r, *([exit_w] if networked else [])):
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
        if networked:
            ready.slirp = network.start_slirp(pid, exit_r, SETUP_TIMEOUT)
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
        if networked:
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


def launch(ready: _Ready, data: bytes) -> int:
    """Hand a request (its JSON, as the server sent it) to a prepared init; its host pid once it
    runs the init shell."""
    try:
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
        _end(ready.pid)
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
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, max(SANDBOX_NICE, os.getpriority(os.PRIO_PROCESS, 0)))
    signal.signal(signal.SIGCHLD, _reap)
    libc.become_child_subreaper()
    CGROUP_PARENTS.extend(sys.argv[1:])
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    slots = _Slots()
    try:
        while True:
            slots.fill()
            line = stdin.readline()
            # At end of file the server is gone; the sandboxes it started live on.
            if not line or not _answer(line, slots, stdout):
                return
    finally:
        slots.discard()


class _Slots:
    """The next sandbox's slow part, done while the server has no request for us: one without
    network (the common case), and one with network once the server has asked for one."""

    def __init__(self) -> None:
        self.ready: dict[bool, _Ready | None] = {False: None, True: None}
        self.spare: dict[bool, str | None] = {False: None, True: None}
        self.wanted = {False}

    def fill(self) -> None:
        for networked in sorted(self.wanted):
            if self.ready[networked] is None:
                with contextlib.suppress(SpawnError):
                    prepared = prepare(networked)
                    self.ready[networked], self.spare[networked] = prepared, _place_in_spare_cgroups(prepared.pid)

    def discard(self) -> None:
        """End the prepared inits and remove the spare cgroups they sat in: none outlives us."""
        for networked, ready in self.ready.items():
            if ready is not None:
                _end(ready.pid)
            spare = self.spare[networked]
            for parent in CGROUP_PARENTS:
                with contextlib.suppress(OSError):
                    if spare is not None:
                        os.rmdir(os.path.join(parent, spare))
        self.ready = {False: None, True: None}

    def start(self, request: init.Request, data: bytes) -> dict[str, Any]:
        """Start a sandbox from a prepared init (a fresh one if none is, or it went stale)."""
        networked = bool(request["network"])
        self.wanted.add(networked)
        for attempt in range(2):
            current, current_spare = self.ready[networked], self.spare[networked]
            self.ready[networked] = self.spare[networked] = None
            if current is None:
                current = prepare(networked)
            try:
                return {"ok": True, "pid": launch(current, data), "cgroup": current_spare}
            except _StaleError:
                if attempt:
                    raise
        raise AssertionError("unreachable")


def _answer(line: bytes, slots: _Slots, stdout: BinaryIO) -> bool:
    """Start the sandbox a request asks for and answer it; False once the server is gone.

    A sandbox the server cannot hear of must never run: a restarted server may already have
    looked for it. So the request's directory is held (see `spawns_settled`) from before the
    server is checked to be there until the sandbox is either answered for or ended."""
    held = None
    try:
        try:
            request: init.Request = json.loads(line)
            held = _hold(request["launcher_dir"])
            if _server_gone(stdout):
                return False  # its request was still in the pipe: nothing is started for it
            reply = slots.start(request, line)
        except SpawnError as exc:
            reply = {"ok": False, "error": str(exc)}
        except Exception as exc:
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        try:
            stdout.write(json.dumps(reply).encode() + b"\n")
            stdout.flush()
        except BrokenPipeError:
            if reply.get("ok"):
                _end(int(reply["pid"]))  # the server died while it was being made
            return False
        return True
    finally:
        if held is not None:
            os.close(held)


def _hold(directory: str) -> int | None:
    """A shared lock on a sandbox's state directory, for as long as its start is in flight."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None  # the sandbox fails without it (its launcher socket goes there)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def _server_gone(stdout: BinaryIO) -> bool:
    """Whether nobody reads our answers any more: the server died (a pipe's write end polls as
    an error once its read end is closed)."""
    poller = select.poll()
    poller.register(stdout.fileno(), select.POLLOUT)
    return any(events & select.POLLERR for _fd, events in poller.poll(0))


def _end(pid: int) -> None:
    """Kill a sandbox's init and wait until it has exited (its launcher socket answers no more).

    SIGCHLD is held meanwhile: init (our child since its parent exited) is not reaped, so its pid
    cannot be reused, before it is signalled."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        select.select([pidfd], [], [], SETUP_TIMEOUT)  # readable once it has exited
    finally:
        os.close(pidfd)


@contextlib.contextmanager
def spawns_settled(state_dir: str, timeout: float = SETUP_TIMEOUT + 5) -> Iterator[None]:
    """For a restarted server, before it looks for a sandbox it has no record of: wait until no
    spawner (a dead server's) is starting one into `state_dir`, and keep new ones out meanwhile.

    A spawner holds the directory shared from before it checks that its server is there until its
    sandbox is answered for or ended (`_answer`): one that gets it after this finds its server gone."""
    try:
        fd = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        yield  # no directory: nothing was ever started there
        return
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    break  # a spawner stuck past its own deadline: look all the same
                time.sleep(0.005)
        yield
    finally:
        os.close(fd)


if __name__ == "__main__":
    main()
