"""Benchmarks, their runs, and custom scorers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .base import Metadata, _Model, now_ms, omitted_when_unset

# ---------------------------------------------------------------------------------------------
# Benchmarks and custom scorers


class BenchmarkCreateParameters(_Model):
    name: str = Field(min_length=1)
    scenario_ids: list[str] | None = None
    metadata: Metadata | None = None
    description: str | None = None
    required_environment_variables: list[str] | None = None
    required_secret_names: list[str] | None = None


class BenchmarkUpdateParameters(_Model):
    """Runloop's update of a whole benchmark: what is given replaces what the benchmark has."""

    name: str | None = None
    scenario_ids: list[str] | None = None
    metadata: Metadata | None = None
    description: str | None = None
    required_environment_variables: list[str] | None = None
    required_secret_names: list[str] | None = None


class BenchmarkView(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: str
    name: str
    scenario_ids: list[str] = Field(default_factory=list, alias="scenarioIds")
    metadata: Metadata = Field(default_factory=dict)
    description: str | None = omitted_when_unset()
    status: Literal["active", "archived"] = "active"
    is_public: bool = False


class BenchmarkListView(BaseModel):
    benchmarks: list[BenchmarkView]
    has_more: bool
    total_count: int | None = None


class StartBenchmarkRunParameters(_Model):
    benchmark_id: str
    run_name: str | None = None
    metadata: Metadata | None = None
    start_scenario_runs: bool | None = Field(
        default=None,
        description="scenario-mcp extension: false starts the benchmark run alone, and the scenario runs "
        "started with its benchmark_run_id join it (as a runner starts them, a few at a time); default true: "
        "one scenario run per scenario at once.",
    )


class BenchmarkRunView(BaseModel):
    id: str
    benchmark_id: str
    name: str | None = None
    state: Literal["running", "canceled", "completed", "failed"]
    score: float | None = None
    start_time_ms: int = Field(default_factory=now_ms)
    duration_ms: int | None = None
    metadata: Metadata = Field(default_factory=dict)
    purpose: str | None = None


class BenchmarkRunListView(BaseModel):
    runs: list[BenchmarkRunView]
    has_more: bool
    total_count: int | None = None


class CreateCustomScorerParameters(_Model):
    type: str = Field(pattern=r"^[a-zA-Z0-9_-]+$", description="The name scenarios use as `custom_scorer_type`.")
    bash_script: str


class ScenarioScorerView(BaseModel):
    id: str
    type: str
    bash_script: str


class ScenarioScorersListView(BaseModel):
    scorers: list[ScenarioScorerView]
    has_more: bool
    total_count: int | None = None
