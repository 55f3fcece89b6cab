"""Shared fixtures: a real LocalBackend on a fresh data dir per test.

Building the default blueprint (a venv with pytest) takes seconds and needs PyPI, so it is built
once per test session and linked into each test's data dir as a read-only layer.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest

from scenario_mcp.local.blueprints import default_blueprint_id
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.images import pull_image
from scenario_mcp.local.layers import LayerStore

from .local.oci_registry import DEBIAN_PATH, REGISTRY_BIN, Pusher, debian_tar, run_registry


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def default_blueprint_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose default blueprint is built; its layer and row are reused by every test."""
    import anyio

    data_dir = tmp_path_factory.mktemp("blueprint-cache")

    async def build() -> None:
        async with LocalBackend(data_dir) as backend:
            await backend.blueprints.ensure_default()

    anyio.run(build)
    return data_dir


async def seed_default_blueprint(backend: LocalBackend, cache: Path) -> None:
    blueprint_id = default_blueprint_id()
    link = backend.devboxes.layers.path(blueprint_id)
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(cache / "layers" / blueprint_id, link)
    async with LocalBackend(cache) as source:
        row = await source._store.get("blueprints", blueprint_id)
    assert row is not None
    await backend._store.put(
        "blueprints",
        blueprint_id,
        row.data,
        internal=row.internal,
        name=row.data["name"],
        state=row.data["status"],
    )


async def shutdown_all(engine: LocalBackend) -> None:
    """Shut down every devbox a test left alive: running, or suspended (frozen, not gone)."""
    for status in ("running", "suspended"):
        for box in (await engine.list_devboxes(limit=5000, status=status)).devboxes:
            await engine.shutdown_devbox(box.id)


def fields_named(message: str) -> set[str]:
    """The fields a refusal names. A validation message (input_errors.py: `a.0.b: why; c: why`)
    names the parts of its paths, not the fields it lists as expected; any other names what it says."""
    for lead in ("invalid request: ", "invalid arguments for "):
        if lead in message:
            parts = message.split(lead, 1)[1].split("; ")
            if lead.startswith("invalid arguments"):
                parts[0] = parts[0].partition(": ")[2]  # past the tool's name
            return {name for part in parts for name in part.split(": ", 1)[0].split(".")}
    return set(re.findall(r"\w+", message))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def backend(data_dir: Path, default_blueprint_cache: Path) -> AsyncIterator[LocalBackend]:
    async with LocalBackend(data_dir) as engine:
        await seed_default_blueprint(engine, default_blueprint_cache)
        try:
            yield engine
        finally:
            await shutdown_all(engine)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pusher]:
    """docker-registry on a free loopback port for the whole session, and a pusher to it."""
    if not REGISTRY_BIN.exists():
        pytest.skip("needs Debian's docker-registry (installed by EXTRAS=test scripts/setup.sh as root)")
    with run_registry(tmp_path_factory.mktemp("registry")) as address:
        pusher = Pusher(address)
        yield pusher
        pusher.http.close()


@pytest.fixture(scope="session")
def debian_image(registry: Pusher, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A realistic base image (Debian with bash, coreutils and python3) in the loopback registry,
    and a layer store it was pulled into once (tests link it in: see `seed_image`)."""
    reference = f"{registry.address}/test/debian:bookworm"
    registry.image(
        "test/debian",
        "bookworm",
        [debian_tar().read_bytes()],
        compression="none",
        config={"Env": [f"PATH={DEBIAN_PATH}"]},
    )
    layers = tmp_path_factory.mktemp("debian-image") / "layers"
    anyio.run(pull_image, reference, LayerStore(layers))
    return reference, layers
