"""Per-devbox resource limits: cgroups where the engine can make them, rlimits where it cannot.

cgroup v1 (pids, memory, cpu, freezer hierarchies, writable as root) and cgroup v2 (a delegated
subtree) are both handled. A command joins its devbox's cgroups before it enters the devbox, so
everything it starts (background processes included) is counted and limited.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
GROUP_NAME = "scenario-mcp"

DEFAULT_PIDS = 1024
DEFAULT_MEMORY_BYTES = 4 << 30
DEFAULT_DISK_BYTES = 10 << 30
DEVBOX_CPU_SHARES = 256  # the server keeps the default 1024: it stays responsive under abuse


@dataclass(frozen=True)
class LimitRequest:
    pids: int = DEFAULT_PIDS
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    disk_bytes: int = DEFAULT_DISK_BYTES


@dataclass
class Cgroups:
    """One devbox's cgroups: the directories made, and what they enforce."""

    procs_files: list[Path] = field(default_factory=list)
    dirs: list[Path] = field(default_factory=list)
    enforced: list[str] = field(default_factory=list)
    memory_dir: Path | None = None
    freezer_dir: Path | None = None
    version: int = 0
    disk_bytes: int = DEFAULT_DISK_BYTES
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    max_pids: int = DEFAULT_PIDS
    pids_dir: Path | None = None
    cpu_usage_dir: Path | None = None  # cpuacct (v1) or the unified group (v2): CPU time used
    adopted: bool = False  # init already sits in these cgroups (a spare, renamed)
    _seen_ooms: int = 0
    _seen_pid_hits: int = 0
    _open_files: dict[Path, int] = field(default_factory=dict)

    def rlimits(self) -> dict[str, int]:
        """What each command gets as rlimits: the file size cap always; memory and processes where
        no cgroup limits them (per process, and per uid, which is the best an rlimit can do)."""
        limits = {"FSIZE": self.disk_bytes}
        if self.memory_dir is None:
            limits["AS"] = self.memory_bytes
        if self.pids_dir is None:
            limits["NPROC"] = self.max_pids
        return limits

    def add_process(self, pid: int) -> None:
        for procs in self.procs_files:
            with contextlib.suppress(OSError):
                procs.write_text(str(pid))

    def oom_kills(self) -> int:
        if self.memory_dir is None:
            return 0
        return self._counter(
            self.memory_dir / ("memory.oom_control" if self.version == 1 else "memory.events"), "oom_kill"
        )

    def new_oom_kills(self) -> bool:
        """Whether the kernel OOM-killed a process of the devbox since the last look."""
        count = self.oom_kills()
        seen, self._seen_ooms = self._seen_ooms, count
        return count > seen

    def new_pids_limit_hits(self) -> bool:
        """Whether a fork was refused for the pids limit since the last look."""
        count = self.pids_limit_hits()
        seen, self._seen_pid_hits = self._seen_pid_hits, count
        return count > seen

    def pids_limit_hits(self) -> int:
        """How often a fork was refused for the pids limit."""
        return 0 if self.pids_dir is None else self._counter(self.pids_dir / "pids.events", "max")

    def _counter(self, path: Path, key: str) -> int:
        """A counter of a cgroup's flat-keyed file, read again (every command) through a descriptor
        kept open: opening the file costs many times the read."""
        try:
            fd = self._open_files.get(path)
            if fd is None:
                fd = self._open_files[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            text = os.pread(fd, 4096, 0).decode()
        except OSError:
            return 0
        match = re.search(rf"^{key} (\d+)$", text, re.MULTILINE)
        return int(match.group(1)) if match else 0

    def cpu_seconds(self) -> float | None:
        """CPU time every process of the devbox used, reaped ones included; None without a cgroup."""
        if self.cpu_usage_dir is None:
            return None
        try:
            if self.version == 1:
                return int((self.cpu_usage_dir / "cpuacct.usage").read_text()) / 1e9
            stat = (self.cpu_usage_dir / "cpu.stat").read_text()
        except (OSError, ValueError):
            return None
        match = re.search(r"^usage_usec (\d+)$", stat, re.MULTILINE)
        return int(match.group(1)) / 1e6 if match else None

    def memory_peak_bytes(self) -> int | None:
        """The most memory the devbox's cgroup held; None without one (or a v2 kernel before memory.peak)."""
        if self.memory_dir is None:
            return None
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        try:
            return int((self.memory_dir / name).read_text())
        except (OSError, ValueError):
            return None

    def freeze(self, frozen: bool) -> bool:
        """Freeze or thaw every process; False when there is no freezer (the caller signals instead)."""
        if self.freezer_dir is None:
            return False
        try:
            if self.version == 1:
                (self.freezer_dir / "freezer.state").write_text("FROZEN" if frozen else "THAWED")
            else:
                (self.freezer_dir / "cgroup.freeze").write_text("1" if frozen else "0")
        except OSError:
            return False
        return True

    def pids(self) -> list[int]:
        for procs in self.procs_files:
            with contextlib.suppress(OSError):
                return [int(p) for p in procs.read_text().split()]
        return []

    def kill_all_except(self, keep: int) -> None:
        """Kill every process in the cgroup but one (init), frozen first so none can fork away."""
        frozen = self.freeze(True)
        for _ in range(20):
            victims = [pid for pid in self.pids() if pid != keep]
            if not victims:
                break
            for pid in victims:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            if frozen:
                self.freeze(False)  # frozen processes die only once thawed
                frozen = self.freeze(True)
            time.sleep(0.01)
        self.freeze(False)
        # The dead count against the pids limit until init has reaped them: wait for that, so
        # the next command can fork.
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and self._pids_current() > 2:
            time.sleep(0.01)

    def _pids_current(self) -> int:
        for procs in self.procs_files:
            with contextlib.suppress(OSError, ValueError):
                return int((procs.parent / "pids.current").read_text())
        return 0

    def destroy(self) -> None:
        """Kill whatever is left and remove the directories."""
        while self._open_files:
            os.close(self._open_files.popitem()[1])
        if self.freezer_dir is not None:
            self.freeze(False)
        for pid in self.pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        for directory in self.dirs:
            for _ in range(50):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)  # the last processes are still exiting


def _own_cgroup_paths() -> dict[str, str]:
    """controller -> this process's cgroup path (v1), and "" -> its v2 path."""
    paths: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _id, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    return paths


# cpuacct limits nothing; it measures a devbox's CPU time (cpu_seconds).
V1_CONTROLLERS = ("pids", "memory", "cpu", "cpuacct", "freezer")


@functools.cache
def _v1_layout() -> tuple[tuple[Path, tuple[str, ...]], ...]:
    """Each mounted cgroup v1 hierarchy the engine uses: the parent directory its cgroups are made
    in, and the controllers it carries (`cpu` and `cpuacct` are often one hierarchy, seen under
    both names). Looked up once: it costs a millisecond, and every devbox and scorer needs it."""
    own = _own_cgroup_paths()
    hierarchies: dict[Path, list[str]] = {}
    for controller in V1_CONTROLLERS:
        root = CGROUP_ROOT / controller
        if (root / "cgroup.procs").exists():
            hierarchies.setdefault(root.resolve(), []).append(controller)
    return tuple(
        (root / own.get(controllers[0], "/").lstrip("/") / GROUP_NAME, tuple(controllers))
        for root, controllers in hierarchies.items()
    )


def _v1_parents() -> dict[str, Path]:
    """One parent directory per hierarchy, by the first controller it carries."""
    return {controllers[0]: parent for parent, controllers in _v1_layout()}


def group_parents() -> list[Path]:
    """The directories devbox, scorer and spare cgroups are made in (cgroup v1), one a controller."""
    return list(_v1_parents().values())


def spare_cgroup_parents() -> list[Path]:
    """Where the spawner may park prepared inits (cgroup v1 only: v2 cannot rename a cgroup)."""
    parents = []
    for parent in _v1_parents().values():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            return []  # all or nothing: a spare is adopted whole
        parents.append(parent)
    return parents


def remove_stale_spares() -> None:
    """Spare cgroups whose prepared init died with a previous spawner are empty: remove them."""
    for parent in _v1_parents().values():
        with contextlib.suppress(OSError):
            for spare in parent.glob("spare-*"):
                with contextlib.suppress(OSError):
                    spare.rmdir()  # fails, as it should, while a prepared init is in it


def remove_stale_groups(prefix: str) -> None:
    """Cgroups named `prefix...` that a dead server left: whatever is still in them killed, the
    directories removed."""
    parents = list(_v1_parents().values())
    own_v2 = _own_cgroup_paths().get("")
    if not parents and own_v2 is not None and (CGROUP_ROOT / "cgroup.controllers").exists():
        parents.append(CGROUP_ROOT / own_v2.lstrip("/") / GROUP_NAME)
    names: set[str] = set()
    for parent in parents:
        with contextlib.suppress(OSError):
            names.update(group.name for group in parent.glob(f"{prefix}*"))
    for name in names:
        make_cgroups(name, LimitRequest()).destroy()


def remove_spare(name: str) -> None:
    """A spare cgroup whose init has exited and that nobody adopted (a build's or a scorer's
    sandbox that ended first): removed, once the kernel has let its last process go."""
    for parent in _v1_parents().values():
        for _ in range(50):
            try:
                (parent / name).rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)


def make_cgroups(name: str, request: LimitRequest, *, adopt: str | None = None) -> Cgroups:
    """Make cgroups for one devbox; never raises: where it cannot, rlimits stand in (see rlimits)."""
    groups = Cgroups(disk_bytes=request.disk_bytes, memory_bytes=request.memory_bytes, max_pids=request.pids)
    groups.enforced.append(f"file size <= {request.disk_bytes} bytes (rlimit)")
    _make(groups, name, request, adopt)
    if groups.memory_dir is None:
        groups.enforced.append(f"memory <= {request.memory_bytes} bytes per process (rlimit)")
    if groups.pids_dir is None:
        groups.enforced.append(f"processes <= {request.pids} per user (rlimit)")
    return groups


def _make(groups: Cgroups, name: str, request: LimitRequest, adopt: str | None) -> None:
    v1 = _v1_layout()
    if v1:
        groups.version = 1
        adopted = 0
        for parent, controllers in v1:
            directory = parent / name
            try:
                if adopt is not None and (parent / adopt).is_dir():
                    # The spawner parked this init in a spare cgroup: take it over by name.
                    (parent / adopt).rename(directory)
                    adopted += 1
                else:
                    directory.mkdir(parents=True, exist_ok=True)
                for controller in controllers:
                    _limit_v1(groups, controller, directory, request)
            except OSError as exc:
                log.debug("cgroup v1 %s unavailable: %s", ",".join(controllers), exc)
                continue
            groups.dirs.append(directory)
            groups.procs_files.append(directory / "cgroup.procs")
        groups.adopted = adopted == len(v1)
        return
    own = _own_cgroup_paths()
    if (CGROUP_ROOT / "cgroup.controllers").exists() and "" in own:
        parent = CGROUP_ROOT / own[""].lstrip("/") / GROUP_NAME
        directory = parent / name
        try:
            parent.mkdir(exist_ok=True)
            with contextlib.suppress(OSError):
                (parent / "cgroup.subtree_control").write_text("+pids +memory +cpu")
            directory.mkdir(exist_ok=True)
            groups.version = 2
            groups.dirs.append(directory)
            groups.procs_files.append(directory / "cgroup.procs")
            groups.freezer_dir = directory
            groups.cpu_usage_dir = directory
            groups.enforced.append("freezer")
            with contextlib.suppress(OSError):
                (directory / "pids.max").write_text(str(request.pids))
                groups.pids_dir = directory
                groups.enforced.append(f"pids <= {request.pids}")
            with contextlib.suppress(OSError):
                (directory / "memory.max").write_text(str(request.memory_bytes))
                groups.memory_dir = directory
                groups.enforced.append(f"memory <= {request.memory_bytes} bytes")
        except OSError as exc:
            log.debug("cgroup v2 unavailable: %s", exc)


def _limit_v1(groups: Cgroups, controller: str, directory: Path, request: LimitRequest) -> None:
    """Set one v1 controller's limit on a devbox's directory, and note what it enforces."""
    if controller == "pids":
        (directory / "pids.max").write_text(str(request.pids))
        groups.pids_dir = directory
        groups.enforced.append(f"pids <= {request.pids}")
    elif controller == "memory":
        (directory / "memory.limit_in_bytes").write_text(str(request.memory_bytes))
        groups.memory_dir = directory
        groups.enforced.append(f"memory <= {request.memory_bytes} bytes")
    elif controller == "cpu":
        (directory / "cpu.shares").write_text(str(DEVBOX_CPU_SHARES))
        groups.enforced.append(f"cpu shares {DEVBOX_CPU_SHARES}")
    elif controller == "cpuacct":
        groups.cpu_usage_dir = directory  # measures only (usage), limits nothing
    elif controller == "freezer":
        groups.freezer_dir = directory
        groups.enforced.append("freezer")
