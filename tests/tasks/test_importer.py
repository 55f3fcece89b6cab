"""Importing Harbor and Terminal-Bench task directories as scenarios, on the real engine, and
scoring them as Harbor's verifier would: the agent's whole filesystem, fresh tests, no forged reward."""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio
import pytest

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import ScenarioRunView, StartScenarioRunParameters
from scenario_mcp.tasks import TaskFormatError, export_scenario, import_tasks, read_task
from scenario_mcp.tasks.task import task_directories

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
        "printf '#!/bin/bash\\necho 1 > /logs/verifier/reward.txt\\n' "
        "| tee /tests/test.sh > /opt/scenario-scorer/tests/test.sh",
    )
    assert score_of(forged) == 0.0, forged.scoring_contract_result


async def test_a_terminal_bench_task_scores_1_only_when_every_test_passes(
    backend: LocalBackend, image: str, tmp_path: Path
) -> None:
    task = task_copy(HERE / "terminal_bench" / "hello-file", tmp_path / "hello-file", image)
    [result] = await import_tasks(backend, [task])
    scenario = await backend.get_scenario(result.scenario_id)
    assert scenario.metadata["scenario_mcp.task_format"] == "terminal-bench"
    assert scenario.metadata["scenario_mcp.agent_timeout_sec"] == "120.0" and scenario.scorer_timeout_sec == 30
    assert score_of(await run_and_score(backend, scenario.id, scenario.reference_output)) == 1.0
    half = await run_and_score(backend, scenario.id, "echo wrong > /app/hello.txt")
    assert score_of(half) == 0.0, half.scoring_contract_result
    assert score_of(await run_and_score(backend, scenario.id, None)) == 0.0


async def test_a_reimport_changes_nothing_until_the_task_changes(
    backend: LocalBackend, image: str, tmp_path: Path
) -> None:
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    task_copy(HERE / "harbor" / "etc-config", dataset / "etc-config", image)
    task_copy(HERE / "terminal_bench" / "hello-file", dataset / "hello-file", image)
    first = await import_tasks(backend, [dataset])
    assert [r.action for r in first] == ["created", "created"]
    blueprints = (await backend.list_blueprints(limit=100)).blueprints
    again = await import_tasks(backend, [str(dataset)])
    assert [(r.action, r.scenario_id, r.blueprint_id) for r in again] == [
        ("unchanged", r.scenario_id, r.blueprint_id) for r in first
    ]
    assert (await backend.list_blueprints(limit=100)).blueprints == blueprints  # nothing built again
    (dataset / "etc-config" / "instruction.md").write_text("Create /etc/scenario/service.conf: mode=enabled.\n")
    changed = await import_tasks(backend, [dataset])
    assert [r.action for r in changed] == ["updated", "unchanged"]
    assert changed[0].scenario_id == first[0].scenario_id and changed[0].blueprint_id == first[0].blueprint_id
    updated = await backend.get_scenario(first[0].scenario_id)
    assert updated.input_context.problem_statement.startswith("Create /etc/scenario")


async def test_import_export_import_gives_the_same_scenario(backend: LocalBackend, image: str, tmp_path: Path) -> None:
    original = task_copy(HERE / "harbor" / "etc-config", tmp_path / "etc-config", image)
    (original / "solution" / "data.txt").write_text("mode=enabled\n")  # solution/ with more than solve.sh
    (original / "solution" / "solve.sh").write_text(
        "#!/bin/bash\nmkdir -p /etc/scenario\ncp /solution/data.txt /etc/scenario/service.conf\n"
    )
    (original / "tests" / "blob.bin").write_bytes(bytes(range(256)))  # a file that is not text
    tool = original / "environment" / "bin" / "tool"  # an executable in the build context, kept so
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho tool\n")
    tool.chmod(0o755)
    dockerfile = original / "environment" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "COPY bin/tool /usr/local/bin/tool\nRUN tool\n")
    with (original / "task.toml").open("a") as toml:
        toml.write('\n[environment.env]\nMODE = "strict"\n')
    [first] = await import_tasks(backend, [original])
    scenario = await backend.get_scenario(first.scenario_id)
    assert score_of(await run_and_score(backend, scenario.id, scenario.reference_output)) == 1.0

    exported = await export_scenario(backend, first.scenario_id, tmp_path / "exported")
    [second] = await import_tasks(backend, [exported])
    assert (second.action, second.scenario_id, second.checksum) == ("unchanged", first.scenario_id, first.checksum)
    # Every field: the task read back from the export is the task imported.
    assert read_task(exported) == read_task(original)
    devbox = (await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))).devbox_id
    assert (await backend.execute(devbox, "echo $MODE")).stdout == "strict\n"  # [environment].env


def test_tasks_it_cannot_run_are_refused_with_the_reason(tmp_path: Path) -> None:
    compose = shutil.copytree(HERE / "terminal_bench" / "hello-file", tmp_path / "two-services")
    (compose / "docker-compose.yaml").write_text("services:\n  client: {build: .}\n  db: {image: postgres}\n")
    with pytest.raises(TaskFormatError, match=r"2 services \(client, db\).*one `client` service"):
        read_task(compose)
    separate = shutil.copytree(HERE / "harbor" / "etc-config", tmp_path / "separate")
    (separate / "tests" / "Dockerfile").write_text("FROM debian:bookworm\n")
    with pytest.raises(TaskFormatError, match="environment of its own"):
        read_task(separate)
    no_tests = shutil.copytree(HERE / "harbor" / "etc-config", tmp_path / "no-tests")
    (no_tests / "tests" / "test.sh").unlink()
    with pytest.raises(TaskFormatError, match=r"tests/test.sh is missing"):
        read_task(no_tests)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TaskFormatError, match="holds no task"):
        task_directories([tmp_path / "empty"])


async def test_the_verifier_has_the_devbox_network_and_validation_passes(
    backend: LocalBackend, image: str, tmp_path: Path
) -> None:
    """Harbor's verifier runs in the agent's sandbox: with its network (slirp's tap device beside
    lo), or with none. An imported task validates like any scenario."""
    rewards = {}
    for mode in ("public", "no-network"):
        task = task_copy(HERE / "harbor" / "etc-config", tmp_path / mode, image)
        toml = (task / "task.toml").read_text().replace('network_mode = "no-network"', f'network_mode = "{mode}"')
        (task / "task.toml").write_text(toml.replace('name = "etc-config"', f'name = "net-{mode}"'))
        (task / "tests" / "test.sh").write_text(
            "#!/bin/bash\nmkdir -p /logs/verifier\n"
            "if tail -n +3 /proc/net/dev | grep -v '^ *lo:' | grep -q :; then r=1; else r=0; fi\n"
            'echo "{\\"reward\\": $r}" > /logs/verifier/reward.json\n'
        )
        [result] = await import_tasks(backend, [task])
        rewards[mode] = score_of(await run_and_score(backend, result.scenario_id, None))
    assert rewards == {"public": 1.0, "no-network": 0.0}

    [etc] = await import_tasks(backend, [task_copy(HERE / "harbor" / "etc-config", tmp_path / "etc", image)])
    validation = await backend.validate_scenario(etc.scenario_id)
    assert validation.valid, validation.verdict
