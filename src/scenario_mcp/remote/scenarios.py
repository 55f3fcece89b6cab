"""Scenarios, their runs and custom scorers on the remote API."""

from __future__ import annotations

import io
import zipfile

from ..models import (
    CreateCustomScorerParameters,
    DevboxStatus,
    RunLogEntry,
    ScenarioCreateParameters,
    ScenarioListView,
    ScenarioRunListView,
    ScenarioRunView,
    ScenarioScorersListView,
    ScenarioScorerView,
    ScenarioUpdateParameters,
    ScenarioView,
    StartScenarioRunParameters,
)
from .devboxes import BOOT_TIMEOUT, not_running_reason, wait_for_devbox
from .errors import RemoteError, RemoteUnavailableError
from .http import RemoteHttp, dump


class ScenariosMixin:
    http: RemoteHttp

    async def create_scenario(self, params: ScenarioCreateParameters) -> ScenarioView:
        return await self.http.post("/v1/scenarios", ScenarioView, dump(params))

    async def get_scenario(self, scenario_id: str) -> ScenarioView:
        return await self.http.get(f"/v1/scenarios/{scenario_id}", ScenarioView)

    async def list_scenarios(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        name: str | None = None,
        benchmark_id: str | None = None,
        validation_type: str | None = None,
    ) -> ScenarioListView:
        return await self.http.get(
            "/v1/scenarios",
            ScenarioListView,
            limit=limit,
            starting_after=starting_after,
            name=name,
            benchmark_id=benchmark_id,
            validation_type=validation_type,
        )

    async def update_scenario(self, scenario_id: str, params: ScenarioUpdateParameters) -> ScenarioView:
        return await self.http.post(f"/v1/scenarios/{scenario_id}", ScenarioView, dump(params))

    async def archive_scenario(self, scenario_id: str) -> ScenarioView:
        return await self.http.post(f"/v1/scenarios/{scenario_id}/archive", ScenarioView)

    async def unarchive_scenario(self, scenario_id: str) -> ScenarioView:
        return await self.http.post(f"/v1/scenarios/{scenario_id}/unarchive", ScenarioView)

    # --- runs ----------------------------------------------------------------------------------

    async def start_run(self, params: StartScenarioRunParameters) -> ScenarioRunView:
        """Start a run and wait until its devbox is running, as the local engine returns it."""
        run = await self.http.post("/v1/scenarios/start_run", ScenarioRunView, dump(params))
        box = await wait_for_devbox(self.http, run.devbox_id, ["running", "failure", "shutdown"], BOOT_TIMEOUT)
        if box.status != DevboxStatus.RUNNING:
            raise RemoteUnavailableError(
                503,
                f"the devbox {box.id} of run {run.id} did not start: "
                f"it is `{box.status.value}` ({not_running_reason(box)})",
            )
        return run

    async def get_run(self, run_id: str) -> ScenarioRunView:
        return await self.http.get(f"/v1/scenarios/runs/{run_id}", ScenarioRunView)

    async def list_runs(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        scenario_id: str | None = None,
        state: str | None = None,
        benchmark_run_id: str | None = None,
        name: str | None = None,
    ) -> ScenarioRunListView:
        return await self.http.get(
            "/v1/scenarios/runs",
            ScenarioRunListView,
            limit=limit,
            starting_after=starting_after,
            scenario_id=scenario_id,
            state=state,
            benchmark_run_id=benchmark_run_id,
            name=name,
        )

    async def score_run(self, run_id: str) -> ScenarioRunView:
        return await self.http.post(f"/v1/scenarios/runs/{run_id}/score", ScenarioRunView)

    async def complete_run(self, run_id: str) -> ScenarioRunView:
        return await self.http.post(f"/v1/scenarios/runs/{run_id}/complete", ScenarioRunView)

    async def cancel_run(self, run_id: str) -> ScenarioRunView:
        return await self.http.post(f"/v1/scenarios/runs/{run_id}/cancel", ScenarioRunView)

    async def run_logs(self, run_id: str) -> list[RunLogEntry]:
        response = await self.http.request(
            "POST", f"/v1/scenarios/runs/{run_id}/download_logs", accept="application/zip"
        )
        try:
            archive = zipfile.ZipFile(io.BytesIO(response.content))
        except zipfile.BadZipFile as exc:
            raise RemoteError(502, f"the logs of run {run_id} are not a zip archive: {exc}") from exc
        with archive:
            names = archive.namelist()
            if "entries.jsonl" in names:  # a scenario-mcp server: the entries themselves
                lines = archive.read("entries.jsonl").decode("utf-8", errors="replace").splitlines()
                return [RunLogEntry.model_validate_json(line) for line in lines if line.strip()]
            # Runloop's own archive: one entry per file.
            return [
                RunLogEntry(
                    timestamp_ms=0,
                    source=name,
                    message=archive.read(name).decode("utf-8", errors="replace"),
                )
                for name in names
                if not name.endswith("/")
            ]

    # --- custom scorers ------------------------------------------------------------------------

    async def create_custom_scorer(self, params: CreateCustomScorerParameters) -> ScenarioScorerView:
        return await self.http.post("/v1/scenarios/scorers", ScenarioScorerView, dump(params))

    async def get_custom_scorer(self, scorer_id: str) -> ScenarioScorerView:
        return await self.http.get(f"/v1/scenarios/scorers/{scorer_id}", ScenarioScorerView)

    async def list_custom_scorers(
        self, *, limit: int = 20, starting_after: str | None = None
    ) -> ScenarioScorersListView:
        return await self.http.get(
            "/v1/scenarios/scorers", ScenarioScorersListView, limit=limit, starting_after=starting_after
        )

    async def update_custom_scorer(self, scorer_id: str, params: CreateCustomScorerParameters) -> ScenarioScorerView:
        return await self.http.post(f"/v1/scenarios/scorers/{scorer_id}", ScenarioScorerView, dump(params))
