"""What a devbox has mounted when it starts (Runloop's `mounts`, on devbox create and in a run's
runProfile): an installed agent, an uploaded object, a file, or a git repository's code."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import _Model


class AgentMount(_Model):
    type: Literal["agent_mount"] = "agent_mount"
    agent_id: str | None = Field(default=None, description="The agent (agt_...); or give agent_name.")
    agent_name: str | None = Field(default=None, description="The newest agent of this name; or give agent_id.")
    agent_path: str | None = Field(
        default=None,
        description="Where the agent appears, read-only, its bin dir on PATH (default /opt/agents/{name}).",
    )
    auth_token: str | None = Field(default=None, description="Runloop's, for private git agents; not used here.")

    @model_validator(mode="after")
    def _one_agent(self) -> AgentMount:
        if (self.agent_id is None) == (self.agent_name is None):
            raise ValueError("an agent_mount names its agent by agent_id or by agent_name (one of the two)")
        return self


class ObjectMount(_Model):
    type: Literal["object_mount"] = "object_mount"
    object_id: str = Field(min_length=1)
    object_path: str = Field(
        min_length=1, description="An absolute path: an archive (tar, tgz) is unpacked there, read-only; else a file."
    )


class FileMount(_Model):
    type: Literal["file_mount"] = "file_mount"
    target: str = Field(min_length=1, description="The file's path (relative: under /home/user).")
    content: str


class CodeMount(_Model):
    type: Literal["code_mount"] = "code_mount"
    repo_name: str = Field(
        min_length=1, description="The repository's name (cloned into /home/user/{repo_name}), or its full git URL."
    )
    repo_owner: str | None = Field(default=None, description="Its GitHub owner, when repo_name is not a URL.")
    git_ref: str | None = Field(default=None, description="A branch, tag or commit (the default branch if none).")
    install_command: str | None = Field(default=None, description="Run in the clone once it is there.")
    token: str | None = Field(default=None, description="A token for a private https repository.")


Mount = Annotated[AgentMount | ObjectMount | FileMount | CodeMount, Field(discriminator="type")]
