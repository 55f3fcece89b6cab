"""Harbor's task directory (schema 1.4), read into a Task and written back from one.

```
task.toml          [task] name, description; [metadata]; [verifier] timeout_sec, env;
                   [agent] timeout_sec; [environment] docker_image, workdir, cpus, memory_mb,
                   storage_mb, network_mode, allowed_hosts, env, build_timeout_sec
instruction.md     the problem statement
environment/       Dockerfile and its build context (none with [environment].docker_image)
tests/test.sh      the verifier (and whatever else tests/ holds)
solution/solve.sh  the oracle
```
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

from .task import Task, TaskFormatError, read_tree

SCHEMA_VERSION = "1.4"
NETWORK_MODES = ("public", "no-network", "allowlist")


def _table(data: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise TaskFormatError(f"{path}: [{name}] must be a table")
    return value


def _number(table: dict[str, Any], key: str, where: str) -> float | None:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise TaskFormatError(f"{where}.{key} must be a positive number, got {value!r}")
    return float(value)


def _env(table: dict[str, Any], where: str) -> dict[str, str]:
    value = table.get("env", {})
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise TaskFormatError(f"{where}.env must be a table of NAME = value")
    return {k: str(v) for k, v in value.items()}


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise TaskFormatError(f"{path} is not UTF-8 text") from None


def read_harbor(directory: Path) -> Task:
    toml_path = directory / "task.toml"
    data = _read_toml(toml_path)
    where = str(toml_path)
    task = _table(data, "task", toml_path)
    verifier = _table(data, "verifier", toml_path)
    agent = _table(data, "agent", toml_path)
    environment = _table(data, "environment", toml_path)
    metadata = _table(data, "metadata", toml_path)
    _check_supported(directory, where, verifier, environment)
    instruction = _read_instruction(directory)
    dockerfile, docker_image, context, executables = _read_environment(directory, where, environment)
    tests, solution = _read_verifier_and_oracle(directory)
    network_mode, allowed = _network(where, environment, agent)
    workdir = environment.get("workdir")
    if workdir is not None and (not isinstance(workdir, str) or not workdir.startswith("/")):
        raise TaskFormatError(f"{where}: [environment].workdir must be an absolute path")
    memory = _number(environment, "memory_mb", "[environment]")
    storage = _number(environment, "storage_mb", "[environment]")
    name = task.get("name") or directory.resolve().name
    return Task(
        name=str(name).replace("/", "-"),
        format="harbor",
        instruction=instruction,
        dockerfile=dockerfile,
        docker_image=docker_image,
        context=context,
        tests=tests,
        solution=solution,
        workdir=workdir,
        verifier_timeout_sec=_number(verifier, "timeout_sec", "[verifier]"),
        agent_timeout_sec=_number(agent, "timeout_sec", "[agent]"),
        build_timeout_sec=_number(environment, "build_timeout_sec", "[environment]"),
        cpus=_number(environment, "cpus", "[environment]"),
        memory_mb=None if memory is None else int(memory),
        storage_mb=None if storage is None else int(storage),
        network_mode="allowlist" if allowed else network_mode,
        allowed_hosts=list(allowed),
        verifier_env=_env(verifier, "[verifier]"),
        environment_env=_env(environment, "[environment]"),
        description=task.get("description"),
        metadata=metadata,
        context_executables=executables - {"Dockerfile"},
    )


def _read_toml(toml_path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(_text(toml_path))
    except tomllib.TOMLDecodeError as exc:
        raise TaskFormatError(f"{toml_path}: {exc}") from None


def _check_supported(directory: Path, where: str, verifier: dict[str, Any], environment: dict[str, Any]) -> None:
    """Refuse what a devbox here cannot give the task: a verifier environment of its own, GPUs, not Linux."""
    if verifier.get("environment_mode", "shared") != "shared" or (directory / "tests" / "Dockerfile").exists():
        raise TaskFormatError(
            f"{directory}: the verifier needs an environment of its own (environment_mode = "
            f"{verifier.get('environment_mode', 'shared')!r}, or tests/Dockerfile); scenario-mcp scores in the "
            "agent's own environment only (Harbor's shared mode): remove tests/Dockerfile and environment_mode"
        )
    gpus = environment.get("gpus") or 0
    if gpus:
        raise TaskFormatError(f"{where}: the task asks for {gpus} GPU(s) ([environment].gpus); devboxes here have none")
    if environment.get("os", "linux") != "linux":
        raise TaskFormatError(f"{where}: [environment].os = {environment['os']!r}; devboxes here are Linux only")


def _read_instruction(directory: Path) -> str:
    instruction_path = directory / "instruction.md"
    if not instruction_path.is_file():
        raise TaskFormatError(f"{directory}: instruction.md is missing; it holds the task's text")
    instruction = _text(instruction_path)
    if not instruction.strip():
        raise TaskFormatError(f"{instruction_path} is empty")
    return instruction


def _read_environment(
    directory: Path, where: str, environment: dict[str, Any]
) -> tuple[str | None, str | None, dict[str, bytes], set[str]]:
    """The Dockerfile, its build context and the context's executables; or, with no Dockerfile, the
    image to start from (Harbor builds the Dockerfile when there is one, whatever docker_image says)."""
    env_dir = directory / "environment"
    docker_image = environment.get("docker_image")
    dockerfile_path = env_dir / "Dockerfile"
    if docker_image is not None and not isinstance(docker_image, str):
        raise TaskFormatError(f"{where}: [environment].docker_image must be a string")
    executables: set[str] = set()
    if dockerfile_path.is_file():
        dockerfile = _text(dockerfile_path)
        context = read_tree(env_dir, executables=executables)
        context.pop("Dockerfile", None)
        return dockerfile, None, context, executables
    if docker_image:
        return None, docker_image, {}, executables
    raise TaskFormatError(f"{directory}: no environment: add environment/Dockerfile or set [environment].docker_image")


def _read_verifier_and_oracle(directory: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    tests = read_tree(directory / "tests")
    if "test.sh" not in tests:
        raise TaskFormatError(f"{directory}: tests/test.sh is missing; it is the verifier Harbor runs")
    solution = read_tree(directory / "solution")
    if solution and "solve.sh" not in solution:
        raise TaskFormatError(f"{directory}: solution/ has no solve.sh; the oracle runs solution/solve.sh")
    return tests, solution


def _network(where: str, environment: dict[str, Any], agent: dict[str, Any]) -> tuple[str | None, list[str]]:
    """network_mode and allowed_hosts, from [environment], else from [agent]."""
    network_mode = environment.get("network_mode", agent.get("network_mode"))
    allowed = environment.get("allowed_hosts", agent.get("allowed_hosts")) or []
    if network_mode is not None and network_mode not in NETWORK_MODES:
        raise TaskFormatError(f"{where}: network_mode {network_mode!r} is not one of {', '.join(NETWORK_MODES)}")
    if not isinstance(allowed, list) or not all(isinstance(h, str) for h in allowed):
        raise TaskFormatError(f"{where}: allowed_hosts must be a list of host names")
    if allowed and network_mode not in (None, "allowlist"):
        raise TaskFormatError(f'{where}: allowed_hosts goes with network_mode = "allowlist", not {network_mode!r}')
    return network_mode, allowed


# --- writing ------------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def _toml_table(name: str, values: dict[str, Any]) -> str:
    lines = [f"[{name}]"]
    lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in values.items() if v is not None and v != {}]
    return "\n".join(lines) + "\n"


def task_toml(task: Task) -> str:
    environment: dict[str, Any] = {
        "docker_image": task.docker_image,
        "workdir": task.workdir,
        "build_timeout_sec": task.build_timeout_sec,
        "cpus": task.cpus,
        "memory_mb": task.memory_mb,
        "storage_mb": task.storage_mb,
        "network_mode": task.network_mode,
        "allowed_hosts": task.allowed_hosts or None,
        "env": task.environment_env,
    }
    parts = [
        f'schema_version = "{SCHEMA_VERSION}"\n',
        _toml_table("task", {"name": task.name, "description": task.description}),
        _toml_table("metadata", task.metadata),
        _toml_table("verifier", {"timeout_sec": task.verifier_timeout_sec, "env": task.verifier_env}),
        _toml_table("agent", {"timeout_sec": task.agent_timeout_sec}),
        _toml_table("environment", environment),
    ]
    return "\n".join(parts)


def task_files(task: Task) -> dict[str, bytes]:
    """Every file of the task's Harbor directory, by relative path."""
    files = {"task.toml": task_toml(task).encode(), "instruction.md": task.instruction.encode()}
    if task.dockerfile is not None:
        files["environment/Dockerfile"] = task.dockerfile.encode()
        files.update({f"environment/{rel}": data for rel, data in task.context.items()})
    files.update({f"tests/{rel}": data for rel, data in task.tests.items()})
    files.update({f"solution/{rel}": data for rel, data in task.solution.items()})
    return files


def write_harbor(task: Task, directory: Path) -> None:
    """Write `task` as a Harbor task directory (created; must be empty if it exists)."""
    if directory.exists() and any(directory.iterdir()):
        raise TaskFormatError(f"{directory} is not empty; export into a new or empty directory")
    for rel, data in task_files(task).items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if rel.endswith(".sh") or rel.removeprefix("environment/") in task.context_executables:
            path.chmod(0o755)
