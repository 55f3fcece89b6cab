"""Scorers as programs, and their output as scores. Pure functions: no sandbox here."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ..models import (
    AstGrepScorer,
    BashScriptScorer,
    CommandScorer,
    CustomScorer,
    PythonScriptScorer,
    ScoringContract,
    ScoringFunctionResultView,
    TestBasedScorer,
)

# Where a scorer's own files are placed in its scoring sandbox: outside the working directory,
# in a layer above the agent's, so nothing of the agent's can stand in for them.
SCORER_DIR = "/opt/scenario-scorer"

SUPPORTED_SCORERS = (
    "bash_script_scorer",
    "command_scorer",
    "python_script_scorer",
    "test_based_scorer",
    "custom_scorer",
)

_SCORE_LINE = re.compile(r"^\s*(?:score\s*[=:]\s*)?([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$", re.IGNORECASE)
_PYTEST_COUNTS = re.compile(r"(\d+) (passed|failed|error|errors|xfailed|xpassed)\b")


class ScoreParseError(ValueError):
    pass


def parse_score(stdout: str) -> float:
    """The score a script printed: its last non-empty line, `0.7` or `score=0.7`, in [0, 1]."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise ScoreParseError("the scorer printed nothing; its last line must be a score such as 1.0 or score=0.5")
    last = lines[-1].strip()
    match = _SCORE_LINE.match(last)
    if not match:
        raise ScoreParseError(
            f"the scorer's last output line {last[:200]!r} is not a score; print a float in [0, 1] "
            "(e.g. `echo 1.0` or `echo score=0.5`) as the last line"
        )
    value = float(match.group(1))
    if not 0.0 <= value <= 1.0:
        raise ScoreParseError(f"the scorer printed {value}, outside [0, 1]")
    return value


def pytest_pass_rate(output: str) -> float | None:
    """Pass rate from pytest's final summary line (`3 passed, 1 failed in 0.1s`), if any."""
    summary = None
    for line in output.splitlines():
        if _PYTEST_COUNTS.search(line) and re.search(r"\bin [\d.]+s\b", line):
            summary = line
    if summary is None:
        return None
    counts: dict[str, int] = {}
    for number, word in _PYTEST_COUNTS.findall(summary):
        key = "error" if word.startswith("error") else word
        counts[key] = counts.get(key, 0) + int(number)
    passed = counts.get("passed", 0) + counts.get("xfailed", 0)
    total = passed + counts.get("failed", 0) + counts.get("error", 0) + counts.get("xpassed", 0)
    return passed / total if total else None


@dataclass(frozen=True)
class ScorerProgram:
    """What to place and what to run for one scorer."""

    command: str
    files: dict[str, str] = field(default_factory=dict)  # absolute path -> contents
    score_from: str = "stdout"  # "stdout" | "exit_code" | "tests"
    env: dict[str, str] = field(default_factory=dict)


def scorer_program(scorer: object, working_directory: str, custom_script: str | None = None) -> ScorerProgram:
    """What to place and run for a scorer; a custom scorer needs its registered bash script."""
    wd = working_directory.rstrip("/") or "/"
    if isinstance(scorer, BashScriptScorer):
        return ScorerProgram(f"bash {SCORER_DIR}/score.sh", {f"{SCORER_DIR}/score.sh": scorer.bash_script})
    if isinstance(scorer, CommandScorer):
        return ScorerProgram(scorer.command, score_from="exit_code")
    if isinstance(scorer, PythonScriptScorer):
        return ScorerProgram(f"python3 {SCORER_DIR}/score.py", {f"{SCORER_DIR}/score.py": scorer.python_script})
    if isinstance(scorer, TestBasedScorer):
        files = {f"{wd}/{f.file_path.lstrip('/')}": f.file_contents for f in scorer.test_files}
        return ScorerProgram(scorer.test_command, files, score_from="tests")
    if isinstance(scorer, CustomScorer):
        if custom_script is None:
            raise ValueError(f"no custom scorer of type {scorer.custom_scorer_type!r} is registered")
        return ScorerProgram(
            f"bash {SCORER_DIR}/custom.sh",
            {f"{SCORER_DIR}/custom.sh": custom_script},
            env={"RL_SCORER_CONTEXT": json.dumps(scorer.scorer_params or {})},
        )
    if isinstance(scorer, AstGrepScorer):
        raise ValueError(f"scorer type {scorer.type!r} is not supported by the local engine")
    raise TypeError(f"unknown scorer {scorer!r}")


def unsupported_scorers(contract: ScoringContract) -> list[str]:
    return [
        f"{f.name} ({f.scorer.type})"
        for f in contract.scoring_function_parameters
        if f.scorer.type not in SUPPORTED_SCORERS
    ]


def score_result(
    name: str, program: ScorerProgram, exit_status: int | None, stdout: str, stderr: str, timed_out: bool
) -> ScoringFunctionResultView:
    """Turn one scorer run into its result: a bad output is an `error`, never a crash."""
    output = stdout + (f"\n[stderr]\n{stderr}" if stderr.strip() else "")
    if timed_out:
        return ScoringFunctionResultView(
            scoring_function_name=name, score=0.0, output=output + "\n[scorer timed out]", state="error"
        )
    if program.score_from == "exit_code":
        score = 1.0 if exit_status == 0 else 0.0
    elif program.score_from == "tests":
        rate = pytest_pass_rate(stdout + "\n" + stderr)
        score = rate if rate is not None else (1.0 if exit_status == 0 else 0.0)
    else:
        try:
            score = parse_score(stdout)
        except ScoreParseError as exc:
            return ScoringFunctionResultView(
                scoring_function_name=name, score=0.0, output=f"{output}\n[error] {exc}", state="error"
            )
    return ScoringFunctionResultView(scoring_function_name=name, score=score, output=output, state="complete")


def weighted_total(contract: ScoringContract, results: list[ScoringFunctionResultView]) -> float:
    by_name = {r.scoring_function_name: r.score for r in results}
    total = sum(f.weight * by_name.get(f.name, 0.0) for f in contract.scoring_function_parameters)
    return min(1.0, max(0.0, round(total, 10)))
