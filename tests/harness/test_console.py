"""`scenario-mcp bench run` and `bench report` as a person runs them: a subprocess on a data dir."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from xml.etree import ElementTree

import anyio
import jsonschema
import pytest

from scenario_mcp.local.engine import LocalBackend

from ..conftest import seed_default_blueprint
from .test_runner import trivial

pytestmark = pytest.mark.anyio


async def cli(*args: str) -> tuple[int, str, str]:
    result = await anyio.run_process([sys.executable, "-m", "scenario_mcp", *args], check=False)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def test_bench_run_writes_json_junit_and_a_report_and_checks_the_min_score(
    data_dir: Path, default_blueprint_cache: Path, tmp_path: Path
) -> None:
    async with LocalBackend(data_dir) as engine:
        await seed_default_blueprint(engine, default_blueprint_cache)
        ids = [(await trivial(engine, f"cli-{i}")).id for i in range(3)]
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = await cli(
        "bench", "run", *ids, "--agent", "oracle", "--attempts", "2", "--concurrency", "4", "--data-dir", str(data_dir),
        "--json", str(out / "oracle.json"), "--junit", str(out / "oracle.xml"), "--report", str(out / "oracle.html"),
        "--min-score", "1.0",
    )  # fmt: skip
    assert code == 0, err
    assert "mean 1.000 ± 0.000" in err and "pass@2 1.000" in err and "cli-2" in err
    results = json.loads((out / "oracle.json").read_text())
    code, schema, _ = await cli("bench", "schema")
    jsonschema.validate(results, json.loads(schema))
    assert len(results["results"]) == 6 and results["summary"]["errors"] == 0 and results["complete"]
    junit = ElementTree.parse(out / "oracle.xml").getroot()
    assert (junit.get("tests"), junit.get("failures"), junit.get("errors")) == ("3", "0", "0")
    assert "cli-0" in (out / "oracle.html").read_text()

    code, _, err = await cli(
        "bench", "run", *ids, "--agent", "nop", "--data-dir", str(data_dir), "--junit", str(out / "nop.xml"),
        "--min-score", "0.9",
    )  # fmt: skip
    assert code == 1 and "below --min-score 0.9" in err
    assert ElementTree.parse(out / "nop.xml").getroot().get("failures") == "3"
    nop_run = err.split("benchmark run ")[1].split()[0]
    oracle_run = results["benchmark_run_id"]
    code, _, err = await cli(
        "bench", "report", oracle_run, "--compare", nop_run, "--data-dir", str(data_dir), "-o", str(out / "cmp.html")
    )
    assert code == 0, err
    page = (out / "cmp.html").read_text()
    assert "3 better</span>" in page and "0 worse</span>" in page


async def test_bench_run_refuses_bad_arguments_clearly(data_dir: Path) -> None:
    code, _, err = await cli("bench", "run", "x", "--agent", "sometimes", "--data-dir", str(data_dir))
    assert code == 2 and "unknown agent 'sometimes'" in err and "oracle, nop, command:CMD" in err
    code, _, err = await cli("bench", "run", "--agent", "nop", "--data-dir", str(data_dir))
    assert code == 2 and "name what to run" in err
    code, _, err = await cli("bench", "run", "no-such-thing", "--agent", "nop", "--data-dir", str(data_dir))
    assert code == 2 and "'no-such-thing' is no benchmark" in err


async def test_bench_run_mounts_an_installed_agent_into_every_attempt(
    data_dir: Path, default_blueprint_cache: Path
) -> None:
    from .test_agent_mounts import solver_agent

    async with LocalBackend(data_dir) as engine:
        await seed_default_blueprint(engine, default_blueprint_cache)
        agent = await solver_agent(engine)
        ids = [(await trivial(engine, f"mounted-{i}")).id for i in range(2)]
    common = ("--agent", "command:solve", "--data-dir", str(data_dir))
    code, _, err = await cli(
        "bench", "run", *ids, *common, "--agent-mount", "solver@1:/opt/solver", "--min-score", "1.0"
    )  # fmt: skip
    assert code == 0, err
    assert f"agent mount solver@1:/opt/solver -> {agent.id}" in err and "mean 1.000" in err

    code, _, err = await cli("bench", "run", *ids, *common, "--agent-mount", "nobody:/opt/x")
    assert code == 2 and "no agent 'nobody' is installed (agents here: solver@1)" in err
    code, _, err = await cli("bench", "run", *ids, *common, "--agent-mount", "solver")
    assert code == 2 and "--agent-mount: 'solver' names no absolute PATH" in err
    async with LocalBackend(data_dir) as engine:  # the refused runs started nothing
        assert len((await engine.list_benchmark_runs()).runs) == 1


async def test_bench_run_imports_a_task_directory_on_the_fly(
    backend: LocalBackend, debian_image: tuple[str, Path], tmp_path: Path
) -> None:
    from scenario_mcp.harness.agents import parse_agent
    from scenario_mcp.harness.console import Outputs, bench_run
    from scenario_mcp.harness.runner import SuiteOptions
    from tests.local.conftest import seed_image
    from tests.tasks.conftest import task_copy

    reference, pulled = debian_image
    seed_image(backend, pulled)
    tasks = Path(__file__).resolve().parents[1] / "tasks" / "harbor"
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    task_copy(tasks / "etc-config", dataset / "etc-config", reference)
    for agent, expected in (("oracle", 0), ("nop", 1)):
        json_file = tmp_path / f"{agent}.json"
        code = await bench_run(
            backend, [str(dataset)], SuiteOptions(agent=parse_agent(agent)), Outputs(json=json_file), min_score=1.0
        )
        assert code == expected
        [attempt] = json.loads(json_file.read_text())["results"]
        assert attempt["scenario_name"] == "etc-config" and attempt["score"] == (1.0 if agent == "oracle" else 0.0)


async def test_ctrl_c_cancels_the_runs_in_flight_and_leaves_nothing_running(
    data_dir: Path, default_blueprint_cache: Path, tmp_path: Path
) -> None:
    import signal
    import sqlite3

    async with LocalBackend(data_dir) as engine:
        await seed_default_blueprint(engine, default_blueprint_cache)
        ids = [(await trivial(engine, f"slow-{i}")).id for i in range(4)]
    argv = ["bench", "run", *ids, "--agent", "command:sleep 60", "--concurrency", "2", "--data-dir", str(data_dir)]
    log = (tmp_path / "stderr.txt").open("wb")
    process = await anyio.open_process([sys.executable, "-m", "scenario_mcp", *argv], stderr=log)
    database = data_dir / "scenario-mcp.sqlite3"

    def running_devboxes() -> int:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT count(*) FROM devboxes WHERE state = 'running'").fetchone()[0])

    try:
        with anyio.fail_after(30):
            while running_devboxes() < 2:
                await anyio.sleep(0.2)
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(30):
            assert await process.wait() == 130
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log.close()
    err = (tmp_path / "stderr.txt").read_text()
    assert "interrupted: canceling the runs in flight" in err and "take it up with --resume bmr_" in err
    async with LocalBackend(data_dir) as engine:
        assert (await engine.list_devboxes(limit=100, status="running")).devboxes == []
        [bench_run] = (await engine.list_benchmark_runs()).runs
        assert bench_run.state == "running"  # to be resumed
        # An attempt interrupted while its run was starting may have no run: at most the two.
        runs = (await engine.list_runs(benchmark_run_id=bench_run.id)).runs
        assert 1 <= len(runs) <= 2 and all(r.state == "canceled" for r in runs), runs


async def test_bench_run_gives_the_agent_a_secret_that_no_output_or_report_shows(
    data_dir: Path, default_blueprint_cache: Path, tmp_path: Path
) -> None:
    value = "sk-bench-9a8b7c6d5e4f3021"
    async with LocalBackend(data_dir) as engine:
        await seed_default_blueprint(engine, default_blueprint_cache)
        scenario_id = (await trivial(engine, "cli-secret")).id
    out = tmp_path / "out"
    out.mkdir()
    agent = 'command:echo "agent has $MODEL_KEY"; printf %s "$MODEL_KEY" | sha256sum > key.sha'
    result = await anyio.run_process(
        [
            sys.executable, "-m", "scenario_mcp", "bench", "run", scenario_id, "--agent", agent,
            "--secret", "MODEL_KEY=env:BENCH_KEY", "--data-dir", str(data_dir),
            "--json", str(out / "r.json"), "--report", str(out / "r.html"),
        ],
        check=False,
        env={**os.environ, "BENCH_KEY": value},
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr.decode()
    attempt = json.loads((out / "r.json").read_text())["results"][0]
    assert "agent has [secret MODEL_KEY]" in attempt["agent_output"]
    shown = [result.stdout.decode(), result.stderr.decode(), (out / "r.json").read_text(), (out / "r.html").read_text()]
    assert not [text for text in shown if value in text]
    code, _, err = await cli(
        "bench", "run", scenario_id, "--agent", "nop", "--secret", "K=env:UNSET_VAR_X", "--data-dir", str(data_dir)
    )
    assert code == 2 and "$UNSET_VAR_X is not set" in err
