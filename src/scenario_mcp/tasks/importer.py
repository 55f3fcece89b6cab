"""Importing task directories as scenarios: each task's environment becomes a blueprint (named by
its content, so tasks that share an environment share one build, and a re-import builds nothing),
its tests a `harbor_verifier` scorer that sees the agent's whole filesystem, its solution the
reference output. A scenario is found again by name and updated only when its content checksum
(kept in its metadata) changed: a re-import of an unchanged task changes nothing.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import math
import shlex
import tarfile
from pathlib import Path
from typing import Literal

import anyio
from pydantic import BaseModel

from ..backend import Backend
from ..models import (
    HARBOR_VERIFIER,
    BlueprintCreateParameters,
    BlueprintView,
    CustomScorer,
    HarborVerifierParams,
    InputContext,
    LaunchParameters,
    NetworkPolicyCreateParameters,
    ObjectContext,
    ObjectCreateParameters,
    ScenarioCreateParameters,
    ScenarioEnvironment,
    ScenarioUpdateParameters,
    ScenarioView,
    ScoringContract,
    ScoringFunction,
    VerifierFile,
)
from .harbor import read_harbor
from .task import SOLUTION_DIR, Task, TaskFormatError, task_directories, task_kind
from .terminal_bench import read_terminal_bench

# Scenario metadata written by an import (Runloop's metadata is a flat map of strings).
CHECKSUM_KEY = "scenario_mcp.task_checksum"
FORMAT_KEY = "scenario_mcp.task_format"
AGENT_TIMEOUT_KEY = "scenario_mcp.agent_timeout_sec"
BUILD_TIMEOUT_KEY = "scenario_mcp.build_timeout_sec"
DESCRIPTION_KEY = "scenario_mcp.task_description"
TASK_METADATA_KEY = "scenario_mcp.task_metadata"  # task.toml's [metadata] as JSON
ENVIRONMENT_ENV_KEY = "scenario_mcp.environment_env"  # [environment].env as JSON
VERIFIER_FUNCTION = "tests"
# Harbor on Runloop runs commands in the image's working directory, else here.
FALLBACK_WORKDIR = "/workspace"
DEFAULT_BUILD_TIMEOUT = 1800.0
# Below this line of a blueprint's Dockerfile: [environment].env, as ENV (export leaves it out).
ENV_MARKER = "# scenario-mcp: [environment].env"
SOLUTION_BUNDLE = "# scenario-mcp: Harbor solution/ bundle (export writes these files back)"
BUNDLE_EOF = "__SCENARIO_MCP_FILE__"

Action = Literal["created", "updated", "unchanged"]


class ImportResult(BaseModel):
    """What importing one task did."""

    path: str
    name: str
    scenario_id: str
    action: Action
    blueprint_id: str
    checksum: str


class TaskImportError(RuntimeError):
    """A task that was read but could not be made into a scenario (its environment failed to build)."""


# --- a task's parts in Runloop's terms ------------------------------------------------------------


def read_task(directory: Path) -> Task:
    kind = task_kind(directory)
    if kind == "harbor":
        return read_harbor(directory)
    if kind == "terminal-bench":
        return read_terminal_bench(directory)
    raise TaskFormatError(f"{directory} has neither task.toml (Harbor) nor task.yaml (Terminal-Bench)")


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def blueprint_dockerfile(task: Task) -> str:
    dockerfile = task.dockerfile if task.dockerfile is not None else f"FROM {task.docker_image}\n"
    if not task.environment_env:
        return dockerfile
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in task.environment_env.items())
    return f"{dockerfile.rstrip()}\n{ENV_MARKER}\nENV {env}\n"


def pack_context(files: dict[str, bytes], executables: set[str]) -> bytes:
    """A gzip'd tar of the build context, the same bytes for the same files (no times, no owners)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(files):
            info = tarfile.TarInfo(rel)
            info.size = len(files[rel])
            info.mode = 0o755 if rel in executables else 0o644
            tar.addfile(info, io.BytesIO(files[rel]))
    return gzip.compress(buffer.getvalue(), mtime=0)


def blueprint_name(task: Task) -> str:
    """Named by what the build reads, so equal environments are one blueprint."""
    parts = [blueprint_dockerfile(task).encode()]
    for rel in sorted(task.context):
        parts += [(f"x:{rel}" if rel in task.context_executables else rel).encode(), task.context[rel]]
    return f"task-env-{_digest(*parts)[:16]}"


def _file(rel: str, data: bytes) -> VerifierFile:
    try:
        return VerifierFile(path=rel, contents=data.decode())
    except UnicodeDecodeError:
        return VerifierFile(path=rel, contents=base64.b64encode(data).decode(), encoding="base64")


def reference_output(task: Task) -> str | None:
    """solve.sh itself when the solution is that one file; else a script that writes solution/ to
    /solution and runs solve.sh there, as Harbor's oracle does."""
    if not task.solution:
        return None
    if set(task.solution) == {"solve.sh"}:
        try:
            return task.solution["solve.sh"].decode()
        except UnicodeDecodeError:
            pass
    lines = [SOLUTION_BUNDLE, f"mkdir -p {SOLUTION_DIR}"]
    for rel in sorted(task.solution):
        target = shlex.quote(f"{SOLUTION_DIR}/{rel}")
        lines.append(f'mkdir -p "$(dirname {target})"')
        lines.append(f"base64 -d > {target} <<'{BUNDLE_EOF}'")
        lines.append(base64.encodebytes(task.solution[rel]).decode().rstrip("\n"))
        lines.append(BUNDLE_EOF)
    lines.append(f"bash {SOLUTION_DIR}/solve.sh")
    return "\n".join(lines) + "\n"


def launch_parameters(task: Task, network_policy_id: str | None) -> LaunchParameters:
    params = LaunchParameters()
    if task.cpus is not None or task.memory_mb is not None or task.storage_mb is not None:
        params.resource_size_request = "CUSTOM_SIZE"
        params.custom_cpu_cores = task.cpus if task.cpus is not None else 1.0
        params.custom_gb_memory = max(1, math.ceil((task.memory_mb or 2048) / 1024))
        if task.storage_mb is not None:
            params.custom_disk_size = max(1, math.ceil(task.storage_mb / 1024))
    if network_policy_id is not None:
        params.network_policy_id = network_policy_id
    else:
        # Harbor's default is a network; "no-network" is the engine's own default.
        params.network = task.network_mode in (None, "public")
    return LaunchParameters.model_validate(params.model_dump(exclude_none=True))


def scenario_parameters(
    task: Task, blueprint: BlueprintView, network_policy_id: str | None
) -> ScenarioCreateParameters:
    verifier = HarborVerifierParams(
        tests=[_file(rel, data) for rel, data in sorted(task.tests.items())], env=task.verifier_env
    )
    image_workdir = (blueprint.image_config or {}).get("working_dir") or None
    workdir = task.workdir or image_workdir or FALLBACK_WORKDIR
    metadata: dict[str, str] = {FORMAT_KEY: task.format}
    if task.agent_timeout_sec is not None:
        metadata[AGENT_TIMEOUT_KEY] = repr(task.agent_timeout_sec)
    if task.build_timeout_sec is not None:
        metadata[BUILD_TIMEOUT_KEY] = repr(task.build_timeout_sec)
    if task.description:
        metadata[DESCRIPTION_KEY] = task.description
    if task.metadata:
        metadata[TASK_METADATA_KEY] = json.dumps(task.metadata, sort_keys=True, default=str)  # YAML dates too
    if task.environment_env:
        metadata[ENVIRONMENT_ENV_KEY] = json.dumps(task.environment_env, sort_keys=True)
    return ScenarioCreateParameters(
        name=task.name,
        input_context=InputContext(problem_statement=task.instruction),
        scoring_contract=ScoringContract(
            scoring_function_parameters=[
                ScoringFunction(
                    name=VERIFIER_FUNCTION,
                    weight=1.0,
                    scorer=CustomScorer(
                        custom_scorer_type=HARBOR_VERIFIER, scorer_params=verifier.model_dump(mode="json")
                    ),
                )
            ]
        ),
        environment_parameters=ScenarioEnvironment(
            blueprint_id=blueprint.id,
            working_directory=workdir,
            launch_parameters=launch_parameters(task, network_policy_id),
        ),
        reference_output=reference_output(task),
        metadata=metadata,
        scorer_timeout_sec=math.ceil(task.verifier_timeout_sec or 600),
        scoring_scope="whole_filesystem",
    )


def checksum(params: ScenarioCreateParameters, blueprint: BlueprintView, hosts: list[str]) -> str:
    """Of everything the scenario is made of; the blueprint by its content-derived name, not its id."""
    data = params.model_dump(mode="json", exclude_none=True)
    env = data.get("environment_parameters", {})
    env.pop("blueprint_id", None)
    env.get("launch_parameters", {}).pop("network_policy_id", None)
    data["metadata"].pop(CHECKSUM_KEY, None)
    data["_blueprint"] = blueprint.name
    data["_allowed_hosts"] = sorted(hosts)
    return _digest(json.dumps(data, sort_keys=True).encode())


# --- talking to the backend ----------------------------------------------------------------------


async def _blueprint(backend: Backend, task: Task) -> BlueprintView:
    """The environment's blueprint: one already built (or building) under its content name, or a new build."""
    name = blueprint_name(task)
    existing = await backend.list_blueprints(name=name, limit=20)
    usable = [b for b in existing.blueprints if b.status != "failed"]
    if usable:
        return max(usable, key=lambda b: b.create_time_ms)
    context = None
    if task.context:
        archive = await anyio.to_thread.run_sync(pack_context, task.context, task.context_executables)
        uploaded = await backend.create_object(ObjectCreateParameters(name=f"{name}-context", content_type="tgz"))
        await backend.upload_object(uploaded.id, archive)
        await backend.complete_object(uploaded.id)
        context = ObjectContext(object_id=uploaded.id)
    return await backend.create_blueprint(
        BlueprintCreateParameters(
            name=name, dockerfile=blueprint_dockerfile(task), build_context=context, metadata={FORMAT_KEY: task.format}
        )
    )


async def _built(backend: Backend, task: Task, path: Path, blueprint: BlueprintView) -> BlueprintView:
    built = await backend.wait_for_blueprint(
        blueprint.id, timeout_seconds=task.build_timeout_sec or DEFAULT_BUILD_TIMEOUT
    )
    if built.status != "build_complete":
        raise TaskImportError(
            f"{path}: the environment did not build ({built.status}: {built.failure_message or built.failure_reason}); "
            f"see the build log with get_blueprint_logs {built.id}, fix environment/Dockerfile and import again"
        )
    return built


async def _network_policy(backend: Backend, task: Task) -> str | None:
    if task.network_mode != "allowlist":
        return None
    hosts = sorted(set(task.allowed_hosts))
    name = f"task-net-{_digest(*(h.encode() for h in hosts))[:16]}"
    found = await backend.list_network_policies(name=name, limit=1)
    if found.network_policies:
        return found.network_policies[0].id
    created = await backend.create_network_policy(
        NetworkPolicyCreateParameters(
            name=name, allow_all=False, allowed_hostnames=hosts, description="an imported task's allowed_hosts"
        )
    )
    return created.id


async def _imported(backend: Backend, name: str) -> ScenarioView | None:
    """The newest scenario of this name that an import made (authored ones are left alone)."""
    page = await backend.list_scenarios(name=name, limit=100)
    imported = [s for s in page.scenarios if CHECKSUM_KEY in s.metadata]
    return max(imported, key=lambda s: s.create_time_ms) if imported else None


async def import_task(backend: Backend, path: Path, task: Task, blueprint: BlueprintView) -> ImportResult:
    built = await _built(backend, task, path, blueprint)
    policy_id = await _network_policy(backend, task)
    params = scenario_parameters(task, built, policy_id)
    digest = checksum(params, built, task.allowed_hosts)
    assert params.metadata is not None
    params.metadata[CHECKSUM_KEY] = digest
    existing = await _imported(backend, task.name)
    if existing is None:
        view = await backend.create_scenario(params)
        action: Action = "created"
    elif existing.metadata.get(CHECKSUM_KEY) == digest:
        view, action = existing, "unchanged"
    else:
        update = ScenarioUpdateParameters.model_validate(params.model_dump(exclude={"name"}))
        if update.reference_output is None:
            update.reference_output = ""  # Runloop's way to clear a field
        view = await backend.update_scenario(existing.id, update)
        action = "updated"
    return ImportResult(
        path=str(path), name=task.name, scenario_id=view.id, action=action, blueprint_id=built.id, checksum=digest
    )


async def import_tasks(backend: Backend, paths: list[Path] | list[str]) -> list[ImportResult]:
    """Import task directories (Harbor or Terminal-Bench) and datasets (directories of them).

    Every task is read first, so a bad one stops the import before anything is made
    (TaskFormatError naming the file); then every environment's build starts, then each task
    waits for its build and becomes a scenario (TaskImportError when a build fails)."""
    directories = task_directories([Path(p) for p in paths])
    tasks = [(directory, read_task(directory)) for directory in directories]
    names = [task.name for _, task in tasks]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TaskFormatError(f"more than one task is named {', '.join(repeated)}; task names must be unique")
    blueprints: dict[str, BlueprintView] = {}
    for _, task in tasks:
        name = blueprint_name(task)
        if name not in blueprints:
            blueprints[name] = await _blueprint(backend, task)
    return [await import_task(backend, path, task, blueprints[blueprint_name(task)]) for path, task in tasks]
