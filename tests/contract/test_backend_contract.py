"""One Backend contract, the same assertions on both backends (see conftest.py's `engine`)."""

from __future__ import annotations

import anyio
import pytest

from scenario_mcp.backend import (
    Backend,
    BackendError,
    InvalidRequestError,
    InvalidStateError,
    NotFoundError,
    OperationTimeoutError,
)
from scenario_mcp.harness.runner import score
from scenario_mcp.models import (
    BashScriptScorer,
    BenchmarkCreateParameters,
    BlueprintCreateParameters,
    CommandScorer,
    CreateCustomScorerParameters,
    CustomScorer,
    DevboxCreateParameters,
    DevboxStatus,
    ExecutionStatus,
    InputContext,
    ScenarioCreateParameters,
    ScenarioEnvironment,
    ScenarioRunState,
    ScenarioRunView,
    ScenarioUpdateParameters,
    ScenarioView,
    ScoringContract,
    ScoringFunction,
    StartBenchmarkRunParameters,
    StartScenarioRunParameters,
    ValidationType,
)

pytestmark = pytest.mark.anyio

FAILING_TEST = "def add(a, b):\n    return a - b\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
FIX = "sed -i 's/a - b/a + b/' tests/test_example.py"


def scorer_contract(scorer: BashScriptScorer | CommandScorer, name: str = "check") -> ScoringContract:
    return ScoringContract(scoring_function_parameters=[ScoringFunction(name=name, weight=1.0, scorer=scorer)])


async def simple_scenario(engine: Backend, name: str = "simple", script: str = "echo 1.0") -> ScenarioView:
    return await engine.create_scenario(
        ScenarioCreateParameters(
            name=name,
            input_context=InputContext(problem_statement=f"Task {name}."),
            scoring_contract=scorer_contract(BashScriptScorer(bash_script=script)),
            metadata={"suite": "contract"},
        )
    )


async def seed_scenario(engine: Backend) -> ScenarioView:
    """The seed's Python example: a failing test on a snapshot, scored by pytest."""
    box = await engine.create_devbox(DevboxCreateParameters(name="seed-author"))
    await engine.write_file(box.id, "tests/test_example.py", FAILING_TEST)
    snapshot = await engine.snapshot_disk(box.id, name="seed")
    await engine.shutdown_devbox(box.id)
    return await engine.create_scenario(
        ScenarioCreateParameters(
            name="seed",
            input_context=InputContext(problem_statement="Fix the failing test."),
            environment_parameters=ScenarioEnvironment(snapshot_id=snapshot.id),
            scoring_contract=scorer_contract(BashScriptScorer(bash_script="pytest -q && echo 1.0 || echo 0.0")),
            reference_output=FIX,
        )
    )


async def until_scored(engine: Backend, run_id: str) -> ScenarioRunView:
    with anyio.fail_after(60):
        while (run := await engine.get_run(run_id)).state == ScenarioRunState.SCORING:
            await anyio.sleep(0.02)
    return run


# --- scenarios -----------------------------------------------------------------------------------


async def test_scenario_create_get_list_update_archive(engine: Backend) -> None:
    first = await simple_scenario(engine, "first")
    second = await simple_scenario(engine, "second")
    assert first.id.startswith("scn_") and first.status == "active" and first.metadata == {"suite": "contract"}
    assert (await engine.get_scenario(first.id)) == first

    page = await engine.list_scenarios(limit=1)
    assert [s.id for s in page.scenarios] == [second.id]  # newest first
    assert page.has_more and page.total_count == 2
    rest = await engine.list_scenarios(limit=1, starting_after=second.id)
    assert [s.id for s in rest.scenarios] == [first.id] and not rest.has_more
    assert [s.id for s in (await engine.list_scenarios(name="first")).scenarios] == [first.id]

    updated = await engine.update_scenario(first.id, ScenarioUpdateParameters(name="renamed", metadata={}))
    assert updated.name == "renamed" and updated.metadata == {}
    assert updated.input_context == first.input_context  # omitted keeps

    archived = await engine.archive_scenario(first.id)
    assert archived.status == "archived"
    with pytest.raises(InvalidStateError) as refused:
        await engine.start_run(StartScenarioRunParameters(scenario_id=first.id))
    assert refused.value.status == 409
    assert (await engine.unarchive_scenario(first.id)).status == "active"


async def test_scenario_environment_in_and_out(engine: Backend) -> None:
    scenario = await engine.create_scenario(
        ScenarioCreateParameters(
            name="env",
            input_context=InputContext(problem_statement="p"),
            scoring_contract=scorer_contract(CommandScorer(command="true")),
            environment_parameters=ScenarioEnvironment(working_directory="/home/user/project"),
        )
    )
    assert scenario.environment is not None and scenario.environment.working_directory == "/home/user/project"
    assert (await engine.get_scenario(scenario.id)).environment == scenario.environment


async def test_errors_carry_runloop_statuses(engine: Backend) -> None:
    with pytest.raises(NotFoundError) as missing:
        await engine.get_scenario("scn_doesnotexist")
    assert missing.value.status == 404 and "scn_doesnotexist" in missing.value.message
    with pytest.raises(NotFoundError):
        await engine.get_run("scr_doesnotexist")
    with pytest.raises(NotFoundError):
        await engine.get_devbox("dbx_doesnotexist")
    with pytest.raises(InvalidRequestError) as bad:
        await engine.list_scenarios(limit=0)
    assert bad.value.status == 400


# --- devboxes, execution, files, snapshots -------------------------------------------------------


async def test_devbox_execute_files_and_snapshots(engine: Backend) -> None:
    box = await engine.create_devbox(DevboxCreateParameters(name="work", metadata={"k": "v"}))
    assert box.status == DevboxStatus.RUNNING and box.id.startswith("dbx_") and box.metadata == {"k": "v"}
    assert (await engine.wait_for_devbox_status(box.id, ["running"], timeout_seconds=5)).status == "running"
    assert box.id in [b.id for b in (await engine.list_devboxes(status="running", limit=100)).devboxes]

    done = await engine.execute(box.id, "echo out; echo err >&2; exit 3")
    assert done.status == ExecutionStatus.COMPLETED and done.exit_status == 3
    assert done.stdout == "out\n" and "err" in (done.stderr or "")
    assert (await engine.execute(box.id, "pwd", working_directory="/tmp")).stdout == "/tmp\n"
    assert (await engine.execute(box.id, "pwd")).stdout == "/home/user\n"

    await engine.execute(box.id, "mkdir -p proj && cd proj && export GREETING=hi", shell_name="dev")
    named = await engine.execute(box.id, 'pwd; echo "$GREETING"', shell_name="dev")
    assert named.stdout == "/home/user/proj\nhi\n"

    slow = await engine.execute(box.id, "sleep 10", timeout_seconds=1)
    assert slow.exit_status == 124 and "timed out after 1 s" in (slow.stderr or "")

    await engine.write_file(box.id, "notes/a.txt", "héllo\n")
    assert await engine.read_file(box.id, "notes/a.txt") == "héllo\n"
    blob = bytes(range(256))
    await engine.upload_file(box.id, "notes/blob.bin", blob)
    assert await engine.download_file(box.id, "notes/blob.bin") == blob
    assert await engine.list_files(box.id, "notes") == ["a.txt", "blob.bin"]
    assert "notes/" in await engine.list_files(box.id)
    with pytest.raises(BackendError) as escape:
        await engine.read_file(box.id, "../../etc/passwd")
    assert escape.value.status == 400

    snapshot = await engine.snapshot_disk(box.id, name="with-notes", metadata={"m": "1"}, commit_message="notes")
    assert snapshot.id.startswith("snp_") and snapshot.source_devbox_id == box.id and snapshot.metadata == {"m": "1"}
    assert (await engine.get_snapshot(snapshot.id)).id == snapshot.id
    assert [s.id for s in (await engine.list_snapshots(devbox_id=box.id)).snapshots] == [snapshot.id]
    clone = await engine.create_devbox(DevboxCreateParameters(snapshot_id=snapshot.id))
    assert await engine.read_file(clone.id, "notes/a.txt") == "héllo\n"

    logs = await engine.devbox_logs(box.id)
    assert any(entry.cmd == "pwd" for entry in logs.logs)
    shelled = await engine.execute(box.id, "echo shelled", shell_name="contract")
    by_shell = (await engine.devbox_logs(box.id, shell_name="contract")).logs
    assert [entry.cmd_id for entry in by_shell] == [shelled.execution_id]

    usage = await engine.devbox_usage(box.id)
    assert usage.id == box.id and usage.status == "running" and usage.end_time_ms is None
    assert usage.disk_bytes_used is not None and usage.disk_bytes_used >= len("héllo\n".encode())

    assert (await engine.shutdown_devbox(clone.id)).status == DevboxStatus.SHUTDOWN
    with pytest.raises(InvalidStateError) as gone:
        await engine.execute(clone.id, "true")
    assert gone.value.status == 409
    await engine.delete_snapshot(snapshot.id)
    with pytest.raises(NotFoundError):
        await engine.get_snapshot(snapshot.id)


async def test_devboxes_and_snapshots_take_a_new_name_and_metadata(engine: Backend) -> None:
    box = await engine.create_devbox(DevboxCreateParameters(name="before", metadata={"a": "1"}))
    renamed = await engine.update_devbox(box.id, name="after")
    assert renamed.name == "after" and renamed.metadata == {"a": "1"}  # what is not given stays
    relabeled = await engine.update_devbox(box.id, metadata={"b": "2"})
    assert relabeled.name == "after" and relabeled.metadata == {"b": "2"}  # replaced whole, as Runloop does
    assert (await engine.get_devbox(box.id)).metadata == {"b": "2"}
    assert (await engine.get_devbox(box.id)).status == DevboxStatus.RUNNING

    snapshot = await engine.snapshot_disk(box.id, name="snap", metadata={"k": "v"}, commit_message="first")
    updated = await engine.update_snapshot(snapshot.id, name="snap-2", commit_message="second")
    assert (updated.name, updated.metadata, updated.commit_message) == ("snap-2", {"k": "v"}, "second")
    fetched = await engine.get_snapshot(snapshot.id)
    assert (fetched.name, fetched.commit_message, fetched.source_devbox_id) == ("snap-2", "second", box.id)
    assert [s.id for s in (await engine.list_snapshots(devbox_id=box.id)).snapshots] == [snapshot.id]
    with pytest.raises(InvalidRequestError):
        await engine.update_snapshot(snapshot.id, commit_message="x" * 1001)

    with pytest.raises(NotFoundError):
        await engine.update_devbox("dbx_nope", name="x")
    with pytest.raises(NotFoundError):
        await engine.update_snapshot("snp_nope", name="x")
    await engine.shutdown_devbox(box.id)
    await engine.delete_snapshot(snapshot.id)


async def test_metadata_keys_and_values_of_each_kind(engine: Backend) -> None:
    await simple_scenario(engine, name="m1")  # metadata {"suite": "contract"}
    await engine.create_scenario(
        ScenarioCreateParameters(
            name="m2",
            input_context=InputContext(problem_statement="p"),
            scoring_contract=scorer_contract(CommandScorer(command="true")),
            metadata={"suite": "other", "team x": "a/b"},
        )
    )
    assert (await engine.metadata_keys("scenarios")).keys == ["suite", "team x"]
    assert (await engine.metadata_values("scenarios", "suite")).values == ["contract", "other"]
    spaced = await engine.metadata_values("scenarios", "team x")  # a key that needs quoting in a URL
    assert (spaced.key, spaced.values) == ("team x", ["a/b"])
    assert (await engine.metadata_values("scenarios", "nope")).values == []

    box = await engine.create_devbox(DevboxCreateParameters(metadata={"owner": "me"}))
    assert (await engine.metadata_keys("devboxes")).keys == ["owner"]
    await engine.snapshot_disk(box.id, metadata={"stage": "one"})
    assert (await engine.metadata_values("snapshots", "stage")).values == ["one"]
    assert (await engine.metadata_keys("benchmarks")).keys == []
    await engine.shutdown_devbox(box.id)


async def test_async_executions(engine: Backend) -> None:
    box = await engine.create_devbox(DevboxCreateParameters())
    started = await engine.execute_async(box.id, "sleep 0.3; echo done")
    assert started.status == ExecutionStatus.RUNNING and started.execution_id
    finished = await engine.wait_for_execution(box.id, started.execution_id, timeout_seconds=10)
    assert finished.status == ExecutionStatus.COMPLETED and finished.stdout == "done\n" and finished.exit_status == 0
    assert (await engine.get_execution(box.id, started.execution_id)).stdout == "done\n"

    chunk = await engine.execution_output(box.id, started.execution_id, stream="stdout", offset=0)
    assert chunk.output == "done\n" and chunk.next_offset == 5
    tail = await engine.execution_output(box.id, started.execution_id, stream="stdout", offset=chunk.next_offset)
    assert tail.output == "" and tail.done

    waiting = await engine.execute_async(box.id, "sleep 30")
    with pytest.raises(OperationTimeoutError) as timed_out:
        await engine.wait_for_execution(box.id, waiting.execution_id, timeout_seconds=0.3)
    assert timed_out.value.status == 408
    killed = await engine.kill_execution(box.id, waiting.execution_id)
    assert killed.status == ExecutionStatus.COMPLETED and killed.exit_status != 0

    cat = await engine.execute_async(box.id, "cat", attach_stdin=True)
    await engine.send_stdin(box.id, cat.execution_id, text="hello stdin\n")
    await engine.send_stdin(box.id, cat.execution_id, signal="EOF")
    echoed = await engine.wait_for_execution(box.id, cat.execution_id, timeout_seconds=10)
    assert echoed.stdout == "hello stdin\n" and echoed.exit_status == 0


async def test_devbox_suspend_resume_keep_alive(engine: Backend) -> None:
    box = await engine.create_devbox(DevboxCreateParameters())
    await engine.execute_async(box.id, "sleep 60")
    assert (await engine.suspend_devbox(box.id)).status == DevboxStatus.SUSPENDED
    assert (await engine.keep_alive_devbox(box.id)).status == DevboxStatus.SUSPENDED
    assert (await engine.resume_devbox(box.id)).status == DevboxStatus.RUNNING
    assert (await engine.execute(box.id, "echo back")).stdout == "back\n"
    with pytest.raises(OperationTimeoutError):
        await engine.wait_for_devbox_status(box.id, ["suspended"], timeout_seconds=0.3)


async def test_blueprints_listed(engine: Backend) -> None:
    page = await engine.list_blueprints(limit=10)
    assert page.blueprints and page.blueprints[0].status == "build_complete"
    assert (await engine.get_blueprint(page.blueprints[0].id)).name == page.blueprints[0].name


async def test_a_blueprint_builds_logs_and_deletes_when_unused(engine: Backend) -> None:
    queued = await engine.create_blueprint(
        BlueprintCreateParameters(
            name="tooling",
            system_setup_commands=["mkdir -p /opt/tool && echo v1 > /opt/tool/version", "echo installed"],
        )
    )
    assert queued.status in ("queued", "building", "build_complete")  # Runloop answers at once
    built = await engine.wait_for_blueprint(queued.id, timeout_seconds=120)
    assert built.status == "build_complete", built.failure_message
    logs = (await engine.blueprint_logs(built.id)).logs
    assert [log.level for log in logs] == ["info", "info"]
    assert logs[1].message.startswith("$ echo installed\ninstalled") and logs[0].timestamp_ms <= logs[1].timestamp_ms

    box = await engine.create_devbox(DevboxCreateParameters(blueprint_name="tooling"))
    assert (await engine.execute(box.id, "cat /opt/tool/version")).stdout == "v1\n"
    with pytest.raises(InvalidStateError) as in_use:  # a running devbox stands on its layer
        await engine.delete_blueprint(built.id)
    assert box.id in in_use.value.message
    await engine.shutdown_devbox(box.id)
    scenario = await engine.create_scenario(
        ScenarioCreateParameters(
            name="on-tooling",
            input_context=InputContext(problem_statement="p"),
            environment_parameters=ScenarioEnvironment(blueprint_name="tooling"),
            scoring_contract=scorer_contract(CommandScorer(command="true")),
        )
    )
    with pytest.raises(InvalidStateError) as named:  # a scenario's environment names it
        await engine.delete_blueprint(built.id)
    assert scenario.id in named.value.message
    await engine.archive_scenario(scenario.id)
    await engine.delete_blueprint(built.id)
    with pytest.raises(NotFoundError):
        await engine.get_blueprint(built.id)
    with pytest.raises(NotFoundError):
        await engine.blueprint_logs(built.id)

    broken = await engine.create_blueprint(BlueprintCreateParameters(name="broken", system_setup_commands=["exit 3"]))
    broken = await engine.wait_for_blueprint(broken.id, timeout_seconds=120)
    # Runloop's enum says what kind of failure; the message says what failed.
    assert broken.status == "failed" and broken.failure_reason == "build_failed"
    assert "exited 3" in (broken.failure_message or "")
    assert [log.level for log in (await engine.blueprint_logs(broken.id)).logs] == ["error", "error"]
    await engine.delete_blueprint(broken.id)


# --- runs ----------------------------------------------------------------------------------------


async def test_seed_workflow_scores_and_completes(engine: Backend) -> None:
    scenario = await seed_scenario(engine)
    run = await engine.start_run(StartScenarioRunParameters(scenario_id=scenario.id, run_name="solve"))
    assert run.state == ScenarioRunState.RUNNING and run.id.startswith("scr_") and run.name == "solve"
    assert (await engine.execute(run.devbox_id, FIX)).exit_status == 0
    scoring = await engine.score_run(run.id)
    assert scoring.state in (ScenarioRunState.SCORING, ScenarioRunState.SCORED)
    scored = await until_scored(engine, run.id)
    assert scored.state == ScenarioRunState.SCORED
    assert scored.scoring_contract_result is not None and scored.scoring_contract_result.score == 1.0
    completed = await engine.complete_run(run.id)
    assert completed.state == ScenarioRunState.COMPLETED
    assert (await engine.get_devbox(run.devbox_id)).status == DevboxStatus.SHUTDOWN
    with pytest.raises(InvalidStateError):
        await engine.complete_run(run.id)

    logs = await engine.run_logs(run.id)
    assert any("1 passed" in entry.message for entry in logs)
    assert [r.id for r in (await engine.list_runs(scenario_id=scenario.id)).runs] == [run.id]

    untouched = await engine.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    await engine.score_run(untouched.id)
    assert (await until_scored(engine, untouched.id)).scoring_contract_result.score == 0.0  # type: ignore[union-attr]
    canceled = await engine.cancel_run(untouched.id)
    assert canceled.state == ScenarioRunState.CANCELED
    states = {r.id: r.state for r in (await engine.list_runs(scenario_id=scenario.id, limit=10)).runs}
    assert states == {run.id: "completed", untouched.id: "canceled"}
    assert [r.id for r in (await engine.list_runs(state="canceled")).runs] == [untouched.id]


async def test_validate_scenario(engine: Backend) -> None:
    scenario = await seed_scenario(engine)
    validation = await engine.validate_scenario(scenario.id)
    assert validation.valid, validation.verdict
    assert validation.gold.result is not None and validation.gold.result.score == 1.0
    assert validation.untouched.result is not None and validation.untouched.result.score == 0.0
    assert validation.forward and validation.reverse

    # A scorer that passes anything: FORWARD judges the reference alone, so it is valid; the
    # REVERSE check fails either way, and a scenario with no validation_type needs both.
    lenient = await engine.create_scenario(
        ScenarioCreateParameters(
            name="lenient",
            input_context=InputContext(problem_statement="Anything goes."),
            scoring_contract=scorer_contract(BashScriptScorer(bash_script="echo 1.0")),
            reference_output="true",
            validation_type=ValidationType.FORWARD,
        )
    )
    forward = await engine.validate_scenario(lenient.id)
    assert forward.valid and forward.forward and forward.reverse is False
    await engine.update_scenario(lenient.id, ScenarioUpdateParameters(validation_type=ValidationType.UNSPECIFIED))
    both = await engine.validate_scenario(lenient.id)
    assert not both.valid and "already scores 1.0" in both.verdict


# --- benchmarks and custom scorers ---------------------------------------------------------------


async def test_benchmark_run_scores_the_mean(engine: Backend) -> None:
    full = await simple_scenario(engine, "full", "echo 1.0")
    half = await simple_scenario(engine, "half", "echo 0.5")
    extra = await simple_scenario(engine, "extra", "echo 0.0")
    benchmark = await engine.create_benchmark(
        BenchmarkCreateParameters(name="bench", scenario_ids=[full.id, half.id, extra.id], metadata={"b": "1"})
    )
    assert benchmark.id.startswith("bmd_") and benchmark.scenario_ids == [full.id, half.id, extra.id]
    changed = await engine.update_benchmark_scenarios(benchmark.id, remove=[extra.id])
    assert changed.scenario_ids == [full.id, half.id]
    assert (await engine.get_benchmark(benchmark.id)).scenario_ids == [full.id, half.id]
    assert [b.id for b in (await engine.list_benchmarks()).benchmarks] == [benchmark.id]
    with pytest.raises(NotFoundError):
        await engine.update_benchmark_scenarios(benchmark.id, add=["scn_nope"])

    bench_run = await engine.start_benchmark_run(StartBenchmarkRunParameters(benchmark_id=benchmark.id))
    assert bench_run.id.startswith("bmr_") and bench_run.state == "running" and bench_run.score is None
    runs = (await engine.list_runs(benchmark_run_id=bench_run.id)).runs
    assert sorted(r.scenario_id for r in runs) == sorted([full.id, half.id])
    assert all(r.benchmark_run_id == bench_run.id for r in runs)
    for run in runs:
        await engine.score_run(run.id)
    for run in runs:
        assert (await until_scored(engine, run.id)).state == ScenarioRunState.SCORED

    completed = await engine.complete_benchmark_run(bench_run.id)
    assert completed.state == "completed" and completed.score == pytest.approx(0.75)
    assert all(r.state == "completed" for r in (await engine.list_runs(benchmark_run_id=bench_run.id)).runs)
    assert [r.id for r in (await engine.list_benchmark_runs(benchmark_id=benchmark.id)).runs] == [bench_run.id]
    with pytest.raises(InvalidStateError):
        await engine.cancel_benchmark_run(bench_run.id)

    second = await engine.start_benchmark_run(StartBenchmarkRunParameters(benchmark_id=benchmark.id, run_name="b2"))
    canceled = await engine.cancel_benchmark_run(second.id)
    assert canceled.state == "canceled" and (await engine.get_benchmark_run(second.id)).state == "canceled"
    assert all(r.state == "canceled" for r in (await engine.list_runs(benchmark_run_id=second.id)).runs)

    # Archived: out of the listings and not runnable, until unarchived.
    assert (await engine.archive_benchmark(benchmark.id)).status == "archived"
    assert (await engine.get_benchmark(benchmark.id)).status == "archived"
    assert (await engine.list_benchmarks()).benchmarks == []
    with pytest.raises(InvalidStateError) as archived:
        await engine.start_benchmark_run(StartBenchmarkRunParameters(benchmark_id=benchmark.id))
    assert "unarchive" in archived.value.message
    assert (await engine.unarchive_benchmark(benchmark.id)).status == "active"
    assert [b.id for b in (await engine.list_benchmarks()).benchmarks] == [benchmark.id]


async def test_a_benchmark_run_started_alone_gathers_the_runs_that_name_it(engine: Backend) -> None:
    """start_scenario_runs=false (scenario-mcp's extension, for a runner that starts runs a few at
    a time): no run at start; each run started with its id joins it; an ended one takes none."""
    full = await simple_scenario(engine, "full", "echo 1.0")
    half = await simple_scenario(engine, "half", "echo 0.5")
    benchmark = await engine.create_benchmark(BenchmarkCreateParameters(name="alone", scenario_ids=[full.id, half.id]))
    bench_run = await engine.start_benchmark_run(
        StartBenchmarkRunParameters(benchmark_id=benchmark.id, start_scenario_runs=False)
    )
    assert (await engine.list_runs(benchmark_run_id=bench_run.id)).runs == []
    for scenario in (full, half):
        run = await engine.start_run(StartScenarioRunParameters(scenario_id=scenario.id, benchmark_run_id=bench_run.id))
        assert (await score(engine, run.id, scenario)).state == "scored"
    completed = await engine.complete_benchmark_run(bench_run.id)
    assert completed.state == "completed" and completed.score == 0.75
    assert all(r.state == "completed" for r in (await engine.list_runs(benchmark_run_id=bench_run.id)).runs)
    with pytest.raises(InvalidStateError) as ended:
        await engine.start_run(StartScenarioRunParameters(scenario_id=full.id, benchmark_run_id=bench_run.id))
    assert "only a `running` benchmark run can be joined" in ended.value.message


async def test_custom_scorers(engine: Backend) -> None:
    scorer = await engine.create_custom_scorer(CreateCustomScorerParameters(type="always_one", bash_script="echo 1.0"))
    assert scorer.id.startswith("sco_") and scorer.type == "always_one"
    assert await engine.get_custom_scorer(scorer.id) == scorer
    assert [s.id for s in (await engine.list_custom_scorers()).scorers] == [scorer.id]
    updated = await engine.update_custom_scorer(
        scorer.id, CreateCustomScorerParameters(type="always_one", bash_script="echo 0.9")
    )
    assert updated.bash_script == "echo 0.9"
    with pytest.raises(InvalidRequestError):
        await engine.create_custom_scorer(CreateCustomScorerParameters(type="always_one", bash_script="echo 1"))
    with pytest.raises(NotFoundError):
        await engine.get_custom_scorer("sco_nope")


async def test_a_custom_scorer_scores_with_its_context(engine: Backend) -> None:
    await engine.create_custom_scorer(
        CreateCustomScorerParameters(
            type="context_echo",
            bash_script="python3 -c \"import json, os; print(json.loads(os.environ['RL_SCORER_CONTEXT'])['score'])\"",
        )
    )
    scenario = await engine.create_scenario(
        ScenarioCreateParameters(
            name="custom",
            input_context=InputContext(problem_statement="p"),
            scoring_contract=ScoringContract(
                scoring_function_parameters=[
                    ScoringFunction(
                        name="ctx",
                        weight=1,
                        scorer=CustomScorer(custom_scorer_type="context_echo", scorer_params={"score": 0.25}),
                    )
                ]
            ),
        )
    )
    run = await engine.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    await engine.score_run(run.id)
    with anyio.fail_after(60):
        while (run := await engine.get_run(run.id)).state == "scoring":
            await anyio.sleep(0.05)
    assert run.scoring_contract_result is not None
    assert run.scoring_contract_result.score == 0.25, run.scoring_contract_result
    await engine.complete_run(run.id)


async def test_benchmark_runs_refuse_what_cannot_start(engine: Backend) -> None:
    empty = await engine.create_benchmark(BenchmarkCreateParameters(name="empty"))
    with pytest.raises(InvalidRequestError) as no_scenarios:
        await engine.start_benchmark_run(StartBenchmarkRunParameters(benchmark_id=empty.id))
    assert "no scenarios" in no_scenarios.value.message
    archived = await simple_scenario(engine, "archived")
    await engine.archive_scenario(archived.id)
    stale = await engine.create_benchmark(BenchmarkCreateParameters(name="stale", scenario_ids=[archived.id]))
    with pytest.raises(InvalidStateError) as refused:
        await engine.start_benchmark_run(StartBenchmarkRunParameters(benchmark_id=stale.id))
    assert archived.id in refused.value.message
    assert (await engine.list_benchmark_runs()).runs == []
    with pytest.raises(NotFoundError):
        await engine.create_benchmark(BenchmarkCreateParameters(name="ghost", scenario_ids=["scn_ghost"]))
    with pytest.raises(NotFoundError):
        await engine.get_benchmark_run("bmr_nope")


async def test_run_profile_sets_the_runs_environment(engine: Backend) -> None:
    scenario = await engine.create_scenario(
        ScenarioCreateParameters(
            name="profiled",
            input_context=InputContext(problem_statement="p"),
            required_environment_variables=["GREETING"],
            scoring_contract=ScoringContract(
                scoring_function_parameters=[ScoringFunction(name="s", weight=1, scorer=CommandScorer(command="true"))]
            ),
        )
    )
    with pytest.raises(InvalidRequestError, match="GREETING"):
        await engine.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    run = await engine.start_run(
        StartScenarioRunParameters.model_validate(
            {"scenario_id": scenario.id, "runProfile": {"envVars": {"GREETING": "hi"}, "purpose": "eval"}}
        )
    )
    assert run.purpose == "eval"
    result = await engine.execute(run.devbox_id, 'echo "$GREETING"')
    assert result.stdout == "hi\n"
    await engine.cancel_run(run.id)
