"""Scoring a devbox: each scorer runs in a fresh sandbox that sees the environment's layers and
the agent's changes to the working directory only, its own files placed above them; its output
becomes a score, and the scores a weighted total. A bad output is an `error` result, never a crash.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sysconfig
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..backend import InvalidRequestError
from ..models import (
    HARBOR_VERIFIER,
    AstGrepScorer,
    BashScriptScorer,
    CommandScorer,
    CustomScorer,
    HarborVerifierParams,
    PythonScriptScorer,
    ScenarioView,
    ScoringContract,
    ScoringContractResultView,
    ScoringFunction,
    ScoringFunctionResultView,
    TestBasedScorer,
    now_ms,
)
from .commands import shell_argv
from .custom_scorers import CustomScorers
from .devboxes import Devboxes
from .environments import Environment
from .launch import limit_request
from .launcher import end_stray_init
from .limits import LimitRequest, remove_stale_groups
from .sandbox import sandbox_env
from .scorer_sandbox import cgroup_prefix, run_scorer_sandboxed
from .store import Store
from .verifier import RewardError, read_reward, verifier_files

# Where a scorer's own files are placed in its scoring sandbox: outside the working directory,
# in a layer above the agent's, so nothing of the agent's can stand in for them.
SCORER_DIR = "/opt/scenario-scorer"

SUPPORTED_SCORERS = (
    "bash_script_scorer",
    "command_scorer",
    "python_script_scorer",
    "test_based_scorer",
    "ast_grep_scorer",
    "custom_scorer",
)
# Host programs a scorer may need, placed in its layer for its run only (never in a devbox):
# ast-grep, from the ast-grep-cli package installed beside this one.
SCORER_TOOLS = {"ast-grep": "ast-grep-cli"}

# A scoring sandbox's network: none (the default), or the scored devbox's (whole_filesystem scoring).
Egress = tuple[bool, tuple[str, ...] | None]

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
    files: dict[str, str | bytes] = field(default_factory=dict)  # absolute path -> contents
    score_from: str = "stdout"  # "stdout" | "exit_code" | "tests" | "matches" | "reward" (verifier.py)
    env: dict[str, str] = field(default_factory=dict)
    tools: tuple[str, ...] = ()  # SCORER_TOOLS placed in {SCORER_DIR}/bin


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
        files: dict[str, str | bytes] = {f"{wd}/{f.file_path.lstrip('/')}": f.file_contents for f in scorer.test_files}
        return ScorerProgram(scorer.test_command, files, score_from="tests")
    if isinstance(scorer, CustomScorer) and scorer.custom_scorer_type == HARBOR_VERIFIER:
        params = HarborVerifierParams.model_validate(scorer.scorer_params or {})
        return ScorerProgram(
            f"bash {SCORER_DIR}/verify.sh", verifier_files(params, SCORER_DIR), score_from="reward", env=params.env
        )
    if isinstance(scorer, CustomScorer):
        if custom_script is None:
            raise ValueError(f"no custom scorer of type {scorer.custom_scorer_type!r} is registered")
        return ScorerProgram(
            f"bash {SCORER_DIR}/custom.sh",
            {f"{SCORER_DIR}/custom.sh": custom_script},
            env={"RL_SCORER_CONTEXT": json.dumps(scorer.scorer_params or {})},
        )
    if isinstance(scorer, AstGrepScorer):
        # The pattern in double quotes on a command line, as Runloop documents it (`\$` for `$`).
        lang = f" --lang {shlex.quote(scorer.lang)}" if scorer.lang else ""
        command = (
            f'{SCORER_DIR}/bin/ast-grep run --pattern "{scorer.pattern}"{lang} {shlex.quote(scorer.search_directory)}'
        )
        return ScorerProgram(command, score_from="matches", tools=("ast-grep",))
    raise TypeError(f"unknown scorer {scorer!r}")


def unsupported_scorers(contract: ScoringContract) -> list[str]:
    return [
        f"{f.name} ({f.scorer.type})"
        for f in contract.scoring_function_parameters
        if f.scorer.type not in SUPPORTED_SCORERS
    ]


def score_result(
    name: str,
    program: ScorerProgram,
    exit_status: int | None,
    stdout: str,
    stderr: str,
    timed_out: bool,
    upper_root: Path | None = None,
) -> ScoringFunctionResultView:
    """Turn one scorer run into its result: a bad output is an `error`, never a crash.
    `upper_root`: what the scoring sandbox wrote (where a verifier's reward is read)."""
    output = stdout + (f"\n[stderr]\n{stderr}" if stderr.strip() else "")
    if timed_out:
        return ScoringFunctionResultView(
            scoring_function_name=name, score=0.0, output=output + "\n[scorer timed out]", state="error"
        )
    if program.score_from == "reward":
        try:
            if upper_root is None:
                raise RewardError("no scoring sandbox to read the reward from")
            score, source = read_reward(upper_root)
        except RewardError as exc:
            return ScoringFunctionResultView(
                scoring_function_name=name, score=0.0, output=f"{output}\n[error] {exc}", state="error"
            )
        return ScoringFunctionResultView(
            scoring_function_name=name, score=score, output=f"{output}\n[reward] {source}", state="complete"
        )
    if program.score_from == "matches" and not (exit_status == 0 or (exit_status == 1 and not stderr.strip())):
        return ScoringFunctionResultView(
            scoring_function_name=name, score=0.0, output=f"{output}\n[error] exited {exit_status}", state="error"
        )
    if program.score_from in ("exit_code", "matches"):  # ast-grep: 0 when it matched, 1 when not
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


class Scoring:
    """Runs a scenario's scorers against a devbox, out of the agent's reach."""

    def clean_leftovers(self) -> None:
        """Scorer sandboxes of a server that died mid-scoring have no record: end them by their
        launcher sockets and remove their directories (the runs themselves are scored again)."""
        if not self.work_dir.exists():
            return
        for state_dir in self.work_dir.glob("*/*/box"):
            end_stray_init(state_dir)
        for leftover in self.work_dir.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)
        remove_stale_groups(self.cgroup_prefix)

    def __init__(self, store: Store, devboxes: Devboxes, custom_scorers: CustomScorers, work_dir: Path) -> None:
        self.store = store
        self.devboxes = devboxes
        self.custom_scorers = custom_scorers
        self.work_dir = work_dir  # one directory per scoring, removed when it is done
        # Its scorers' cgroups are named so; a restarted engine removes its own leftovers by it.
        self.cgroup_prefix = cgroup_prefix(work_dir)

    async def score_devbox(
        self, run_id: str | None, scenario: ScenarioView, devbox_id: str
    ) -> ScoringContractResultView:
        """Score a devbox's working directory with the scenario's scorers; each scorer's output goes
        to the run's logs when there is a run."""
        sandbox = await self.devboxes.sandbox(devbox_id)
        # Nothing of the agent's keeps running (or editing files) while scorers look.
        await self.devboxes.kill_all_but_init(devbox_id, sandbox)
        environment = await self.devboxes.environment(devbox_id)
        # Scorers never get the agent's secrets, but may print what the agent wrote with one.
        redactor = await self.devboxes.redactor(devbox_id)
        # Scorers run the agent's code: they get the devbox's own limits.
        limits = limit_request((await self.devboxes.get(devbox_id)).launch_parameters)
        work = self.work_dir / uuid.uuid4().hex
        try:
            agent_layer = work / "agent"
            upper = self.devboxes.boxes_dir / devbox_id / "upper"
            network: Egress = (False, None)
            if scenario.scoring_scope == "whole_filesystem":
                # Every change the agent made, but nothing where the scorer's own files go; and the
                # devbox's own network, as Harbor's verifier runs in the agent's sandbox.
                await self.devboxes.layers.changes_layer(upper, agent_layer, hidden=(SCORER_DIR,))
                network = await self.devboxes.egress(devbox_id)
            else:
                await self.devboxes.layers.subtree_layer(upper, scenario.working_directory, agent_layer)
            results = []
            for function in scenario.scoring_contract.scoring_function_parameters:
                result = await self._run_scorer(
                    scenario, function, environment, limits, agent_layer, work / function.name, network
                )
                if redactor:
                    result = result.model_copy(update={"output": redactor.text(result.output)})
                results.append(result)
                if run_id is None:
                    continue
                await self.store.add_log(
                    run_id,
                    now_ms(),
                    f"scorer:{function.name}",
                    f"state={result.state} score={result.score}\n{result.output}",
                )
        finally:
            # Off the scoring's critical path (tens of ms for a pytest run's caches).
            self.devboxes.trash.put(work)
        return ScoringContractResultView(
            score=weighted_total(scenario.scoring_contract, results), scoring_function_results=results
        )

    async def _program(self, scenario: ScenarioView, function: ScoringFunction) -> ScorerProgram:
        custom_script = None
        if isinstance(function.scorer, CustomScorer):
            registered = await self.custom_scorers.by_type(function.scorer.custom_scorer_type)
            custom_script = registered.bash_script if registered else None
        return scorer_program(function.scorer, scenario.working_directory, custom_script)

    async def _run_scorer(
        self,
        scenario: ScenarioView,
        function: ScoringFunction,
        environment: Environment,
        limits: LimitRequest,
        agent_layer: Path,
        work: Path,
        network: Egress = (False, None),
    ) -> ScoringFunctionResultView:
        try:
            program = await self._program(scenario, function)
        except ValueError as exc:
            return ScoringFunctionResultView(
                scoring_function_name=function.name, score=0.0, output=f"[error] {exc}", state="error"
            )
        scorer_layer = work / "scorer-layer"
        try:
            _place_scorer_files(scorer_layer, program, self.work_dir.parent / "scorer-tools")
        except FileNotFoundError as exc:
            return ScoringFunctionResultView(
                scoring_function_name=function.name, score=0.0, output=f"[error] {exc}", state="error"
            )
        spec = environment.spec(
            self.devboxes.layers,
            work / "box",
            network=network[0],
            hostname="scorer",
            extra_layers=(scorer_layer, agent_layer),
            egress_allow=network[1],
        )
        outcome = await run_scorer_sandboxed(
            spec,
            cgroup_name=self.cgroup_prefix + uuid.uuid4().hex[:16],
            limits=limits,
            argv=lambda root: shell_argv(scenario.working_directory, program.command, environment.shell(root)),
            env=sandbox_env(environment.process_env(program.env)),
            timeout=scenario.scorer_timeout_sec,
            tg=self.devboxes.tg,
        )
        if outcome.limit_hit is not None:
            output = outcome.stdout + (f"\n[stderr]\n{outcome.stderr}" if outcome.stderr.strip() else "")
            return ScoringFunctionResultView(
                scoring_function_name=function.name,
                score=0.0,
                output=f"{output}\n[error] {outcome.limit_hit}",
                state="error",
            )
        return score_result(
            function.name,
            program,
            outcome.exit_status,
            outcome.stdout,
            outcome.stderr,
            outcome.timed_out,
            spec.upper("root"),
        )


def _place_scorer_files(scorer_layer: Path, program: ScorerProgram, tools_cache: Path) -> None:
    """The scorer's own files, in the layer above the agent's: they win over the agent's."""
    for part in ("usr", "etc"):
        (scorer_layer / part).mkdir(parents=True, exist_ok=True)
    for tool in program.tools:
        target = scorer_layer / SCORER_DIR.lstrip("/") / "bin" / tool
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(_cached_tool(tool, tools_cache), target)
    for path, contents in program.files.items():
        target = (scorer_layer / path.lstrip("/")).resolve()
        if not target.is_relative_to(scorer_layer.resolve()):
            raise InvalidRequestError(f"scorer file {path!r} escapes the scorer's directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(contents, bytes):
            target.write_bytes(contents)
        else:
            target.write_text(contents)


def _cached_tool(name: str, cache: Path) -> Path:
    """A host program's copy beside the data dir's scoring sandboxes (a hard link when it can be):
    each scorer layer links it, on the same file system, in no time."""
    cached = cache / name
    if cached.exists():
        return cached
    source = Path(sysconfig.get_path("scripts")) / name
    if not source.exists():
        found = shutil.which(name)
        if found is None:
            raise FileNotFoundError(
                f"{name} is not installed on the server's machine (pip install {SCORER_TOOLS[name]})"
            )
        source = Path(found)
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f".{name}.{uuid.uuid4().hex}"
    try:
        os.link(source, partial)
    except OSError:
        shutil.copy2(source, partial)
    partial.rename(cached)
    return cached
