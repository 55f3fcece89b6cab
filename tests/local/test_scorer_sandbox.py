"""Scorers inside the devbox's limits (issue 15): the abuses a devbox meets (tests/local/test_limits.py)
planted in the agent's code that the scorer imports, each contained and reported, the server
answering fast throughout, and no scorer cgroup left behind."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import anyio
import pytest

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.limits import group_parents
from scenario_mcp.models import (
    InputContext,
    LaunchParameters,
    PythonScriptScorer,
    ScenarioCreateParameters,
    ScenarioEnvironment,
    ScenarioView,
    StartScenarioRunParameters,
)

from .helpers import contract, wait_scored

pytestmark = pytest.mark.anyio

# The scorer imports the agent's module, as pytest imports a conftest.py or the code under test.
IMPORTING_SCORER = "import sys\nsys.path.insert(0, '.')\nimport solution\nprint(1.0)\n"

# What the agent plants in solution.py, and what the scored run's logs must say about it.
PLANTED = {
    "fork bomb": ("import os\nos.system('bomb() { bomb | bomb & }; bomb; sleep 5')\n", "process limit"),
    "memory hog": ("x = bytearray(3 << 30)\n", "memory limit"),
    # Files each under the size cap, over the disk cap together (sparse: the machine's disk is
    # not what is tested).
    "disk filler": (
        "for i in range(3):\n    with open(f'big{i}', 'wb') as f:\n        f.seek(600 << 20)\n        f.write(b'x')\n",
        "disk cap",
    ),
    "endless output": ("import sys\nwhile True:\n    sys.stdout.write('0123456789' * 1000)\n", "timed out"),
    "endless loop": ("while True:\n    pass\n", "timed out"),
}


# The endless ones end at the scorer's timeout; the others must be stopped by their limit well
# before it (touching 1 GiB takes seconds on a loaded machine).
TIMEOUTS = {"endless output": 4, "endless loop": 4}


async def _abuse_scenario(backend: LocalBackend, timeout: int) -> ScenarioView:
    return await backend.create_scenario(
        ScenarioCreateParameters(
            name="planted",
            input_context=InputContext(problem_statement="p"),
            scoring_contract=contract(("imports", 1, PythonScriptScorer(python_script=IMPORTING_SCORER))),
            environment_parameters=ScenarioEnvironment(
                launch_parameters=LaunchParameters(custom_gb_memory=1, custom_disk_size=1)
            ),
            scorer_timeout_sec=timeout,
        )
    )


def _scorer_cgroups() -> list[Path]:
    return [group for parent in group_parents() for group in parent.glob("scorer-*")]


@pytest.mark.parametrize("abuse", sorted(PLANTED))
async def test_abuse_planted_in_the_agents_code_is_contained_at_scoring(backend: LocalBackend, abuse: str) -> None:
    code, reason = PLANTED[abuse]
    scenario = await _abuse_scenario(backend, TIMEOUTS.get(abuse, 30))
    run = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    quiet = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    await backend.write_file(run.devbox_id, "solution.py", code)
    prefix = backend.parts.scoring.cgroup_prefix
    mine_before = [g for g in _scorer_cgroups() if g.name.startswith(prefix)]
    assert mine_before == []

    latencies: list[float] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(backend.score_run, run.id)
        await anyio.sleep(0.2)
        while (await backend.get_run(run.id)).state == "scoring":
            started = time.perf_counter()
            await backend.get_run(quiet.id)
            latencies.append(time.perf_counter() - started)
            await anyio.sleep(0.05)
    scored = await wait_scored(backend, run.id)
    result = scored.scoring_contract_result
    assert result is not None
    assert result.score == 0.0
    (function,) = result.scoring_function_results
    assert function.state == "error", function.output[-500:]
    assert reason in function.output, function.output[-500:]
    logs = "\n".join(entry.message for entry in await backend.run_logs(run.id))
    assert reason in logs
    if latencies:
        assert statistics.median(latencies) < 0.05, latencies
        assert sorted(latencies)[-2 if len(latencies) > 1 else -1] < 0.05, latencies
    assert [g for g in _scorer_cgroups() if g.name.startswith(prefix)] == []


async def test_a_scorer_leaves_no_cgroup_and_gets_the_devbox_limits(backend: LocalBackend) -> None:
    probe = "import os\ngroups = open('/proc/self/cgroup').read()\nprint(groups, flush=True)\nprint(1.0)\n"
    scenario = await backend.create_scenario(
        ScenarioCreateParameters(
            name="probe",
            input_context=InputContext(problem_statement="p"),
            scoring_contract=contract(("probe", 1, PythonScriptScorer(python_script=probe))),
            environment_parameters=ScenarioEnvironment(launch_parameters=LaunchParameters(custom_gb_memory=1)),
        )
    )
    run = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    await backend.score_run(run.id)
    scored = await wait_scored(backend, run.id)
    assert scored.scoring_contract_result is not None
    (function,) = scored.scoring_contract_result.scoring_function_results
    assert function.score == 1.0, function.output
    prefix = backend.parts.scoring.cgroup_prefix
    # The scorer ran in cgroups of its own, named for this data dir: not a spare, not the server's.
    for controller in ("pids", "memory", "cpu", "freezer"):
        line = next(
            line for line in function.output.splitlines() if f":{controller}:" in line or f",{controller}" in line
        )
        assert f"/scenario-mcp/{prefix}" in line, line
    assert [g for g in _scorer_cgroups() if g.name.startswith(prefix)] == []
