"""Scorers and scoring contracts: what turns a devbox's final state into a score."""

from __future__ import annotations

import posixpath
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from .base import _Model

# ---------------------------------------------------------------------------------------------
# Scorers: a discriminated union on `type`.


class BashScriptScorer(_Model):
    type: Literal["bash_script_scorer"] = "bash_script_scorer"
    bash_script: str = Field(description="Bash script that prints the score (a float in [0, 1]) last.")


class CommandScorer(_Model):
    type: Literal["command_scorer"] = "command_scorer"
    command: str = Field(description="Command whose exit status is the score: 0 gives 1.0, anything else 0.0.")


class PythonScriptScorer(_Model):
    type: Literal["python_script_scorer"] = "python_script_scorer"
    python_script: str = Field(description="Python script that prints the score (a float in [0, 1]) last.")
    requirements_contents: str | None = None
    python_version_constraint: str | None = None


def _relative_inside(path: str) -> str:
    """A path relative to a directory that stays inside it (no `..`, not absolute)."""
    normal = posixpath.normpath(path)
    if not path or path.startswith("/") or normal == ".." or normal.startswith("../") or "\x00" in path:
        raise ValueError(f"{path!r} must be a relative path inside the working directory (no `..`, not absolute)")
    return normal


class TestFile(_Model):
    file_path: str = Field(description="Path relative to the working directory.")
    file_contents: str

    __test__ = False  # not a pytest class

    @field_validator("file_path")
    @classmethod
    def _inside(cls, value: str) -> str:
        return _relative_inside(value)


class TestBasedScorer(_Model):
    type: Literal["test_based_scorer"] = "test_based_scorer"
    test_command: str = Field(description="Command that runs the tests, e.g. `pytest -q`.")
    test_files: list[TestFile] = Field(default_factory=list)

    __test__ = False  # not a pytest class


class AstGrepScorer(_Model):
    type: Literal["ast_grep_scorer"] = "ast_grep_scorer"
    pattern: str
    search_directory: str
    lang: str | None = None


class CustomScorer(_Model):
    type: Literal["custom_scorer"] = "custom_scorer"
    custom_scorer_type: str
    scorer_params: dict[str, Any] | None = None


# The engine's own custom scorer type: Harbor's verifier contract (an imported task's tests).
HARBOR_VERIFIER = "harbor_verifier"


class VerifierFile(_Model):
    """One file of a Harbor task's tests/, placed under /tests for its scoring only."""

    path: str = Field(description="Path relative to /tests.")
    contents: str
    encoding: Literal["utf-8", "base64"] = "utf-8"

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        return _relative_inside(value)


class HarborVerifierParams(_Model):
    """`scorer_params` of a `harbor_verifier` custom scorer: the files of tests/ (with test.sh) and
    [verifier].env. The score is the reward test.sh leaves in /logs/verifier (reward.json's mean,
    else reward.txt's float)."""

    tests: list[VerifierFile] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("tests")
    @classmethod
    def _has_test_sh(cls, files: list[VerifierFile]) -> list[VerifierFile]:
        if not any(f.path == "test.sh" for f in files):
            raise ValueError("a harbor_verifier's tests need a test.sh at their top (tests/test.sh)")
        return files


Scorer = Annotated[
    BashScriptScorer | CommandScorer | PythonScriptScorer | TestBasedScorer | AstGrepScorer | CustomScorer,
    Field(discriminator="type"),
]


class ScoringFunction(_Model):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]+$", description="Name; letters, digits, `_` and `-` only.")
    weight: float = Field(gt=0, description="Positive weight; weights are normalised to sum to 1.0.")
    scorer: Scorer


class ScoringContract(_Model):
    scoring_function_parameters: list[ScoringFunction] = Field(min_length=1)

    @field_validator("scoring_function_parameters")
    @classmethod
    def _unique_names(cls, functions: list[ScoringFunction]) -> list[ScoringFunction]:
        names = [f.name for f in functions]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"scoring function names must be unique; repeated: {', '.join(duplicates)}")
        return functions


def normalise_weights(contract: ScoringContract) -> ScoringContract:
    """Scale positive weights to sum to 1.0, as Runloop's scenario builders do."""
    total = sum(f.weight for f in contract.scoring_function_parameters)
    return ScoringContract(
        scoring_function_parameters=[
            f.model_copy(update={"weight": f.weight / total}) for f in contract.scoring_function_parameters
        ]
    )
