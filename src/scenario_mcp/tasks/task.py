"""A task read from files, in neither Harbor's nor Terminal-Bench's words: what a scenario and its
blueprint are made from (importer.py), and what export.py writes back as a Harbor task directory."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

TaskFormat = Literal["harbor", "terminal-bench"]

# Harbor's verifier files: the tests under /tests, the reward the verifier leaves.
TESTS_DIR = "/tests"
SOLUTION_DIR = "/solution"
MAX_TASK_FILE_BYTES = 64 << 20  # a test or solution file; a build context has its own cap


class TaskFormatError(ValueError):
    """A task directory that cannot be imported; the message names the file and what to change."""


@dataclass
class Task:
    name: str
    format: TaskFormat
    instruction: str
    dockerfile: str | None  # None when the environment is a prebuilt image
    docker_image: str | None
    context: dict[str, bytes]  # the build context's files (not the Dockerfile), by relative path
    tests: dict[str, bytes]  # placed under /tests when scoring; test.sh at the top
    solution: dict[str, bytes]  # placed under /solution by the oracle; solve.sh at the top
    workdir: str | None = None  # [environment].workdir, when the task names one
    verifier_timeout_sec: float | None = None
    agent_timeout_sec: float | None = None
    build_timeout_sec: float | None = None
    cpus: float | None = None
    memory_mb: int | None = None
    storage_mb: int | None = None
    network_mode: str | None = None  # "public" | "no-network" | "allowlist"
    allowed_hosts: list[str] = field(default_factory=list)
    verifier_env: dict[str, str] = field(default_factory=dict)
    environment_env: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # task.toml's [metadata], task.yaml's extras
    context_executables: set[str] = field(default_factory=set)  # the context's files with an x bit


def read_tree(
    root: Path, *, skip: frozenset[str] = frozenset(), executables: set[str] | None = None
) -> dict[str, bytes]:
    """Every regular file under `root` by its relative path (symlinks to files read through; a
    link out of the task is refused). `skip`: top-level names to leave out; `executables`
    collects the files with an execute bit."""
    files: dict[str, bytes] = {}
    if not root.is_dir():
        return files
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(root).as_posix()
            if rel.split("/", 1)[0] in skip:
                continue
            if not path.resolve().is_relative_to(real_root):
                raise TaskFormatError(f"{path} links outside the task directory; copy the file in instead")
            if not path.is_file():
                continue
            if path.stat().st_size > MAX_TASK_FILE_BYTES:
                raise TaskFormatError(f"{path} is over {MAX_TASK_FILE_BYTES >> 20} MiB")
            files[rel] = path.read_bytes()
            if executables is not None and path.stat().st_mode & 0o111:
                executables.add(rel)
        dirnames[:] = [d for d in dirnames if (here / d).relative_to(root).as_posix().split("/", 1)[0] not in skip]
    return files


def task_kind(directory: Path) -> TaskFormat | None:
    if (directory / "task.toml").is_file():
        return "harbor"
    if (directory / "task.yaml").is_file():
        return "terminal-bench"
    return None


def task_directories(paths: list[Path]) -> list[Path]:
    """Each path is a task directory or a dataset (a directory of task directories)."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise TaskFormatError(f"{path} is not a directory; give a task directory or a directory of them")
        if task_kind(path) is not None:
            found.append(path)
            continue
        inner = sorted(p for p in path.iterdir() if p.is_dir() and task_kind(p) is not None)
        if not inner:
            raise TaskFormatError(
                f"{path} holds no task: a Harbor task has task.toml, a Terminal-Bench task task.yaml "
                "(or give a directory of such task directories)"
            )
        found.extend(inner)
    return found
