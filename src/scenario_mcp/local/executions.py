"""Executions on the local engine: commands run in a devbox, waited for or in the background,
with stdin, kill, streamed output, and their records (what the devbox's logs list).

The process side of a live execution (its launch, output pumps and deadline) is processes.py's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from ..backend import (
    EnvironmentUnavailableError,
    InvalidRequestError,
    InvalidStateError,
    NotFoundError,
    OperationTimeoutError,
)
from ..conventions import HOME, SHELL_NAME, exec_timeout, exec_timeout_problem, under_home
from ..models import (
    DevboxLogsListView,
    DevboxLogView,
    DevboxView,
    ExecutionOutputChunk,
    ExecutionStatus,
    ExecutionView,
    new_id,
    now_ms,
)
from .commands import direct_argv, named_shell_argv, shell_argv
from .devboxes import MAX_LONG_POLL, Devboxes
from .environments import Environment, RunAs
from .limits import Cgroups
from .processes import KILLED_EXIT_STATUS, Execution, start_process
from .sandbox import Sandbox, SandboxError, sandbox_env
from .secrets import Redactor
from .store import Store

MAX_LOG_ENTRIES = 1000
MAX_REMEMBERED_EXECUTIONS = 1000
INLINE_OUTPUT_CAP = 64 * 1024
OUTPUT_CHUNK = 64 * 1024  # bytes of a finished execution's log one output call returns
KILL_WAIT = 5.0
SIGXFSZ_EXIT_STATUS = 153  # 128 + SIGXFSZ: a file reached the size cap


@dataclass(frozen=True)
class _Command:
    """A validated command: what to run, how long it may take, where its record goes."""

    command: str
    timeout: float
    working_directory: str | None
    shell_name: str | None


def _validate(
    command: str, timeout_seconds: float | None, working_directory: str | None, shell_name: str | None
) -> _Command:
    if not command.strip():
        raise InvalidRequestError("command is empty; give a shell command such as `ls -la`")
    timeout = exec_timeout(timeout_seconds)
    if problem := exec_timeout_problem(timeout):
        raise InvalidRequestError(problem)
    if shell_name is not None and not SHELL_NAME.fullmatch(shell_name):
        raise InvalidRequestError(f"shell_name {shell_name!r} must match {SHELL_NAME.pattern}")
    wd = under_home(working_directory) if working_directory else None
    return _Command(command, timeout, wd, shell_name)


@dataclass(frozen=True)
class _Target:
    """The running devbox a command goes to: its sandbox, its init's launcher, its internal state."""

    devbox_id: str
    sandbox: Sandbox
    launcher_socket: Path
    internal: dict[str, Any]


class Executions:
    def __init__(self, store: Store, devboxes: Devboxes) -> None:
        self.store = store
        self.devboxes = devboxes
        self._executions: dict[str, Execution] = {}
        self._shell_locks: dict[tuple[str, str], anyio.Lock] = {}
        self._shell_busy: dict[tuple[str, str], Execution] = {}
        self._command_locks: dict[tuple[str, str], anyio.Lock] = {}
        devboxes.on_end(self._forget_devbox)

    def _forget_devbox(self, devbox_id: str) -> None:
        """A devbox ended: its named shells go (and with them the last execution each held)."""
        for key in [key for key in self._shell_busy if key[0] == devbox_id]:
            del self._shell_busy[key]
        for key in [key for key in self._shell_locks if key[0] == devbox_id]:
            del self._shell_locks[key]

    # --- starting ------------------------------------------------------------------------------

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
        execution = await self.start(
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
        return self.view(execution)

    async def run_launch_commands(self, devbox: DevboxView) -> None:
        """A code mount's install commands (in its clone), then the launch commands."""
        internal = await self.devboxes.internal(devbox.id)
        for command, working_directory in internal.get("install_commands", ()):
            await self.execute(
                devbox.id, command, working_directory=working_directory, timeout_seconds=900, log_source="setup"
            )
        for command in devbox.launch_parameters.launch_commands or []:
            await self.execute(devbox.id, command)

    async def start(
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
        command_id: str | None = None,
    ) -> Execution:
        """Start a command. With a `command_id`, the caller holds `command()` for it (see there)."""
        cmd = _validate(command, timeout_seconds, working_directory, shell_name)
        target = await self._target(devbox_id)
        execution_id = new_id("execution")
        started = now_ms()
        # An async execution is recorded as running before it starts (its id is handed out now):
        # its completion, written when it ends, must be the last word. A waited-for one is
        # acknowledged only by its result, so only its completion is written.
        if record_start or command_id is not None:
            await self._record_start(devbox_id, execution_id, cmd, started)
        if command_id is not None:
            # After the execution's row (a repeat finds it) and before the launch (a repeat after a
            # crash from here on finds this execution, never starts a second one).
            await self.store.set_command_execution(devbox_id, command_id, execution_id)

        async def launch() -> Execution:
            try:
                return await self._launch(target, execution_id, cmd, attach_stdin, started, log_source)
            except BaseException:
                if command_id is not None:  # never started: a retry may try again
                    await self.store.set_command_execution(devbox_id, command_id, None)
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
        self._remember(execution)
        return execution

    @asynccontextmanager
    async def command(self, devbox_id: str, command_id: str) -> AsyncIterator[str | None]:
        """Held while a command with this `command_id` is looked up and started on this devbox:
        yields the execution the id already started (kept in the store, so across restarts), or
        None, and then the holder starts it with `start(..., command_id=...)`. Two requests with
        the same id (a client's retry racing its first try) start one command."""
        key = (devbox_id, command_id)
        lock = self._command_locks.setdefault(key, anyio.Lock())
        try:
            async with lock:
                yield await self.store.command_execution(devbox_id, command_id)
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._command_locks.pop(key, None)

    async def result(self, devbox_id: str, execution_id: str) -> ExecutionView:
        """The execution once it has completed (its own timeout bounds the wait)."""
        live = self._executions.get(execution_id)
        if live is not None and live.devbox_id == devbox_id:
            await live.done.wait()
            return self.view(live)
        return await self.get(devbox_id, execution_id)

    async def _record_start(self, devbox_id: str, execution_id: str, cmd: _Command, started: int) -> None:
        await self.store.put(
            "executions",
            execution_id,
            ExecutionView(
                devbox_id=devbox_id,
                execution_id=execution_id,
                status=ExecutionStatus.RUNNING,
                shell_name=cmd.shell_name,
            ).model_dump(mode="json"),
            internal={"command": cmd.command, "working_directory": cmd.working_directory or HOME, "start_ms": started},
            parent_id=devbox_id,
            state=ExecutionStatus.RUNNING,
        )

    async def _target(self, devbox_id: str) -> _Target:
        sandbox = await self.devboxes.sandbox(devbox_id, check_init=False)
        socket_path = self.devboxes.launcher(devbox_id)
        if socket_path is None:
            if not sandbox.alive():
                await self.devboxes.died(devbox_id)
            raise EnvironmentUnavailableError(
                f"devbox {devbox_id} has no launcher socket to start commands through; shut it down and create "
                "a new devbox"
            )
        return _Target(devbox_id, sandbox, socket_path, await self.devboxes.internal(devbox_id))

    async def _launch(
        self, target: _Target, execution_id: str, cmd: _Command, attach_stdin: bool, started: int, log_source: str
    ) -> Execution:
        devbox_id, sandbox, internal = target.devbox_id, target.sandbox, target.internal
        environment = Environment.from_internal(internal)
        user = internal.get("user")  # who the devbox's commands run as, when not root
        user_env = RunAs(**user).env() if user else {}
        secrets = await self.secret_values(internal)
        env = sandbox_env(
            environment.process_env(
                {
                    **user_env,
                    **internal.get("trust_env", {}),
                    **(internal.get("env") or {}),
                    **{env_name: value for env_name, (_, value) in secrets.items()},
                }
            )
        )
        values = {name: value for name, value in secrets.values()}
        if internal.get("path_prefix"):  # mounted agents' executables
            env["PATH"] = ":".join([*internal["path_prefix"], env.get("PATH", "")])
        wd = cmd.working_directory or environment.working_directory
        if cmd.shell_name is None:
            argv = shell_argv(wd, cmd.command, internal.get("shell", "/bin/bash"))
            direct = direct_argv(cmd.command, wd, env)
        else:
            argv, direct = named_shell_argv(cmd.shell_name, cmd.working_directory, cmd.command), None
        cgroups = self.devboxes.cgroups(devbox_id)
        on_done = self._on_done(sandbox, cgroups, internal.get("run_id"), started, log_source)
        try:
            return await start_process(
                tg=self.devboxes.tg,
                launcher_socket=target.launcher_socket,
                argv=argv,
                direct=None if direct is None else (direct, wd),
                env=env,
                rlimits=cgroups.rlimits(),
                execution_id=execution_id,
                devbox_id=devbox_id,
                command=cmd.command,
                shell_name=cmd.shell_name,
                timeout=cmd.timeout,
                log_dir=self.devboxes.boxes_dir / devbox_id / "exec",
                attach_stdin=attach_stdin,
                on_done=on_done,
                user=(user["uid"], user["gid"]) if user else None,
                redactor=(lambda: Redactor(values)) if values else None,
            )
        except SandboxError as exc:
            if isinstance(exc.__cause__, OSError):
                # Init listens on its launcher for its whole life, so one that does not answer is
                # gone or going, even while /proc still shows it: an init killed an instant ago
                # (by a shutdown cut short by a crash, say) is not a zombie until its namespace is
                # torn down, which takes milliseconds.
                await self.devboxes.died(devbox_id, "its launcher does not answer")
            raise InvalidRequestError(
                f"cannot start the command on devbox {devbox_id}: {exc}; shorten it (put a long script in a "
                "file with write_devbox_file and run the file)"
            ) from exc

    async def secret_values(self, internal: dict[str, Any]) -> dict[str, tuple[str, str]]:
        """`{env var: (secret name, value)}` of the secrets the devbox names, read now."""
        mapping = internal.get("secrets") or {}
        if not mapping or self.devboxes.secrets is None:
            return {}
        return await self.devboxes.secrets.values(mapping)

    def _on_done(
        self, sandbox: Sandbox, cgroups: Cgroups, run_id: str | None, started: int, log_source: str
    ) -> Callable[[Execution], Awaitable[None]]:
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
            if execution.exit_status == SIGXFSZ_EXIT_STATUS:
                execution.notes.append(f"a file reached the devbox's size cap of {cgroups.disk_bytes} bytes")
            await self._record_end(execution, run_id, started, log_source)

        return finished

    def _remember(self, execution: Execution) -> None:
        self._executions[execution.execution_id] = execution
        # Completed executions stay for streaming their output; the oldest are forgotten first.
        while len(self._executions) > MAX_REMEMBERED_EXECUTIONS:
            oldest = next((k for k, v in self._executions.items() if not v.running), None)
            if oldest is None:
                break
            del self._executions[oldest]

    async def _record_end(self, execution: Execution, run_id: str | None, started: int, log_source: str) -> None:
        view = self.view(execution)
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

    # --- views ---------------------------------------------------------------------------------

    def view(self, execution: Execution) -> ExecutionView:
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

    async def get(self, devbox_id: str, execution_id: str) -> ExecutionView:
        live = self._executions.get(execution_id)
        if live is not None and live.devbox_id == devbox_id:
            return self.view(live)
        row = await self.store.get("executions", execution_id)
        if row is None or row.data.get("devbox_id") != devbox_id:
            raise NotFoundError("execution", execution_id)
        view = ExecutionView.model_validate(row.data)
        if view.status != ExecutionStatus.COMPLETED:
            # Acknowledged as running, but its process died with a previous server.
            view = view.model_copy(update={"status": ExecutionStatus.COMPLETED, "exit_status": KILLED_EXIT_STATUS})
        return view

    def _running(self, devbox_id: str, execution_id: str) -> Execution:
        live = self._executions.get(execution_id)
        if live is None or live.devbox_id != devbox_id or not live.running:
            raise InvalidStateError(
                f"execution {execution_id} is not running on devbox {devbox_id} (it completed or does not exist)"
            )
        return live

    async def wait(
        self, devbox_id: str, execution_id: str, statuses: list[str], timeout_seconds: float
    ) -> ExecutionView:
        wanted = set(statuses or ["completed"])
        unknown = wanted - {s.value for s in ExecutionStatus}
        if unknown:
            raise InvalidRequestError(f"unknown execution statuses {sorted(unknown)}; use queued, running, completed")
        view = await self.get(devbox_id, execution_id)
        live = self._executions.get(execution_id)
        if view.status in wanted or live is None:
            if view.status not in wanted:
                raise OperationTimeoutError(f"execution {execution_id} is {view.status}, not {sorted(wanted)}")
            return view
        with anyio.move_on_after(min(timeout_seconds, MAX_LONG_POLL)):
            await live.done.wait()
        view = self.view(live)
        if view.status not in wanted:
            raise OperationTimeoutError(
                f"execution {execution_id} is still {view.status.value} after {timeout_seconds:g} s; wait again"
            )
        return view

    async def kill(self, devbox_id: str, execution_id: str, *, process_group: bool) -> ExecutionView:
        execution = self._running(devbox_id, execution_id)
        execution.kill(process_group=process_group)
        with anyio.move_on_after(KILL_WAIT):
            await execution.done.wait()
        return self.view(execution)

    async def send_stdin(self, devbox_id: str, execution_id: str, text: str | None, sig: str | None) -> ExecutionView:
        execution = self._running(devbox_id, execution_id)
        await execution.send_stdin(text, sig)
        return self.view(execution)

    async def output(self, devbox_id: str, execution_id: str, stream: str, offset: int) -> ExecutionOutputChunk:
        if stream not in ("stdout", "stderr"):
            raise InvalidRequestError(f"stream must be stdout or stderr, got {stream!r}")
        if offset < 0:
            raise InvalidRequestError("offset must be >= 0")
        live = self._executions.get(execution_id)
        if live is None or live.devbox_id != devbox_id:
            return await self._logged_output(devbox_id, execution_id, stream, offset)
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

    async def _logged_output(self, devbox_id: str, execution_id: str, stream: str, offset: int) -> ExecutionOutputChunk:
        """Output of an execution no longer remembered, from its log file."""
        await self.get(devbox_id, execution_id)  # 404 when unknown
        suffix = "out" if stream == "stdout" else "err"
        log_path = self.devboxes.boxes_dir / devbox_id / "exec" / f"{execution_id}.{suffix}"
        data = b""
        if log_path.exists():
            with open(log_path, "rb") as f:
                f.seek(offset)
                data = f.read(OUTPUT_CHUNK)
        return ExecutionOutputChunk(
            execution_id=execution_id,
            stream=stream,
            offset=offset,
            output=data.decode("utf-8", errors="replace"),
            next_offset=offset + len(data),
            done=not data,
        )

    async def devbox_logs(
        self, devbox_id: str, execution_id: str | None, shell_name: str | None = None
    ) -> DevboxLogsListView:
        await self.devboxes.get(devbox_id)
        page = await self.store.list("executions", limit=MAX_LOG_ENTRIES, parent_id=devbox_id)
        logs: list[DevboxLogView] = []
        for row in reversed(page.rows):
            if execution_id is not None and row.id != execution_id:
                continue
            view = ExecutionView.model_validate(row.data)
            if shell_name is not None and view.shell_name != shell_name:
                continue
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
