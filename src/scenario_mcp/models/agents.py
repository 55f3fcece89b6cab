"""Agents (Runloop's `agents` API): a program installed once from npm, pip, git or an uploaded
archive, then mounted read-only into any number of devboxes (models/mounts.py's `agent_mount`).

The wire shapes are Runloop's; `status`, `failure_message` and `build_finish_time_ms` are this
engine's extensions, as a blueprint has them: an agent's install is a build.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from .base import _Model
from .devboxes import BlueprintBuildLog, BlueprintStatus

AgentSourceType = Literal["npm", "pip", "git", "object"]


class NpmSource(_Model):
    package_name: str = Field(min_length=1, description="The npm package, e.g. `@anthropic-ai/claude-code`.")
    registry_url: str | None = Field(default=None, description="An npm registry to install from (npm's own if none).")
    agent_setup: list[str] | None = Field(default=None, description="Commands run after the install, in its dir.")


class PipSource(_Model):
    package_name: str = Field(min_length=1, description="The Python package, e.g. `mini-swe-agent`.")
    registry_url: str | None = Field(default=None, description="A package index URL (PyPI if none).")
    agent_setup: list[str] | None = Field(default=None, description="Commands run after the install, in its dir.")


class GitSource(_Model):
    repository: str = Field(min_length=1, description="The repository's URL (https or git).")
    ref: str | None = Field(default=None, description="A branch, tag or commit (the default branch if none).")
    agent_setup: list[str] | None = Field(default=None, description="Commands run after the clone, in its dir.")


class ObjectSource(_Model):
    object_id: str = Field(min_length=1, description="An uploaded object holding a tar or tgz of the agent.")
    agent_setup: list[str] | None = Field(default=None, description="Commands run after unpacking, in its dir.")


class AgentSource(_Model):
    type: AgentSourceType
    npm: NpmSource | None = None
    pip: PipSource | None = None
    git: GitSource | None = None
    object: ObjectSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AgentSource:
        given = [name for name in ("npm", "pip", "git", "object") if getattr(self, name) is not None]
        if given != [self.type]:
            raise ValueError(
                f"source of type {self.type!r} takes its settings in `{self.type}` (and no other): got "
                f"{', '.join(given) or 'none'}"
            )
        return self

    @property
    def agent_setup(self) -> list[str]:
        settings = getattr(self, self.type)
        return list(settings.agent_setup or []) if settings is not None else []


class AgentCreateParameters(_Model):
    name: str = Field(min_length=1, max_length=128)
    version: str | None = Field(
        default=None, description="For npm and pip the package version (latest if none); for git a ref."
    )
    source: AgentSource | None = Field(default=None, description="Where the agent comes from.")


class AgentView(BaseModel):
    id: str
    name: str
    version: str | None = None
    create_time_ms: int
    is_public: bool = False
    source: AgentSource | None = None
    status: BlueprintStatus = Field(
        default="build_complete",
        description="scenario-mcp extension: the install's state (queued, building, build_complete, failed).",
    )
    build_finish_time_ms: int | None = Field(default=None, description="scenario-mcp extension.")
    failure_message: str | None = Field(
        default=None, description="scenario-mcp extension: why the install failed (its logs say more)."
    )


class AgentListView(BaseModel):
    agents: list[AgentView]
    has_more: bool
    total_count: int | None = None


class AgentBuildLogsListView(BaseModel):
    """scenario-mcp extension: an agent install's log, entry per step (as a blueprint's)."""

    agent_id: str
    logs: list[BlueprintBuildLog]
