"""Helpers the local tests share: devboxes, scenarios and runs on a real engine, /proc probes."""

from __future__ import annotations

import os
from pathlib import Path

import anyio

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import (
    DevboxCreateParameters,
    DevboxStatus,
    InputContext,
    ScenarioCreateParameters,
    ScenarioEnvironment,
    ScenarioRunState,
    ScenarioRunView,
    ScenarioView,
    ScoringContract,
    ScoringFunction,
    StartScenarioRunParameters,
    TestBasedScorer,
)
from scenario_mcp.models import TestFile as ScorerTestFile  # not Test*: pytest would collect it

BUGGY_CALC = "def add(a, b):\n    return a - b\n"


FIXED_CALC = "def add(a, b):\n    return a + b\n"


TEST_CALC = (
    "from calc import add\n\n\n"
    "def test_add():\n    assert add(2, 3) == 5\n\n\n"
    "def test_add_zero():\n    assert add(0, 4) == 4\n"
)


RUN = ScenarioRunState


def contract(*functions: tuple[str, float, object]) -> ScoringContract:
    return ScoringContract(
        scoring_function_parameters=[
            ScoringFunction(name=name, weight=weight, scorer=scorer)  # type: ignore[arg-type]
            for name, weight, scorer in functions
        ]
    )


def calc_tests_scorer() -> TestBasedScorer:
    return TestBasedScorer(
        test_command="pytest -q -p no:cacheprovider",
        test_files=[ScorerTestFile(file_path="test_calc.py", file_contents=TEST_CALC)],
    )


async def scenario_with(
    backend: LocalBackend,
    scoring: ScoringContract,
    *,
    name: str = "fix-add",
    environment: ScenarioEnvironment | None = None,
) -> ScenarioView:
    return await backend.create_scenario(
        ScenarioCreateParameters(
            name=name,
            input_context=InputContext(problem_statement="Make add() add."),
            scoring_contract=scoring,
            environment_parameters=environment,
        )
    )


async def buggy_snapshot(backend: LocalBackend) -> str:
    """A snapshot holding the buggy calc.py in /home/user: the scenario's starting point."""
    box = await backend.create_devbox(DevboxCreateParameters(name="seed"))
    await backend.write_file(box.id, "calc.py", BUGGY_CALC)
    snapshot = await backend.snapshot_disk(box.id, name="buggy")
    await backend.shutdown_devbox(box.id)
    return snapshot.id


async def calc_scenario(backend: LocalBackend) -> ScenarioView:
    snapshot_id = await buggy_snapshot(backend)
    return await scenario_with(
        backend,
        contract(("tests", 1, calc_tests_scorer())),
        environment=ScenarioEnvironment(snapshot_id=snapshot_id),
    )


async def start(backend: LocalBackend, scenario: ScenarioView, **kwargs: object) -> ScenarioRunView:
    return await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id, **kwargs))  # type: ignore[arg-type]


async def wait_scored(backend: LocalBackend, run_id: str, timeout: float = 60) -> ScenarioRunView:
    with anyio.fail_after(timeout):
        while True:
            run = await backend.get_run(run_id)
            if run.state != RUN.SCORING:
                return run
            await anyio.sleep(0.05)


async def score(backend: LocalBackend, run_id: str) -> ScenarioRunView:
    scoring = await backend.score_run(run_id)
    assert scoring.state == RUN.SCORING
    run = await wait_scored(backend, run_id)
    assert run.state == RUN.SCORED, run.failure_reason
    assert run.scoring_contract_result is not None
    return run


def results_by_name(run: ScenarioRunView) -> dict[str, tuple[str, float, str]]:
    assert run.scoring_contract_result is not None
    return {
        r.scoring_function_name: (r.state, r.score, r.output)
        for r in run.scoring_contract_result.scoring_function_results
    }


def processes_mentioning(text: str) -> list[int]:
    found = []
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) != os.getpid():
            try:
                cmdline = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(p))
    return found


def pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def pids_in_namespace(ns: str) -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and pid_namespace(int(p)) == ns]


def alive(pid: int) -> bool:
    """Running or sleeping: not gone and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


async def new_box(backend: LocalBackend, **params: object) -> str:
    box = await backend.create_devbox(DevboxCreateParameters.model_validate(params))
    assert box.status == DevboxStatus.RUNNING
    return box.id


async def run_ok(backend: LocalBackend, devbox_id: str, command: str, **kwargs: object) -> str:
    result = await backend.execute(devbox_id, command, **kwargs)  # type: ignore[arg-type]
    assert result.exit_status == 0, f"{command!r} exited {result.exit_status}: {result.stderr}"
    assert result.stdout is not None
    return result.stdout


def mounts_mentioning(text: str) -> list[str]:
    """Every process's mount table on the host that mentions `text`."""
    hits = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if text in Path(f"/proc/{p}/mounts").read_text():
                hits.append(p)
        except OSError:
            pass
    return hits
