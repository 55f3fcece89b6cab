"""Runloop's own Python SDK (runloop-api-client 1.32.0, the last with scenarios) against our REST API.

Nothing here is adapted to us: the SDK's client with `base_url` pointed at a real uvicorn server on
127.0.0.1, using its own helpers (await_running, execute_and_await_completion, score_and_await, ...).
"""

from __future__ import annotations

import zipfile
from collections.abc import AsyncIterator
from io import BytesIO

import pytest
from runloop_api_client import AsyncRunloop, BadRequestError, NotFoundError
from runloop_api_client.lib.polling import PollingConfig

from scenario_mcp.local.engine import LocalBackend

from .server import TOKEN, serve_rest

pytestmark = pytest.mark.anyio

FAILING_TEST = "def add(a, b):\n    return a - b\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
FIX = "sed -i 's/a - b/a + b/' tests/test_example.py"
FAST = PollingConfig(interval_seconds=0.05, max_attempts=1200, timeout_seconds=60)


@pytest.fixture
async def client(backend: LocalBackend) -> AsyncIterator[AsyncRunloop]:
    async with serve_rest(backend) as url, AsyncRunloop(bearer_token=TOKEN, base_url=url, max_retries=0) as sdk:
        yield sdk


async def test_sdk_seed_example(client: AsyncRunloop) -> None:
    """The seed's Python example, step by step, with the SDK."""
    devbox = await client.devboxes.create(name="seed-author")
    running = await client.devboxes.await_running(devbox.id)
    assert running.status == "running"

    hello = await client.devboxes.execute_and_await_completion(devbox.id, command="echo hello; uname -s")
    assert hello.status == "completed" and hello.exit_status == 0 and hello.stdout == "hello\nLinux\n"
    fast = await client.devboxes.execute(devbox.id, command="true")
    assert fast.status == "completed" and fast.exit_status == 0

    await client.devboxes.write_file_contents(devbox.id, file_path="tests/test_example.py", contents=FAILING_TEST)
    assert await client.devboxes.read_file_contents(devbox.id, file_path="tests/test_example.py") == FAILING_TEST

    snapshot = await client.devboxes.snapshot_disk(devbox.id, name="seed", metadata={"from": "sdk"})
    assert snapshot.id.startswith("snp_") and snapshot.source_devbox_id == devbox.id
    await client.devboxes.shutdown(devbox.id)

    scenario = await client.scenarios.create(
        name="seed",
        input_context={"problem_statement": "Fix the failing test."},
        environment_parameters={"snapshot_id": snapshot.id},
        scoring_contract={
            "scoring_function_parameters": [
                {
                    "name": "pytest",
                    "weight": 1.0,
                    "scorer": {"type": "bash_script_scorer", "bash_script": "pytest -q && echo 1.0 || echo 0.0"},
                }
            ]
        },
        reference_output="pytest -q",
    )
    assert scenario.id.startswith("scn_")
    assert scenario.environment is not None and scenario.environment.snapshot_id == snapshot.id

    run = await client.scenarios.start_run_and_await_env_ready(
        scenario_id=scenario.id, run_name="sdk-run", polling_config=FAST
    )
    assert run.state == "running" and run.devbox_id
    fixed = await client.devboxes.execute_and_await_completion(run.devbox_id, command=f"cd /home/user && {FIX}")
    assert fixed.exit_status == 0

    scored = await client.scenarios.runs.score_and_await(run.id, polling_config=FAST)
    assert scored.state == "scored"
    assert scored.scoring_contract_result is not None and scored.scoring_contract_result.score == 1.0
    completed = await client.scenarios.runs.complete(run.id)
    assert completed.state == "completed"
    assert (await client.devboxes.retrieve(run.devbox_id)).status == "shutdown"

    logs = await client.scenarios.runs.download_logs(run.id)
    with zipfile.ZipFile(BytesIO(await logs.read())) as archive:
        assert "1 passed" in archive.read("run.log").decode()

    # The SDK's one-call helper, on a run that nobody fixes.
    second = await client.scenarios.start_run(scenario_id=scenario.id)
    zero = await client.scenarios.runs.score_and_complete(second.id, polling_config=FAST)
    assert zero.state == "completed"
    assert (await client.scenarios.runs.retrieve(second.id)).scoring_contract_result.score == 0.0  # type: ignore[union-attr]


async def test_sdk_lists_page_with_cursors(client: AsyncRunloop) -> None:
    ids = []
    for name in ("a", "b", "c"):
        created = await client.scenarios.create(
            name=name,
            input_context={"problem_statement": name},
            scoring_contract={
                "scoring_function_parameters": [
                    {"name": "ok", "weight": 1, "scorer": {"type": "command_scorer", "command": "true"}}
                ]
            },
        )
        ids.append(created.id)
    page = await client.scenarios.list(limit=2)
    assert [s.id for s in page.scenarios] == ids[::-1][:2] and page.has_more
    # The SDK's auto-pager follows `starting_after` until `has_more` is false.
    assert [s.id async for s in client.scenarios.list(limit=1)] == ids[::-1]


async def test_sdk_async_executions_and_streams(client: AsyncRunloop) -> None:
    devbox = await client.devboxes.create()
    started = await client.devboxes.execute_async(
        devbox.id, command="for i in 1 2 3; do echo line$i; sleep 0.1; done; echo oops >&2"
    )
    assert started.status in ("queued", "running")
    stream = await client.devboxes.executions.stream_stdout_updates(started.execution_id, devbox_id=devbox.id)
    chunks = [chunk async for chunk in stream]
    assert "".join(c.output for c in chunks) == "line1\nline2\nline3\n"
    assert chunks[-1].offset == len("line1\nline2\nline3\n")
    err = await client.devboxes.executions.stream_stderr_updates(started.execution_id, devbox_id=devbox.id)
    assert "".join([c.output async for c in err]) == "oops\n"
    # From an offset: only what follows it.
    tail = await client.devboxes.executions.stream_stdout_updates(started.execution_id, devbox_id=devbox.id, offset="6")
    assert "".join([c.output async for c in tail]) == "line2\nline3\n"

    done = await client.devboxes.wait_for_command(
        started.execution_id, devbox_id=devbox.id, statuses=["completed"], timeout_seconds=10
    )
    assert done.status == "completed" and done.exit_status == 0

    sleeper = await client.devboxes.execute_async(devbox.id, command="sleep 30")
    killed = await client.devboxes.executions.kill(sleeper.execution_id, devbox_id=devbox.id, kill_process_group=True)
    assert killed.status == "completed"

    cat = await client.devboxes.execute_async(devbox.id, command="cat", attach_stdin=True)
    sent = await client.devboxes.executions.send_std_in(cat.execution_id, devbox_id=devbox.id, text="hi\n")
    assert sent.success
    await client.devboxes.executions.send_std_in(cat.execution_id, devbox_id=devbox.id, signal="EOF")
    echoed = await client.devboxes.executions.retrieve(cat.execution_id, devbox_id=devbox.id)
    if echoed.status != "completed":
        echoed = await client.devboxes.wait_for_command(
            cat.execution_id, devbox_id=devbox.id, statuses=["completed"], timeout_seconds=10
        )
    assert echoed.stdout == "hi\n"


async def test_sdk_files_snapshots_and_lifecycle(client: AsyncRunloop) -> None:
    devbox = await client.devboxes.create(name="files")
    blob = bytes(range(256)) * 4
    await client.devboxes.upload_file(devbox.id, path="data/blob.bin", file=("blob.bin", blob))
    downloaded = await client.devboxes.download_file(devbox.id, path="data/blob.bin")
    assert await downloaded.read() == blob

    pending = await client.devboxes.snapshot_disk_async(devbox.id, name="async", metadata={"kind": "async"})
    status = await client.devboxes.disk_snapshots.await_completed(pending.id, polling_config=FAST)
    assert status.status == "complete" and status.snapshot is not None and status.snapshot.id == pending.id
    listed = [s.id async for s in client.devboxes.disk_snapshots.list(devbox_id=devbox.id)]
    assert listed == [pending.id]
    # SDK 1.32 spells the metadata filter as a literal `metadata[key]` parameter: name the key via extra_query.
    by_kind = client.devboxes.disk_snapshots.list
    assert [s.id async for s in by_kind(extra_query={"metadata[kind]": "async"})] == [pending.id]
    assert [s.id async for s in by_kind(extra_query={"metadata[kind][in]": "x,y"})] == []
    relabeled = await client.devboxes.disk_snapshots.update(pending.id, name="kept", commit_message="why")
    assert (relabeled.name, relabeled.commit_message, relabeled.metadata) == ("kept", "why", {"kind": "async"})
    await client.devboxes.disk_snapshots.delete(pending.id)

    renamed = await client.devboxes.update(devbox.id, name="renamed", metadata={"owner": "sdk"})
    assert (renamed.name, renamed.metadata) == ("renamed", {"owner": "sdk"})
    assert (await client.devboxes.retrieve(devbox.id)).name == "renamed"

    suspended = await client.devboxes.suspend(devbox.id)
    assert suspended.status == "suspended"
    await client.devboxes.keep_alive(devbox.id)
    resumed = await client.devboxes.resume(devbox.id)
    assert resumed.status == "running"
    logs = await client.devboxes.logs.list(devbox.id)
    assert isinstance(logs.logs, list)
    shut = await client.devboxes.shutdown(devbox.id)
    assert shut.status == "shutdown"


async def test_sdk_benchmarks_and_scorers(client: AsyncRunloop) -> None:
    contract = {
        "scoring_function_parameters": [
            {"name": "s", "weight": 1, "scorer": {"type": "bash_script_scorer", "bash_script": "echo 0.5"}}
        ]
    }
    first, second = [
        await client.scenarios.create(name=name, input_context={"problem_statement": name}, scoring_contract=contract)
        for name in ("one", "two")
    ]
    benchmark = await client.benchmarks.create(name="bench", scenario_ids=[first.id])
    assert benchmark.scenario_ids == [first.id]  # read back from the wire's camelCase `scenarioIds`
    benchmark = await client.benchmarks.update_scenarios(benchmark.id, scenarios_to_add=[second.id])
    assert benchmark.scenario_ids == [first.id, second.id]
    definitions = await client.benchmarks.definitions(benchmark.id)
    assert [s.id for s in definitions.scenarios] == [first.id, second.id]
    assert [s.id async for s in client.scenarios.list(benchmark_id=benchmark.id)] == [second.id, first.id]

    bench_run = await client.benchmarks.start_run(benchmark_id=benchmark.id, run_name="nightly")
    assert bench_run.state == "running"
    runs = [r async for r in client.benchmark_runs.list_scenario_runs(bench_run.id)]
    assert sorted(r.scenario_id for r in runs) == sorted([first.id, second.id])
    for run in runs:
        await client.scenarios.runs.score_and_await(run.id, polling_config=FAST)
    completed = await client.benchmark_runs.complete(bench_run.id)
    assert completed.state == "completed" and completed.score == pytest.approx(0.5)

    scorer = await client.scenarios.scorers.create(type="my_scorer", bash_script="echo 1.0")
    assert (await client.scenarios.scorers.retrieve(scorer.id)).type == "my_scorer"
    updated = await client.scenarios.scorers.update(scorer.id, type="my_scorer", bash_script="echo 0.9")
    assert updated.bash_script == "echo 0.9"
    assert [s.id async for s in client.scenarios.scorers.list()] == [scorer.id]


async def test_sdk_sees_runloop_errors(client: AsyncRunloop) -> None:
    with pytest.raises(NotFoundError) as missing:
        await client.scenarios.retrieve("scn_nope")
    assert missing.value.status_code == 404
    assert isinstance(missing.value.body, dict) and "scn_nope" in missing.value.body["message"]
    with pytest.raises(BadRequestError) as bad:
        await client.scenarios.create(
            name="bad",
            input_context={"problem_statement": "p"},
            scoring_contract={"scoring_function_parameters": [{"name": "has space", "weight": 1, "scorer": {}}]},
        )
    assert "scoring_contract.scoring_function_parameters.0" in bad.value.body["message"]  # type: ignore[index]


async def test_sdk_blueprint_build_logs_and_delete(client: AsyncRunloop) -> None:
    blueprint = await client.blueprints.create_and_await_build_complete(
        name="sdk-tool", system_setup_commands=["echo built-by-sdk"], polling_config=FAST
    )
    assert blueprint.status == "build_complete"
    logs = await client.blueprints.logs(blueprint.id)
    assert logs.blueprint_id == blueprint.id and "built-by-sdk" in logs.logs[0].message
    await client.blueprints.delete(blueprint.id)
    with pytest.raises(NotFoundError):
        await client.blueprints.retrieve(blueprint.id)
