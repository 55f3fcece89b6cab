"""A scorer's sandbox: started fresh for one scorer, in cgroups with the scored devbox's limits
(pids, memory, CPU shares, disk, output caps), watched while the scorer runs, and removed whole
(processes, mounts, cgroups) when it ends.

A scorer usually runs the agent's code (pytest imports it): a fork bomb, a memory hog or a disk
filler planted there meets the same limits it would have met in the devbox, and the scorer that
ran it is stopped and reported with the reason.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
from anyio.abc import TaskGroup

from .launcher import launcher_socket
from .layers import tree_size
from .limits import Cgroups, LimitRequest, make_cgroups
from .processes import Execution, start_process
from .sandbox import Sandbox, SandboxError, SandboxSpec

ORPHAN_GRACE = 60.0  # seconds past its timeout a scorer sandbox's init ends it by itself
WATCH_INTERVAL = 0.2  # how often a running scorer's limits are looked at
SCORER_OUTPUT_NAME = "scorer"  # its stdout and stderr logs, in its work directory
SIGXFSZ_EXIT_STATUS = 153  # 128 + SIGXFSZ: a file reached the size cap


@dataclass(frozen=True)
class ScorerOutcome:
    exit_status: int
    stdout: str
    stderr: str
    timed_out: bool
    limit_hit: str | None  # which devbox limit stopped the scorer, said for the run's logs


def cgroup_prefix(work_dir: Path) -> str:
    """Scorer cgroups of one data dir (several engines may share a machine's cgroup tree): a
    restarted engine removes its own leftovers, never another engine's live scorers."""
    return "scorer-" + hashlib.sha256(str(work_dir.resolve()).encode()).hexdigest()[:8] + "-"


async def run_scorer_sandboxed(
    spec: SandboxSpec,
    *,
    cgroup_name: str,
    limits: LimitRequest,
    argv: Callable[[Path], list[str]],
    env: dict[str, str],
    timeout: float,
    tg: TaskGroup,
) -> ScorerOutcome:
    """Run `argv(root)` (root: the sandbox's root as the host sees it) in a fresh sandbox of `spec`
    inside the devbox's limits; everything it started is gone, and its cgroups removed, when this
    returns."""
    # Its init ends it by itself well after the scorer's timeout, should this server die first.
    sandbox = await Sandbox.start(spec, deadline=time.time() + timeout + ORPHAN_GRACE)
    cgroups = make_cgroups(cgroup_name, limits, adopt=sandbox.spare_cgroup)
    try:
        if cgroups.adopted:
            sandbox.spare_cgroup = None
        else:
            cgroups.add_process(sandbox.init_pid)
        socket_path = launcher_socket(spec.state_dir)
        if socket_path is None:
            raise SandboxError("the scorer's sandbox has no launcher socket")
        execution = await start_process(
            tg=tg,
            launcher_socket=socket_path,
            argv=argv(Path(f"/proc/{sandbox.init_pid}/root")),
            env=env,
            execution_id=SCORER_OUTPUT_NAME,
            devbox_id="",
            command="",
            shell_name=None,
            timeout=timeout,
            log_dir=spec.state_dir.parent,
            attach_stdin=False,
            rlimits=cgroups.rlimits(),
            on_done=_nothing,
        )
        limit_hit = await _watch(execution, cgroups, sandbox, spec.upper(""), limits)
        assert execution.exit_status is not None
        if limit_hit is None:
            limit_hit = _limit_hit_after(execution.exit_status, cgroups)
        if limit_hit is None:  # written faster than the watch looked
            limit_hit = await _over_disk_cap(spec.upper(""), limits)
        return ScorerOutcome(
            exit_status=execution.exit_status,
            stdout=execution.stdout.text(),
            stderr=execution.stderr.text(),
            timed_out=execution.timed_out,
            limit_hit=limit_hit,
        )
    finally:
        with anyio.CancelScope(shield=True):
            await sandbox.stop()
            await anyio.to_thread.run_sync(cgroups.destroy)


async def _nothing(_execution: Execution) -> None:
    """A scorer's run has no record of its own: its output goes to the run's logs."""


async def _watch(
    execution: Execution, cgroups: Cgroups, sandbox: Sandbox, upper: Path, limits: LimitRequest
) -> str | None:
    """Wait for the scorer, stopping it at the first limit it reaches; which one, if any."""
    while not execution.done.is_set():
        with anyio.move_on_after(WATCH_INTERVAL):
            await execution.done.wait()
        if execution.done.is_set():
            return None
        reason = None
        if cgroups.new_pids_limit_hits():
            reason = f"the scorer reached the devbox's process limit ({limits.pids}); every process was killed"
        else:
            reason = await _over_disk_cap(upper, limits)
        if reason is not None:
            execution.kill()
            await anyio.to_thread.run_sync(cgroups.kill_all_except, sandbox.init_pid)
            await execution.done.wait()
            return reason
    return None


async def _over_disk_cap(upper: Path, limits: LimitRequest) -> str | None:
    used = await anyio.to_thread.run_sync(tree_size, upper)
    if used <= limits.disk_bytes:
        return None
    return f"the scorer wrote {used} bytes, over the devbox's disk cap of {limits.disk_bytes} bytes"


def _limit_hit_after(exit_status: int, cgroups: Cgroups) -> str | None:
    if cgroups.new_oom_kills():
        return (
            f"a process of the scorer was killed: it reached the devbox's memory limit of {cgroups.memory_bytes} "
            "bytes (out_of_memory)"
        )
    if cgroups.new_pids_limit_hits():
        return f"the scorer reached the devbox's process limit ({cgroups.max_pids})"
    if exit_status == SIGXFSZ_EXIT_STATUS:
        return f"a file reached the devbox's size cap of {cgroups.disk_bytes} bytes"
    return None
