"""The cost of the REST hop: `execute` of `true` through Runloop's REST API, next to the engine.

    .venv/bin/python benchmarks/bench_rest.py [--runs N]

All figures come from the same run, their samples interleaved so that a drift of the machine hits
all alike. The REST API is `scenario-mcp api`, its own process, as it is deployed:

(a) LocalBackend.execute(`true`): the engine itself, in this process (the baseline).
(b) Runloop's SDK (runloop-api-client 1.32.0) `devboxes.execute(command="true")` against
    `scenario-mcp api` on 127.0.0.1 (the same engine code, its own data dir); hop = (b) - (a).
(c) RemoteBackend.execute(`true`) against the same API (one `execute` request); hop = (c) - (a).
(b0), (c0) the same calls against `_canned_api.py`, which answers every request at once: the floor
    of the hop (the client library, loopback, the least any HTTP server does).
(d) MCP `execute_on_devbox` over stdio to `scenario-mcp serve` on the local backend.
(e) MCP `execute_on_devbox` over stdio to `scenario-mcp serve --backend remote`, which talks to
    the API of (b); hop = (e) - (d).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from _common import Figure, timed
from mcp import Client, StdioServerParameters
from runloop_api_client import AsyncRunloop

from scenario_mcp.local.blueprints import default_blueprint_id
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import DevboxCreateParameters
from scenario_mcp.remote import RemoteBackend

WARMUP = 5
GOAL_MS = 3.0
TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def serve(argv: list[str], port: int) -> AsyncIterator[tuple[str, int]]:
    """Run an HTTP server listening on `port` of 127.0.0.1; yields its URL and pid once it listens."""
    async with await anyio.open_process(argv) as process:
        with anyio.fail_after(30):
            while True:
                try:
                    await anyio.connect_tcp("127.0.0.1", port)
                    break
                except OSError:
                    await anyio.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}", process.pid
        finally:
            process.terminate()


def api_argv(data_dir: Path, port: int) -> list[str]:
    """`scenario-mcp api`, as deployed: its own process."""
    options = ["--data-dir", str(data_dir), "--port", str(port), "--token", TOKEN, "--log-level", "WARNING"]
    return [sys.executable, "-m", "scenario_mcp", "api", *options]


def canned_argv(port: int) -> list[str]:
    return [sys.executable, str(Path(__file__).with_name("_canned_api.py")), str(port)]


def process_cpu_ms(pid: int) -> float:
    """User + system CPU time of a process so far, in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


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


@dataclass
class Measured:
    """Wall-time samples of one figure, and the CPU its calls cost in all (client and server)."""

    wall: Figure
    cpu_ms: float = 0.0  # this process's, plus the API process's where the call goes there
    calls: int = 0

    @property
    def cpu_per_call(self) -> float:
        return self.cpu_ms / max(1, self.calls)


async def interleave(runs: int, figures: list[tuple[Measured, int | None, Callable[[], Awaitable[object]]]]) -> None:
    """Each round runs every figure once. CPU is summed over all timed calls (a process's CPU
    clock ticks in 10 ms, too coarse for one call), for this process and the server it called."""
    for i in range(WARMUP + runs):
        for measured, server_pid, fn in figures:
            own = time.process_time()
            server = process_cpu_ms(server_pid) if server_pid else 0.0
            ms = await timed(fn)
            if i >= WARMUP:
                measured.wall.samples.append(ms)
                measured.cpu_ms += (time.process_time() - own) * 1000
                if server_pid:
                    measured.cpu_ms += process_cpu_ms(server_pid) - server
                measured.calls += 1


def print_rows(runs: int, rows: list[tuple[str, Measured, Measured | None, bool]]) -> None:
    print()
    print(f"REST hop benchmarks: execute of `true` (p50 over {runs} runs, after {WARMUP} warm-up runs, interleaved)")
    header = (
        f"{'figure':<54} {'p50 ms':>7} {'p90 ms':>7} {'vs':>4} {'hop ms':>7} {'goal':>7}  ok"
        f"  {'cpu/call':>8} {'cpu hop':>7}"
    )
    print(header)
    print("-" * len(header))
    labels = {id(row[1]): row[0].split(" ", 1)[0] for row in rows}
    for label, measured, baseline, show_cpu in rows:
        figure = measured.wall
        line = f"{label:<54} {figure.p50:>7.2f} {figure.quantile(0.9):>7.2f}"
        if baseline is None:
            line += " " * 33
        else:
            hop = figure.p50 - baseline.wall.p50
            goal = "<= " + format(GOAL_MS, "g")
            line += f" {labels[id(baseline)]:>4} {hop:>7.2f} {goal:>7}  {'yes' if hop <= GOAL_MS else 'NO ':>3}"
        if show_cpu:
            line += f"  {measured.cpu_per_call:>8.2f}"
            if baseline is not None:
                line += f" {measured.cpu_per_call - baseline.cpu_per_call:>7.2f}"
        print(line)
    print()
    print("  hop = p50 of the figure minus p50 of the one it is compared with (vs), same run")
    print("  (b0), (c0): the client against a server that answers at once (_canned_api.py): the floor of the")
    print("        hop, what the client library and loopback cost before any API does anything")
    print("  cpu/call = mean CPU time per call of this process (client, and the engine for (a)) plus, for (b) and")
    print("        (c), of the API process (server and its engine); cpu hop is what the hop costs in work")
    print(
        f"  host: Linux {os.uname().release}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f} at the end"
    )


async def main(runs: int, root: Path) -> None:
    async with LocalBackend(root / "engine") as engine:
        print("building the default blueprint (once per data dir) ...", file=sys.stderr)
        await engine.blueprints.ensure_default()
        await seed_blueprint(engine, root / "mcp-local")
        await seed_blueprint(engine, root / "api")
        box = await engine.create_devbox(DevboxCreateParameters(name="bench"))
        api_port, canned_port = free_port(), free_port()
        async with (
            serve(api_argv(root / "api", api_port), api_port) as (url, api_pid),
            serve(canned_argv(canned_port), canned_port) as (canned_url, canned_pid),
            AsyncRunloop(bearer_token=TOKEN, base_url=url) as sdk,
            AsyncRunloop(bearer_token=TOKEN, base_url=canned_url, max_retries=0) as sdk_canned,
            RemoteBackend(url, TOKEN) as remote,
            RemoteBackend(canned_url, TOKEN, max_retries=0) as remote_canned,
            Client(mcp_server("--data-dir", str(root / "mcp-local"))) as mcp_local,
            Client(
                mcp_server("--backend", "remote", env={"RUNLOOP_BASE_URL": url, "RUNLOOP_API_KEY": TOKEN})
            ) as mcp_remote,
        ):
            api_box = (await remote.create_devbox(DevboxCreateParameters(name="bench"))).id
            local_box = (await tool(mcp_local, "create_devbox"))["id"]
            remote_box = (await tool(mcp_remote, "create_devbox"))["id"]

            async def engine_exec() -> None:
                assert (await engine.execute(box.id, "true")).exit_status == 0

            async def sdk_exec() -> None:
                result = await sdk.devboxes.execute(api_box, command="true")
                assert result.status == "completed" and result.exit_status == 0

            async def remote_exec() -> None:
                assert (await remote.execute(api_box, "true")).exit_status == 0

            async def sdk_canned_exec() -> None:
                assert (await sdk_canned.devboxes.execute("dbx_canned", command="true")).exit_status == 0

            async def remote_canned_exec() -> None:
                assert (await remote_canned.execute("dbx_canned", "true")).exit_status == 0

            async def mcp_local_exec() -> None:
                assert (await tool(mcp_local, "execute_on_devbox", devbox_id=local_box, command="true"))[
                    "exit_status"
                ] == 0

            async def mcp_remote_exec() -> None:
                assert (await tool(mcp_remote, "execute_on_devbox", devbox_id=remote_box, command="true"))[
                    "exit_status"
                ] == 0

            figures = {name: Measured(Figure(name)) for name in ["a", "b", "b0", "c", "c0", "d", "e"]}
            calls: list[tuple[str, int | None, Callable[[], Awaitable[object]]]] = [
                ("a", None, engine_exec),
                ("b", api_pid, sdk_exec),
                ("b0", canned_pid, sdk_canned_exec),
                ("c", api_pid, remote_exec),
                ("c0", canned_pid, remote_canned_exec),
                ("d", None, mcp_local_exec),
                ("e", None, mcp_remote_exec),
            ]
            print(f"timing {runs} runs of each figure ...", file=sys.stderr)
            await interleave(runs, [(figures[name], pid, fn) for name, pid, fn in calls])
            await tool(mcp_local, "shutdown_devbox", devbox_id=local_box)
            await tool(mcp_remote, "shutdown_devbox", devbox_id=remote_box)
            await remote.shutdown_devbox(api_box)
        await engine.shutdown_devbox(box.id)
    print_rows(
        runs,
        [
            ("(a) LocalBackend.execute, in process", figures["a"], None, True),
            ("(b) SDK devboxes.execute -> scenario-mcp api", figures["b"], figures["a"], True),
            ("(b0) the same SDK call -> a canned answer", figures["b0"], None, True),
            ("(c) RemoteBackend.execute -> scenario-mcp api", figures["c"], figures["a"], True),
            ("(c0) the same RemoteBackend call -> a canned answer", figures["c0"], None, True),
            ("(d) MCP execute_on_devbox, local backend", figures["d"], None, False),
            ("(e) MCP execute_on_devbox, remote backend -> REST", figures["e"], figures["d"], False),
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
