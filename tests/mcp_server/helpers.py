"""Shared pieces of the MCP tests: calling tools, and a seeded scenario with recognisable secrets."""

from __future__ import annotations

from typing import Any

from mcp import Client

from scenario_mcp.backend import Backend
from scenario_mcp.models import (
    BashScriptScorer,
    DevboxCreateParameters,
    InputContext,
    ScenarioCreateParameters,
    ScenarioEnvironment,
    ScenarioView,
    ScoringContract,
    ScoringFunction,
    TestBasedScorer,
)
from scenario_mcp.models import TestFile as ScorerTestFile

BUGGY = "def add(a, b):\n    return a - b\n"
FIX = "sed -i 's/a - b/a + b/' calc.py"

# Text that only the author may ever see: each one is planted in a different secret place.
SECRET_REFERENCE = "REFERENCE-7f3a"
SECRET_SCRIPT = "SCORER-BODY-91c2"
SECRET_TEST_FILE = "TEST-FILE-44d0"
SECRET_TEST_CMD = "TEST-CMD-0b5e"
SECRET_SCORER_OUTPUT = "SCORER-OUTPUT-e18f"
SECRETS = (SECRET_REFERENCE, SECRET_SCRIPT, SECRET_TEST_FILE, SECRET_TEST_CMD, SECRET_SCORER_OUTPUT)

HIDDEN_TEST = f"""\
# {SECRET_TEST_FILE}
from calc import add


def test_add():
    assert add(2, 3) == 5
"""


class Progress:
    """A progress callback (for mcp.Client or a tool function) that keeps every report."""

    def __init__(self) -> None:
        self.events: list[tuple[float, float | None, str | None]] = []

    async def __call__(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        self.events.append((progress, total, message))

    def assert_increasing(self) -> None:
        values = [p for p, _, _ in self.events]
        assert values == sorted(values) and len(set(values)) == len(values), self.events


async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


async def error_text(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    return " ".join(getattr(block, "text", "") for block in result.content)


def text_of(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.contents)


async def seed_snapshot(backend: Backend) -> str:
    """A snapshot whose /home/user holds a buggy calc.py."""
    box = await backend.create_devbox(DevboxCreateParameters(name="seed"))
    await backend.write_file(box.id, "calc.py", BUGGY)
    snapshot = await backend.snapshot_disk(box.id, name="buggy-calc")
    await backend.shutdown_devbox(box.id)
    return snapshot.id


async def seed_scenario(backend: Backend, snapshot_id: str, *, metadata: dict[str, str] | None = None) -> ScenarioView:
    """A scenario whose reference, scorer script, test file, test command and scorer output each carry a secret."""
    return await backend.create_scenario(
        ScenarioCreateParameters(
            name="fix-calc",
            input_context=InputContext(problem_statement="calc.add subtracts; make it add."),
            environment_parameters=ScenarioEnvironment(snapshot_id=snapshot_id),
            scoring_contract=ScoringContract(
                scoring_function_parameters=[
                    ScoringFunction(
                        name="script",
                        weight=1,
                        scorer=BashScriptScorer(
                            bash_script=(
                                f"# {SECRET_SCRIPT}\necho {SECRET_SCORER_OUTPUT}\n"
                                "grep -q 'a + b' calc.py && echo 1.0 || echo 0.0"
                            )
                        ),
                    ),
                    ScoringFunction(
                        name="tests",
                        weight=3,
                        scorer=TestBasedScorer(
                            test_command=f"true {SECRET_TEST_CMD}; pytest -q -p no:cacheprovider test_hidden.py",
                            test_files=[ScorerTestFile(file_path="test_hidden.py", file_contents=HIDDEN_TEST)],
                        ),
                    ),
                ]
            ),
            reference_output=f"{FIX}  # {SECRET_REFERENCE}",
            metadata=metadata,
        )
    )
