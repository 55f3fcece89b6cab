"""What the REST routes used to do themselves, now the Backend's, the same on both backends: list
filters, a command_id's idempotency (across an engine restart too), and whole-benchmark updates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from scenario_mcp.backend import Backend, InvalidRequestError, NotFoundError
from scenario_mcp.local.blueprints import DEFAULT_BLUEPRINT_NAME
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import (
    BashScriptScorer,
    BenchmarkCreateParameters,
    BenchmarkUpdateParameters,
    DevboxCreateParameters,
    ExecutionStatus,
    InputContext,
    ScenarioCreateParameters,
    ScenarioView,
    ScoringContract,
    ScoringFunction,
    StartBenchmarkRunParameters,
    StartScenarioRunParameters,
    ValidationType,
)
from scenario_mcp.remote import RemoteBackend
from tests.conftest import seed_default_blueprint, shutdown_all
from tests.rest.server import TOKEN, serve_rest

pytestmark = pytest.mark.anyio

APPEND = "sleep 0.2; echo ran >> /home/user/once.txt"


async def scenario(engine: Backend, name: str, validation_type: ValidationType | None = None) -> ScenarioView:
    return await engine.create_scenario(
        ScenarioCreateParameters(
            name=name,
            input_context=InputContext(problem_statement=f"Task {name}."),
            scoring_contract=ScoringContract(
                scoring_function_parameters=[
                    ScoringFunction(name="check", weight=1.0, scorer=BashScriptScorer(bash_script="echo 1.0"))
                ]
            ),
            validation_type=validation_type,
        )
    )


async def lines_of(engine: Backend, devbox_id: str) -> int:
    return len((await engine.read_file(devbox_id, "once.txt")).splitlines())


# --- command_id ------------------------------------------------------------------------------------


async def test_the_same_command_id_runs_the_command_once(engine: Backend) -> None:
    box = await engine.create_devbox(DevboxCreateParameters(name="once"))

    first = await engine.execute(box.id, APPEND, command_id="0190c5b0-0000-7000-8000-000000000001")
    again = await engine.execute(box.id, APPEND, command_id="0190c5b0-0000-7000-8000-000000000001")
    assert again.execution_id == first.execution_id
    assert again.status == ExecutionStatus.COMPLETED and again.exit_status == 0
    assert await lines_of(engine, box.id) == 1

    # Retries racing the first try (a client that timed out and sent it again): still one command.
    started: list[str] = []

    async def start() -> None:
        view = await engine.execute_async(box.id, APPEND, command_id="0190c5b0-0000-7000-8000-000000000002")
        started.append(view.execution_id)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(start)
    assert len(set(started)) == 1
    done = await engine.wait_for_execution(box.id, started[0], statuses=["completed"], timeout_seconds=20)
    assert done.exit_status == 0
    # execute and execute_async share the ids: the same id is the same execution either way.
    same = await engine.execute(box.id, APPEND, command_id="0190c5b0-0000-7000-8000-000000000002")
    assert same.execution_id == started[0]
    assert await lines_of(engine, box.id) == 2

    # Another id, or none, is another command.
    await engine.execute(box.id, APPEND, command_id="0190c5b0-0000-7000-8000-000000000003")
    await engine.execute(box.id, APPEND)
    assert await lines_of(engine, box.id) == 4

    with pytest.raises(InvalidRequestError, match="attach_stdin cannot be combined with command_id"):
        await engine.execute_async(box.id, "cat", attach_stdin=True, command_id="0190c5b0-0000-7000-8000-00000000000f")


@asynccontextmanager
async def opened(kind: str, data_dir: Path, cache: Path) -> AsyncIterator[Backend]:
    """An engine on `data_dir`: the LocalBackend itself, or a RemoteBackend over REST in front of it."""
    async with LocalBackend(data_dir) as local:
        await seed_default_blueprint(local, cache)
        if kind == "local":
            yield local
            return
        async with serve_rest(local) as url, RemoteBackend(url, TOKEN) as remote:
            yield remote


@pytest.mark.parametrize("kind", ["local", "remote"])
async def test_a_command_id_is_kept_across_an_engine_restart(
    kind: str, data_dir: Path, default_blueprint_cache: Path
) -> None:
    command_id = "0190c5b0-0000-7000-8000-0000000000aa"
    async with opened(kind, data_dir, default_blueprint_cache) as engine:
        box = await engine.create_devbox(DevboxCreateParameters(name="restart"))
        first = await engine.execute(box.id, APPEND, command_id=command_id)
        assert first.exit_status == 0
    # The engine closed (the devbox lives on) and a new one opens the same data dir.
    async with opened(kind, data_dir, default_blueprint_cache) as engine:
        again = await engine.execute(box.id, APPEND, command_id=command_id)
        assert again.execution_id == first.execution_id
        assert again.status == ExecutionStatus.COMPLETED and again.exit_status == 0
        started = await engine.execute_async(box.id, APPEND, command_id=command_id)
        assert started.execution_id == first.execution_id
        assert await lines_of(engine, box.id) == 1
        await engine.shutdown_devbox(box.id)
    async with LocalBackend(data_dir) as local:
        await shutdown_all(local)


# --- list filters ----------------------------------------------------------------------------------


async def test_scenarios_filter_by_name_benchmark_and_validation_type(engine: Backend) -> None:
    a1 = await scenario(engine, "alpha", ValidationType.FORWARD)
    b = await scenario(engine, "beta", ValidationType.REVERSE)
    a2 = await scenario(engine, "alpha")
    bench = await engine.create_benchmark(BenchmarkCreateParameters(name="filters", scenario_ids=[a1.id, b.id]))

    assert [s.id for s in (await engine.list_scenarios(name="alpha")).scenarios] == [a2.id, a1.id]
    members = await engine.list_scenarios(benchmark_id=bench.id)
    assert [s.id for s in members.scenarios] == [b.id, a1.id]  # newest first, as every list
    assert members.total_count == 2 and not members.has_more
    both = await engine.list_scenarios(benchmark_id=bench.id, name="alpha")
    assert [s.id for s in both.scenarios] == [a1.id]
    forward = await engine.list_scenarios(validation_type="FORWARD")
    assert [s.id for s in forward.scenarios] == [a1.id]

    # Filtered lists page like any other: limit, has_more, total_count, starting_after.
    first = await engine.list_scenarios(benchmark_id=bench.id, limit=1)
    assert [s.id for s in first.scenarios] == [b.id] and first.has_more and first.total_count == 2
    rest = await engine.list_scenarios(benchmark_id=bench.id, limit=1, starting_after=b.id)
    assert [s.id for s in rest.scenarios] == [a1.id] and not rest.has_more

    with pytest.raises(NotFoundError):
        await engine.list_scenarios(benchmark_id="bmd_nope")


async def test_runs_and_benchmark_runs_filter_by_name_state_and_benchmark_run(engine: Backend) -> None:
    one, two = await scenario(engine, "one"), await scenario(engine, "two")
    bench = await engine.create_benchmark(BenchmarkCreateParameters(name="runs", scenario_ids=[one.id, two.id]))
    bench_run = await engine.start_benchmark_run(StartBenchmarkRunParameters(benchmark_id=bench.id, run_name="night"))
    solo = await engine.start_run(StartScenarioRunParameters(scenario_id=one.id, run_name="solo"))

    of_bench_run = await engine.list_runs(benchmark_run_id=bench_run.id)
    assert of_bench_run.total_count == 2 and {r.scenario_id for r in of_bench_run.runs} == {one.id, two.id}
    paged = await engine.list_runs(benchmark_run_id=bench_run.id, limit=1)
    assert len(paged.runs) == 1 and paged.has_more and paged.total_count == 2
    assert [r.id for r in (await engine.list_runs(name="solo")).runs] == [solo.id]
    assert [r.id for r in (await engine.list_runs(scenario_id=one.id, name="solo", state="running")).runs] == [solo.id]
    assert (await engine.list_runs(name="solo", state="completed")).runs == []

    assert [r.id for r in (await engine.list_benchmark_runs(name="night")).runs] == [bench_run.id]
    assert [r.id for r in (await engine.list_benchmark_runs(benchmark_id=bench.id, state="running")).runs] == [
        bench_run.id
    ]
    await engine.cancel_benchmark_run(bench_run.id)
    assert (await engine.list_benchmark_runs(name="night", state="running")).runs == []
    assert (await engine.list_benchmark_runs(state="canceled")).total_count == 1
    await engine.cancel_run(solo.id)


async def test_benchmarks_blueprints_and_devboxes_filter(engine: Backend) -> None:
    one = await engine.create_benchmark(BenchmarkCreateParameters(name="one"))
    await engine.create_benchmark(BenchmarkCreateParameters(name="two"))
    assert [b.id for b in (await engine.list_benchmarks(name="one")).benchmarks] == [one.id]
    assert (await engine.list_benchmarks(name="none")).total_count == 0

    default = await engine.list_blueprints(name=DEFAULT_BLUEPRINT_NAME)
    assert [b.name for b in default.blueprints] == [DEFAULT_BLUEPRINT_NAME]
    assert (await engine.list_blueprints(name="none")).blueprints == []

    with pytest.raises(InvalidRequestError, match="unknown devbox status 'asleep'; one of queued"):
        await engine.list_devboxes(status="asleep")


async def test_snapshots_filter_by_devbox_blueprint_and_metadata(engine: Backend) -> None:
    box = await engine.create_devbox(DevboxCreateParameters(name="snaps"))
    other = await engine.create_devbox(DevboxCreateParameters(name="other"))
    a = await engine.snapshot_disk(box.id, name="a", metadata={"tier": "gold", "team": "x"})
    b = await engine.snapshot_disk(box.id, name="b", metadata={"tier": "silver"})
    c = await engine.snapshot_disk(other.id, name="c", metadata={"tier": "gold"})

    gold = await engine.list_snapshots(metadata={"tier": ["gold"]})
    assert [s.id for s in gold.snapshots] == [c.id, a.id] and gold.total_count == 2
    either = await engine.list_snapshots(devbox_id=box.id, metadata={"tier": ["gold", "silver"]})
    assert [s.id for s in either.snapshots] == [b.id, a.id]
    assert [s.id for s in (await engine.list_snapshots(metadata={"tier": ["gold"], "team": ["x"]})).snapshots] == [a.id]
    assert a.source_blueprint_id is not None
    from_blueprint = await engine.list_snapshots(source_blueprint_id=a.source_blueprint_id, devbox_id=other.id)
    assert [s.id for s in from_blueprint.snapshots] == [c.id]
    assert (await engine.list_snapshots(source_blueprint_id="bpt_nope")).snapshots == []


# --- whole-benchmark update ------------------------------------------------------------------------


async def test_update_benchmark_sets_its_scenarios_and_refuses_other_changes(engine: Backend) -> None:
    one = await scenario(engine, "one")
    two = await scenario(engine, "two")
    three = await scenario(engine, "three")
    bench = await engine.create_benchmark(BenchmarkCreateParameters(name="set", scenario_ids=[one.id, two.id]))

    updated = await engine.update_benchmark(
        bench.id, BenchmarkUpdateParameters(name="set", scenario_ids=[two.id, three.id, three.id])
    )
    assert updated.scenario_ids == [two.id, three.id]
    assert (await engine.get_benchmark(bench.id)).scenario_ids == [two.id, three.id]
    unchanged = await engine.update_benchmark(bench.id, BenchmarkUpdateParameters())
    assert unchanged.scenario_ids == [two.id, three.id]

    with pytest.raises(InvalidRequestError, match="updating name, description of a benchmark is not supported"):
        await engine.update_benchmark(bench.id, BenchmarkUpdateParameters(name="renamed", description="new"))
    with pytest.raises(NotFoundError):
        await engine.update_benchmark("bmd_nope", BenchmarkUpdateParameters(scenario_ids=[]))
