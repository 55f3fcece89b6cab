"""Task directories made FROM the loopback registry's Debian image, so imports build in seconds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scenario_mcp.local.engine import LocalBackend
from tests.local.conftest import seed_image

# The task directories' own test files are the tasks', not this suite's.
collect_ignore_glob = ["harbor/*", "terminal_bench/*"]


def task_copy(source: Path, target: Path, image: str) -> Path:
    """A copy of a task whose Dockerfile starts FROM `image` instead of Docker Hub's debian."""
    shutil.copytree(source, target)
    for dockerfile in (target / "Dockerfile", target / "environment" / "Dockerfile"):
        if dockerfile.exists():
            dockerfile.write_text(dockerfile.read_text().replace("FROM debian:bookworm", f"FROM {image}"))
    return target


@pytest.fixture
def image(backend: LocalBackend, debian_image: tuple[str, Path]) -> str:
    reference, pulled = debian_image
    seed_image(backend, pulled)
    return reference
