"""Scenarios, their runs and results, and reference validation's views."""

from __future__ import annotations

import posixpath
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .base import DEFAULT_SCORER_TIMEOUT_SEC, DEFAULT_WORKING_DIRECTORY, Metadata, _Model, now_ms, omitted_when_unset
from .devboxes import LaunchParameters
from .mounts import Mount
from .scoring import ScoringContract

# ---------------------------------------------------------------------------------------------
# Scenarios


class InputContext(_Model):
    problem_statement: str = Field(min_length=1)
    additional_context: Any | None = None


class ScenarioEnvironment(_Model):
    blueprint_id: str | None = None
    blueprint_name: str | None = None
    snapshot_id: str | None = None
    working_directory: str | None = None
    launch_parameters: LaunchParameters | None = None

    @field_validator("working_directory")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return value
        if not value.startswith("/") or "\x00" in value or ".." in value.split("/"):
            raise ValueError(
                f"working_directory must be an absolute path without `..` (e.g. /home/user/project), got {value!r}"
            )
        return posixpath.normpath(value)


class ValidationType(StrEnum):
    UNSPECIFIED = "UNSPECIFIED"
    FORWARD = "FORWARD"
    REVERSE = "REVERSE"
    EVALUATION = "EVALUATION"


# What a scenario's scorers see of the agent's devbox (scenario-mcp extension):
# `working_directory`: the environment plus the agent's changes in the working directory only
# (the default: nothing the agent put elsewhere, such as a fake `pytest`, is there);
# `whole_filesystem`: every change the agent made anywhere (Harbor's shared verifier: a task that
# asks to configure /etc is scored on it), the agent's processes stopped first.
ScoringScope = Literal["working_directory", "whole_filesystem"]
SCORING_SCOPE_DESCRIPTION = (
    "scenario-mcp extension: what the scorers see of the agent's devbox: `working_directory` (default: the "
    "environment plus the agent's changes in the working directory) or `whole_filesystem` (every change the "
    "agent made, as Harbor's verifier sees it; for imported tasks)."
)


class ScenarioCreateParameters(_Model):
    name: str = Field(min_length=1)
    input_context: InputContext
    scoring_contract: ScoringContract
    environment_parameters: ScenarioEnvironment | None = None
    reference_output: str | None = None
    metadata: Metadata | None = None
    required_environment_variables: list[str] | None = None
    required_secret_names: list[str] | None = None
    validation_type: ValidationType | None = None
    scorer_timeout_sec: int | None = Field(default=None, gt=0)
    scoring_scope: ScoringScope | None = Field(default=None, description=SCORING_SCOPE_DESCRIPTION)


class ScenarioView(BaseModel):
    id: str
    name: str
    input_context: InputContext
    scoring_contract: ScoringContract
    environment: ScenarioEnvironment | None = None
    reference_output: str | None = None
    metadata: Metadata = Field(default_factory=dict)
    required_environment_variables: list[str] | None = omitted_when_unset()
    required_secret_names: list[str] | None = omitted_when_unset()
    validation_type: ValidationType | None = None
    scorer_timeout_sec: int = DEFAULT_SCORER_TIMEOUT_SEC
    scoring_scope: ScoringScope = Field(default="working_directory", description=SCORING_SCOPE_DESCRIPTION)
    status: Literal["active", "archived"] = "active"
    is_public: bool = False
    create_time_ms: int = Field(
        default_factory=now_ms, description="scenario-mcp extension: when the scenario was created."
    )

    @property
    def working_directory(self) -> str:
        env = self.environment
        return (env.working_directory if env and env.working_directory else None) or DEFAULT_WORKING_DIRECTORY


class ScenarioListView(BaseModel):
    scenarios: list[ScenarioView]
    has_more: bool
    total_count: int | None = None


# ---------------------------------------------------------------------------------------------
# Scenario runs


class ScenarioRunState(StrEnum):
    RUNNING = "running"
    SCORING = "scoring"
    SCORED = "scored"
    COMPLETED = "completed"
    CANCELED = "canceled"
    TIMEOUT = "timeout"
    FAILED = "failed"


TERMINAL_RUN_STATES = frozenset(
    {ScenarioRunState.COMPLETED, ScenarioRunState.CANCELED, ScenarioRunState.TIMEOUT, ScenarioRunState.FAILED}
)


class ScoringFunctionResultView(BaseModel):
    scoring_function_name: str
    score: float
    output: str
    state: Literal["unknown", "complete", "error"]


class ScoringContractResultView(BaseModel):
    score: float
    scoring_function_results: list[ScoringFunctionResultView]


class RunProfile(_Model):
    """Runtime configuration of a run; camelCase on the wire, as Runloop has it."""

    purpose: str | None = None
    envVars: dict[str, str] | None = None
    secrets: dict[str, str] | None = None
    launchParameters: LaunchParameters | None = None
    mounts: list[Mount] | None = None


class StartScenarioRunParameters(_Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    scenario_id: str
    run_name: str | None = None
    benchmark_run_id: str | None = None
    metadata: Metadata | None = None
    run_profile: RunProfile | None = Field(default=None, alias="runProfile")


class ScenarioRunView(BaseModel):
    id: str
    name: str | None = None
    scenario_id: str
    devbox_id: str
    benchmark_run_id: str | None = None
    state: ScenarioRunState
    metadata: Metadata = Field(default_factory=dict)
    scoring_contract_result: ScoringContractResultView | None = None
    start_time_ms: int = Field(default_factory=now_ms)
    duration_ms: int | None = None
    purpose: str | None = None
    failure_reason: str | None = Field(
        default=None, description="scenario-mcp extension: why the run failed, when it did."
    )


class ScenarioRunListView(BaseModel):
    runs: list[ScenarioRunView]
    has_more: bool
    total_count: int | None = None


class RunLogEntry(BaseModel):
    """One timestamped entry in a run's logs: an execution or a scorer's output."""

    timestamp_ms: int
    source: str
    message: str


class ScenarioUpdateParameters(_Model):
    """Patch-like: omitted or null keeps a field; `""`/`[]`/`{}` clears it (Runloop's convention)."""

    name: str | None = None
    input_context: InputContext | None = None
    scoring_contract: ScoringContract | None = None
    environment_parameters: ScenarioEnvironment | None = None
    reference_output: str | None = None
    metadata: Metadata | None = None
    required_environment_variables: list[str] | None = None
    required_secret_names: list[str] | None = None
    validation_type: ValidationType | None = None
    scorer_timeout_sec: int | None = Field(default=None, gt=0)
    scoring_scope: ScoringScope | None = Field(default=None, description=SCORING_SCOPE_DESCRIPTION)


class ValidationAttempt(BaseModel):
    """One side of a reference validation: the score a fresh devbox got, and each scorer's result."""

    devbox_id: str
    applied: str = Field(description="What was applied before scoring: `reference_output` or `nothing`.")
    apply_output: str | None = None
    result: ScoringContractResultView | None = None
    error: str | None = None


class ScenarioValidationView(BaseModel):
    """scenario-mcp extension: does the reference output prove the scorers right?"""

    scenario_id: str
    valid: bool
    verdict: str
    gold: ValidationAttempt = Field(description="The reference output applied to a fresh devbox: must score 1.0.")
    untouched: ValidationAttempt = Field(description="The untouched environment: must score below 1.0.")
    validation_type: ValidationType | None = None
    forward: bool | None = Field(default=None, description="FORWARD check: the reference output scores 1.0.")
    reverse: bool | None = Field(default=None, description="REVERSE check: the untouched environment scores below 1.0.")
