"""Authoring scenarios: create, update, read, list, archive and validate."""

from __future__ import annotations

from ...backend import Backend
from ...models import (
    ScenarioCreateParameters,
    ScenarioListView,
    ScenarioUpdateParameters,
    ScenarioValidationView,
    ScenarioView,
)
from .inputs import (
    CreateScenarioInput,
    ListScenariosInput,
    ScenarioIdInput,
    UpdateScenarioInput,
    ValidateScenarioInput,
)
from .shapes import runloop_shape


async def create_scenario(backend: Backend, params: CreateScenarioInput) -> ScenarioView:
    given = runloop_shape(params.model_dump(exclude_none=True))
    return await backend.create_scenario(ScenarioCreateParameters.model_validate(given))


async def update_scenario(backend: Backend, params: UpdateScenarioInput) -> ScenarioView:
    """Only the fields given are sent (null keeps a field, as omitting it does)."""
    given = params.model_dump(include=params.model_fields_set - {"scenario_id"})
    fields = ScenarioUpdateParameters.model_validate(runloop_shape(given))
    return await backend.update_scenario(params.scenario_id, fields)


async def get_scenario(backend: Backend, params: ScenarioIdInput) -> ScenarioView:
    return await backend.get_scenario(params.scenario_id)


async def list_scenarios(backend: Backend, params: ListScenariosInput) -> ScenarioListView:
    return await backend.list_scenarios(
        limit=params.limit,
        starting_after=params.starting_after,
        name=params.name,
        benchmark_id=params.benchmark_id,
    )


async def archive_scenario(backend: Backend, params: ScenarioIdInput) -> ScenarioView:
    return await backend.archive_scenario(params.scenario_id)


async def unarchive_scenario(backend: Backend, params: ScenarioIdInput) -> ScenarioView:
    return await backend.unarchive_scenario(params.scenario_id)


async def validate_scenario(backend: Backend, params: ValidateScenarioInput) -> ScenarioValidationView:
    return await backend.validate_scenario(params.scenario_id)
