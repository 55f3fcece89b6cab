"""Agent mounts: what a mounted agent costs a devbox's start, and what installing one costs over the
package manager alone.

(m)  LocalBackend.create_devbox(snapshot_id, mounts=[one agent_mount]); floor: the same create
     without the mount, alternately (each devbox shut down after, untimed). Goal: within 1 ms of
     the floor at p50. Back to back, and spaced (100 ms after the last: the spawner's next sandbox
     prepared, as between an agent's calls).
(m') Sandbox.start alone with the agent's layer mounted vs without: (m) without the engine's
     bookkeeping, for insight.
(i)  The first install of an npm agent: create_agent + wait_for_agent (a new name each run, so a
     new layer: nothing reused), in a build sandbox with network; floor: `npm install --global
     --prefix DIR PACKAGE` on the host with a fresh cache, alternately. Goal: <= 1.2x the floor.

    .venv/bin/python benchmarks/bench_mounts.py [--runs 30] [--install-runs 5] [--npm-package semver@7.6.3]

Medians; the install figures go to npm's registry (network time is in both columns).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import anyio

from scenario_mcp.local.agent_build import NPM_ENV
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.sandbox import Sandbox
from scenario_mcp.local.trust import proxy_env
from scenario_mcp.models import AgentCreateParameters, DevboxCreateParameters, ObjectCreateParameters

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HOST_TOOLS_PATH, Figure, Row, print_table, shutdown_all, timed
from bench_engine import make_snapshot

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.local.test_agents import HELLO, tarball

WARMUP = 5


async def object_agent(backend: LocalBackend) -> str:
    view = await backend.create_object(ObjectCreateParameters(name="hello.tgz", content_type="tgz"))
    await backend.upload_object(view.id, tarball({"bin/hello": (HELLO, 0o755)}))
    await backend.complete_object(view.id)
    source = {"type": "object", "object": {"object_id": view.id}}
    agent = await backend.create_agent(AgentCreateParameters.model_validate({"name": "hello", "source": source}))
    done = await backend.wait_for_agent(agent.id, timeout_seconds=120)
    assert done.status == "build_complete", done.failure_message
    return done.id


async def bench_mounted_create(backend: LocalBackend, snapshot_id: str, agent_id: str, runs: int, pause: float) -> Row:
    spaced = f", {pause * 1000:.0f} ms after the last" if pause else ""
    mounted = DevboxCreateParameters.model_validate(
        {"snapshot_id": snapshot_id, "mounts": [{"type": "agent_mount", "agent_id": agent_id, "agent_path": "/opt/a"}]}
    )
    plain = DevboxCreateParameters(snapshot_id=snapshot_id)
    measured = Figure("create_devbox(snapshot_id, one agent_mount)" + spaced)
    floor = Figure("create_devbox(snapshot_id), no mount" + spaced)
    for i in range(WARMUP + runs):
        pair = [(mounted, measured), (plain, floor)]
        for params, figure in pair if i % 2 else reversed(pair):  # neither always goes first
            await anyio.sleep(pause)
            box_id = ""

            async def create(params: DevboxCreateParameters = params) -> None:
                nonlocal box_id
                box_id = (await backend.create_devbox(params)).id

            ms = await timed(create)
            await backend.shutdown_devbox(box_id)
            if i >= WARMUP:
                figure.samples.append(ms)
    goal = round(floor.p50 + 1, 2)
    return Row("(m) create with an agent mounted" + (", spaced" if pause else ""), measured, floor, goal_ms=goal)


async def bench_sandbox_mount(backend: LocalBackend, snapshot_id: str, agent_id: str, runs: int) -> Row:
    """(m') The sandbox part of (m) alone: Sandbox.start with the agent's layer mounted, or not."""
    environment = await backend.blueprints.environment(blueprint_id=None, blueprint_name=None, snapshot_id=snapshot_id)
    _view, layer_id, _ = await backend.agents.mountable(agent_id=agent_id, agent_name=None)
    store = backend.devboxes.layers
    measured = Figure("Sandbox.start with the agent's layer mounted, then stop (untimed)")
    floor = Figure("Sandbox.start without, then stop (untimed)")
    state_dirs = Path(tempfile.mkdtemp(prefix="bench-sandboxes-", dir=backend.data_dir))
    for i in range(WARMUP + runs):
        pair = [(((store.path(layer_id), "/opt/a"),), measured), ((), floor)]
        for mounts, figure in pair if i % 2 else reversed(pair):
            spec = environment.spec(store, state_dirs / f"{i}-{len(mounts)}", network=False, hostname="bench")
            spec = dataclasses.replace(spec, mounts=mounts)
            started = time.perf_counter()
            sandbox = await Sandbox.start(spec)
            ms = (time.perf_counter() - started) * 1000
            await sandbox.stop()
            if i >= WARMUP:
                figure.samples.append(ms)
    shutil.rmtree(state_dirs, ignore_errors=True)
    return Row("(m') its sandbox alone", measured, floor, goal_ms=None)


async def bench_npm_install(backend: LocalBackend, package: str, runs: int, scratch: Path) -> Row:
    name, _, version = package.rpartition("@") if package.rfind("@") > 0 else (package, "", "")
    measured = Figure(f"create_agent(npm {package}) until build_complete")
    floor = Figure(f"npm install --global --prefix DIR {package}, fresh cache")
    for i in range(runs):
        body = {
            "name": f"npm-agent-{i}",
            "version": version or None,
            "source": {"type": "npm", "npm": {"package_name": name}},
        }

        async def install(body: Mapping[str, object] = body) -> None:
            agent = await backend.create_agent(AgentCreateParameters.model_validate(body))
            done = await backend.wait_for_agent(agent.id, timeout_seconds=900)
            assert done.status == "build_complete", done.failure_message

        measured.samples.append(await timed(install))
        prefix, cache = scratch / f"npm-{i}", scratch / f"cache-{i}"
        argv = ["npm", "install", "--global", "--prefix", str(prefix), "--cache", str(cache)]
        argv += ["--no-audit", "--no-fund", "--loglevel=error", package]

        async def npm(argv: list[str] = argv) -> None:
            env = {"PATH": HOST_TOOLS_PATH, "HOME": str(scratch), **proxy_env(), **NPM_ENV}  # as the build's
            result = await anyio.run_process(argv, check=False, env=env)
            assert result.returncode == 0, result.stderr.decode(errors="replace")

        floor.samples.append(await timed(npm))
    goal = round(1.2 * floor.p50, 1)
    return Row("(i) first install of an npm agent", measured, floor, goal_ms=goal)


async def main(runs: int, install_runs: int, package: str, data_dir: Path, scratch: Path) -> None:
    async with LocalBackend(data_dir) as backend:
        print("building the default blueprint, a snapshot and an agent ...", file=sys.stderr)
        await backend.blueprints.ensure_default()
        snapshot_id = await make_snapshot(backend)
        agent_id = await object_agent(backend)
        print(f"timing {runs} creates of each kind, {install_runs} installs ...", file=sys.stderr)
        rows = [
            await bench_mounted_create(backend, snapshot_id, agent_id, runs, 0.0),
            await bench_mounted_create(backend, snapshot_id, agent_id, runs, 0.1),
            await bench_sandbox_mount(backend, snapshot_id, agent_id, runs),
        ]
        if install_runs:
            rows.append(await bench_npm_install(backend, package, install_runs, scratch))
    print_table(f"agent mounts (p50; creates after {WARMUP} warm-up runs)", rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="timed creates of each kind (default 30)")
    parser.add_argument("--install-runs", type=int, default=5, help="npm installs of each kind (0: skip)")
    parser.add_argument("--npm-package", default="semver@7.6.3", help="the npm agent (default semver@7.6.3)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="scenario-mcp-bench-"))
    data_dir = tmp / "data"
    try:
        anyio.run(main, args.runs, args.install_runs, args.npm_package, data_dir, tmp)
    finally:
        anyio.run(shutdown_all, data_dir)
        shutil.rmtree(tmp, ignore_errors=True)
