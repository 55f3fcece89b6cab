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
    ListScenariosInput,
    ScenarioIdInput,
    UpdateScenarioInput,
)


async def create_scenario(backend: Backend, params: ScenarioCreateParameters) -> ScenarioView:
    return await backend.create_scenario(params)


async def update_scenario(backend: Backend, params: UpdateScenarioInput) -> ScenarioView:
    fields = {name: getattr(params, name) for name in params.model_fields_set if name != "scenario_id"}
    return await backend.update_scenario(params.scenario_id, ScenarioUpdateParameters(**fields))


async def get_scenario(backend: Backend, params: ScenarioIdInput) -> ScenarioView:
    return await backend.get_scenario(params.scenario_id)


async def list_scenarios(backend: Backend, params: ListScenariosInput) -> ScenarioListView:
    return await backend.list_scenarios(
        limit=params.limit,
        starting_after=params.starting_after,
        name=params.name,
        benchmark_id=params.benchmark_id,
        validation_type=params.validation_type.value if params.validation_type else None,
    )


async def archive_scenario(backend: Backend, params: ScenarioIdInput) -> ScenarioView:
    return await backend.archive_scenario(params.scenario_id)


async def unarchive_scenario(backend: Backend, params: ScenarioIdInput) -> ScenarioView:
    return await backend.unarchive_scenario(params.scenario_id)


async def validate_scenario(backend: Backend, params: ScenarioIdInput) -> ScenarioValidationView:
    return await backend.validate_scenario(params.scenario_id)
