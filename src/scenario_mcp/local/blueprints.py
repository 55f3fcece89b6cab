"""Blueprints on the local engine: environments built once (one layer), their build logs, the
default environment, and the layer chain any environment stands on.

A build runs the blueprint's `system_setup_commands` in a sandbox with network, over its base
blueprint's layers, and freezes what they changed into the blueprint's own layer.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio

from ..backend import EnvironmentUnavailableError, InvalidRequestError, InvalidStateError, NotFoundError
from ..models import (
    BlueprintBuildLogsListView,
    BlueprintCreateParameters,
    BlueprintListView,
    BlueprintView,
    new_id,
    now_ms,
)
from .commands import shell_argv
from .layers import LayerStore
from .processes import TIMEOUT_EXIT_STATUS
from .sandbox import HOME, Sandbox, SandboxError, SandboxSpec
from .store import Store, Table

log = logging.getLogger(__name__)

MAX_BUILD_LOG_ENTRY = 16_000  # characters of one build command's log kept (its end)
MAX_BUILD_LOG = 16_000  # characters of the whole build log kept in the view (its end)
BUILD_COMMAND_TIMEOUT = 900.0

DEFAULT_BLUEPRINT_NAME = "scenario-mcp-default"
# The default environment: the host's system dirs plus a Python venv with pip and pytest, whose
# bin dir is first on every devbox's PATH (Debian's system python has neither).
DEFAULT_BLUEPRINT_COMMANDS = (
    "python3 -m venv /opt/python",
    "/opt/python/bin/pip install --quiet --disable-pip-version-check pytest",
)


def default_blueprint_id() -> str:
    """Stable per host Python and recipe, so a changed recipe builds a fresh default."""
    recipe = "\n".join(DEFAULT_BLUEPRINT_COMMANDS) + sys.version
    with contextlib.suppress(OSError):
        recipe += os.readlink("/usr/bin/python3")
    return "bpt_default" + hashlib.sha256(recipe.encode()).hexdigest()[:13]


@dataclass
class _Build:
    """What a build leaves: its log (whole, and one Runloop BlueprintBuildLog per command) and,
    when it failed, why."""

    text: builtins.list[str] = field(default_factory=list)
    logs: builtins.list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None


class Blueprints:
    def __init__(self, store: Store, layers: LayerStore, boxes_dir: Path) -> None:
        self.store = store
        self.layers = layers
        self.boxes_dir = boxes_dir
        self._default_lock = anyio.Lock()

    # --- the layers of an environment ----------------------------------------------------------

    async def environment_layers(
        self, *, blueprint_id: str | None, blueprint_name: str | None, snapshot_id: str | None
    ) -> tuple[builtins.list[str], str | None]:
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
        default = await self.ensure_default()
        return [default.id], default.id

    # --- building ------------------------------------------------------------------------------

    async def create(self, params: BlueprintCreateParameters, *, blueprint_id: str | None = None) -> BlueprintView:
        """Build a blueprint: run its commands once in a sandbox with network, keep the result."""
        if params.base_blueprint_id or params.base_blueprint_name:
            base_layers, _ = await self.environment_layers(
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
        await self._save(view, {})
        build = await self._build(blueprint_id, base_layers, params.system_setup_commands)
        update: dict[str, Any] = {
            "build_finish_time_ms": now_ms(),
            "build_log": "\n".join(build.text)[-MAX_BUILD_LOG:],
        }
        if build.failure is None:
            view = view.model_copy(update={"status": "build_complete", **update})
            internal: dict[str, Any] = {"layers": [blueprint_id, *base_layers], "build_logs": build.logs}
        else:
            view = view.model_copy(update={"status": "failed", "failure_reason": build.failure, **update})
            build.logs.append({"level": "error", "timestamp_ms": now_ms(), "message": f"build failed: {build.failure}"})
            internal = {"build_logs": build.logs}
        await self._save(view, internal)
        return view

    async def _build(self, blueprint_id: str, base_layers: builtins.list[str], commands: builtins.list[str]) -> _Build:
        """Run the commands in order over the base layers; freeze the result when all succeed."""
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
        build = _Build()
        try:
            sandbox = await Sandbox.start(spec)
        except SandboxError as exc:
            build.failure = str(exc)
        else:
            try:
                await self._run_commands(sandbox, commands, build)
            finally:
                await sandbox.stop()
            if build.failure is None:
                try:
                    await self.layers.freeze(state_dir / "upper", blueprint_id)
                except SandboxError as exc:
                    build.failure = str(exc)
        shutil.rmtree(state_dir, ignore_errors=True)
        return build

    async def _run_commands(self, sandbox: Sandbox, commands: builtins.list[str], build: _Build) -> None:
        for command in commands:
            code, out, err = await _run_build_command(sandbox, command)
            build.text.append(f"$ {command}\n{out}{err}[exit {code}]")
            build.logs.append(
                {
                    "level": "info" if code == 0 else "error",
                    "timestamp_ms": now_ms(),
                    "message": build.text[-1][-MAX_BUILD_LOG_ENTRY:],
                }
            )
            if code != 0:
                build.failure = f"`{command}` exited {code}: {(err or out).strip()[-2000:]}"
                return

    async def ensure_default(self) -> BlueprintView:
        """The default environment, built once per data dir (it needs PyPI the first time)."""
        blueprint_id = default_blueprint_id()
        async with self._default_lock:
            row = await self.store.get("blueprints", blueprint_id)
            if row is not None and row.data["status"] == "build_complete" and self.layers.exists(blueprint_id):
                return BlueprintView.model_validate(row.data)
            log.warning("building the default devbox environment (Python venv with pytest); this happens once")
            view = await self.create(
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

    # --- records -------------------------------------------------------------------------------

    async def _save(self, view: BlueprintView, internal: dict[str, Any]) -> None:
        await self.store.put(
            "blueprints", view.id, view.model_dump(mode="json"), internal=internal, name=view.name, state=view.status
        )

    async def get(self, blueprint_id: str) -> BlueprintView:
        row = await self.store.get("blueprints", blueprint_id)
        if row is None:
            raise NotFoundError("blueprint", blueprint_id)
        return BlueprintView.model_validate(row.data)

    async def list(
        self, *, limit: int, starting_after: str | None = None, name: str | None = None
    ) -> BlueprintListView:
        page = await self.store.list("blueprints", limit=limit, starting_after=starting_after, name=name)
        return BlueprintListView(
            blueprints=[BlueprintView.model_validate(r.data) for r in page.rows],
            has_more=page.has_more,
            total_count=page.total_count,
        )

    async def logs(self, blueprint_id: str) -> BlueprintBuildLogsListView:
        row = await self.store.get("blueprints", blueprint_id)
        if row is None:
            raise NotFoundError("blueprint", blueprint_id)
        return BlueprintBuildLogsListView(blueprint_id=blueprint_id, logs=row.internal.get("build_logs", []))

    async def delete(self, blueprint_id: str, scenarios_using: builtins.list[str]) -> None:
        await self.get(blueprint_id)
        await delete_environment_layer(self.store, self.layers, "blueprints", blueprint_id, scenarios_using)


async def delete_environment_layer(
    store: Store,
    layers: LayerStore,
    table: Literal["blueprints", "snapshots"],
    layer_id: str,
    scenarios_using: builtins.list[str],
) -> None:
    """Delete a snapshot or blueprint, and its layer, unless something still stands on it."""
    noun = table.removesuffix("s")
    if scenarios_using:
        raise InvalidStateError(
            f"{noun} {layer_id} is the environment of scenario(s) {', '.join(scenarios_using)}; "
            "archive or update them first"
        )
    users = []
    standing_on: tuple[Table, ...] = ("blueprints", "snapshots", "devboxes")
    for other in standing_on:
        for row in (await store.list(other, limit=100_000)).rows:
            if row.id == layer_id or (other == "devboxes" and row.data["status"] in ("shutdown", "failure")):
                continue
            if layer_id in row.internal.get("layers", []):
                users.append(row.id)
    if users:
        raise InvalidStateError(
            f"{noun} {layer_id} is a layer of {', '.join(users[:10])}; delete or shut down those first"
        )
    await store.delete(table, layer_id)
    await anyio.to_thread.run_sync(layers.remove, layer_id)


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
