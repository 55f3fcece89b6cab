"""The Backend protocol: the one seam between the surfaces (MCP, REST) and an engine."""

from __future__ import annotations

from typing import Protocol

from .models import (
    BlueprintCreateParameters,
    BlueprintView,
    DevboxCreateParameters,
    DevboxListView,
    DevboxSnapshotView,
    DevboxView,
    ExecutionView,
    RunLogEntry,
    ScenarioCreateParameters,
    ScenarioListView,
    ScenarioRunListView,
    ScenarioRunView,
    ScenarioView,
    StartScenarioRunParameters,
)


class BackendError(Exception):
    """An error the caller can act on. `status` is the HTTP status Runloop would give."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestError(BackendError):
    status = 400


class NotFoundError(BackendError):
    status = 404

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident!r} not found; check the id (list them to see which exist)")
        self.kind = kind
        self.ident = ident


class InvalidStateError(BackendError):
    """The call is not allowed in the object's current state."""

    status = 409


class OperationTimeoutError(BackendError):
    status = 408


class EnvironmentUnavailableError(BackendError):
    """The engine cannot do this on this machine (no sandbox, no network for a build, ...)."""

    status = 503


class Backend(Protocol):
    # scenarios
    async def create_scenario(self, params: ScenarioCreateParameters) -> ScenarioView: ...
    async def get_scenario(self, scenario_id: str) -> ScenarioView: ...
    async def list_scenarios(
        self, *, limit: int = 20, starting_after: str | None = None, name: str | None = None
    ) -> ScenarioListView: ...

    # runs
    async def start_run(self, params: StartScenarioRunParameters) -> ScenarioRunView: ...
    async def get_run(self, run_id: str) -> ScenarioRunView: ...
    async def list_runs(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        scenario_id: str | None = None,
        state: str | None = None,
    ) -> ScenarioRunListView: ...
    async def score_run(self, run_id: str) -> ScenarioRunView: ...
    async def complete_run(self, run_id: str) -> ScenarioRunView: ...
    async def cancel_run(self, run_id: str) -> ScenarioRunView: ...
    async def run_logs(self, run_id: str) -> list[RunLogEntry]: ...

    # blueprints
    async def create_blueprint(self, params: BlueprintCreateParameters) -> BlueprintView: ...
    async def get_blueprint(self, blueprint_id: str) -> BlueprintView: ...

    # devboxes
    async def create_devbox(self, params: DevboxCreateParameters) -> DevboxView: ...
    async def get_devbox(self, devbox_id: str) -> DevboxView: ...
    async def list_devboxes(
        self, *, limit: int = 20, starting_after: str | None = None, status: str | None = None
    ) -> DevboxListView: ...
    async def shutdown_devbox(self, devbox_id: str) -> DevboxView: ...
    async def execute(
        self,
        devbox_id: str,
        command: str,
        *,
        timeout_seconds: float | None = None,
        working_directory: str | None = None,
    ) -> ExecutionView: ...
    async def read_file(self, devbox_id: str, file_path: str) -> str: ...
    async def write_file(self, devbox_id: str, file_path: str, contents: str) -> None: ...
    async def snapshot_disk(
        self,
        devbox_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        commit_message: str | None = None,
    ) -> DevboxSnapshotView: ...
