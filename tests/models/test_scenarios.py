"""Scenario models refuse paths that would climb out of the devbox's working directory."""

from __future__ import annotations

import pytest
from pydantic import ValidationError


def test_scorer_test_files_cannot_point_outside_the_working_directory() -> None:
    from scenario_mcp.models import TestFile

    for bad in ("../../etc/cron.d/x", "/etc/passwd", "a/../../b"):
        with pytest.raises(ValidationError, match="inside the working directory"):
            TestFile(file_path=bad, file_contents="x")
    assert TestFile(file_path="tests/./test_a.py", file_contents="").file_path == "tests/test_a.py"


def test_working_directory_cannot_climb_out() -> None:
    from scenario_mcp.models import ScenarioEnvironment

    for bad in ("/home/user/../../root", "relative/dir", "/../x"):
        with pytest.raises(ValidationError, match="working_directory"):
            ScenarioEnvironment(working_directory=bad)
