"""Fixtures of the local engine's image tests: a real OCI registry on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .oci_registry import REGISTRY_BIN, Pusher, run_registry


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pusher]:
    """docker-registry on a free loopback port for the whole session, and a pusher to it."""
    if not REGISTRY_BIN.exists():
        pytest.skip("needs Debian's docker-registry (installed by EXTRAS=test scripts/setup.sh as root)")
    with run_registry(tmp_path_factory.mktemp("registry")) as address:
        pusher = Pusher(address)
        yield pusher
        pusher.http.close()
