"""A scenario written back as a Harbor task directory: the inverse of importer.py, so that
import -> export -> import gives the same scenario (the same content checksum)."""

from __future__ import annotations

import base64
import io
import json
import re
import tarfile
from pathlib import Path

from ..backend import Backend, InvalidRequestError
from ..models import HARBOR_VERIFIER, CustomScorer, HarborVerifierParams, ScenarioView
from .harbor import write_harbor
from .importer import (
    AGENT_TIMEOUT_KEY,
    BUILD_TIMEOUT_KEY,
    BUNDLE_EOF,
    DESCRIPTION_KEY,
    ENV_MARKER,
    ENVIRONMENT_ENV_KEY,
    FALLBACK_WORKDIR,
    SOLUTION_BUNDLE,
    TASK_METADATA_KEY,
)
from .task import SOLUTION_DIR, Task

_BUNDLED_FILE = re.compile(
    rf"base64 -d > '?{re.escape(SOLUTION_DIR)}/(?P<path>[^'\n]+)'? <<'{BUNDLE_EOF}'\n(?P<data>.*?)\n{BUNDLE_EOF}\n",
    re.DOTALL,
)
_ONLY_FROM = re.compile(r"^FROM (\S+)\n$")


def _verifier(scenario: ScenarioView) -> HarborVerifierParams:
    functions = scenario.scoring_contract.scoring_function_parameters
    scorers = [f.scorer for f in functions]
    if (
        len(scorers) != 1
        or not isinstance(scorers[0], CustomScorer)
        or scorers[0].custom_scorer_type != HARBOR_VERIFIER
    ):
        raise InvalidRequestError(
            f"scenario {scenario.id} is not scored by one {HARBOR_VERIFIER} (an imported task's tests), so it has no "
            "Harbor tests/ to write; only scenarios imported from task directories export"
        )
    return HarborVerifierParams.model_validate(scorers[0].scorer_params or {})


def _solution(reference: str | None) -> dict[str, bytes]:
    if not reference:
        return {}
    if not reference.startswith(SOLUTION_BUNDLE):
        return {"solve.sh": reference.encode()}
    return {m["path"]: base64.decodebytes(m["data"].encode()) for m in _BUNDLED_FILE.finditer(reference)}


def _unpack(archive: bytes) -> tuple[dict[str, bytes], set[str]]:
    """A build context's files, and those with an execute bit."""
    files: dict[str, bytes] = {}
    executables: set[str] = set()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
        for member in tar.getmembers():
            extracted = tar.extractfile(member) if member.isfile() else None
            if extracted is not None:
                name = member.name.removeprefix("./")
                files[name] = extracted.read()
                if member.mode & 0o111:
                    executables.add(name)
    return files, executables


def _number(text: str | None) -> float | None:
    return None if text is None else float(text)


async def scenario_task(backend: Backend, scenario_id: str) -> Task:
    """The task a scenario was imported from (or would be), read back from the scenario and its blueprint."""
    scenario = await backend.get_scenario(scenario_id)
    verifier = _verifier(scenario)
    env = scenario.environment
    if env is None or env.blueprint_id is None:
        raise InvalidRequestError(f"scenario {scenario.id} has no blueprint environment to write as environment/")
    blueprint = await backend.get_blueprint(env.blueprint_id)
    dockerfile = str(blueprint.parameters.get("dockerfile") or "")
    if not dockerfile:
        raise InvalidRequestError(f"blueprint {blueprint.id} has no Dockerfile to write as environment/Dockerfile")
    task_part, marker, _env = dockerfile.partition(f"\n{ENV_MARKER}\n")
    dockerfile = task_part + "\n" if marker else task_part  # the ENV lines are [environment].env's
    context_object = (blueprint.parameters.get("build_context") or {}).get("object_id")
    context, executables = _unpack(await backend.download_object(context_object)) if context_object else ({}, set())
    only_from = _ONLY_FROM.match(dockerfile)
    docker_image = only_from.group(1) if only_from and not context else None

    launch = env.launch_parameters
    network_mode, hosts = "no-network", []
    if launch is not None and launch.network_policy_id:
        policy = await backend.get_network_policy(launch.network_policy_id)
        network_mode, hosts = "allowlist", sorted(policy.egress.allowed_hostnames)
    elif launch is not None and launch.network:
        network_mode = "public"
    custom = launch is not None and launch.resource_size_request == "CUSTOM_SIZE"
    image_workdir = (blueprint.image_config or {}).get("working_dir") or FALLBACK_WORKDIR
    metadata = scenario.metadata
    return Task(
        name=scenario.name,
        format="harbor",
        instruction=scenario.input_context.problem_statement,
        dockerfile=None if docker_image else dockerfile,
        docker_image=docker_image,
        context=context,
        context_executables=executables,
        tests={
            f.path: base64.b64decode(f.contents) if f.encoding == "base64" else f.contents.encode()
            for f in verifier.tests
        },
        solution=_solution(scenario.reference_output),
        workdir=None if scenario.working_directory == image_workdir else scenario.working_directory,
        verifier_timeout_sec=float(scenario.scorer_timeout_sec),
        agent_timeout_sec=_number(metadata.get(AGENT_TIMEOUT_KEY)),
        build_timeout_sec=_number(metadata.get(BUILD_TIMEOUT_KEY)),
        cpus=float(launch.custom_cpu_cores) if custom and launch and launch.custom_cpu_cores else None,
        memory_mb=launch.custom_gb_memory * 1024 if custom and launch and launch.custom_gb_memory else None,
        storage_mb=launch.custom_disk_size * 1024 if custom and launch and launch.custom_disk_size else None,
        network_mode=network_mode,
        allowed_hosts=hosts,
        verifier_env=dict(verifier.env),
        environment_env=json.loads(metadata[ENVIRONMENT_ENV_KEY]) if ENVIRONMENT_ENV_KEY in metadata else {},
        description=metadata.get(DESCRIPTION_KEY),
        metadata=json.loads(metadata[TASK_METADATA_KEY]) if TASK_METADATA_KEY in metadata else {},
    )


async def export_scenario(backend: Backend, scenario_id: str, directory: Path) -> Path:
    """Write the scenario as a Harbor task directory at `directory` (new or empty)."""
    task = await scenario_task(backend, scenario_id)
    write_harbor(task, directory)
    return directory
