"""Where a cold 10-step build's time goes: (c)'s Dockerfile built by `DockerfileBuild` alone (or,
with --public, through create_blueprint + wait_for_blueprint as bench_images.py times it), with
timers around the engine functions a step calls (whichever of them exist), per build, beside
bench_images.py's floor for (c) measured in the same run.

    .venv/bin/python benchmarks/profile_build.py [--runs N] [--public]

Prints, for each timed function, its calls and its milliseconds per build (median over the runs),
and the build's own total. Timers nest (a sandbox start inside a step is counted in both). Run
as root on a host with cgroup v1's cpuacct, it also prints the CPU time the build and the floor
took in all their processes (this one, the spawner, the sandbox's init, its steps, slirp4netns):
on a machine others share, CPU time moves less with their load than wall time does.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import importlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.local.oci_registry
from bench_images import (
    CACHE,
    REPO,
    STEP_ENV,
    STEPS,
    TAG,
    built_blueprint,
    dockerfile,
    place,
    scratch_gone,
    upload_context,
    write_context,
)
from tests.local.oci_registry import Pusher, push_minbase, run_registry

from scenario_mcp.local.builds import DockerfileBuild, registry_puller
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.layers import LayerStore
from scenario_mcp.local.sandbox import Sandbox, SandboxSpec
from scenario_mcp.local.trust import TrustSettings, sandbox_trust

# module, owner (a class name, or "" for a module function), attribute
TIMED = [
    ("scenario_mcp.local.builds", "DockerfileBuild", "_run"),
    ("scenario_mcp.local.builds", "DockerfileBuild", "_copy"),
    ("scenario_mcp.local.builds", "DockerfileBuild", "_freeze"),
    ("scenario_mcp.local.builds", "DockerfileBuild", "_log"),
    ("scenario_mcp.local.builds", "", "sandbox_trust"),
    ("scenario_mcp.local.builds", "", "_digest_tree"),
    ("scenario_mcp.local.builds", "", "_place"),
    ("scenario_mcp.local.builds", "DockerfileBuild", "_copy_into"),
    ("scenario_mcp.local.builds", "DockerfileBuild", "_sandbox"),
    ("scenario_mcp.local.builds", "DockerfileBuild", "_new_upper"),
    ("scenario_mcp.local.builds", "DockerfileBuild", "_sources"),
    ("scenario_mcp.local.builds", "", "_small_tree"),
    ("scenario_mcp.local.builds", "", "trust_for"),
    ("scenario_mcp.local.sandbox.handle", "Sandbox", "start"),
    ("scenario_mcp.local.sandbox.handle", "Sandbox", "stop"),
    ("scenario_mcp.local.sandbox.handle", "Sandbox", "run"),
    ("scenario_mcp.local.build_sandbox", "BuildSandbox", "start"),
    ("scenario_mcp.local.build_sandbox", "BuildSandbox", "run"),
    ("scenario_mcp.local.build_sandbox", "BuildSandbox", "stop"),
    ("scenario_mcp.local.build_sandbox", "", "_receive_root"),
    ("scenario_mcp.local.build_sandbox", "", "prepare_dirs"),
    ("scenario_mcp.local.build_sandbox", "", "launch"),
    ("scenario_mcp.local.layers", "LayerStore", "adopt"),
    ("scenario_mcp.local.layers", "LayerStore", "freeze"),
    ("scenario_mcp.local.trust", "SandboxTrust", "strip"),
    ("scenario_mcp.local.builds", "shutil", "rmtree"),
    ("scenario_mcp.local.builds", "DockerfileBuild", "build"),
    ("scenario_mcp.local.blueprint_build", "BlueprintBuild", "run"),
    ("scenario_mcp.local.blueprint_build", "", "_unpack_context"),
    ("scenario_mcp.local.blueprints", "Blueprints", "_save"),
    ("scenario_mcp.local.blueprints", "Blueprints", "create"),
]
SPENT: dict[str, list[float]] = collections.defaultdict(list)
CPUACCT = Path("/sys/fs/cgroup/cpuacct")


@contextlib.contextmanager
def cpu_meter() -> Iterator[Callable[[], float] | None]:
    """This process (and all it starts from now on) in a cgroup of its own: a function that
    reads the CPU milliseconds they have used, or None where that cannot be done here."""
    if os.geteuid() != 0 or not (CPUACCT / "cpuacct.usage").exists():
        yield None
        return
    group = CPUACCT / f"profile-build-{os.getpid()}"
    group.mkdir()
    try:
        (group / "cgroup.procs").write_text(str(os.getpid()))
        yield lambda: int((group / "cpuacct.usage").read_text()) / 1e6
    finally:
        for _ in range(50):  # a helper still starting a child may put one back
            for pid in (group / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):  # gone meanwhile
                    (CPUACCT / "cgroup.procs").write_text(pid)
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.01)


def _timer(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(fn, "__profiled__", False):
        return fn
    if hasattr(fn, "__aenter__") or not callable(fn):
        return fn
    import inspect

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                SPENT[name].append((time.perf_counter() - start) * 1000)

        async_wrapper.__profiled__ = True  # type: ignore[attr-defined]
        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[name].append((time.perf_counter() - start) * 1000)

    wrapper.__profiled__ = True  # type: ignore[attr-defined]
    return wrapper


def instrument() -> None:
    for module_name, owner_name, attribute in TIMED:
        module = importlib.import_module(module_name)
        owner = getattr(module, owner_name) if owner_name else module
        if not hasattr(owner, attribute):
            continue
        fn = getattr(owner, attribute)
        raw = owner.__dict__.get(attribute) if isinstance(owner, type) else fn
        if isinstance(raw, classmethod):
            wrapped = _timer(f"{owner_name}.{attribute}", raw.__func__)
            setattr(owner, attribute, classmethod(wrapped))
        else:
            setattr(owner, attribute, _timer(f"{owner_name + '.' if owner_name else ''}{attribute}", fn))


async def floor(store: LayerStore, layers: list[str], context: Path, state_dir: Path) -> float:
    """bench_images.py's (c) floor: one sandbox, the COPYs placed, the RUNs in turn; its ms."""
    start = time.perf_counter()
    trust = await sandbox_trust(store, layers, TrustSettings())
    spec = SandboxSpec(
        state_dir=state_dir,
        layers=tuple(store.path(layer) for layer in trust.stack(layers)),
        skeleton=store.skeleton,
        etc_mask=store.etc_mask,
        network=True,
        hostname="buildkitsandbox",
        image_root=True,
    )
    sandbox = await Sandbox.start(spec)
    try:
        app = Path(f"/proc/{sandbox.init_pid}/root/srv/app")
        with tempfile.TemporaryFile() as output:
            for keyword, args in STEPS:
                if keyword == "COPY":
                    source = args.split()[0]
                    await anyio.to_thread.run_sync(place, context / source, app / source)
                elif keyword == "RUN":
                    env = {**STEP_ENV, **trust.env}
                    await sandbox.run(
                        ["/bin/sh", "-c", args], stdout=output, stderr=output, timeout=60, env=env, cwd="/srv/app"
                    )
    finally:
        await sandbox.stop()
        await anyio.to_thread.run_sync(shutil.rmtree, state_dir, True)
    return (time.perf_counter() - start) * 1000


async def main(runs: int, public: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="profile-build-", dir=CACHE) as tmp:
        work = Path(tmp)
        (work / "registry").mkdir()
        context = work / "context"
        context.mkdir()
        write_context(context)
        with run_registry(work / "registry") as address:
            pusher = Pusher(address)
            push_minbase(pusher, REPO, TAG)
            pusher.http.close()
            image = f"{address}/{REPO}:{TAG}"
            text = dockerfile(image)
            per_build: dict[str, list[tuple[int, float]]] = collections.defaultdict(list)
            totals: list[float] = []
            floors: list[float] = []
            cpu_totals: list[float] = []
            cpu_floors: list[float] = []
            own_totals: list[float] = []  # this process's CPU (the server's part)
            own_floors: list[float] = []
            async with contextlib.AsyncExitStack() as stack:
                cpu = stack.enter_context(cpu_meter())
                if public:
                    backend = await stack.enter_async_context(LocalBackend(work / "data"))
                    context_id = await upload_context(backend, write_context(work / "public-context"))
                    store = backend.blueprints.layers
                else:
                    store = LayerStore(work / "layers")
                    store.ensure_base()
                instrument()
                for i in range(runs + 1):
                    steps = work / f"steps-{i}"
                    steps.mkdir()
                    SPENT.clear()
                    cpu_start = cpu() if cpu else 0.0
                    own_start = time.process_time()
                    start = time.perf_counter()
                    if public:
                        built_id = await built_blueprint(backend, f"cold-{i}", text, context_id)
                        layers = list(
                            (
                                await backend.blueprints.environment(
                                    blueprint_id=built_id, blueprint_name=None, snapshot_id=None
                                )
                            ).layers
                        )
                    else:
                        builder = DockerfileBuild(store=store, work=steps, pull=registry_puller(store), context=context)
                        built = await builder.build(text)
                        assert built.built_steps == 7, built
                        layers = built.layers
                    total = (time.perf_counter() - start) * 1000
                    if public:  # its scratch goes after the build: not while the floor is timed
                        await scratch_gone(backend, built_id)
                    image_layers = [layer for layer in layers if not layer.startswith("step-")]
                    if i:  # the first is a warm-up: the pull
                        totals.append(total)
                        for name, samples in SPENT.items():
                            per_build[name].append((len(samples), sum(samples)))
                        cpu_totals.append((cpu() if cpu else 0.0) - cpu_start)
                        own_totals.append((time.process_time() - own_start) * 1000)
                        cpu_start, own_start = (cpu() if cpu else 0.0), time.process_time()
                        floors.append(await floor(store, image_layers, context, work / f"floor-{i}"))
                        cpu_floors.append((cpu() if cpu else 0.0) - cpu_start)
                        own_floors.append((time.process_time() - own_start) * 1000)
                    for layer in layers:
                        if layer.startswith("step-"):
                            store.remove(layer)
    median, floor_median = statistics.median(totals), statistics.median(floors)
    how = "create_blueprint + wait_for_blueprint" if public else "DockerfileBuild.build"
    print(f"cold build of (c)'s Dockerfile by {how}, median of {runs}: {median:.1f} ms")
    print(f"  floor (bench_images.py's, in the same run): {floor_median:.1f} ms, ratio {median / floor_median:.2f}")
    if cpu_totals and cpu_floors[0]:
        cpu_build, cpu_floor = statistics.median(cpu_totals), statistics.median(cpu_floors)
        ratio = cpu_build / cpu_floor
        print(f"  CPU, all processes: build {cpu_build:.1f} ms, floor {cpu_floor:.1f} ms, ratio {ratio:.2f}")
    own, own_floor = statistics.median(own_totals), statistics.median(own_floors)
    print(f"  CPU of this process (the server's part): build {own:.1f} ms, floor {own_floor:.1f} ms")
    for name, rows in sorted(per_build.items(), key=lambda item: -statistics.median(r[1] for r in item[1])):
        calls = statistics.median(r[0] for r in rows)
        ms = statistics.median(r[1] for r in rows)
        print(f"  {name:28} {calls:4.0f} calls  {ms:7.1f} ms/build  {ms / max(calls, 1):6.2f} ms/call")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--public", action="store_true", help="through create_blueprint, as bench_images.py's (c)")
    arguments = parser.parse_args()
    anyio.run(main, arguments.runs, arguments.public)
