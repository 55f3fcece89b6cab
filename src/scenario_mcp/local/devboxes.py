"""Devbox lifecycle, execution, files, snapshots and blueprints on the local engine."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import posixpath
import re
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import anyio
from anyio.abc import TaskGroup

from ..backend import (
    EnvironmentUnavailableError,
    InvalidRequestError,
    InvalidStateError,
    NotFoundError,
    OperationTimeoutError,
)
from ..models import (
    DEFAULT_KEEP_ALIVE_SECONDS,
    BlueprintBuildLogsListView,
    BlueprintCreateParameters,
    BlueprintView,
    DevboxCreateParameters,
    DevboxLogsListView,
    DevboxLogView,
    DevboxSnapshotListView,
    DevboxSnapshotView,
    DevboxStateTransition,
    DevboxStatus,
    DevboxView,
    ExecutionOutputChunk,
    ExecutionStatus,
    ExecutionView,
    LaunchParameters,
    given,
    new_id,
    now_ms,
)
from .commands import direct_argv, named_shell_argv, shell_argv
from .executions import KILLED_EXIT_STATUS, TIMEOUT_EXIT_STATUS, Execution, start_execution
from .launcher import launcher_socket, terminate
from .layers import LayerStore, tree_size
from .limits import DEFAULT_DISK_BYTES, DEFAULT_MEMORY_BYTES, Cgroups, LimitRequest, make_cgroups
from .sandbox import HOME, Sandbox, SandboxError, SandboxSpec, sandbox_env
from .store import Store

log = logging.getLogger(__name__)

SHELL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_LONG_POLL = 30.0
MAX_LOG_ENTRIES = 1000
MAX_REMEMBERED_EXECUTIONS = 1000
MAX_BUILD_LOG_ENTRY = 16_000  # characters of one build command's log kept (its end)
DEFAULT_EXEC_TIMEOUT = 120.0
MAX_EXEC_TIMEOUT = 3600.0
INLINE_OUTPUT_CAP = 64 * 1024
BUILD_COMMAND_TIMEOUT = 900.0

DEFAULT_BLUEPRINT_NAME = "scenario-mcp-default"
# The default environment: the host's system dirs plus a Python venv with pip and pytest, whose
# bin dir is first on every devbox's PATH (Debian's system python has neither).
DEFAULT_BLUEPRINT_COMMANDS = (
    "python3 -m venv /opt/python",
    "/opt/python/bin/pip install --quiet --disable-pip-version-check pytest",
)

_READ_SCRIPT = r"""
cd /home/user || exit 9
p=$(realpath -e -- "$1" 2>/dev/null) || { echo "no such file: $1" >&2; exit 2; }
case "$p" in /home/user/*) ;; *) echo "resolves to $p, outside /home/user" >&2; exit 3;; esac
[ -f "$p" ] || { echo "$1 is not a regular file" >&2; exit 4; }
exec cat -- "$p"
"""

_LIST_SCRIPT = r"""
cd /home/user || exit 9
p=$(realpath -e -- "$1" 2>/dev/null) || { echo "no such directory: $1" >&2; exit 2; }
case "$p" in /home/user|/home/user/*) ;; *) echo "resolves to $p, outside /home/user" >&2; exit 3;; esac
[ -d "$p" ] || { echo "$1 is not a directory" >&2; exit 4; }
cd -- "$p" || exit 2
for f in * .[!.]* ..?*; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  if [ -d "$f" ]; then printf '%s/\n' "$f"; else printf '%s\n' "$f"; fi
done
"""

# On refusal the contents are still read (and dropped), so the writer never hits a broken pipe.
_WRITE_SCRIPT = r"""
refuse() { echo "$2" >&2; cat > /dev/null; exit "$1"; }
cd /home/user || refuse 9 "no home directory"
p=$(realpath -m -- "$1") || refuse 2 "cannot resolve $1"
case "$p" in /home/user/*) ;; *) refuse 3 "resolves to $p, outside /home/user";; esac
[ -d "$p" ] && refuse 4 "$1 is a directory"
mkdir -p -- "$(dirname -- "$p")" || refuse 5 "cannot create the parent directory of $1"
exec cat > "$p"
"""


def home_relative(file_path: str) -> str:
    """Validate a file tool path: relative to /home/user (or absolute inside it), no escape."""
    if not file_path or "\x00" in file_path:
        raise InvalidRequestError("file_path must be a non-empty path without NUL bytes")
    joined = posixpath.normpath(posixpath.join(HOME, file_path))
    if joined != HOME and not joined.startswith(HOME + "/"):
        raise InvalidRequestError(
            f"file_path {file_path!r} escapes the devbox home {HOME}; give a path relative to {HOME} "
            "(e.g. `src/main.py`) or an absolute path inside it"
        )
    if joined == HOME:
        raise InvalidRequestError(f"file_path {file_path!r} names the home directory itself, not a file")
    return joined


@dataclass
class _Live:
    sandbox: Sandbox
    view: DevboxView


class DevboxManager:
    def __init__(self, store: Store, data_dir: Path) -> None:
        self.store = store
        self.data_dir = data_dir
        self.layers = LayerStore(data_dir / "layers")
        self.boxes_dir = data_dir / "devboxes"
        self._live: dict[str, Sandbox] = {}
        self._launchers: dict[str, Path] = {}
        self._executions: dict[str, Execution] = {}
        self._shell_locks: dict[tuple[str, str], anyio.Lock] = {}
        self._shell_busy: dict[tuple[str, str], Execution] = {}
        self._tg: TaskGroup | None = None
        self._cgroups: dict[str, Cgroups] = {}
        self._rows: dict[str, tuple[DevboxView, dict[str, Any]]] = {}
        self._build_lock = anyio.Lock()

    @property
    def tg(self) -> TaskGroup:
        assert self._tg is not None, "the engine's task group is not running"
        return self._tg

    def attach_task_group(self, tg: TaskGroup) -> None:
        self._tg = tg

    # --- views ---------------------------------------------------------------------------------

    async def _row(self, devbox_id: str) -> tuple[DevboxView, dict[str, Any]]:
        # This manager is the only writer of devbox rows (one engine per data dir, see engine.py):
        # what it last wrote is what the store holds, so reads need no trip to SQLite.
        cached = self._rows.get(devbox_id)
        if cached is not None:
            return cached
        row = await self.store.get("devboxes", devbox_id)
        if row is None:
            raise NotFoundError("devbox", devbox_id)
        cached = (DevboxView.model_validate(row.data), row.internal)
        self._rows[devbox_id] = cached
        return cached

    async def get(self, devbox_id: str) -> DevboxView:
        return (await self._row(devbox_id))[0]

    async def internal(self, devbox_id: str) -> dict[str, Any]:
        return dict((await self._row(devbox_id))[1])

    async def _save(self, view: DevboxView, internal: dict[str, Any] | None = None) -> None:
        await self.store.put(
            "devboxes",
            view.id,
            view.model_dump(mode="json"),
            internal=internal,
            name=view.name,
            state=view.status,
        )
        if internal is None:
            previous = self._rows.get(view.id)
            internal = previous[1] if previous else (await self._row(view.id))[1]
        self._rows[view.id] = (view, dict(internal))

    async def _transition(
        self, view: DevboxView, status: DevboxStatus, internal: dict[str, Any] | None = None, **fields: Any
    ) -> DevboxView:
        ts = now_ms()
        update: dict[str, Any] = {
            "status": status,
            "state_transitions": [
                *view.state_transitions,
                DevboxStateTransition(status=status, transition_time_ms=ts),
            ],
            **fields,
        }
        if status in (DevboxStatus.SHUTDOWN, DevboxStatus.FAILURE):
            update["end_time_ms"] = ts
        new = view.model_copy(update=update)
        await self._save(new, internal)
        return new

    # --- layers of an environment --------------------------------------------------------------

    async def resolve_layers(
        self, *, blueprint_id: str | None, blueprint_name: str | None, snapshot_id: str | None
    ) -> tuple[list[str], str | None]:
        """The layer chain (topmost first) for an environment, and its blueprint id."""
        if sum(x is not None for x in (blueprint_id, blueprint_name, snapshot_id)) > 1:
            raise InvalidRequestError("give at most one of blueprint_id, blueprint_name and snapshot_id")
        if snapshot_id is not None:
            row = await self.store.get("snapshots", snapshot_id)
            if row is None:
                raise NotFoundError("snapshot", snapshot_id)
            return list(row.internal["layers"]), row.data.get("source_blueprint_id")
        if blueprint_name is not None:
            page = await self.store.list("blueprints", limit=1, name=blueprint_name, state="build_complete")
            if not page.rows:
                raise NotFoundError("blueprint named", blueprint_name)
            return list(page.rows[0].internal["layers"]), page.rows[0].id
        if blueprint_id is not None:
            row = await self.store.get("blueprints", blueprint_id)
            if row is None:
                raise NotFoundError("blueprint", blueprint_id)
            if row.data["status"] != "build_complete":
                raise InvalidStateError(
                    f"blueprint {blueprint_id} is `{row.data['status']}`, not build_complete"
                    + (f": {row.data.get('failure_reason')}" if row.data.get("failure_reason") else "")
                )
            return list(row.internal["layers"]), blueprint_id
        default = await self.ensure_default_blueprint()
        return [default.id], default.id

    def _spec(self, devbox_id: str, layers: list[str], network: bool) -> SandboxSpec:
        return SandboxSpec(
            state_dir=self.boxes_dir / devbox_id,
            layers=tuple(self.layers.path(layer) for layer in layers),
            skeleton=self.layers.skeleton,
            etc_mask=self.layers.etc_mask,
            network=network,
            hostname=devbox_id[:63],
        )

    # --- lifecycle -----------------------------------------------------------------------------

    async def create(
        self, params: DevboxCreateParameters, *, run_id: str | None = None, layers: list[str] | None = None
    ) -> DevboxView:
        if layers is None:
            layers, blueprint_id = await self.resolve_layers(
                blueprint_id=params.blueprint_id,
                blueprint_name=params.blueprint_name,
                snapshot_id=params.snapshot_id,
            )
        else:
            blueprint_id = params.blueprint_id
        launch = params.launch_parameters or LaunchParameters()
        keep_alive = launch.keep_alive_time_seconds or DEFAULT_KEEP_ALIVE_SECONDS
        devbox_id = new_id("devbox")
        created = now_ms()
        view = DevboxView(
            id=devbox_id,
            name=params.name,
            status=DevboxStatus.PROVISIONING,
            create_time_ms=created,
            blueprint_id=blueprint_id,
            snapshot_id=params.snapshot_id,
            metadata=params.metadata or {},
            launch_parameters=launch,
            state_transitions=[DevboxStateTransition(status=DevboxStatus.PROVISIONING, transition_time_ms=created)],
        )
        internal: dict[str, Any] = {
            "layers": layers,
            "network": bool(launch.network),
            "env": params.environment_variables or {},
            "expires_ms": created + keep_alive * 1000,
            "run_id": run_id,
        }
        await self._save(view, internal)
        try:
            sandbox = await Sandbox.start(self._spec(devbox_id, layers, bool(launch.network)))
        except SandboxError as exc:
            await self._transition(
                view, DevboxStatus.FAILURE, failure_reason="health_check_failed", failure_message=str(exc)
            )
            raise EnvironmentUnavailableError(f"could not start devbox {devbox_id}: {exc}") from exc
        self._live[devbox_id] = sandbox
        cgroups = self._make_cgroups(devbox_id, launch, adopt=sandbox.spare_cgroup)
        if not cgroups.adopted:
            cgroups.add_process(sandbox.init_pid)
        internal.update(init_pid=sandbox.init_pid, init_start=sandbox.init_start_time)
        view = await self._transition(view, DevboxStatus.RUNNING, internal, limits=cgroups.enforced)
        for command in launch.launch_commands or []:
            await self.execute(devbox_id, command)
        return view

    def _make_cgroups(self, devbox_id: str, launch: LaunchParameters, *, adopt: str | None = None) -> Cgroups:
        request = LimitRequest(
            memory_bytes=(launch.custom_gb_memory << 30) if launch.custom_gb_memory else DEFAULT_MEMORY_BYTES,
            disk_bytes=(launch.custom_disk_size << 30) if launch.custom_disk_size else DEFAULT_DISK_BYTES,
        )
        cgroups = make_cgroups(devbox_id, request, adopt=adopt)
        self._cgroups[devbox_id] = cgroups
        return cgroups

    def cgroups(self, devbox_id: str) -> Cgroups:
        return self._cgroups.get(devbox_id) or Cgroups()

    async def sandbox(self, devbox_id: str, *, check_init: bool = True) -> Sandbox:
        """The live sandbox of a running devbox, or a clear error saying why there is none.

        `check_init=False` skips looking for its init in /proc, for a caller that learns of a dead
        init anyway (a launcher that cannot be reached) and then calls `check_alive`."""
        view = await self.get(devbox_id)
        if view.status != DevboxStatus.RUNNING:
            reason = view.failure_message or view.failure_reason or view.shutdown_reason
            raise InvalidStateError(
                f"devbox {devbox_id} is `{view.status.value}`"
                + (f" ({reason})" if reason else "")
                + "; only a running devbox can do this"
            )
        sandbox = self._live.get(devbox_id)
        if sandbox is None or (check_init and not sandbox.alive()):
            await self._died(devbox_id)
        assert sandbox is not None
        return sandbox

    async def check_alive(self, devbox_id: str, sandbox: Sandbox) -> None:
        if not sandbox.alive():
            await self._died(devbox_id)

    async def _died(self, devbox_id: str) -> NoReturn:
        await self.mark_dead(devbox_id, "the devbox's init process is gone")
        raise InvalidStateError(f"devbox {devbox_id} has died: its init process is gone")

    def _launcher(self, devbox_id: str) -> Path | None:
        """The devbox's launcher socket; one that exists stays for the devbox's life (its path is
        reused by a resumed devbox's init), so it is looked up once."""
        found = self._launchers.get(devbox_id) or launcher_socket(self.boxes_dir / devbox_id)
        if found is not None:
            self._launchers[devbox_id] = found
        return found

    async def mark_dead(self, devbox_id: str, message: str, reason: str = "health_check_failed") -> None:
        view = await self.get(devbox_id)
        await self._stop(devbox_id)
        if view.status not in (DevboxStatus.SHUTDOWN, DevboxStatus.FAILURE):
            await self._transition(view, DevboxStatus.FAILURE, failure_reason=reason, failure_message=message)

    async def shutdown(self, devbox_id: str, reason: str = "api_shutdown") -> DevboxView:
        view = await self.get(devbox_id)
        if view.status in (DevboxStatus.SHUTDOWN, DevboxStatus.FAILURE):
            return view
        await self._stop(devbox_id)
        return await self._transition(view, DevboxStatus.SHUTDOWN, shutdown_reason=reason)

    async def _stop(self, devbox_id: str) -> None:
        """Kill every process of the devbox and release its cgroups; its mounts go with its namespace."""
        sandbox = self._live.pop(devbox_id, None)
        self._launchers.pop(devbox_id, None)
        cgroups = self._cgroups.pop(devbox_id, None)
        if cgroups is not None:
            cgroups.freeze(False)  # a frozen process cannot die
        if sandbox is not None:
            await sandbox.stop()
        if cgroups is not None:
            await anyio.to_thread.run_sync(cgroups.destroy)
        # Its disk changes go (snapshots were copies), after the caller has its answer: removing
        # even a few files takes milliseconds here. Its execution logs stay. A server that dies
        # first removes them on its next start (reconcile).
        self.tg.start_soon(partial(anyio.to_thread.run_sync, _remove_trees, *self._disk_dirs(devbox_id)))

    def _disk_dirs(self, devbox_id: str) -> list[Path]:
        return [self.boxes_dir / devbox_id / part for part in ("upper", "work", "root")]

    async def reconcile(self) -> list[str]:
        """After a restart: reattach devboxes whose init survived (suspended ones too, still
        frozen), fail the others."""
        restored: list[str] = []
        page = await self.store.list("devboxes", limit=100_000, state=["running", "provisioning", "suspended"])
        for row in page.rows:
            internal = row.internal
            pid, start = internal.get("init_pid"), internal.get("init_start")
            view = DevboxView.model_validate(row.data)
            if pid is not None:
                sandbox = Sandbox.attach(self._spec(row.id, internal["layers"], internal["network"]), pid, start)
                if sandbox.alive():
                    self._live[row.id] = sandbox
                    self._make_cgroups(row.id, view.launch_parameters)
                    restored.append(row.id)
                    continue
            await self._transition(
                view,
                DevboxStatus.FAILURE,
                failure_reason="health_check_failed",
                failure_message="the devbox's processes died while the server was down",
            )
            # Whatever it left goes too: an init that lost its record (the server died inside a
            # create), a cgroup, its disk changes.
            stray = launcher_socket(self.boxes_dir / row.id)
            if stray is not None:
                terminate(stray)
            await anyio.to_thread.run_sync(make_cgroups(row.id, LimitRequest()).destroy)
            await anyio.to_thread.run_sync(_remove_trees, *self._disk_dirs(row.id))
        # Disks of devboxes that were stopped just before the server went down.
        for upper in await anyio.to_thread.run_sync(lambda: list(self.boxes_dir.glob("*/upper"))):
            stopped = await self.store.get("devboxes", upper.parent.name)
            if stopped is None or stopped.data.get("status") in (DevboxStatus.SHUTDOWN, DevboxStatus.FAILURE):
                await anyio.to_thread.run_sync(_remove_trees, *self._disk_dirs(upper.parent.name))
        return restored

    async def expire(self) -> None:
        """Shut down devboxes past their keep-alive time."""
        page = await self.store.list("devboxes", limit=100_000, state="running")
        now = now_ms()
        for row in page.rows:
            if row.internal.get("expires_ms", now + 1) <= now:
                log.info("devbox %s reached its keep-alive time; shutting it down", row.id)
                await self.shutdown(row.id, reason="keep_alive_timeout")
                continue
            cap = self.cgroups(row.id).disk_bytes
            used = await anyio.to_thread.run_sync(tree_size, self.boxes_dir / row.id / "upper")
            if used > cap:
                log.warning("devbox %s wrote %d bytes, over its %d byte disk cap", row.id, used, cap)
                await self.mark_dead(
                    row.id, f"the devbox wrote {used} bytes to its disk, over its cap of {cap} bytes", "out_of_disk"
                )

    async def close(self) -> None:
        """Server exit: leave devboxes running so a restart can reattach them."""
        self._live.clear()

    # --- execution -----------------------------------------------------------------------------

    async def execute(
        self,
        devbox_id: str,
        command: str,
        *,
        timeout_seconds: float | None = None,
        working_directory: str | None = None,
        shell_name: str | None = None,
        log_source: str = "exec",
    ) -> ExecutionView:
        """Run a command and wait for it; a caller that goes away takes the command with it."""
        execution = await self.start_execution(
            devbox_id,
            command,
            timeout_seconds=timeout_seconds,
            working_directory=working_directory,
            shell_name=shell_name,
            log_source=log_source,
            record_start=False,
        )
        try:
            await execution.done.wait()
        except anyio.get_cancelled_exc_class():
            execution.kill()
            raise
        return self.execution_view(execution)

    async def start_execution(
        self,
        devbox_id: str,
        command: str,
        *,
        timeout_seconds: float | None = None,
        working_directory: str | None = None,
        shell_name: str | None = None,
        attach_stdin: bool = False,
        log_source: str = "exec",
        record_start: bool = True,
    ) -> Execution:
        if not command.strip():
            raise InvalidRequestError("command is empty; give a shell command such as `ls -la`")
        timeout = DEFAULT_EXEC_TIMEOUT if timeout_seconds is None else timeout_seconds
        if not 0 < timeout <= MAX_EXEC_TIMEOUT:
            raise InvalidRequestError(f"timeout_seconds must be in (0, {MAX_EXEC_TIMEOUT:.0f}], got {timeout}")
        if shell_name is not None and not SHELL_NAME.fullmatch(shell_name):
            raise InvalidRequestError(f"shell_name {shell_name!r} must match {SHELL_NAME.pattern}")
        wd = working_directory or None
        if wd is not None and not wd.startswith("/"):
            wd = posixpath.join(HOME, wd)
        socket_path = self._launcher(devbox_id)
        sandbox = await self.sandbox(devbox_id, check_init=socket_path is None)
        internal = await self.internal(devbox_id)
        execution_id = new_id("execution")
        env = sandbox_env(internal.get("env"))
        if shell_name is None:
            argv, direct = shell_argv(wd or HOME, command), direct_argv(command, wd or HOME, env)
        else:
            argv, direct = named_shell_argv(shell_name, wd, command), None
        started = now_ms()
        log_dir = self.boxes_dir / devbox_id / "exec"
        cgroups = self.cgroups(devbox_id)

        async def finished(execution: Execution) -> None:
            if cgroups.new_oom_kills():
                execution.notes.append(
                    "a process of this command was killed: the devbox reached its memory limit "
                    "(out_of_memory; raise launch_parameters.custom_gb_memory)"
                )
            if cgroups.new_pids_limit_hits():
                # A fork bomb ends here: frozen, everything but init is killed, then thawed.
                await anyio.to_thread.run_sync(cgroups.kill_all_except, sandbox.init_pid)
                execution.notes.append(
                    "this command reached the devbox's process limit; every process of the devbox was killed"
                )
            if execution.exit_status == 153:  # SIGXFSZ
                execution.notes.append(f"a file reached the devbox's size cap of {cgroups.disk_bytes} bytes")
            await self._finished(execution, internal.get("run_id"), started, log_source)

        # An async execution is recorded as running before it starts (its id is handed out now):
        # its completion, written when it ends, must be the last word. A waited-for one is
        # acknowledged only by its result, so only its completion is written.
        if record_start:
            await self.store.put(
                "executions",
                execution_id,
                ExecutionView(
                    devbox_id=devbox_id,
                    execution_id=execution_id,
                    status=ExecutionStatus.RUNNING,
                    shell_name=shell_name,
                ).model_dump(mode="json"),
                internal={"command": command, "working_directory": wd or HOME, "start_ms": started},
                parent_id=devbox_id,
                state=ExecutionStatus.RUNNING,
            )

        async def launch() -> Execution:
            try:
                return await start_execution(
                    tg=self.tg,
                    launcher_socket=socket_path,
                    enter_argv=[] if socket_path else [*cgroups.join_prefix(), *sandbox.enter_argv()],
                    argv=argv,
                    direct=None if direct is None else (direct, wd or HOME),
                    env=env,
                    rlimits=cgroups.rlimits(),
                    execution_id=execution_id,
                    devbox_id=devbox_id,
                    command=command,
                    shell_name=shell_name,
                    timeout=timeout,
                    log_dir=log_dir,
                    attach_stdin=attach_stdin,
                    on_done=finished,
                )
            except SandboxError:
                await self.check_alive(devbox_id, sandbox)  # a launcher gone with its init
                raise

        if shell_name is None:
            execution = await launch()
        else:
            # A named shell runs one command at a time, in order, like a terminal.
            lock = self._shell_locks.setdefault((devbox_id, shell_name), anyio.Lock())
            async with lock:
                previous = self._shell_busy.get((devbox_id, shell_name))
                if previous is not None:
                    await previous.done.wait()
                execution = await launch()
                self._shell_busy[(devbox_id, shell_name)] = execution
        self._executions[execution_id] = execution
        # Completed executions stay for streaming their output; the oldest are forgotten first.
        while len(self._executions) > MAX_REMEMBERED_EXECUTIONS:
            oldest = next((k for k, v in self._executions.items() if not v.running), None)
            if oldest is None:
                break
            del self._executions[oldest]
        return execution

    def execution_view(self, execution: Execution) -> ExecutionView:
        if execution.running:
            return ExecutionView(
                devbox_id=execution.devbox_id,
                execution_id=execution.execution_id,
                status=ExecutionStatus.RUNNING,
                shell_name=execution.shell_name,
            )
        stdout, stdout_truncated = execution.stdout.head(INLINE_OUTPUT_CAP)
        stderr, stderr_truncated = execution.stderr.head(INLINE_OUTPUT_CAP)
        if execution.timed_out:
            stderr += (
                f"\n[scenario-mcp] timed out after {execution.timeout:g} s; "
                "the command and its process group were killed"
            )
        elif execution.killed:
            stderr += "\n[scenario-mcp] killed on request"
        for note in execution.notes:
            stderr += f"\n[scenario-mcp] {note}"
        return ExecutionView(
            devbox_id=execution.devbox_id,
            execution_id=execution.execution_id,
            status=ExecutionStatus.COMPLETED,
            exit_status=execution.exit_status,
            stdout=stdout,
            stderr=stderr,
            stdout_truncated=stdout_truncated,
            stderr_truncated=stderr_truncated,
            shell_name=execution.shell_name,
        )

    async def _finished(self, execution: Execution, run_id: str | None, started: int, log_source: str) -> None:
        view = self.execution_view(execution)
        await self.store.put(
            "executions",
            execution.execution_id,
            view.model_dump(mode="json"),
            internal={
                "command": execution.command,
                "start_ms": started,
                "end_ms": now_ms(),
                "stdout_bytes": execution.stdout.total,
                "stderr_bytes": execution.stderr.total,
            },
            parent_id=execution.devbox_id,
            state=view.status,
        )
        if run_id:
            text = f"$ {execution.command}\n{view.stdout}"
            if view.stderr:
                text += f"\n[stderr]\n{view.stderr}"
            text += f"\n[exit {view.exit_status}]"
            await self.store.add_log(run_id, started, f"{log_source}:{execution.execution_id}", text)

    async def get_execution(self, devbox_id: str, execution_id: str) -> ExecutionView:
        live = self._executions.get(execution_id)
        if live is not None and live.devbox_id == devbox_id:
            return self.execution_view(live)
        row = await self.store.get("executions", execution_id)
        if row is None or row.data.get("devbox_id") != devbox_id:
            raise NotFoundError("execution", execution_id)
        view = ExecutionView.model_validate(row.data)
        if view.status != ExecutionStatus.COMPLETED:
            # Acknowledged as running, but its process died with a previous server.
            view = view.model_copy(update={"status": ExecutionStatus.COMPLETED, "exit_status": KILLED_EXIT_STATUS})
        return view

    def live_execution(self, devbox_id: str, execution_id: str) -> Execution:
        live = self._executions.get(execution_id)
        if live is None or live.devbox_id != devbox_id or not live.running:
            raise InvalidStateError(
                f"execution {execution_id} is not running on devbox {devbox_id} (it completed or does not exist)"
            )
        return live

    async def wait_for_execution(
        self, devbox_id: str, execution_id: str, statuses: list[str], timeout_seconds: float
    ) -> ExecutionView:
        wanted = set(statuses or ["completed"])
        unknown = wanted - {s.value for s in ExecutionStatus}
        if unknown:
            raise InvalidRequestError(f"unknown execution statuses {sorted(unknown)}; use queued, running, completed")
        view = await self.get_execution(devbox_id, execution_id)
        live = self._executions.get(execution_id)
        if view.status in wanted or live is None:
            if view.status not in wanted:
                raise OperationTimeoutError(f"execution {execution_id} is {view.status}, not {sorted(wanted)}")
            return view
        with anyio.move_on_after(min(timeout_seconds, MAX_LONG_POLL)):
            await live.done.wait()
        view = self.execution_view(live)
        if view.status not in wanted:
            raise OperationTimeoutError(
                f"execution {execution_id} is still {view.status.value} after {timeout_seconds:g} s; wait again"
            )
        return view

    async def output(self, devbox_id: str, execution_id: str, stream: str, offset: int) -> ExecutionOutputChunk:
        if stream not in ("stdout", "stderr"):
            raise InvalidRequestError(f"stream must be stdout or stderr, got {stream!r}")
        if offset < 0:
            raise InvalidRequestError("offset must be >= 0")
        live = self._executions.get(execution_id)
        if live is None or live.devbox_id != devbox_id:
            await self.get_execution(devbox_id, execution_id)  # 404 when unknown
            log_path = self.boxes_dir / devbox_id / "exec" / f"{execution_id}.{'out' if stream == 'stdout' else 'err'}"
            data = b""
            if log_path.exists():
                with open(log_path, "rb") as f:
                    f.seek(offset)
                    data = f.read(64 * 1024)
            return ExecutionOutputChunk(
                execution_id=execution_id,
                stream=stream,
                offset=offset,
                output=data.decode("utf-8", errors="replace"),
                next_offset=offset + len(data),
                done=not data,
            )
        log = live.stdout if stream == "stdout" else live.stderr
        data, next_offset = log.read(offset)
        return ExecutionOutputChunk(
            execution_id=execution_id,
            stream=stream,
            offset=offset,
            output=data.decode("utf-8", errors="replace"),
            next_offset=next_offset,
            done=not live.running and next_offset >= log.total,
        )

    async def devbox_logs(self, devbox_id: str, execution_id: str | None) -> DevboxLogsListView:
        await self.get(devbox_id)
        page = await self.store.list("executions", limit=MAX_LOG_ENTRIES, parent_id=devbox_id)
        logs: list[DevboxLogView] = []
        for row in reversed(page.rows):
            if execution_id is not None and row.id != execution_id:
                continue
            view = ExecutionView.model_validate(row.data)
            logs.append(
                DevboxLogView(
                    source="exec",
                    timestamp_ms=int(row.internal.get("start_ms", 0)),
                    cmd=row.internal.get("command"),
                    cmd_id=row.id,
                    exit_code=view.exit_status,
                    message=(view.stdout or "") + (view.stderr or ""),
                )
            )
        return DevboxLogsListView(logs=logs)

    # --- files ---------------------------------------------------------------------------------

    async def read_bytes(self, devbox_id: str, file_path: str) -> bytes:
        home_relative(file_path)
        sandbox = await self.sandbox(devbox_id)
        code, out, err = await sandbox.run_quiet(["/bin/sh", "-c", _READ_SCRIPT, "read", file_path])
        if code != 0:
            raise InvalidRequestError(f"cannot read {file_path!r} on devbox {devbox_id}: {err.decode().strip()}")
        return out

    async def read_file(self, devbox_id: str, file_path: str) -> str:
        data = await self.read_bytes(devbox_id, file_path)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequestError(
                f"{file_path!r} is not UTF-8 text; download it as bytes or use execute_on_devbox "
                f"(e.g. `base64 {file_path}`)"
            ) from exc

    async def write_bytes(self, devbox_id: str, file_path: str, data: bytes) -> None:
        home_relative(file_path)
        sandbox = await self.sandbox(devbox_id)
        code, _out, err = await sandbox.run_quiet(["/bin/sh", "-c", _WRITE_SCRIPT, "write", file_path], stdin=data)
        if code != 0:
            raise InvalidRequestError(f"cannot write {file_path!r} on devbox {devbox_id}: {err.decode().strip()}")

    async def write_file(self, devbox_id: str, file_path: str, contents: str) -> None:
        await self.write_bytes(devbox_id, file_path, contents.encode("utf-8"))

    async def list_files(self, devbox_id: str, path: str) -> list[str]:
        if path not in ("", ".", "./"):
            home_relative(path)
        sandbox = await self.sandbox(devbox_id)
        code, out, err = await sandbox.run_quiet(["/bin/sh", "-c", _LIST_SCRIPT, "list", path or "."])
        if code != 0:
            raise InvalidRequestError(f"cannot list {path!r} on devbox {devbox_id}: {err.decode().strip()}")
        return sorted(line for line in out.decode("utf-8", errors="replace").splitlines() if line)

    # --- suspend, resume, keep-alive, waiting --------------------------------------------------

    async def suspend(self, devbox_id: str) -> DevboxView:
        sandbox = await self.sandbox(devbox_id)
        view = await self.get(devbox_id)
        # Every process stops (frozen, or SIGSTOP where there is no freezer); memory and disk are kept.
        if not self.cgroups(devbox_id).freeze(True):
            await sandbox.run_quiet(["/bin/sh", "-c", "kill -STOP -1 2>/dev/null; exit 0"])
        return await self._transition(view, DevboxStatus.SUSPENDED)

    async def resume(self, devbox_id: str) -> DevboxView:
        view = await self.get(devbox_id)
        if view.status != DevboxStatus.SUSPENDED:
            raise InvalidStateError(f"devbox {devbox_id} is `{view.status.value}`; only a suspended devbox resumes")
        sandbox = self._live.get(devbox_id)
        if sandbox is None or not sandbox.alive():
            await self.mark_dead(devbox_id, "the devbox's init process is gone")
            raise InvalidStateError(f"devbox {devbox_id} has died: its init process is gone")
        if not self.cgroups(devbox_id).freeze(False):
            await sandbox.run_quiet(["/bin/sh", "-c", "kill -CONT -1 2>/dev/null; exit 0"])
        return await self._transition(view, DevboxStatus.RUNNING)

    async def update(self, devbox_id: str, *, name: str | None, metadata: dict[str, str] | None) -> DevboxView:
        """A new name or metadata (each replaced whole when given), in any status."""
        view = await self.get(devbox_id)
        update = given(name=name, metadata=metadata)
        if not update:
            return view
        updated = view.model_copy(update=update)
        await self._save(updated)
        return updated

    async def keep_alive(self, devbox_id: str) -> DevboxView:
        view = await self.get(devbox_id)
        if view.status not in (DevboxStatus.RUNNING, DevboxStatus.SUSPENDED):
            raise InvalidStateError(f"devbox {devbox_id} is `{view.status.value}`; nothing to keep alive")
        internal = await self.internal(devbox_id)
        keep_alive = view.launch_parameters.keep_alive_time_seconds or DEFAULT_KEEP_ALIVE_SECONDS
        internal["expires_ms"] = now_ms() + keep_alive * 1000
        await self._save(view, internal)
        return view

    async def wait_for_status(self, devbox_id: str, statuses: list[str], timeout_seconds: float) -> DevboxView:
        wanted = set(statuses)
        unknown = wanted - {s.value for s in DevboxStatus}
        if not wanted or unknown:
            raise InvalidRequestError(
                f"statuses must be devbox statuses ({', '.join(s.value for s in DevboxStatus)}); got {sorted(wanted)}"
            )
        if not 0 < timeout_seconds <= MAX_LONG_POLL:
            raise InvalidRequestError(f"timeout_seconds must be in (0, {MAX_LONG_POLL:g}]")
        with anyio.move_on_after(timeout_seconds):
            while True:
                view = await self.get(devbox_id)
                if view.status in wanted:
                    return view
                if view.status in (DevboxStatus.SHUTDOWN, DevboxStatus.FAILURE):
                    break  # terminal: it will never get there
                await anyio.sleep(0.05)
        view = await self.get(devbox_id)
        if view.status in wanted:
            return view
        raise OperationTimeoutError(
            f"devbox {devbox_id} is `{view.status.value}`, not one of {sorted(wanted)}, after {timeout_seconds:g} s"
        )

    # --- snapshots -----------------------------------------------------------------------------

    async def snapshot(
        self,
        devbox_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        commit_message: str | None = None,
    ) -> DevboxSnapshotView:
        view = await self.get(devbox_id)
        if view.status != DevboxStatus.RUNNING:
            raise InvalidStateError(
                f"devbox {devbox_id} is `{view.status.value}`; only a running devbox can be snapshotted"
            )
        if commit_message is not None and len(commit_message) > 1000:
            raise InvalidRequestError("commit_message is limited to 1000 characters")
        internal = await self.internal(devbox_id)
        snapshot_id = new_id("snapshot")
        size = await self.layers.freeze(self.boxes_dir / devbox_id / "upper", snapshot_id)
        snapshot = DevboxSnapshotView(
            id=snapshot_id,
            name=name,
            create_time_ms=now_ms(),
            metadata=metadata or {},
            source_devbox_id=devbox_id,
            source_blueprint_id=view.blueprint_id,
            commit_message=commit_message,
            size_bytes=size,
        )
        await self.store.put(
            "snapshots",
            snapshot_id,
            snapshot.model_dump(mode="json"),
            internal={"layers": [snapshot_id, *internal["layers"]]},
            name=name,
            parent_id=devbox_id,
            state="complete",
        )
        return snapshot

    async def get_snapshot(self, snapshot_id: str) -> DevboxSnapshotView:
        row = await self.store.get("snapshots", snapshot_id)
        if row is None:
            raise NotFoundError("snapshot", snapshot_id)
        return DevboxSnapshotView.model_validate(row.data)

    async def update_snapshot(
        self, snapshot_id: str, *, name: str | None, metadata: dict[str, str] | None, commit_message: str | None
    ) -> DevboxSnapshotView:
        """A new name, metadata or commit message (each replaced whole when given); its disk stays."""
        if commit_message is not None and len(commit_message) > 1000:
            raise InvalidRequestError("commit_message is limited to 1000 characters")
        view = await self.get_snapshot(snapshot_id)
        update = given(name=name, metadata=metadata, commit_message=commit_message)
        if not update:
            return view
        updated = view.model_copy(update=update)
        await self.store.put(
            "snapshots",
            snapshot_id,
            updated.model_dump(mode="json"),
            name=updated.name,
            parent_id=updated.source_devbox_id,
            state="complete",
        )
        return updated

    async def list_snapshots(
        self, limit: int, starting_after: str | None, devbox_id: str | None
    ) -> DevboxSnapshotListView:
        page = await self.store.list("snapshots", limit=limit, starting_after=starting_after, parent_id=devbox_id)
        return DevboxSnapshotListView(
            snapshots=[DevboxSnapshotView.model_validate(r.data) for r in page.rows],
            has_more=page.has_more,
            total_count=page.total_count,
        )

    async def delete_snapshot(self, snapshot_id: str, scenarios_using: list[str]) -> None:
        await self.get_snapshot(snapshot_id)
        await self._delete_layer("snapshots", "snapshot", snapshot_id, scenarios_using)

    async def _delete_layer(self, kind: str, noun: str, layer_id: str, scenarios_using: list[str]) -> None:
        """Delete a snapshot or blueprint, and its layer, unless something still stands on it."""
        if scenarios_using:
            raise InvalidStateError(
                f"{noun} {layer_id} is the environment of scenario(s) {', '.join(scenarios_using)}; "
                "archive or update them first"
            )
        users = []
        for other in ("blueprints", "snapshots", "devboxes"):
            for row in (await self.store.list(other, limit=100_000)).rows:
                if row.id == layer_id or (other == "devboxes" and row.data["status"] in ("shutdown", "failure")):
                    continue
                if layer_id in row.internal.get("layers", []):
                    users.append(row.id)
        if users:
            raise InvalidStateError(
                f"{noun} {layer_id} is a layer of {', '.join(users[:10])}; delete or shut down those first"
            )
        await self.store.delete(kind, layer_id)
        await anyio.to_thread.run_sync(self.layers.remove, layer_id)

    # --- blueprints ----------------------------------------------------------------------------

    async def create_blueprint(
        self, params: BlueprintCreateParameters, *, blueprint_id: str | None = None
    ) -> BlueprintView:
        """Build a blueprint: run its commands once in a devbox with network, keep the result."""
        if params.base_blueprint_id or params.base_blueprint_name:
            base_layers, _ = await self.resolve_layers(
                blueprint_id=params.base_blueprint_id,
                blueprint_name=params.base_blueprint_name,
                snapshot_id=None,
            )
        else:
            base_layers = []
        blueprint_id = blueprint_id or new_id("blueprint")
        view = BlueprintView(
            id=blueprint_id,
            name=params.name,
            status="building",
            create_time_ms=now_ms(),
            parameters=params.model_dump(mode="json", exclude_none=True),
        )
        await self.store.put(
            "blueprints",
            blueprint_id,
            view.model_dump(mode="json"),
            internal={},
            name=params.name,
            state="building",
        )
        state_dir = self.boxes_dir / f"build-{blueprint_id}"
        shutil.rmtree(state_dir, ignore_errors=True)
        spec = SandboxSpec(
            state_dir=state_dir,
            layers=tuple(self.layers.path(layer) for layer in base_layers),
            skeleton=self.layers.skeleton,
            etc_mask=self.layers.etc_mask,
            network=True,
            hostname="blueprint-build",
        )
        build_log: list[str] = []
        logs: list[dict[str, Any]] = []  # Runloop's BlueprintBuildLog, one per command
        failure: str | None = None
        try:
            sandbox = await Sandbox.start(spec)
        except SandboxError as exc:
            failure = str(exc)
        else:
            try:
                for command in params.system_setup_commands:
                    code, out, err = await _run_build_command(sandbox, command)
                    build_log.append(f"$ {command}\n{out}{err}[exit {code}]")
                    logs.append(
                        {
                            "level": "info" if code == 0 else "error",
                            "timestamp_ms": now_ms(),
                            "message": build_log[-1][-MAX_BUILD_LOG_ENTRY:],
                        }
                    )
                    if code != 0:
                        failure = f"`{command}` exited {code}: {(err or out).strip()[-2000:]}"
                        break
            finally:
                await sandbox.stop()
            if failure is None:
                await self.layers.freeze(state_dir / "upper", blueprint_id)
        shutil.rmtree(state_dir, ignore_errors=True)
        update: dict[str, Any] = {
            "build_finish_time_ms": now_ms(),
            "build_log": "\n".join(build_log)[-16_000:],
        }
        if failure is None:
            view = view.model_copy(update={"status": "build_complete", **update})
            internal: dict[str, Any] = {"layers": [blueprint_id, *base_layers], "build_logs": logs}
        else:
            view = view.model_copy(update={"status": "failed", "failure_reason": failure, **update})
            logs.append({"level": "error", "timestamp_ms": now_ms(), "message": f"build failed: {failure}"})
            internal = {"build_logs": logs}
        await self.store.put(
            "blueprints",
            blueprint_id,
            view.model_dump(mode="json"),
            internal=internal,
            name=params.name,
            state=view.status,
        )
        return view

    async def get_blueprint(self, blueprint_id: str) -> BlueprintView:
        row = await self.store.get("blueprints", blueprint_id)
        if row is None:
            raise NotFoundError("blueprint", blueprint_id)
        return BlueprintView.model_validate(row.data)

    async def blueprint_logs(self, blueprint_id: str) -> BlueprintBuildLogsListView:
        row = await self.store.get("blueprints", blueprint_id)
        if row is None:
            raise NotFoundError("blueprint", blueprint_id)
        logs = row.internal.get("build_logs")
        if logs is None:  # built before logs were kept one per command: the whole log as one
            view = BlueprintView.model_validate(row.data)
            when = view.build_finish_time_ms or view.create_time_ms
            logs = [{"level": "info", "timestamp_ms": when, "message": view.build_log}] if view.build_log else []
        return BlueprintBuildLogsListView(blueprint_id=blueprint_id, logs=logs)

    async def delete_blueprint(self, blueprint_id: str, scenarios_using: list[str]) -> None:
        await self.get_blueprint(blueprint_id)
        await self._delete_layer("blueprints", "blueprint", blueprint_id, scenarios_using)

    async def ensure_default_blueprint(self) -> BlueprintView:
        """The default environment, built once per data dir (it needs PyPI the first time)."""
        blueprint_id = default_blueprint_id()
        async with self._build_lock:
            row = await self.store.get("blueprints", blueprint_id)
            if row is not None and row.data["status"] == "build_complete" and self.layers.exists(blueprint_id):
                return BlueprintView.model_validate(row.data)
            log.warning("building the default devbox environment (Python venv with pytest); this happens once")
            view = await self.create_blueprint(
                BlueprintCreateParameters(
                    name=DEFAULT_BLUEPRINT_NAME, system_setup_commands=list(DEFAULT_BLUEPRINT_COMMANDS)
                ),
                blueprint_id=blueprint_id,
            )
        if view.status != "build_complete":
            raise EnvironmentUnavailableError(
                "could not build the default devbox environment (a Python venv with pip and pytest): "
                f"{view.failure_reason}. It needs network access to PyPI the first time; connect and retry, "
                "or name a blueprint_id / snapshot_id of your own"
            )
        return view


def default_blueprint_id() -> str:
    """Stable per host Python and recipe, so a changed recipe builds a fresh default."""
    recipe = "\n".join(DEFAULT_BLUEPRINT_COMMANDS) + sys.version
    with contextlib.suppress(OSError):
        recipe += os.readlink("/usr/bin/python3")
    return "bpt_default" + hashlib.sha256(recipe.encode()).hexdigest()[:13]


async def _run_build_command(sandbox: Sandbox, command: str) -> tuple[int, str, str]:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        code, timed_out = await sandbox.run(
            shell_argv(HOME, command), stdout=out, stderr=err, timeout=BUILD_COMMAND_TIMEOUT
        )
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if timed_out:
        return TIMEOUT_EXIT_STATUS, stdout, stderr + f"\ntimed out after {BUILD_COMMAND_TIMEOUT:g} s"
    return code, stdout, stderr


def _remove_trees(*paths: Path) -> None:
    for path in paths:
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            continue
        except OSError:
            # Not the server's to enter or change (overlayfs leaves a mode-000 `work/work`; a
            # devbox may chmod its files): open everything up, then remove what is left.
            _open_up(path)
            shutil.rmtree(path, ignore_errors=True)


def _open_up(top: Path) -> None:
    """`chmod -R u+rwx`, each directory before it is read."""
    stack = [str(top)]
    while stack:
        directory = stack.pop()
        with contextlib.suppress(OSError):
            os.chmod(directory, stat.S_IMODE(os.lstat(directory).st_mode) | 0o700)
            with os.scandir(directory) as entries:
                stack.extend(entry.path for entry in entries if entry.is_dir(follow_symlinks=False))


def _read_capped(path: Path) -> tuple[str, bool]:
    with open(path, "rb") as f:
        data = f.read(INLINE_OUTPUT_CAP + 1)
    truncated = len(data) > INLINE_OUTPUT_CAP
    return data[:INLINE_OUTPUT_CAP].decode("utf-8", errors="replace"), truncated
