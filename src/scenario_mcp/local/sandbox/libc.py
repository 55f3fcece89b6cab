"""The few libc calls that make a sandbox (through ctypes): namespaces, mounts, pivot_root.

Standard library only: the spawner helper imports it without the server's dependencies.
"""

from __future__ import annotations

import ctypes
import errno
import os

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
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SLAVE = 1 << 19
MNT_DETACH = 0x2
MOUNT_FLAGS = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36

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


# A root server maps the first 65536 ids into its sandboxes as they are (0 is 0, 1000 is 1000):
# images own files by many ids, and `su` or apt's `_apt` need to switch to them. The devbox holds
# no capability outside its namespaces, and sees no host file but its layers and (on the host's
# base) /usr and /etc with their secrets masked. An unprivileged server can map only its own id.
ID_RANGE = 65536


def id_map(outer_id: int) -> str:
    """The uid_map/gid_map line of a sandbox made by a server running with `outer_id`."""
    return f"0 0 {ID_RANGE}" if outer_id == 0 else f"0 {outer_id} 1"


class SpawnError(Exception):
    """A sandbox could not be set up (said in words the server passes on)."""


_libc = ctypes.CDLL(None, use_errno=True)


def check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise SpawnError(f"{what}: {os.strerror(code)} (errno {errno.errorcode.get(code, code)})")


def unshare(flags: int, what: str) -> None:
    check(int(_libc.unshare(ctypes.c_int(flags))), what)


def setns(fd: int, nstype: int, what: str) -> None:
    check(int(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype))), what)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    result = _libc.mount(
        None if source is None else source.encode(),
        target.encode(),
        None if fstype is None else fstype.encode(),
        ctypes.c_ulong(flags),
        None if data is None else data.encode(),
    )
    check(int(result), f"mount {fstype or source} on {target}" + (f" (-o {data})" if data else ""))


def sethostname(name: str) -> None:
    encoded = name.encode()
    check(int(_libc.sethostname(encoded, ctypes.c_size_t(len(encoded)))), "sethostname")


def pivot_into(root: str) -> None:
    """Make `root` the root of this mount namespace and detach the old one."""
    machine = os.uname().machine
    number = SYS_PIVOT_ROOT.get(machine)
    if number is None:
        raise SpawnError(f"pivot_root: unknown syscall number on {machine}")
    os.chdir(root)
    # pivot_root(".", ".") stacks the old root over the new one; detaching it leaves only ours.
    check(int(_libc.syscall(ctypes.c_long(number), b".", b".")), f"pivot_root into {root}")
    check(int(_libc.umount2(b".", ctypes.c_int(MNT_DETACH))), "detaching the host's root")
    os.chdir("/")


def become_child_subreaper() -> None:
    _libc.prctl(ctypes.c_int(PR_SET_CHILD_SUBREAPER), ctypes.c_ulong(1), 0, 0, 0)


def make_undumpable() -> None:
    """No process without CAP_SYS_PTRACE over the host may read this one's /proc entries (its
    root, cwd, descriptors, memory), whatever its uid: a build sandbox's init keeps the host's
    view, and the steps it starts run as the same uid in the same PID namespace."""
    check(int(_libc.prctl(ctypes.c_int(PR_SET_DUMPABLE), ctypes.c_ulong(0), 0, 0, 0)), "prctl(PR_SET_DUMPABLE)")
