"""Clean stops (issue 15): a real `scenario-mcp api` / `serve` subprocess told SIGTERM or SIGINT
stops taking work, lets what is in flight commit, checkpoints its WAL and exits 0 within 5 s, its
devboxes still running; a devbox the next server reattached shuts down as fast as a new one."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from anyio.abc import Process

from scenario_mcp.local.engine import LocalBackend

from .conftest import seed_default_blueprint

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

STOP_WITHIN = 5.0
DB_NAME = "scenario-mcp.sqlite3"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _seeded(tmp_path: Path, cache: Path) -> Path:
    data_dir = tmp_path / "data"
    async with LocalBackend(data_dir) as engine:
        await seed_default_blueprint(engine, cache)
    return data_dir


@asynccontextmanager
async def _api(data_dir: Path) -> AsyncIterator[tuple[Process, httpx2.AsyncClient]]:
    port = _free_port()
    argv = [sys.executable, "-m", "scenario_mcp", "api", "--port", str(port), "--data-dir", str(data_dir)]
    process = await anyio.open_process(argv, stdout=None, stderr=None)
    try:
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            with anyio.fail_after(30):
                while True:
                    try:
                        await client.get("/healthz")
                        break
                    except httpx2.ConnectError:
                        assert process.returncode is None
                        await anyio.sleep(0.05)
            yield process, client
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _stop(process: Process, sig: signal.Signals) -> tuple[int, float]:
    started = time.monotonic()
    process.send_signal(sig)
    with anyio.fail_after(STOP_WITHIN + 5):
        code = await process.wait()
    return code, time.monotonic() - started


def _init_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _checked_db(data_dir: Path) -> sqlite3.Connection:
    """The database as the stopped server left it: its WAL checkpointed away, intact."""
    wal = data_dir / f"{DB_NAME}-wal"
    assert not wal.exists() or wal.stat().st_size == 0, wal.stat().st_size
    db = sqlite3.connect(data_dir / DB_NAME)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return db


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_api_stops_cleanly_and_reattached_devboxes_shut_down_fast(
    tmp_path: Path, default_blueprint_cache: Path, sig: signal.Signals
) -> None:
    data_dir = await _seeded(tmp_path, default_blueprint_cache)
    async with _api(data_dir) as (process, client):
        kept = (await client.post("/v1/devboxes", json={"name": "kept"})).json()
        # A create in flight when the stop comes: it either commits whole or was never taken.
        async with anyio.create_task_group() as tg:
            answers: list[httpx2.Response | Exception] = []

            async def create() -> None:
                try:
                    answers.append(await client.post("/v1/devboxes", json={"name": "in-flight"}))
                except httpx2.HTTPError as exc:
                    answers.append(exc)

            tg.start_soon(create)
            await anyio.sleep(0.01)
            code, took = await _stop(process, sig)
    assert code == 0 and took < STOP_WITHIN, (code, took)
    db = _checked_db(data_dir)
    rows = {name: json.loads(data) for name, data in db.execute("SELECT name, data FROM devboxes")}
    internal = {name: json.loads(data) for name, data in db.execute("SELECT name, internal FROM devboxes")}
    db.close()
    assert rows["kept"]["status"] == "running"
    (answer,) = answers
    if isinstance(answer, httpx2.Response) and answer.status_code == 200:
        assert rows["in-flight"]["status"] == "running"  # acknowledged, so stored
    # Devboxes keep running past their server (the README says so).
    assert _init_alive(internal["kept"]["init_pid"])

    async with _api(data_dir) as (process, client):
        fresh = (await client.post("/v1/devboxes", json={"name": "fresh"})).json()
        started = time.monotonic()
        assert (await client.post(f"/v1/devboxes/{fresh['id']}/shutdown")).json()["status"] == "shutdown"
        fresh_took = time.monotonic() - started
        started = time.monotonic()
        reattached = (await client.post(f"/v1/devboxes/{kept['id']}/shutdown")).json()
        reattached_took = time.monotonic() - started
        assert reattached["status"] == "shutdown"
        assert not _init_alive(internal["kept"]["init_pid"])
        for row in (await client.get("/v1/devboxes", params={"status": "running"})).json()["devboxes"]:
            await client.post(f"/v1/devboxes/{row['id']}/shutdown")
        code, _ = await _stop(process, signal.SIGTERM)
    assert code == 0
    # No waiting on another process's reaper: as fast as one this server started (0.5 s before).
    assert reattached_took < fresh_took + 0.2, (reattached_took, fresh_took)


@pytest.mark.parametrize(("transport", "sig"), [("stdio", signal.SIGTERM), ("http", signal.SIGINT)])
async def test_serve_stops_cleanly_with_its_client_still_connected(
    tmp_path: Path, transport: str, sig: signal.Signals
) -> None:
    data_dir = tmp_path / "data"
    argv = [sys.executable, "-m", "scenario_mcp", "serve", "--data-dir", str(data_dir), "--transport", transport]
    if transport == "http":
        argv += ["--port", "0"]
    log = tmp_path / "serve.log"
    with open(log, "wb") as stderr:
        process = await anyio.open_process(argv, stderr=stderr)
    try:
        if transport == "stdio":
            assert process.stdin is not None and process.stdout is not None
            initialize = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                },
            }
            await process.stdin.send(json.dumps(initialize).encode() + b"\n")
            with anyio.fail_after(30):
                answer = await process.stdout.receive()
            assert b'"id":1' in answer
            # stdin stays open: the client has not gone, the stop must not wait for it.
        else:
            with anyio.fail_after(30):
                while b"serving streamable HTTP" not in log.read_bytes():
                    assert process.returncode is None, log.read_text()
                    await anyio.sleep(0.05)
        code, took = await _stop(process, sig)
        assert code == 0 and took < STOP_WITHIN, (code, took, log.read_text()[-2000:])
        _checked_db(data_dir).close()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
