"""The nested parts of the tools' inputs, in shapes every client accepts, and their way back to
Runloop's models.

Strict tool calling (OpenAI's) takes no open-ended object, so where Runloop's model has a free map
(`metadata`, `environment_variables`, `build_args`, `file_mounts`: text to text) a tool takes a
list of `{key, value}`; a custom scorer's `scorer_params` (any JSON) takes `{key, value}` with the
value as JSON text. Launch parameters are the ones this engine honours, closed. `runloop_shape`
turns a dumped input back into Runloop's shapes; the REST API never sees any of this.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ...models import MAX_KEEP_ALIVE_SECONDS


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyValue(Closed):
    key: str
    value: str


Pairs = list[KeyValue]

STRING_MAPS = frozenset({"metadata", "environment_variables", "build_args", "file_mounts"})
JSON_MAPS = frozenset({"scorer_params"})


def runloop_shape(data: Any) -> Any:
    """A dumped input in Runloop's shapes: each list of {key, value} under a map's name becomes
    the map (a JSON map's values parsed from their JSON text; text that is not JSON stays text),
    and a scorer keeps only its fields that were given."""
    if isinstance(data, list):
        return [runloop_shape(item) for item in data]
    if not isinstance(data, dict):
        return data
    shaped: dict[str, Any] = {}
    for key, value in data.items():
        if key == "scorer" and isinstance(value, dict):
            shaped[key] = runloop_shape({name: part for name, part in value.items() if part is not None})
        elif key in STRING_MAPS and isinstance(value, list):
            shaped[key] = {pair["key"]: pair["value"] for pair in value}
        elif key in JSON_MAPS and isinstance(value, list):
            shaped[key] = {pair["key"]: _json_value(pair["value"]) for pair in value}
        else:
            shaped[key] = runloop_shape(value)
    return shaped


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


class UserInput(Closed):
    username: str = Field(min_length=1)
    uid: int = Field(ge=0, le=65535)


# The launch parameters an agent sets; Runloop's others (resource limits, network policies) are
# the REST API's.
class LaunchInput(Closed):
    network: bool | None = None
    launch_commands: list[str] | None = None
    keep_alive_time_seconds: int | None = Field(default=None, gt=0, le=MAX_KEEP_ALIVE_SECONDS)
    user_parameters: UserInput | None = None


# Runloop's model checks working_directory once this is in its shape.
class EnvironmentInput(Closed):
    snapshot_id: str | None = None
    blueprint_id: str | None = None
    working_directory: str | None = None
    launch_parameters: LaunchInput | None = None


class InputContextInput(Closed):
    problem_statement: str = Field(min_length=1)
    additional_context: str | None = None


ScorerType = Literal[
    "bash_script_scorer",
    "python_script_scorer",
    "command_scorer",
    "test_based_scorer",
    "ast_grep_scorer",
    "custom_scorer",
]


class TestFileInput(Closed):
    file_path: str
    file_contents: str

    __test__ = False  # not a pytest class


# Runloop's scorer union as one object: `type` and that type's fields, the others null. Flat, its
# schema costs a third of the union's; runloop_shape keeps the given fields, and Runloop's model
# then checks they make one of its scorers. (No docstring: it would be published as a description.)
class ScorerInput(Closed):
    type: ScorerType
    bash_script: str | None = None
    python_script: str | None = None
    command: str | None = Field(default=None, description="Exit 0 scores 1.0.")
    test_command: str | None = Field(default=None, description="Scores pytest's pass rate.")
    test_files: list[TestFileInput] | None = None
    pattern: str | None = Field(default=None, description="ast-grep: a match scores 1.0.")
    search_directory: str | None = None
    lang: str | None = None
    custom_scorer_type: str | None = None
    scorer_params: Pairs | None = Field(default=None, description="Values are JSON text.")


class ScoringFunctionInput(Closed):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]+$")
    weight: float = Field(gt=0)
    scorer: ScorerInput


class ScoringContractInput(Closed):
    scoring_function_parameters: list[ScoringFunctionInput] = Field(min_length=1)


# Runloop's mount union as one object, as ScorerInput is: `type` and that type's fields.
class MountInput(Closed):
    type: Literal["agent_mount", "object_mount", "file_mount", "code_mount"]
    agent_name: str | None = None
    agent_id: str | None = None
    agent_path: str | None = None
    object_id: str | None = None
    object_path: str | None = None
    target: str | None = Field(default=None, description="file_mount: its path.")
    content: str | None = None
    repo_name: str | None = Field(default=None, description="code_mount: a name (with repo_owner) or a git URL.")
    repo_owner: str | None = None
    git_ref: str | None = None
    install_command: str | None = None
