"""Importing Harbor and Terminal-Bench task directories as scenarios, on the real engine, and
scoring them as Harbor's verifier would: the agent's whole filesystem, fresh tests, no forged reward."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import ScenarioRunView, StartScenarioRunParameters
from scenario_mcp.tasks import import_tasks

from .conftest import task_copy

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.anyio


async def run_and_score(backend: LocalBackend, scenario_id: str, command: str | None) -> ScenarioRunView:
    run = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario_id))
    if command is not None:
        scenario = await backend.get_scenario(scenario_id)
        done = await backend.execute(run.devbox_id, command, working_directory=scenario.working_directory)
        assert done.exit_status == 0, done
    await backend.score_run(run.id)
    scored = await backend.get_run(run.id)
    for _ in range(600):
        if scored.state != "scoring":
            break
        await anyio.sleep(0.05)
        scored = await backend.get_run(run.id)
    return scored


def score_of(run: ScenarioRunView) -> float:
    assert run.scoring_contract_result is not None, run
    return run.scoring_contract_result.score


async def test_a_system_change_scores_after_the_oracle_and_not_after_nothing_or_a_forged_reward(
    backend: LocalBackend, image: str, tmp_path: Path
) -> None:
    task = task_copy(HERE / "harbor" / "etc-config", tmp_path / "etc-config", image)
    [result] = await import_tasks(backend, [task])
    assert result.action == "created" and result.name == "etc-config"
    scenario = await backend.get_scenario(result.scenario_id)
    assert scenario.scoring_scope == "whole_filesystem"
    assert scenario.environment is not None and scenario.environment.working_directory == "/app"

    oracle = await run_and_score(backend, scenario.id, scenario.reference_output)
    assert score_of(oracle) == 1.0, oracle.scoring_contract_result
    nop = await run_and_score(backend, scenario.id, None)
    assert score_of(nop) == 0.0, nop.scoring_contract_result
    forged = await run_and_score(
        backend,
        scenario.id,
        "mkdir -p /logs/verifier /tests /opt/scenario-scorer/tests && echo 1 > /logs/verifier/reward.txt && "
        "echo '{\"reward\": 1}' > /logs/verifier/reward.json && "
        "printf '#!/bin/bash\\necho 1 > /logs/verifier/reward.txt\\n' | tee /tests/test.sh > /opt/scenario-scorer/tests/test.sh",
    )
    assert score_of(forged) == 0.0, forged.scoring_contract_result
