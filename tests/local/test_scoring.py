"""Scoring as pure functions: score parsing, pytest summaries, results, weights, contracts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.scoring import (
    SCORER_DIR,
    ScoreParseError,
    ScorerProgram,
    parse_score,
    pytest_pass_rate,
    score_result,
    scorer_program,
    unsupported_scorers,
    weighted_total,
)
from scenario_mcp.models import (
    AstGrepScorer,
    BashScriptScorer,
    CommandScorer,
    CustomScorer,
    PythonScriptScorer,
    ScenarioEnvironment,
    ScoringContract,
    ScoringFunction,
    ScoringFunctionResultView,
    TestBasedScorer,
    normalise_weights,
)
from scenario_mcp.models import TestFile as ScorerTestFile  # not named Test*: pytest would collect it

from .helpers import (
    FIXED_CALC,
    buggy_snapshot,
    calc_scenario,
    contract,
    results_by_name,
    scenario_with,
    score,
    start,
)

pytestmark = pytest.mark.anyio

# --- parse_score ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ("0.7", 0.7),
        ("0.7\n", 0.7),
        ("score=0.7", 0.7),
        ("SCORE = 0.25", 0.25),
        ("score: 1", 1.0),
        ("  1.0  ", 1.0),
        ("0", 0.0),
        ("1", 1.0),
        (".5", 0.5),
        ("1e-1", 0.1),
        ("running tests\nall good\n0.9\n\n   \n", 0.9),
        ("0.1\n0.2\nscore=0.3\n\n", 0.3),
    ],
)
def test_parse_score_accepts(stdout: str, expected: float) -> None:
    assert parse_score(stdout) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("stdout", "fragment"),
    [
        ("", "printed nothing"),
        ("\n \n\t\n", "printed nothing"),
        ("done", "is not a score"),
        ("0.5\nall done", "is not a score"),
        ("score=high", "is not a score"),
        ("0.5 points", "is not a score"),
        ("nan", "is not a score"),
        ("1.5", "outside [0, 1]"),
        ("-0.1", "outside [0, 1]"),
        ("score=2", "outside [0, 1]"),
    ],
)
def test_parse_score_rejects_with_message(stdout: str, fragment: str) -> None:
    with pytest.raises(ScoreParseError) as info:
        parse_score(stdout)
    assert fragment in str(info.value)


@given(st.floats(min_value=0.0, max_value=1.0, allow_nan=False), st.sampled_from(["", "score=", "score: "]))
def test_parse_score_roundtrips_any_valid_score(value: float, prefix: str) -> None:
    assert parse_score(f"noise line\n{prefix}{value!r}\n\n") == value


@given(st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: not 0.0 <= v <= 1.0))
def test_parse_score_refuses_any_out_of_range_value(value: float) -> None:
    with pytest.raises(ScoreParseError, match=r"outside \[0, 1\]"):
        parse_score(repr(value))


@given(st.text())
def test_parse_score_result_is_in_range_or_error(text: str) -> None:
    try:
        value = parse_score(text)
    except ScoreParseError as exc:
        assert str(exc)
    else:
        assert 0.0 <= value <= 1.0


# --- pytest_pass_rate -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("============ 3 passed, 1 failed in 0.12s ============", 0.75),
        ("3 passed in 0.01s", 1.0),
        ("1 failed in 0.05s", 0.0),
        ("=== 1 failed, 1 passed, 2 errors in 1.20s ===", 0.25),
        ("=== 2 passed, 1 error in 0.30s ===", 2 / 3),
        ("== 1 passed, 1 xfailed, 1 xpassed in 0.02s ==", 2 / 3),
        ("== 4 passed, 2 skipped, 1 warning in 0.40s ==", 1.0),
        # -q output: dots, failure report, then the summary; only the last summary counts.
        (
            "..F\n=== FAILURES ===\n___ test_x ___\nE   assert 1 == 2\n"
            "=== short test summary info ===\nFAILED test_a.py::test_x - assert 1 == 2\n"
            "1 failed, 2 passed in 0.03s\n",
            2 / 3,
        ),
        ("1 failed in 0.01s\nrerun:\n5 passed in 0.02s", 1.0),
    ],
)
def test_pytest_pass_rate_from_summary(output: str, expected: float) -> None:
    rate = pytest_pass_rate(output)
    assert rate is not None
    assert rate == pytest.approx(expected)


@pytest.mark.parametrize(
    "output",
    [
        "",
        "bash: pytest: command not found",
        "3 passed",  # no duration: not a summary line
        "collected 0 items\n\n=== no tests ran in 0.01s ===",
        "=== 2 skipped in 0.01s ===",
        "ERROR: file or directory not found: tests/",
    ],
)
def test_pytest_pass_rate_none_without_countable_summary(output: str) -> None:
    assert pytest_pass_rate(output) is None


# --- scorer programs and results --------------------------------------------------------------


def test_scorer_programs() -> None:
    bash = scorer_program(BashScriptScorer(bash_script="echo 1"), "/home/user")
    assert bash.files == {f"{SCORER_DIR}/score.sh": "echo 1"}
    assert bash.score_from == "stdout" and SCORER_DIR in bash.command

    py = scorer_program(PythonScriptScorer(python_script="print(1)"), "/home/user")
    assert py.files == {f"{SCORER_DIR}/score.py": "print(1)"} and py.command.startswith("python3 ")

    cmd = scorer_program(CommandScorer(command="test -f x"), "/home/user")
    assert cmd == ScorerProgram("test -f x", {}, "exit_code")

    tests = scorer_program(
        TestBasedScorer(
            test_command="pytest -q",
            test_files=[
                ScorerTestFile(file_path="tests/test_a.py", file_contents="A"),
                ScorerTestFile(file_path="./test_b.py", file_contents="B"),
            ],
        ),
        "/work/proj/",
    )
    assert tests.files == {"/work/proj/tests/test_a.py": "A", "/work/proj/test_b.py": "B"}
    assert tests.score_from == "tests"

    grep = scorer_program(AstGrepScorer(pattern="return \\$A + \\$B", search_directory="src dir", lang="python"), "/w")
    assert grep.command == f"{SCORER_DIR}/bin/ast-grep run --pattern \"return \\$A + \\$B\" --lang python 'src dir'"
    assert (grep.score_from, grep.tools, grep.files) == ("matches", ("ast-grep",), {})
    custom = CustomScorer(custom_scorer_type="mine", scorer_params={"k": 1})
    with pytest.raises(ValueError, match="no custom scorer of type 'mine' is registered"):
        scorer_program(custom, "/home/user")
    program = scorer_program(custom, "/home/user", custom_script="echo 1.0")
    assert program.files == {"/opt/scenario-scorer/custom.sh": "echo 1.0"}
    assert program.env == {"RL_SCORER_CONTEXT": '{"k": 1}'} and program.score_from == "stdout"


def test_unsupported_scorers_names_function_and_type() -> None:
    contract = ScoringContract(
        scoring_function_parameters=[
            ScoringFunction(name="ok", weight=1, scorer=CommandScorer(command="true")),
            ScoringFunction(name="grep", weight=1, scorer=AstGrepScorer(pattern="x", search_directory=".")),
            ScoringFunction(name="cust", weight=1, scorer=CustomScorer(custom_scorer_type="t")),
        ]
    )
    assert unsupported_scorers(contract) == []  # every type runs (custom ones once registered)


COMMAND = ScorerProgram("true", score_from="exit_code")
TESTS = ScorerProgram("pytest -q", score_from="tests")
SCRIPT = ScorerProgram("bash /opt/scenario-scorer/score.sh", score_from="stdout")


@pytest.mark.parametrize(("exit_status", "score"), [(0, 1.0), (1, 0.0), (2, 0.0), (None, 0.0)])
def test_score_result_command_uses_exit_code(exit_status: int | None, score: float) -> None:
    result = score_result("cmd", COMMAND, exit_status, "whatever 0.3", "", False)
    assert result.state == "complete"
    assert result.score == score
    assert result.scoring_function_name == "cmd"


def test_score_result_tests_uses_pass_rate_then_exit_code() -> None:
    result = score_result("t", TESTS, 1, "..F.\n1 failed, 3 passed in 0.10s\n", "", False)
    assert (result.state, result.score) == ("complete", 0.75)
    # The summary may come on stderr.
    result = score_result("t", TESTS, 1, "", "2 passed, 2 failed in 0.1s", False)
    assert result.score == 0.5
    assert "[stderr]" in result.output
    # No summary: fall back to the exit code.
    assert score_result("t", TESTS, 0, "ok\n", "", False).score == 1.0
    assert score_result("t", TESTS, 5, "", "no tests", False).score == 0.0


def test_score_result_script_parses_stdout() -> None:
    result = score_result("s", SCRIPT, 0, "checking\nscore=0.4\n", "", False)
    assert (result.state, result.score) == ("complete", 0.4)
    assert result.output == "checking\nscore=0.4\n"
    # Exit status does not matter when a score was printed.
    assert score_result("s", SCRIPT, 3, "0.6", "", False).score == 0.6


@pytest.mark.parametrize("stdout", ["", "not a number", "7"])
def test_score_result_bad_output_is_error_with_zero(stdout: str) -> None:
    result = score_result("s", SCRIPT, 0, stdout, "warn", False)
    assert result.state == "error"
    assert result.score == 0.0
    assert "[error]" in result.output
    assert "warn" in result.output


@pytest.mark.parametrize("program", [COMMAND, TESTS, SCRIPT])
def test_score_result_timed_out_is_error(program: ScorerProgram) -> None:
    result = score_result("x", program, 0, "1.0\n5 passed in 0.1s", "", True)
    assert result.state == "error"
    assert result.score == 0.0
    assert "timed out" in result.output


# --- weights ----------------------------------------------------------------------------------


def contract_of(weights: list[float]) -> ScoringContract:
    return ScoringContract(
        scoring_function_parameters=[
            ScoringFunction(name=f"f{i}", weight=w, scorer=CommandScorer(command="true")) for i, w in enumerate(weights)
        ]
    )


def results_of(scores: list[float]) -> list[ScoringFunctionResultView]:
    return [
        ScoringFunctionResultView(scoring_function_name=f"f{i}", score=s, output="", state="complete")
        for i, s in enumerate(scores)
    ]


def test_normalise_weights_example() -> None:
    contract = normalise_weights(contract_of([1, 3]))
    assert [f.weight for f in contract.scoring_function_parameters] == [0.25, 0.75]
    assert [f.name for f in contract.scoring_function_parameters] == ["f0", "f1"]
    assert weighted_total(contract, results_of([1.0, 0.0])) == pytest.approx(0.25)
    assert weighted_total(contract, results_of([0.0, 1.0])) == pytest.approx(0.75)
    assert weighted_total(contract, results_of([0.5, 1.0])) == pytest.approx(0.875)


def test_weighted_total_missing_result_counts_as_zero() -> None:
    contract = normalise_weights(contract_of([1, 1]))
    assert weighted_total(contract, results_of([1.0])) == pytest.approx(0.5)
    assert weighted_total(contract, []) == 0.0


weights_st = st.lists(st.floats(min_value=1e-3, max_value=1e6, allow_nan=False), min_size=1, max_size=8)


@given(weights_st)
def test_normalise_weights_sum_to_one(weights: list[float]) -> None:
    normalised = normalise_weights(contract_of(weights))
    new = [f.weight for f in normalised.scoring_function_parameters]
    assert math.isclose(sum(new), 1.0, rel_tol=1e-9)
    assert all(w > 0 for w in new)
    # Proportions are kept.
    for old_w, new_w in zip(weights, new, strict=True):
        assert math.isclose(new_w / new[0], old_w / weights[0], rel_tol=1e-9)


@given(st.data())
def test_weighted_total_in_unit_interval(data: st.DataObject) -> None:
    weights = data.draw(weights_st)
    scores = data.draw(st.lists(st.floats(0.0, 1.0), min_size=len(weights), max_size=len(weights)))
    contract = normalise_weights(contract_of(weights))
    total = weighted_total(contract, results_of(scores))
    assert 0.0 <= total <= 1.0
    assert min(scores) - 1e-9 <= total <= max(scores) + 1e-9


# --- contract validation ----------------------------------------------------------------------


def test_contract_rejects_duplicate_names() -> None:
    fn = ScoringFunction(name="same", weight=1, scorer=CommandScorer(command="true"))
    other = ScoringFunction(name="other", weight=1, scorer=CommandScorer(command="true"))
    with pytest.raises(ValidationError, match="must be unique; repeated: same"):
        ScoringContract(scoring_function_parameters=[fn, other, fn])


def test_contract_rejects_empty() -> None:
    with pytest.raises(ValidationError):
        ScoringContract(scoring_function_parameters=[])


@pytest.mark.parametrize("weight", [0, -1, -0.5])
def test_function_rejects_non_positive_weight(weight: float) -> None:
    with pytest.raises(ValidationError, match="greater than 0"):
        ScoringFunction(name="f", weight=weight, scorer=CommandScorer(command="true"))


@pytest.mark.parametrize("name", ["", "has space", "dot.name", "slash/name", "ünï"])
def test_function_rejects_bad_names(name: str) -> None:
    with pytest.raises(ValidationError, match="pattern"):
        ScoringFunction(name=name, weight=1, scorer=CommandScorer(command="true"))


def test_function_accepts_good_names_and_rejects_unknown_scorer() -> None:
    for name in ("tests", "Lint_2", "a-b"):
        ScoringFunction(name=name, weight=0.1, scorer=CommandScorer(command="true"))
    with pytest.raises(ValidationError):
        ScoringFunction.model_validate({"name": "f", "weight": 1, "scorer": {"type": "magic_scorer"}})
    with pytest.raises(ValidationError):  # unknown fields are errors, not silently dropped
        ScoringFunction.model_validate(
            {"name": "f", "weight": 1, "scorer": {"type": "command_scorer", "command": "x", "comand": "y"}}
        )


async def test_scorer_test_file_wins_over_agent_file_and_fake_pytest(backend: LocalBackend) -> None:
    scenario = await calc_scenario(backend)
    run = await start(backend, scenario)
    box = run.devbox_id
    # The agent writes a trivially passing test at the scorer's path ...
    await backend.write_file(box, "test_calc.py", "def test_add():\n    assert True\n")
    # ... and fake pytests where the scorer's PATH would find them first.
    fake = "#!/bin/sh\necho '99 passed in 0.01s'\nexit 0\n"
    for path in ("/usr/local/bin/pytest", "/opt/python/bin/pytest"):
        result = await backend.execute(box, f"cat > {path} <<'EOF'\n{fake}EOF\nchmod +x {path}")
        assert result.exit_status == 0, result.stderr
    # In the agent's devbox the fakes work (so the test means something).
    assert (await backend.execute(box, "pytest -q")).stdout == "99 passed in 0.01s\n"
    assert (await backend.execute(box, "pytest -q test_calc.py")).stdout == "99 passed in 0.01s\n"

    scored = await score(backend, run.id)
    state, value, output = results_by_name(scored)["tests"]
    assert (state, value) == ("complete", 0.0), output
    assert "99 passed" not in output
    assert "2 failed" in output
    # The agent's own file is untouched in its devbox.
    assert await backend.read_file(box, "test_calc.py") == "def test_add():\n    assert True\n"


def test_score_result_matches_is_ast_greps_exit_status() -> None:
    grep = ScorerProgram("ast-grep ...", score_from="matches")
    assert score_result("g", grep, 0, "calc.py:2: return a + b", "", False).score == 1.0
    assert score_result("g", grep, 1, "", "", False).state == "complete"  # no match: a score of 0.0
    missing = score_result("g", grep, 1, "", "ERROR: src: No such file or directory", False)
    assert (missing.state, missing.score) == ("error", 0.0) and "No such file" in missing.output
    assert score_result("g", grep, 2, "", "invalid value for '--lang'", False).state == "error"


async def test_ast_grep_scorer_matches_after_the_fix_and_not_before(backend: LocalBackend) -> None:
    grep = AstGrepScorer(pattern="return \\$A + \\$B", search_directory=".", lang="python")
    scenario = await scenario_with(
        backend,
        contract(("adds", 1, grep)),
        environment=ScenarioEnvironment(snapshot_id=await buggy_snapshot(backend)),
    )
    before = await start(backend, scenario)
    assert results_by_name(await score(backend, before.id))["adds"][:2] == ("complete", 0.0)
    after = await start(backend, scenario)
    await backend.write_file(after.devbox_id, "calc.py", FIXED_CALC)
    state, value, output = results_by_name(await score(backend, after.id))["adds"]
    assert (state, value) == ("complete", 1.0), output
    assert "return a + b" in output
    # The scorer's ast-grep was its own: the solver's devbox has none.
    absent = await backend.execute(after.devbox_id, "command -v ast-grep || ls /opt/scenario-scorer")
    assert absent.exit_status != 0 and absent.stdout == "", absent.stdout
    for run in (before, after):
        await backend.cancel_run(run.id)


async def test_bad_scorer_output_is_error_while_others_score(backend: LocalBackend) -> None:
    scenario = await scenario_with(
        backend,
        contract(
            ("garbage", 1, BashScriptScorer(bash_script="echo 'looks good to me'")),
            ("too-big", 1, BashScriptScorer(bash_script="echo 7")),
            ("exists", 2, CommandScorer(command="test -f answer.txt")),
        ),
    )
    run = await start(backend, scenario)
    await backend.write_file(run.devbox_id, "answer.txt", "42\n")
    scored = await score(backend, run.id)
    results = results_by_name(scored)
    assert results["garbage"][:2] == ("error", 0.0)
    assert "is not a score" in results["garbage"][2]
    assert results["too-big"][:2] == ("error", 0.0)
    assert "outside [0, 1]" in results["too-big"][2]
    assert results["exists"][:2] == ("complete", 1.0)
    assert scored.scoring_contract_result is not None
    assert scored.scoring_contract_result.score == pytest.approx(0.5)


async def test_weighted_scorers_combine_normalised(backend: LocalBackend) -> None:
    scenario = await scenario_with(
        backend,
        contract(
            ("light", 1, BashScriptScorer(bash_script="echo checking >&2\necho score=0.2")),
            (
                "heavy",
                3,
                PythonScriptScorer(python_script="print(open('/home/user/answer.txt').read().strip())"),
            ),
        ),
    )
    assert [f.weight for f in scenario.scoring_contract.scoring_function_parameters] == [0.25, 0.75]
    run = await start(backend, scenario)
    await backend.write_file(run.devbox_id, "answer.txt", "0.6\n")
    scored = await score(backend, run.id)
    results = results_by_name(scored)
    assert results["light"][:2] == ("complete", 0.2)
    assert "checking" in results["light"][2]
    assert results["heavy"][:2] == ("complete", 0.6)
    assert scored.scoring_contract_result is not None
    assert scored.scoring_contract_result.score == pytest.approx(0.25 * 0.2 + 0.75 * 0.6)


async def test_scoring_stops_agent_processes(backend: LocalBackend) -> None:
    scenario = await scenario_with(backend, contract(("ok", 1, CommandScorer(command="true"))))
    run = await start(backend, scenario)
    pid = (await backend.execute(run.devbox_id, "sleep 300 >/dev/null 2>&1 & echo $!")).stdout
    assert pid
    await score(backend, run.id)
    alive = await backend.execute(run.devbox_id, f"test -e /proc/{pid.strip()}")
    assert alive.exit_status != 0, "the agent's background process survived scoring"
