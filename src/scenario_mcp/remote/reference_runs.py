"""The devboxes of a reference validation on a remote API, which has no validation endpoint and no
call that makes a devbox from a scenario's environment (Runloop's has neither): those of two runs
of the scenario, scored as any run, through the Backend protocol alone. Each run is canceled
afterwards (its devbox shut down).
"""

from __future__ import annotations

import logging

from ..backend import Backend, BackendError
from ..models import ScenarioRunState, ScenarioView, ScoringContractResultView, StartScenarioRunParameters
from ..reference_validation import Attempt
from .errors import RemoteError
from .http import poll

log = logging.getLogger(__name__)


class RunDevboxes:
    """AttemptDevboxes for `validate_with_reference`, over any Backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._runs: dict[str, str] = {}  # devbox id -> the id of the run it belongs to

    async def fresh(self, scenario: ScenarioView, attempt: Attempt) -> str:
        run = await self.backend.start_run(
            StartScenarioRunParameters(
                scenario_id=scenario.id,
                run_name=f"validate-{attempt}",
                metadata={"scenario_mcp_validation": attempt},
            )
        )
        self._runs[run.devbox_id] = run.id
        return run.devbox_id

    async def score(self, scenario: ScenarioView, devbox_id: str) -> ScoringContractResultView | None:
        run_id = self._runs[devbox_id]
        await self.backend.score_run(run_id)
        scored = await poll(
            lambda: self.backend.get_run(run_id),
            lambda r: r.state != ScenarioRunState.SCORING,
            timeout=scenario.scorer_timeout_sec + 60,
            what=f"scoring run {run_id}",
        )
        if scored.state != ScenarioRunState.SCORED:
            raise RemoteError(409, f"run {run_id} ended `{scored.state.value}`: {scored.failure_reason}")
        return scored.scoring_contract_result

    async def discard(self, devbox_id: str) -> None:
        run_id = self._runs.pop(devbox_id)
        try:
            await self.backend.cancel_run(run_id)
        except BackendError:
            log.warning("could not cancel validation run %s", run_id)
