"""Fixtures of the local engine's image tests: a real OCI registry on loopback."""

from __future__ import annotations

import socket
import threading
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


@pytest.fixture
def loopback_server() -> Iterator[int]:
    """A plain TCP server on the host's 127.0.0.1 that greets every connection."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.sendall(b"hello from the host\n")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()
