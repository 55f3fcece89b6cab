"""Scenarios on the local engine: create, update, get, list, archive; and the devbox a scenario's
environment makes, for its runs and its validation (the devboxes `validate_with_reference` uses)."""

from __future__ import annotations

import builtins
import shlex
from collections.abc import Callable
from typing import Any, Literal

from pydantic import ValidationError

from ..backend import InvalidRequestError, NotFoundError
from ..models import (
    DEFAULT_SCORER_TIMEOUT_SEC,
    HARBOR_VERIFIER,
    CustomScorer,
    DevboxCreateParameters,
    DevboxView,
    HarborVerifierParams,
    LaunchParameters,
    Mount,
    ScenarioCreateParameters,
    ScenarioEnvironment,
    ScenarioListView,
    ScenarioUpdateParameters,
    ScenarioView,
    ScoringContract,
    ScoringContractResultView,
    new_id,
    normalise_weights,
)
from ..reference_validation import Attempt
from .custom_scorers import CustomScorers
from .devboxes import Devboxes
from .executions import Executions
from .scoring import Scoring, unsupported_scorers
from .store import Store


class Scenarios:
    def __init__(
        self,
        store: Store,
        devboxes: Devboxes,
        executions: Executions,
        custom_scorers: CustomScorers,
    ) -> None:
        self.store = store
        self.devboxes = devboxes
        self.executions = executions
        self.custom_scorers = custom_scorers

    # --- checks --------------------------------------------------------------------------------

    async def _check_contract(self, contract: ScoringContract, *, hint: bool) -> None:
        unsupported = unsupported_scorers(contract)
        if unsupported:
            supported = "; use bash_script_scorer, command_scorer, python_script_scorer or test_based_scorer"
            raise InvalidRequestError(
                "the local engine cannot run these scorers: " + ", ".join(unsupported) + (supported if hint else "")
            )
        for function in contract.scoring_function_parameters:
            scorer = function.scorer
            if isinstance(scorer, CustomScorer) and scorer.custom_scorer_type == HARBOR_VERIFIER:
                try:  # the engine's own type: its params are its whole program, checked now
                    HarborVerifierParams.model_validate(scorer.scorer_params or {})
                except ValidationError as exc:
                    raise InvalidRequestError(
                        f"scoring function {function.name!r}: {HARBOR_VERIFIER} scorer_params are wrong: {exc}"
                    ) from None
                continue
            if (
                isinstance(scorer, CustomScorer)
                and await self.custom_scorers.by_type(scorer.custom_scorer_type) is None
            ):
                raise InvalidRequestError(
                    f"scoring function {function.name!r} names custom scorer type {scorer.custom_scorer_type!r}, "
                    "which is not registered; register it first (create_custom_scorer with that type and a bash script)"
                )

    async def _check_environment(self, env: ScenarioEnvironment) -> None:
        # Fail now, not at start_run, when the environment names something that does not exist.
        if env.snapshot_id and await self.store.get("snapshots", env.snapshot_id) is None:
            raise NotFoundError("snapshot", env.snapshot_id)
        if env.blueprint_id and await self.store.get("blueprints", env.blueprint_id) is None:
            raise NotFoundError("blueprint", env.blueprint_id)
        if env.working_directory and not env.working_directory.startswith("/"):
            raise InvalidRequestError(
                f"working_directory must be absolute (e.g. /home/user/project), got {env.working_directory!r}"
            )

    # --- records -------------------------------------------------------------------------------

    async def create(self, params: ScenarioCreateParameters) -> ScenarioView:
        await self._check_contract(params.scoring_contract, hint=True)
        env = params.environment_parameters
        if env is not None:
            await self._check_environment(env)
        view = ScenarioView(
            id=new_id("scenario"),
            name=params.name,
            input_context=params.input_context,
            scoring_contract=normalise_weights(params.scoring_contract),
            environment=env,
            reference_output=params.reference_output,
            metadata=params.metadata or {},
            required_environment_variables=params.required_environment_variables,
            required_secret_names=params.required_secret_names,
            validation_type=params.validation_type,
            scorer_timeout_sec=params.scorer_timeout_sec or DEFAULT_SCORER_TIMEOUT_SEC,
            scoring_scope=params.scoring_scope or "working_directory",
        )
        await self._save(view)
        return view

    async def _save(self, view: ScenarioView) -> None:
        await self.store.put("scenarios", view.id, view.model_dump(mode="json"), name=view.name, state=view.status)

    async def get(self, scenario_id: str) -> ScenarioView:
        row = await self.store.get("scenarios", scenario_id)
        if row is None:
            raise NotFoundError("scenario", scenario_id)
        return ScenarioView.model_validate(row.data)

    async def list(
        self,
        *,
        limit: int,
        starting_after: str | None,
        name: str | None,
        ids: builtins.list[str] | None = None,
        validation_type: str | None = None,
    ) -> ScenarioListView:
        """Newest first; `ids` keeps only those scenarios (a benchmark's, say)."""
        page = await self.store.list(
            "scenarios",
            limit=limit,
            starting_after=starting_after,
            name=name,
            id=ids,
            data_fields={"validation_type": validation_type},
        )
        return ScenarioListView(
            scenarios=[ScenarioView.model_validate(r.data) for r in page.rows],
            has_more=page.has_more,
            total_count=page.total_count,
        )

    async def update(self, scenario_id: str, params: ScenarioUpdateParameters) -> ScenarioView:
        scenario = await self.get(scenario_id)
        update: dict[str, Any] = {}
        for field in params.model_fields_set:
            value = getattr(params, field)
            if value is None:
                continue  # Runloop: omitted or null keeps the field
            if field == "environment_parameters":
                field = "environment"
            if field == "scoring_contract":
                await self._check_contract(value, hint=False)
                value = normalise_weights(value)
            # "" / [] / {} clear a field
            update[field] = None if value in ("", [], {}) and field not in ("metadata",) else value
        if update.get("name") is None and "name" in update:
            raise InvalidRequestError("name cannot be cleared")
        updated = ScenarioView.model_validate({**scenario.model_dump(), **update})
        await self._save(updated)
        return updated

    async def set_status(self, scenario_id: str, status: Literal["active", "archived"]) -> ScenarioView:
        scenario = (await self.get(scenario_id)).model_copy(update={"status": status})
        await self._save(scenario)
        return scenario

    async def on_environment(self, environment_matches: Callable[[dict[str, Any]], bool]) -> builtins.list[str]:
        """The active scenarios whose environment matches: what a snapshot or blueprint must keep."""
        page = await self.store.list("scenarios", limit=100_000, state="active")
        return [r.id for r in page.rows if environment_matches(r.data.get("environment") or {})]

    # --- the environment's devbox --------------------------------------------------------------

    async def environment_devbox(
        self,
        scenario: ScenarioView,
        *,
        name: str,
        run_id: str | None = None,
        environment_variables: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
        launch_parameters: LaunchParameters | None = None,
        mounts: builtins.list[Mount] | None = None,
    ) -> DevboxView:
        """A running devbox of the scenario's environment, its working directory made."""
        env = scenario.environment
        devbox = await self.devboxes.create(
            DevboxCreateParameters(
                name=name,
                blueprint_id=env.blueprint_id if env else None,
                blueprint_name=env.blueprint_name if env else None,
                snapshot_id=env.snapshot_id if env else None,
                launch_parameters=launch_parameters or (env.launch_parameters if env else None),
                environment_variables=environment_variables or None,
                secrets=secrets or None,
                mounts=mounts,
            ),
            run_id=run_id,
        )
        await self.executions.run_launch_commands(devbox)
        workdir = scenario.working_directory
        made = await self.executions.execute(
            devbox.id,
            f"mkdir -p -- {shlex.quote(workdir)}",
            working_directory="/",
            log_source="setup",
        )
        if made.exit_status != 0:
            await self.devboxes.shutdown(devbox.id)
            raise InvalidRequestError(f"cannot create working directory {workdir}: {made.stderr}")
        return devbox


class EnvironmentDevboxes:
    """The devboxes of a reference validation on the local engine (see reference_validation.py):
    made straight from the scenario's environment, with no run, and scored in place."""

    def __init__(self, scenarios: Scenarios, scoring: Scoring) -> None:
        self.scenarios = scenarios
        self.scoring = scoring

    async def fresh(self, scenario: ScenarioView, attempt: Attempt) -> str:
        return (await self.scenarios.environment_devbox(scenario, name=f"validate-{attempt}")).id

    async def score(self, scenario: ScenarioView, devbox_id: str) -> ScoringContractResultView:
        return await self.scoring.score_devbox(None, scenario, devbox_id)

    async def discard(self, devbox_id: str) -> None:
        await self.scenarios.devboxes.shutdown(devbox_id)
