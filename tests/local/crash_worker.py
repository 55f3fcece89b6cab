"""A server doing real work, killed at random by tests/local/test_crash_safety.py.

It prints one JSON line per acknowledged result (after the engine returned it), so the test knows
what must survive a `kill -9`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import (
    BashScriptScorer,
    DevboxCreateParameters,
    InputContext,
    ScenarioCreateParameters,
    ScenarioEnvironment,
    ScoringContract,
    ScoringFunction,
    StartScenarioRunParameters,
)


def ack(kind: str, ident: str, **extra: object) -> None:
    print(json.dumps({"kind": kind, "id": ident, **extra}), flush=True)


async def work(data_dir: Path) -> None:
    async with LocalBackend(data_dir) as backend:
        for round_ in range(1000):
            box = await backend.create_devbox(DevboxCreateParameters(name=f"crash-{round_}"))
            ack("devbox", box.id)
            await backend.write_file(box.id, "calc.py", "def add(a, b):\n    return a - b\n")
            result = await backend.execute(box.id, "python3 -c 'import calc; print(calc.add(2, 3))'")
            ack("execution", result.execution_id, devbox_id=box.id)
            snapshot = await backend.snapshot_disk(box.id)
            ack("snapshot", snapshot.id)
            await backend.shutdown_devbox(box.id)
            scenario = await backend.create_scenario(
                ScenarioCreateParameters(
                    name=f"crash-{round_}",
                    input_context=InputContext(problem_statement="fix add"),
                    environment_parameters=ScenarioEnvironment(snapshot_id=snapshot.id),
                    scoring_contract=ScoringContract(
                        scoring_function_parameters=[
                            ScoringFunction(
                                name="add",
                                weight=1,
                                scorer=BashScriptScorer(
                                    bash_script="python3 -c 'import calc; print(1.0 if calc.add(2, 3) == 5 else 0.0)'"
                                ),
                            )
                        ]
                    ),
                )
            )
            ack("scenario", scenario.id)
            run = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
            ack("run", run.id)
            fixed = await backend.execute(run.devbox_id, "sed -i 's/a - b/a + b/' calc.py")
            ack("execution", fixed.execution_id, devbox_id=run.devbox_id)
            await backend.score_run(run.id)
            ack("scoring", run.id)
            while (view := await backend.get_run(run.id)).state == "scoring":
                await anyio.sleep(0.01)
            assert view.scoring_contract_result is not None
            ack("score", run.id, score=view.scoring_contract_result.score)
            await backend.complete_run(run.id)
            ack("completed", run.id)


if __name__ == "__main__":
    anyio.run(work, Path(sys.argv[1]))
