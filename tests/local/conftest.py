"""Fixtures of the local engine's image tests: a real OCI registry on loopback, and a realistic
Debian image in it."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.layers import IMAGES


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


def seed_image(backend: LocalBackend, pulled: Path) -> None:
    """Give an engine the pulled image without pulling it again: its layers linked, its record copied."""
    store = backend.devboxes.layers
    store.image_layers.mkdir(parents=True, exist_ok=True)
    for layer in (pulled / store.image_layers.name).iterdir():
        if not (store.image_layers / layer.name).exists():
            os.symlink(layer, store.image_layers / layer.name)
    (store.root / IMAGES).mkdir(parents=True, exist_ok=True)
    for record in (pulled / IMAGES).iterdir():
        shutil.copy(record, store.root / IMAGES / record.name)
