"""Runloop's SDK 1.32 building an environment from a Dockerfile, as its users do: the build context
uploaded as an object, a blueprint from the Dockerfile with that context, a devbox from it, and a
scenario run on it that scores 1.0 after the agent's fix. The base image comes from a real registry
on loopback; nothing is adapted to us."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from runloop_api_client import AsyncRunloop, AsyncRunloopSDK
from runloop_api_client.lib.polling import PollingConfig

from scenario_mcp.local.engine import LocalBackend

from ..local.oci_registry import BUSYBOX, Pusher, busybox_layer
from .server import TOKEN, serve_rest

pytestmark = pytest.mark.anyio

FAST = PollingConfig(interval_seconds=0.05, max_attempts=2400, timeout_seconds=120)
DOCKERFILE = """\
FROM {base}
COPY app /app
RUN chmod +x /app/check.sh && echo "built at $(date +%Y)" > /app/stamp.txt
WORKDIR /app
"""


@pytest.fixture
async def served(backend: LocalBackend) -> AsyncIterator[str]:
    async with serve_rest(backend) as url:
        yield url


async def test_sdk_builds_a_dockerfile_blueprint_and_scores_a_run_on_it(
    served: str, registry: Pusher, tmp_path: Path
) -> None:
    registry.image("sdk/busybox", "1", [busybox_layer()], config={"Env": ["PATH=/bin"]})
    context = tmp_path / "environment"
    (context / "app").mkdir(parents=True)
    (context / "app" / "answer.txt").write_text("41\n")
    (context / "app" / "check.sh").write_text('#!/bin/sh\n[ "$(cat /app/answer.txt)" = 42 ]\n')
    shutil.copy(BUSYBOX, tmp_path / "unused")  # a file outside the context: never uploaded
    sdk = AsyncRunloopSDK(bearer_token=TOKEN, base_url=served, max_retries=0)
    try:
        uploaded = await sdk.storage_object.upload_from_dir(context, ttl=timedelta(hours=1))
    finally:
        await sdk.aclose()

    async with AsyncRunloop(bearer_token=TOKEN, base_url=served, max_retries=0) as client:
        blueprint = await client.blueprints.create_and_await_build_complete(
            name="sdk-dockerfile",
            dockerfile=DOCKERFILE.format(base=f"{registry.address}/sdk/busybox:1"),
            build_context={"type": "object", "object_id": uploaded.id},
            polling_config=FAST,
        )
        assert blueprint.status == "build_complete"
        logs = await client.blueprints.logs(blueprint.id)
        assert any(log.message.startswith("line 3: RUN chmod +x /app/check.sh") for log in logs.logs)

        devbox = await client.devboxes.create_and_await_running(blueprint_id=blueprint.id, polling_config=FAST)
        seen = await client.devboxes.execute_and_await_completion(devbox.id, command="pwd; ls; cat answer.txt")
        assert seen.exit_status == 0 and seen.stdout == "/app\nanswer.txt\ncheck.sh\nstamp.txt\n41\n"
        await client.devboxes.shutdown(devbox.id)

        scenario = await client.scenarios.create(
            name="sdk-dockerfile-task",
            input_context={"problem_statement": "Make /app/answer.txt hold the answer, 42."},
            environment_parameters={"blueprint_id": blueprint.id, "working_directory": "/app"},
            scoring_contract={
                "scoring_function_parameters": [
                    {"name": "check", "weight": 1.0, "scorer": {"type": "command_scorer", "command": "/app/check.sh"}}
                ]
            },
        )
        run = await client.scenarios.start_run_and_await_env_ready(scenario_id=scenario.id, polling_config=FAST)
        assert run.devbox_id
        unfixed = await client.scenarios.runs.score_and_await(run.id, polling_config=FAST)
        assert unfixed.scoring_contract_result is not None and unfixed.scoring_contract_result.score == 0.0
        await client.devboxes.execute_and_await_completion(run.devbox_id, command="echo 42 > answer.txt")
        scored = await client.scenarios.runs.score_and_await(run.id, polling_config=FAST)
        assert scored.scoring_contract_result is not None and scored.scoring_contract_result.score == 1.0
        completed = await client.scenarios.runs.complete(run.id)
        assert completed.state == "completed"
