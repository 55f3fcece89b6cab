"""A pydantic ValidationError as a caller reads it: each problem names its field and what it takes."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scenario_mcp.input_errors import validation_message


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Scorer(_Closed):
    type: str
    command: str | None = None


class Other(_Closed):
    pattern: str


class Part(_Closed):
    name: str
    weight: float = Field(gt=0)
    scorer: Scorer | None = None
    either: Scorer | Other | None = None


class Request(_Closed):
    title: str
    parts: list[Part] = []
    labels: dict[str, str] = {}


def message(data: object) -> str:
    with pytest.raises(ValidationError) as caught:
        Request.model_validate(data)
    return validation_message(caught.value, Request)


def test_each_problem_names_its_field_and_what_it_takes() -> None:
    text = message({"parts": [{"name": "a", "weight": 0}]})
    assert text == "title: required field missing; parts.0.weight: Input should be greater than 0"


def test_an_unknown_field_lists_the_fields_there_are_at_its_depth() -> None:
    assert message({"title": "t", "titel": 1}) == "titel: unknown field (expected one of: title, parts, labels)"
    nested = message({"title": "t", "parts": [{"name": "a", "weight": 1, "scorer": {"type": "x", "cmd": "y"}}]})
    assert nested == "parts.0.scorer.cmd: unknown field (expected one of: type, command)"


def test_a_union_member_named_by_the_path_gives_its_own_fields() -> None:
    text = message({"title": "t", "parts": [{"name": "a", "weight": 1, "either": {"pattern": "p", "extra": 1}}]})
    assert "parts.0.either.Other.extra: unknown field (expected one of: pattern)" in text


def test_without_the_model_an_unknown_field_is_still_named() -> None:
    with pytest.raises(ValidationError) as caught:
        Request.model_validate({"title": "t", "nope": 1})
    assert validation_message(caught.value) == "nope: unknown field"


def test_a_field_name_that_would_not_read_as_one_is_quoted() -> None:
    assert message({"title": "t", "": 1, "a.b": 2}).startswith("'': unknown field (expected one of: title, ")
    assert message({"title": "t", "a.b": 2}).startswith("'a.b': unknown field")
