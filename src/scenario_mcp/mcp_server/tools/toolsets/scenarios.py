"""The scenarios toolset. Authoring scenarios: create, change, archive and validate them."""

from __future__ import annotations

from ....models import ScenarioListView, ScenarioValidationView, ScenarioView
from ..inputs import (
    CreateScenarioInput,
    ListScenariosInput,
    ScenarioIdInput,
    UpdateScenarioInput,
    ValidateScenarioInput,
)
from ..scenarios import (
    archive_scenario,
    create_scenario,
    get_scenario,
    list_scenarios,
    unarchive_scenario,
    update_scenario,
    validate_scenario,
)
from ..spec import READ, ToolSpec, hints

SCENARIO_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "create_scenario",
        "Create scenario",
        "Create a scenario: a task, an environment (a snapshot or blueprint), weighted scorers (scripts print a "
        "score in [0, 1] last) and a hidden reference_output.",
        CreateScenarioInput,
        ScenarioView,
        create_scenario,
        hints(),
        "scenarios",
        authoring=True,
        lists_change=True,
    ),
    ToolSpec(
        "update_scenario",
        "Update scenario",
        'Change the given fields of a scenario (as in create_scenario); "" or [] clears one.',
        UpdateScenarioInput,
        ScenarioView,
        update_scenario,
        hints(idempotent=True),
        "scenarios",
        authoring=True,
    ),
    ToolSpec(
        "get_scenario",
        "Get scenario",
        "A scenario: its problem statement, environment and scorers.",
        ScenarioIdInput,
        ScenarioView,
        get_scenario,
        READ,
        "scenarios",
    ),
    ToolSpec(
        "list_scenarios",
        "List scenarios",
        "List scenarios, newest first.",
        ListScenariosInput,
        ScenarioListView,
        list_scenarios,
        READ,
        "scenarios",
    ),
    ToolSpec(
        "archive_scenario",
        "Archive scenario",
        "Archive a scenario: no new run starts until unarchive_scenario.",
        ScenarioIdInput,
        ScenarioView,
        archive_scenario,
        hints(destructive=True, idempotent=True),
        "scenarios",
        authoring=True,
    ),
    ToolSpec(
        "unarchive_scenario",
        "Unarchive scenario",
        "Make an archived scenario active again.",
        ScenarioIdInput,
        ScenarioView,
        unarchive_scenario,
        hints(idempotent=True),
        "scenarios",
        authoring=True,
    ),
    ToolSpec(
        "validate_scenario",
        "Validate scenario",
        "Check the scorers: the reference_output must score 1.0, the untouched environment less.",
        ValidateScenarioInput,
        ScenarioValidationView,
        validate_scenario,
        hints(read_only=True, idempotent=True),
        "scenarios",
        authoring=True,
        bounded=True,
        pending=lambda p: {"scenario_id": p.scenario_id},
    ),
)
