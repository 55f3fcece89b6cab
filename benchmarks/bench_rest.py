"""The cost of the REST hop: `execute` of `true` through Runloop's REST API, next to the engine.

    .venv/bin/python benchmarks/bench_rest.py [--runs N]

All figures come from the same run, on the same engine, their samples interleaved so that a drift
of the machine hits all alike:

(a) LocalBackend.execute(`true`): the engine itself, in process (the baseline).
(b) Runloop's SDK (runloop-api-client 1.32.0) `devboxes.execute(command="true")` against
    `build_rest_app` served by uvicorn on 127.0.0.1 over that engine; hop = (b) - (a).
(c) RemoteBackend.execute(`true`) against the same server (execute_async + wait_for_status, two
    HTTP requests); hop = (c) - (a).
(d) MCP `execute_on_devbox` over stdio to `scenario-mcp serve` on the local backend (its own data
    dir holding the same default blueprint).
(e) MCP `execute_on_devbox` over stdio to `scenario-mcp serve --backend remote`, which talks to the
    REST server of (b); hop = (e) - (d).

Goal: the REST hop adds at most 3 ms at p50 on loopback. The first run builds the default
blueprint (a venv with pytest, from PyPI, ~10 s) before any timing.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from _common import Figure, timed
from mcp import Client, StdioServerParameters
from runloop_api_client import AsyncRunloop

from scenario_mcp.local.devboxes import default_blueprint_id
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import DevboxCreateParameters
from scenario_mcp.remote import RemoteBackend
from scenario_mcp.rest_api import build_rest_app

WARMUP = 5
GOAL_MS = 3.0
TOKEN = "bench-token"


@asynccontextmanager
async def serve(engine: LocalBackend) -> AsyncIterator[str]:
    """The REST API on a free port of 127.0.0.1, in this event loop (the engine's)."""
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it every response written in two parts waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(build_rest_app(engine, token=TOKEN), lifespan="off", access_log=False, log_level="warning")
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        while not server.started:
            await anyio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True


async def seed_blueprint(source: LocalBackend, data_dir: Path) -> None:
    """Give another data dir the default blueprint already built here (a link, not a rebuild)."""
    blueprint_id = default_blueprint_id()
    row = await source._store.get("blueprints", blueprint_id)
    assert row is not None
    async with LocalBackend(data_dir) as target:
        link = target.devboxes.layers.path(blueprint_id)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            os.symlink(source.devboxes.layers.path(blueprint_id), link)
        await target._store.put(
            "blueprints", blueprint_id, row.data, internal=row.internal, name=row.data["name"], state=row.data["status"]
        )


def mcp_server(*args: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "scenario_mcp", "serve", "--log-level", "WARNING", *args],
        env={"PATH": os.environ.get("PATH", ""), **(env or {})},
    )


async def tool(client: Client, name: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error and result.structured_content is not None, result.content
    return dict(result.structured_content)


async def interleave(runs: int, figures: list[tuple[Figure, Figure, Callable[[], Awaitable[object]]]]) -> None:
    """Each round runs every figure once; wall time and this process's CPU time are both kept."""
    for i in range(WARMUP + runs):
        for wall, cpu, fn in figures:
            started_cpu = time.process_time()
            ms = await timed(fn)
            if i >= WARMUP:
                wall.samples.append(ms)
                cpu.samples.append((time.process_time() - started_cpu) * 1000)


def print_rows(runs: int, rows: list[tuple[str, Figure, Figure | None, Figure | None, Figure | None]]) -> None:
    print()
    print(f"REST hop benchmarks: execute of `true` (p50 over {runs} runs, after {WARMUP} warm-up runs, interleaved)")
    header = (
        f"{'figure':<54} {'p50 ms':>7} {'p90 ms':>7} {'vs':>4} {'hop ms':>7} {'goal':>7}  ok"
        f"  {'cpu p50':>7} {'cpu hop':>7}"
    )
    print(header)
    print("-" * len(header))
    labels = {id(row[1]): row[0].split(" ", 1)[0] for row in rows}
    for label, figure, baseline, cpu, cpu_baseline in rows:
        line = f"{label:<54} {figure.p50:>7.2f} {figure.quantile(0.9):>7.2f}"
        if baseline is None:
            line += " " * 33
        else:
            hop = figure.p50 - baseline.p50
            goal = "<= " + format(GOAL_MS, "g")
            line += f" {labels[id(baseline)]:>4} {hop:>7.2f} {goal:>7}  {'yes' if hop <= GOAL_MS else 'NO ':>3}"
        if cpu is not None:
            line += f"  {cpu.p50:>7.2f}"
        if cpu is not None and cpu_baseline is not None:
            line += f" {cpu.p50 - cpu_baseline.p50:>7.2f}"
        print(line)
    print()
    print("  hop = p50 of the figure minus p50 of the one it is compared with (vs), same run")
    print("  cpu = CPU time of this process per call; for (a)-(c) the client, the REST server and the engine all")
    print("        run here, so cpu hop is what the hop costs in work, whatever else the host is doing")
    print(
        f"  host: Linux {os.uname().release}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f} at the end"
    )


async def main(runs: int, root: Path) -> None:
    async with LocalBackend(root / "engine") as engine:
        print("building the default blueprint (once per data dir) ...", file=sys.stderr)
        await engine.devboxes.ensure_default_blueprint()
        await seed_blueprint(engine, root / "mcp-local")
        box = await engine.create_devbox(DevboxCreateParameters(name="bench"))
        async with (
            serve(engine) as url,
            AsyncRunloop(bearer_token=TOKEN, base_url=url) as sdk,
            RemoteBackend(url, TOKEN) as remote,
            Client(mcp_server("--data-dir", str(root / "mcp-local"))) as mcp_local,
            Client(
                mcp_server("--backend", "remote", env={"RUNLOOP_BASE_URL": url, "RUNLOOP_API_KEY": TOKEN})
            ) as mcp_remote,
        ):
            local_box = (await tool(mcp_local, "create_devbox"))["id"]
            remote_box = (await tool(mcp_remote, "create_devbox"))["id"]

            async def engine_exec() -> None:
                assert (await engine.execute(box.id, "true")).exit_status == 0

            async def sdk_exec() -> None:
                result = await sdk.devboxes.execute(box.id, command="true")
                assert result.status == "completed" and result.exit_status == 0

            async def remote_exec() -> None:
                assert (await remote.execute(box.id, "true")).exit_status == 0

            async def mcp_local_exec() -> None:
                assert (await tool(mcp_local, "execute_on_devbox", devbox_id=local_box, command="true"))[
                    "exit_status"
                ] == 0

            async def mcp_remote_exec() -> None:
                assert (await tool(mcp_remote, "execute_on_devbox", devbox_id=remote_box, command="true"))[
                    "exit_status"
                ] == 0

            names = ["a", "b", "c", "d", "e"]
            wall = {n: Figure(n) for n in names}
            cpu = {n: Figure(n) for n in names}
            calls = [engine_exec, sdk_exec, remote_exec, mcp_local_exec, mcp_remote_exec]
            print(f"timing {runs} runs of each figure ...", file=sys.stderr)
            await interleave(runs, [(wall[n], cpu[n], fn) for n, fn in zip(names, calls, strict=True)])
            await tool(mcp_local, "shutdown_devbox", devbox_id=local_box)
            await tool(mcp_remote, "shutdown_devbox", devbox_id=remote_box)
        await engine.shutdown_devbox(box.id)
    print_rows(
        runs,
        [
            ("(a) LocalBackend.execute, in process", wall["a"], None, cpu["a"], None),
            ("(b) SDK devboxes.execute -> REST API", wall["b"], wall["a"], cpu["b"], cpu["a"]),
            ("(c) RemoteBackend.execute -> REST API", wall["c"], wall["a"], cpu["c"], cpu["a"]),
            ("(d) MCP execute_on_devbox, local backend", wall["d"], None, None, None),
            ("(e) MCP execute_on_devbox, remote backend -> REST", wall["e"], wall["d"], None, None),
        ],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100, help="timed runs per figure (default 100)")
    parser.add_argument("--data-dir", type=Path, help="reuse this directory (default: a fresh temporary one)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.data_dir is not None:
        anyio.run(main, args.runs, args.data_dir)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="scenario-mcp-bench-rest-"))
        try:
            anyio.run(main, args.runs, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
