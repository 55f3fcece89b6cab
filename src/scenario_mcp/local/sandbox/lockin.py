"""How a sandbox's processes are locked in: a procfs hardened, a nested user namespace entered.

A devbox's init (init.py) and each build step's process (step_process.py) make their root, then
lock it in: mounts made in a namespace owned by a more privileged user namespace cannot be
unmounted or remounted from a nested one. Standard library only.
"""

from __future__ import annotations

import os

from . import libc, mount_plan

# /proc entries that act on the whole host. The devbox's root is the host's uid 0 (when the
# server runs as root), which passes the owner check on them: they are made read-only or masked.
PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus", "fs", "acpi", "scsi", "driver", "mtrr")
PROC_MASKED = ("kcore", "keys", "timer_list", "sched_debug", "kallsyms", "kmsg")


def harden_and_lock(nested_user_ns: int) -> None:
    """Protect /proc, then lock the root in (lock)."""
    harden_proc("/proc")
    lock(nested_user_ns)


def is_procfs(operation: mount_plan.SetupOp) -> bool:
    return isinstance(operation, mount_plan.Mount) and operation.fstype == "proc"


def harden_proc(proc: str) -> None:
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


def lock(nested_user_ns: int) -> None:
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


def take_nested_user_namespace(from_parent: int, to_parent: int) -> int:
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
