"""Devbox lifecycle on the local engine: create, reattach after a restart, expire, suspend and
resume, shut down. A devbox is a sandbox (sandbox.py) over its environment's layers, in its own
cgroups (limits.py); what runs in it is executions.py's, its files files.py's."""

from __future__ import annotations

import builtins
import dataclasses
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import anyio
from anyio.abc import TaskGroup

from ..backend import (
    BackendError,
    EnvironmentUnavailableError,
    InvalidRequestError,
    InvalidStateError,
    NotFoundError,
    OperationTimeoutError,
)
from ..models import (
    DEFAULT_KEEP_ALIVE_SECONDS,
    DevboxCreateParameters,
    DevboxListView,
    DevboxStateTransition,
    DevboxStatus,
    DevboxView,
    LaunchParameters,
    TunnelView,
    given,
    new_id,
    now_ms,
)
from .blueprints import Blueprints
from .environments import Environment, devbox_user
from .launch import check_launch, limit_request, merged_launch
from .launcher import end_stray_init, launcher_socket, move_deadline
from .layers import LayerStore, tree_size
from .limits import Cgroups, LimitRequest, make_cgroups
from .mounts import Mounts, PlannedMounts, write_before_start
from .network_policies import NetworkPolicies
from .sandbox import Sandbox, SandboxError, SandboxSpec
from .secrets import Redactor, Secrets, check_secret_names
from .store import Store
from .trash import Trash, remove_trees
from .trust import sandbox_trust

log = logging.getLogger(__name__)

MAX_LONG_POLL = 30.0
ENDED = (DevboxStatus.SHUTDOWN, DevboxStatus.FAILURE)


DEFAULT_NETWORK_ENV = "SCENARIO_MCP_DEVBOX_NETWORK"


def default_network() -> bool:
    """Whether a devbox that names neither `network` nor a network policy gets network: off
    unless SCENARIO_MCP_DEVBOX_NETWORK=on (Runloop's devboxes have it; Harbor's public tasks
    expect it)."""
    value = os.environ.get(DEFAULT_NETWORK_ENV, "off").strip().lower()
    if value not in ("on", "off"):
        raise RuntimeError(f"{DEFAULT_NETWORK_ENV}={value!r}: give `on` or `off`")
    return value == "on"


class Devboxes:
    def __init__(self, store: Store, data_dir: Path, blueprints: Blueprints, network_policies: NetworkPolicies) -> None:
        self.store = store
        self.blueprints = blueprints
        self.network_policies = network_policies
        self.default_network = default_network()
        self.layers: LayerStore = blueprints.layers
        self.boxes_dir = data_dir / "devboxes"
        self.trash = Trash(data_dir / "trash")  # where ended devboxes' and scorings' disks go
        self._live: dict[str, Sandbox] = {}
        self._launchers: dict[str, Path] = {}
        self._cgroups: dict[str, Cgroups] = {}
        # Views and internal state of devboxes that have not ended (see _row).
        self._rows: dict[str, tuple[DevboxView, dict[str, Any]]] = {}
        self._on_end: builtins.list[Callable[[str], None]] = []
        self._tg: TaskGroup | None = None
        # Set (and dropped) by every save: status waits wake on a change, not on a timer.
        self._saved: anyio.Event | None = None
        self.mounts: Mounts | None = None  # set by the engine once agents and objects exist
        self.secrets: Secrets | None = None  # set by the engine: what `secrets` of a devbox name

    @property
    def tg(self) -> TaskGroup:
        assert self._tg is not None, "the engine's task group is not running"
        return self._tg

    def attach_task_group(self, tg: TaskGroup) -> None:
        self._tg = tg

    def on_end(self, forget: Callable[[str], None]) -> None:
        """Call `forget(devbox_id)` when a devbox ends: what others keep per devbox goes too."""
        self._on_end.append(forget)

    # --- views ---------------------------------------------------------------------------------

    async def _row(self, devbox_id: str) -> tuple[DevboxView, dict[str, Any]]:
        # This is the only writer of devbox rows (one engine per data dir, see engine.py): what
        # it last wrote is what the store holds, so reads need no trip to SQLite.
        cached = self._rows.get(devbox_id)
        if cached is not None:
            return cached
        row = await self.store.get("devboxes", devbox_id)
        if row is None:
            raise NotFoundError("devbox", devbox_id)
        found = (DevboxView.model_validate(row.data), row.internal)
        if found[0].status not in ENDED:
            self._rows[devbox_id] = found
        return found

    async def get(self, devbox_id: str) -> DevboxView:
        return (await self._row(devbox_id))[0]

    async def internal(self, devbox_id: str) -> dict[str, Any]:
        return dict((await self._row(devbox_id))[1])

    async def set_tunnel(self, devbox_id: str, tunnel: TunnelView | None) -> DevboxView:
        view, internal = await self._row(devbox_id)
        view = view.model_copy(update={"tunnel": tunnel})
        await self._save(view, dict(internal))
        return view

    async def running_views(self) -> builtins.list[DevboxView]:
        """The running devboxes' views (those a tunnel may serve)."""
        return [view for view in [await self.get(i) for i in builtins.list(self._live)] if view.status == "running"]

    async def list(self, *, limit: int, starting_after: str | None, status: str | None) -> DevboxListView:
        if status is not None and status not in {s.value for s in DevboxStatus}:
            raise InvalidRequestError(
                f"unknown devbox status {status!r}; one of {', '.join(s.value for s in DevboxStatus)}"
            )
        page = await self.store.list("devboxes", limit=limit, starting_after=starting_after, state=status)
        return DevboxListView(
            devboxes=[DevboxView.model_validate(r.data) for r in page.rows],
            has_more=page.has_more,
            total_count=page.total_count,
        )

    async def _save(self, view: DevboxView, internal: dict[str, Any] | None = None) -> None:
        await self.store.put(
            "devboxes",
            view.id,
            view.model_dump(mode="json"),
            internal=internal,
            name=view.name,
            state=view.status,
        )
        if view.status in ENDED:
            self._rows.pop(view.id, None)  # an ended devbox is read from the store
        else:
            if internal is None:
                previous = self._rows.get(view.id)
                internal = previous[1] if previous else (await self._row(view.id))[1]
            self._rows[view.id] = (view, dict(internal))
        if self._saved is not None:
            self._saved.set()
            self._saved = None

    def _next_save(self) -> anyio.Event:
        """An event the next save of any devbox sets."""
        if self._saved is None:
            self._saved = anyio.Event()
        return self._saved

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
        if status in ENDED:
            update["end_time_ms"] = ts
        new = view.model_copy(update=update)
        await self._save(new, internal)
        return new

    def _spec(self, devbox_id: str, internal: dict[str, Any]) -> SandboxSpec:
        return Environment.from_internal(internal).spec(
            self.layers,
            self.boxes_dir / devbox_id,
            network=bool(internal["network"]),
            hostname=devbox_id[:63],
            extra_layers=tuple(self.layers.path(layer) for layer in internal.get("extra_layers", ())),
            egress_allow=None if internal.get("egress_allow") is None else tuple(internal["egress_allow"]),
            mounts=tuple((self.layers.path(layer), path) for layer, path in internal.get("mounts", ())),
        )

    async def _trust(self, environment: Environment) -> dict[str, Any]:
        """On an image: the host's added CAs in a layer on top, and the proxies and CA variables
        (trust.py); kept in the devbox's record, so a reattached devbox stacks the same layer."""
        if environment.image is None:
            return {}
        trust = await sandbox_trust(self.layers, environment.layers, self.blueprints.trust)
        return {"extra_layers": list(trust.stack(())), "trust_env": trust.env, "trust_files": list(trust.files)}

    async def egress(self, devbox_id: str) -> tuple[bool, tuple[str, ...] | None]:
        """The devbox's network: whether it has one, and the only addresses it may reach (None: any)."""
        _, internal = await self._row(devbox_id)
        allowed = internal.get("egress_allow")
        return bool(internal["network"]), None if allowed is None else tuple(allowed)

    async def environment(self, devbox_id: str) -> Environment:
        view, internal = await self._row(devbox_id)
        return Environment.from_internal(internal, view.blueprint_id)

    # --- lifecycle -----------------------------------------------------------------------------

    async def create(self, params: DevboxCreateParameters, *, run_id: str | None = None) -> DevboxView:
        """A running devbox; its launch commands are the caller's to run (executions.py)."""
        environment = await self.blueprints.environment(
            blueprint_id=params.blueprint_id, blueprint_name=params.blueprint_name, snapshot_id=params.snapshot_id
        )
        blueprint_id = environment.blueprint_id
        defaults = await self.blueprints.launch_defaults(None if params.snapshot_id else blueprint_id)
        if defaults:
            params = params.model_copy(update={"launch_parameters": merged_launch(defaults, params.launch_parameters)})
        launch = params.launch_parameters or LaunchParameters()
        check_launch(launch)
        secret_names = await self._check_secrets(params.secrets)
        egress = await self.network_policies.launch_egress(launch, self.default_network)
        planned = await self._plan_mounts(params)
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
            **environment.to_internal(),
            "network": egress.network,
            "allowed_hostnames": list(egress.allowed_hostnames),
            "egress_allow": await egress.addresses(),
            "env": params.environment_variables or {},
            # Names only: the values are read, decrypted, for each command (local/secrets.py).
            "secrets": secret_names,
            "expires_ms": created + keep_alive * 1000,
            "run_id": run_id,
            **await self._trust(environment),
            **planned.to_internal(),
        }
        if planned.install_commands:
            internal["install_commands"] = planned.install_commands
        # Before the row: a clone that fails leaves no devbox behind.
        await self._write_mounts(devbox_id, planned, environment)
        await self._save(view, internal)
        try:
            # Its init ends it at its keep-alive time by itself, server or not (keep_alive moves it).
            sandbox = await Sandbox.start(self._spec(devbox_id, internal), deadline=internal["expires_ms"] / 1000)
        except SandboxError as exc:
            await self._transition(
                view, DevboxStatus.FAILURE, failure_reason="health_check_failed", failure_message=str(exc)
            )
            raise EnvironmentUnavailableError(
                f"could not start devbox {devbox_id}: {exc}; retry, or check that this machine can make "
                "sandboxes (`scenario-mcp setup`)"
            ) from exc
        self._live[devbox_id] = sandbox
        self.tg.start_soon(self._watch_init, devbox_id, sandbox)
        root = Path(f"/proc/{sandbox.init_pid}/root")
        if environment.image is not None:
            internal["shell"] = environment.shell(root)
            environment.make_working_directory(root)
        try:
            user = devbox_user(root, launch, environment)
        except InvalidRequestError as exc:
            await self._stop(devbox_id)
            await self._transition(
                view, DevboxStatus.FAILURE, failure_reason="execution_failed", failure_message=exc.message
            )
            raise
        if user is not None:
            internal["user"] = dataclasses.asdict(user)
        cgroups = self._make_cgroups(devbox_id, launch, adopt=sandbox.spare_cgroup)
        if cgroups.adopted:
            sandbox.spare_cgroup = None
        else:
            cgroups.add_process(sandbox.init_pid)
        internal.update(init_pid=sandbox.init_pid, init_start=sandbox.init_start_time)
        return await self._transition(view, DevboxStatus.RUNNING, internal, limits=cgroups.enforced)

    async def redactor(self, devbox_id: str) -> Redactor:
        """What hides the values of the devbox's secrets in output kept of it (a scorer's, say)."""
        mapping = (await self.internal(devbox_id)).get("secrets") or {}
        if not mapping or self.secrets is None:
            return Redactor({})
        return await self.secrets.redactor(mapping)

    async def _check_secrets(self, mapping: dict[str, str] | None) -> dict[str, str]:
        checked = check_secret_names(mapping, "secrets")
        if checked:
            if self.secrets is None:
                raise InvalidRequestError("this engine keeps no secrets; leave secrets out")
            await self.secrets.check_exist(checked, "secrets")
        return checked

    async def _plan_mounts(self, params: DevboxCreateParameters) -> PlannedMounts:
        if not params.mounts:
            return PlannedMounts()
        if self.mounts is None:
            raise InvalidRequestError("this engine mounts nothing; leave mounts out")
        return await self.mounts.plan(params.mounts)

    async def _write_mounts(self, devbox_id: str, planned: PlannedMounts, environment: Environment) -> None:
        if not (planned.files or planned.clones):
            return
        state_dir = self.boxes_dir / devbox_id
        try:
            lines = await write_before_start(planned, state_dir, environment.image is not None)
        except BaseException:
            await anyio.to_thread.run_sync(shutil.rmtree, state_dir, True)
            raise
        for line in lines:
            log.debug("devbox %s: %s", devbox_id, line)

    def _make_cgroups(self, devbox_id: str, launch: LaunchParameters, *, adopt: str | None = None) -> Cgroups:
        cgroups = make_cgroups(devbox_id, limit_request(launch), adopt=adopt)
        self._cgroups[devbox_id] = cgroups
        return cgroups

    def cgroups(self, devbox_id: str) -> Cgroups:
        return self._cgroups.get(devbox_id) or Cgroups()

    async def kill_all_but_init(self, devbox_id: str, sandbox: Sandbox) -> None:
        """End every process of the devbox but its init: through its cgroups when it has them
        (a few file writes), else by a `kill -9 -1` run inside it (three programs started)."""
        cgroups = self.cgroups(devbox_id)
        if cgroups.procs_files and cgroups.freezer_dir is not None:
            await anyio.to_thread.run_sync(cgroups.kill_all_except, sandbox.init_pid)
        else:
            await sandbox.kill_all_but_init()

    async def sandbox(self, devbox_id: str, *, check_init: bool = True) -> Sandbox:
        """The live sandbox of a running devbox, or a clear error saying why there is none.

        `check_init=False` skips looking for its init in /proc, for a caller that learns of a dead
        init anyway (a launcher that cannot be reached: see `died`)."""
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
            await self.died(devbox_id)
        assert sandbox is not None
        return sandbox

    async def died(self, devbox_id: str, detail: str | None = None) -> NoReturn:
        """Record that the devbox's init is gone (or going), and say so to the caller."""
        if await self._past_keep_alive(devbox_id):
            view = await self.shutdown(devbox_id, reason="keep_alive_timeout")
            raise InvalidStateError(
                f"devbox {devbox_id} is `{view.status.value}` (keep_alive_timeout): it reached its keep-alive "
                "time; create a new devbox, and call keep_alive on it to keep it longer"
            )
        gone = "its init process is gone" + (f" ({detail})" if detail else "")
        await self.mark_dead(devbox_id, f"the devbox's {gone.removeprefix('its ')}")
        raise InvalidStateError(f"devbox {devbox_id} has died: {gone}; create a new devbox")

    async def _watch_init(self, devbox_id: str, sandbox: Sandbox) -> None:
        """Record the devbox's end as soon as its init exits without the server ending it: killed
        from outside, or at its keep-alive time (see mark_dead)."""
        try:
            pidfd = os.pidfd_open(sandbox.init_pid)
        except OSError:
            pidfd = None  # already gone
        try:
            if pidfd is not None:
                await anyio.wait_readable(pidfd)  # readable once it has exited
        finally:
            if pidfd is not None:
                os.close(pidfd)
        if self._live.get(devbox_id) is sandbox:  # not stopped by this server
            try:
                await self.mark_dead(
                    devbox_id, "the devbox's init process exited: it was killed from outside the server"
                )
            except BackendError as exc:  # a full disk: the next call or start records it
                log.error("devbox %s: its end could not be recorded: %s", devbox_id, exc.message)

    def launcher(self, devbox_id: str) -> Path | None:
        """The devbox's launcher socket; one that exists stays for the devbox's life (its path is
        reused by a resumed devbox's init), so it is looked up once."""
        found = self._launchers.get(devbox_id) or launcher_socket(self.boxes_dir / devbox_id)
        if found is not None:
            self._launchers[devbox_id] = found
        return found

    async def _past_keep_alive(self, devbox_id: str) -> bool:
        """Whether a running devbox is past its keep-alive time: its init ends it by itself then."""
        view, internal = await self._row(devbox_id)
        return view.status == DevboxStatus.RUNNING and internal.get("expires_ms", now_ms() + 1) <= now_ms()

    async def mark_dead(self, devbox_id: str, message: str, reason: str = "health_check_failed") -> None:
        if reason == "health_check_failed" and await self._past_keep_alive(devbox_id):
            await self.shutdown(devbox_id, reason="keep_alive_timeout")
            return
        view = await self.get(devbox_id)
        await self._stop(devbox_id)
        if view.status not in ENDED:
            await self._transition(view, DevboxStatus.FAILURE, failure_reason=reason, failure_message=message)

    async def shutdown(self, devbox_id: str, reason: str = "api_shutdown") -> DevboxView:
        view = await self.get(devbox_id)
        if view.status in ENDED:
            return view
        await self._stop(devbox_id)
        return await self._transition(view, DevboxStatus.SHUTDOWN, shutdown_reason=reason)

    async def _stop(self, devbox_id: str) -> None:
        """Kill every process of the devbox and release its cgroups; its mounts go with its namespace."""
        sandbox = self._live.pop(devbox_id, None)
        self._launchers.pop(devbox_id, None)
        cgroups = self._cgroups.pop(devbox_id, None)
        for forget in self._on_end:
            forget(devbox_id)
        if cgroups is not None:
            cgroups.freeze(False)  # a frozen process cannot die
        if sandbox is not None:
            await sandbox.stop()
        if cgroups is not None:
            await anyio.to_thread.run_sync(cgroups.destroy)
        # Its disk changes go (snapshots were copies), moved aside now, removed in the background.
        # Its execution logs stay.
        self.trash.put(*self._disk_dirs(devbox_id))

    def _disk_dirs(self, devbox_id: str) -> builtins.list[Path]:
        return [self.boxes_dir / devbox_id / part for part in ("upper", "work", "root")]

    async def reconcile(self) -> builtins.list[str]:
        """After a restart: reattach devboxes whose init survived (suspended ones too, still
        frozen), fail the others."""
        restored: builtins.list[str] = []
        page = await self.store.list("devboxes", limit=100_000, state=["running", "provisioning", "suspended"])
        for row in page.rows:
            internal = row.internal
            pid, start = internal.get("init_pid"), internal.get("init_start")
            view = DevboxView.model_validate(row.data)
            if pid is not None:
                sandbox = Sandbox.attach(self._spec(row.id, internal), pid, start)
                if sandbox.alive():
                    self._live[row.id] = sandbox
                    self.tg.start_soon(self._watch_init, row.id, sandbox)
                    self._make_cgroups(row.id, view.launch_parameters)
                    restored.append(row.id)
                    continue
            if view.status == DevboxStatus.RUNNING and internal.get("expires_ms", now_ms() + 1) <= now_ms():
                # Its init ended it at its keep-alive time, with no server there to record it.
                await self._transition(view, DevboxStatus.SHUTDOWN, shutdown_reason="keep_alive_timeout")
            else:
                await self._transition(
                    view,
                    DevboxStatus.FAILURE,
                    failure_reason="health_check_failed",
                    failure_message="the devbox's processes died while the server was down",
                )
            await self._remove_leftovers(row.id)
        # Disks of devboxes that were stopped just before the server went down.
        for upper in await anyio.to_thread.run_sync(lambda: [*self.boxes_dir.glob("*/upper")]):
            stopped = await self.store.get("devboxes", upper.parent.name)
            if stopped is None or stopped.data.get("status") in ENDED:
                await anyio.to_thread.run_sync(remove_trees, *self._disk_dirs(upper.parent.name))
        return restored

    async def _remove_leftovers(self, devbox_id: str) -> None:
        """What a devbox that did not survive a restart left: an init that lost its record (the
        server died inside a create, or a start still in flight in its spawner), a cgroup, its
        disk changes."""
        await anyio.to_thread.run_sync(end_stray_init, self.boxes_dir / devbox_id)
        await anyio.to_thread.run_sync(make_cgroups(devbox_id, LimitRequest()).destroy)
        await anyio.to_thread.run_sync(remove_trees, *self._disk_dirs(devbox_id))

    async def expire(self) -> None:
        """Shut down devboxes past their keep-alive time; fail those over their disk cap."""
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
            await self.died(devbox_id)
        # Its keep-alive time starts again, told to init before it thaws (its own deadline
        # passed while it was frozen, perhaps: it reads what waits before giving up).
        internal = await self._renew_keep_alive(devbox_id, view)
        if not self.cgroups(devbox_id).freeze(False):
            await sandbox.run_quiet(["/bin/sh", "-c", "kill -CONT -1 2>/dev/null; exit 0"])
        return await self._transition(view, DevboxStatus.RUNNING, internal)

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
        internal = await self._renew_keep_alive(devbox_id, view)
        await self._save(view, internal)
        return view

    async def _renew_keep_alive(self, devbox_id: str, view: DevboxView) -> dict[str, Any]:
        """The devbox's internal state with a new keep-alive time, which its init is told."""
        internal = await self.internal(devbox_id)
        keep_alive = view.launch_parameters.keep_alive_time_seconds or DEFAULT_KEEP_ALIVE_SECONDS
        internal["expires_ms"] = now_ms() + keep_alive * 1000
        socket_path = self.launcher(devbox_id)
        if socket_path is not None:
            await anyio.to_thread.run_sync(move_deadline, socket_path, internal["expires_ms"] / 1000)
        return internal

    async def wait_for_status(self, devbox_id: str, statuses: builtins.list[str], timeout_seconds: float) -> DevboxView:
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
                saved = self._next_save()  # taken before the read: a change after it wakes us
                view = await self.get(devbox_id)
                if view.status in wanted:
                    return view
                if view.status in ENDED:
                    break  # it will never get there
                await saved.wait()
        view = await self.get(devbox_id)
        if view.status in wanted:
            return view
        raise OperationTimeoutError(
            f"devbox {devbox_id} is `{view.status.value}`, not one of {sorted(wanted)}, after {timeout_seconds:g} s"
        )
