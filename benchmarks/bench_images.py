"""Image benchmarks on a Debian minbase image in a loopback registry: pull, devbox create, builds.

    bash benchmarks/setup-images.sh [--with-docker]   # registry, skopeo, mmdebstrap (+ Docker peers)
    .venv/bin/python benchmarks/bench_images.py [--runs N] [--figures p,i,r,c] [--docker auto|no]

The image: a one-layer ~180 MB Debian bookworm minbase (`mmdebstrap --variant=minbase`, built once
and cached under .tools/bench-images/, 61 MB gzip), pushed to docker-registry on a free loopback
port.

(p) `pull_image` of it into a fresh layer store: manifest, config, the blob streamed through its
    digest check, gunzip and the diff_id check (one thread) into the unpacker (another), into a
    scratch dir renamed into place. Floor: `skopeo copy docker://... dir:DIR` followed by `tar -xzf` of its layer blob,
    what a pull does with tools written in Go and C. Goal: <= 1.2x the floor, and faster than
    `docker pull` (peer: `docker pull` after `docker rmi`, untimed).
(i) `LocalBackend.create_devbox(blueprint_id=...)` on a Dockerfile blueprint `FROM` the image
    (built once, untimed); each devbox is shut down after, untimed; creates back to back. Floor:
    `bwrap --unshare-all --ro-bind / / true`, fresh namespaces around a trivial program. Goal:
    <= 12 ms, and 30x faster than the peer `docker run --rm --network none IMAGE true`.
(c) A cold build of the bench Dockerfile (below) through the engine's public path,
    `create_blueprint(dockerfile=..., build_context=<object>)` then `wait_for_blueprint`: no
    step's layer in the store (the last run's step layers are removed between runs, untimed), the
    image pulled before (its layer unpacked, its record kept), as `docker build --no-cache` runs
    with the image present. The engine removes a build's scratch after its waiters have the
    outcome: the run waits for that (untimed) before anything else is timed. Floor: the same
    work in one sandbox over the same base, the kind a RUN step gets (the image root, the host's
    CAs in a trust layer and the environment, network): start it, place the two COPYs' files,
    run the five RUN commands one after another with the step's environment, stop it. Goal:
    <= 1.3x the floor. Peer: `docker build --no-cache` of the same Dockerfile and context
    (`docker rmi` of the result between runs, untimed).
(r) The same build again with every step cached, through the same public path: what a user
    waits for when they create a blueprint whose Dockerfile has not changed. Goal: <= 50 ms.
    Floor: the same path for a Dockerfile of `FROM` alone, what the path costs with no step
    (the record writes, the build task, the base's lookup). Peer: `docker build` of it, every
    step cached.
(r') `DockerfileBuild.build` alone for (r)'s Dockerfile (the builder without the blueprint's
    queue, records and logs), same floor: for insight into where (r) spends its time.

The bench Dockerfile is FROM plus 10 instructions (11 with FROM, as `docker build` counts its
steps): 2 ENV and 1 WORKDIR (configuration only, no layer in the engine), 2 COPY from a
4-file build context and 5 cheap but real RUN commands (mkdir and echo, `dpkg -l | wc -l`,
sha256sum, a symlink and a file in /etc, a tar.gz): the figures measure each step's overhead,
not apt. The build context is a tgz uploaded once as a storage object (create, upload,
complete), as Runloop's SDK sends it; each blueprint names it.

Docker: where a daemon answers `docker info` (or `dockerd` is installed: one is started for the
run, `--iptables=false --bridge=none`, and stopped after; see _docker.py), its figures are
printed beside the engine's on the same image and Dockerfile; the ratio column of a Docker row is
Docker's p50 over the engine's (how many times faster the engine is). The minbase is loaded into
Docker with `docker pull` from the loopback registry (127.0.0.0/8 is insecure-allowed).
Docker's builder: the legacy one, Debian's Docker 20.10 default; its RUN steps get no network
(the daemon has no bridge), where the engine's get theirs (slirp4netns).

Measured and floor runs (and Docker's) alternate; each figure is the median of its runs after
warm-up runs. Everything lives in a temporary dir under .tools/bench-images/, removed at the end.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
from functools import partial
from pathlib import Path

import anyio
from _common import Figure, Row, print_table, run_argv, shutdown_all, timed
from _docker import Docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests.local.oci_registry
from tests.local.oci_registry import DEBIAN_PATH, MINBASE_CACHE, Pusher, minbase, push_minbase, run_registry

from scenario_mcp.local.builds import Built, DockerfileBuild, registry_puller
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.environments import Environment
from scenario_mcp.local.images import pull_image
from scenario_mcp.local.layers import LayerStore
from scenario_mcp.local.sandbox import Sandbox, SandboxSpec
from scenario_mcp.local.trust import sandbox_trust
from scenario_mcp.models import (
    BlueprintCreateParameters,
    DevboxCreateParameters,
    ObjectContext,
    ObjectCreateParameters,
)

CACHE = MINBASE_CACHE
REPO, TAG = "bench/minbase", "bookworm"
BWRAP_FLOOR = ["bwrap", "--unshare-all", "--ro-bind", "/", "/", "true"]
CREATE_WARMUP, BUILD_WARMUP = 5, 2
BUILD_TIMEOUT = 600.0

# The build context and the 10 instructions after FROM.
CONTEXT = {
    "requirements.txt": "pytest==8.3.3\nrequests==2.32.3\n",
    "src/__init__.py": "",
    "src/app.py": "from .util import greet\n\n\ndef main() -> None:\n    print(greet('bench'))\n",
    "src/util.py": "def greet(name: str) -> str:\n    return f'hello, {name}'\n",
}
STEPS = (
    ("ENV", "APP_HOME=/srv/app LANG=C.UTF-8"),
    ("WORKDIR", "/srv/app"),
    ("COPY", "requirements.txt ./"),
    ("RUN", 'mkdir -p data logs && echo "$APP_HOME" > data/home.txt'),
    ("COPY", "src/ ./src/"),
    ("RUN", "dpkg -l | wc -l > data/packages.txt"),
    ("ENV", "MODE=bench"),
    ("RUN", "sha256sum src/*.py > data/sums.txt"),
    ("RUN", "printf '%s\\n' \"$MODE\" > /etc/bench-mode && ln -s /srv/app/data /data"),
    ("RUN", "tar -czf /tmp/src.tgz -C /srv/app src && wc -c < /tmp/src.tgz > data/src-bytes.txt"),
)
# What a RUN step of the build gets (the image's PATH, the ENVs, HOME and HOSTNAME as builds.py
# sets them; the trust variables are added), for the floor's commands.
STEP_ENV = {
    "PATH": DEBIAN_PATH,
    "APP_HOME": "/srv/app",
    "LANG": "C.UTF-8",
    "MODE": "bench",
    "HOME": "/root",
    "HOSTNAME": "buildkitsandbox",
}
CHECK = "cat data/home.txt data/packages.txt /etc/bench-mode data/src-bytes.txt; wc -l < data/sums.txt; ls /data"


def dockerfile(image: str, steps: tuple[tuple[str, str], ...] = STEPS) -> str:
    return "".join([f"FROM {image}\n", *(f"{keyword} {args}\n" for keyword, args in steps)])


# --- the build context ------------------------------------------------------------------------


def write_context(target: Path) -> bytes:
    """The build context as a directory (for Docker and the floor); returns it as a tgz (for the
    engine, which takes it as a storage object, as Runloop does)."""
    for name, text in CONTEXT.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_text(text)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in sorted(CONTEXT):
            tar.add(target / name, arcname=name)
    return buffer.getvalue()


async def upload_context(backend: LocalBackend, archive: bytes) -> str:
    """The context as an uploaded, completed object (create, upload, complete): its id."""
    view = await backend.create_object(ObjectCreateParameters(name="context.tar.gz", content_type="tgz"))
    await backend.upload_object(view.id, archive)
    await backend.complete_object(view.id)
    return view.id


# --- (p) pull ----------------------------------------------------------------------------------


async def pull_fresh(image: str, store_dir: Path) -> None:
    """(p): one pull into a fresh layer store."""
    await pull_image(image, LayerStore(store_dir))


async def floor_pull(address: str, work: Path) -> None:
    await run_argv(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            f"docker://{address}/{REPO}:{TAG}",
            f"dir:{work / 'dir'}",
        ]
    )
    manifest = json.loads((work / "dir" / "manifest.json").read_text())
    for layer in manifest["layers"]:
        (work / "root").mkdir()
        await run_argv(["tar", "-xzf", str(work / "dir" / layer["digest"].split(":")[1]), "-C", str(work / "root")])


async def bench_pull(address: str, work: Path, runs: int, docker: Docker | None) -> list[Row]:
    image = f"{address}/{REPO}:{TAG}"
    measured = Figure("pull_image(...) into a fresh LayerStore: fetch, verify + gunzip | unpack")
    floor = Figure("skopeo copy docker://... dir:DIR && tar -xzf <layer>")
    peer = Figure("docker pull IMAGE (after docker rmi, untimed)")
    for i in range(runs + 1):  # the first of each is a warm-up
        store_dir, floor_dir = work / f"store{i}", work / f"floor{i}"
        floor_dir.mkdir()
        pull_ms = await timed(partial(pull_fresh, image, store_dir))
        floor_ms = await timed(partial(floor_pull, address, floor_dir))
        docker_ms: float | None = None
        if docker is not None:
            await docker.forget_image(image)
            docker_ms = await docker.timed("pull", "-q", image)
        if i:
            measured.samples.append(pull_ms)
            floor.samples.append(floor_ms)
            if docker_ms is not None:
                peer.samples.append(docker_ms)
        print(
            f"  (p) run {i}: pull {pull_ms:.0f} ms, floor {floor_ms:.0f} ms, docker {docker_ms or 0:.0f} ms",
            file=sys.stderr,
        )
        await anyio.to_thread.run_sync(shutil.rmtree, store_dir)
        await anyio.to_thread.run_sync(shutil.rmtree, floor_dir)
        await anyio.sleep(0.5)
    rows = [Row("(p) pull + unpack, 180 MB minbase", measured, floor, goal_ms=None)]
    if docker is not None and peer.samples:
        rows.append(peer_row("(p) peer: docker pull", peer, measured))
    return rows


def peer_row(label: str, peer: Figure, engine: Figure) -> Row:
    """Docker's figure with the engine's as its 'floor': the ratio says how many times faster the
    engine is."""
    return Row(
        label, peer, Figure(f"the engine's {label[:3]} in this run (ratio: Docker / engine)", engine.samples), None
    )


# --- blueprints on the engine --------------------------------------------------------------------


async def built_blueprint(backend: LocalBackend, name: str, text: str, context: str | None = None) -> str:
    """Create a Dockerfile blueprint (with the build context object `context`) and wait for its
    build (the public path); its id."""
    params = BlueprintCreateParameters(
        name=name, dockerfile=text, build_context=ObjectContext(object_id=context) if context else None
    )
    queued = await backend.create_blueprint(params)
    done = await backend.wait_for_blueprint(queued.id, timeout_seconds=BUILD_TIMEOUT)
    if done.status != "build_complete":
        raise RuntimeError(f"blueprint {name} {done.status}: {done.failure_reason}\n{done.build_log}")
    return done.id


async def step_layers(backend: LocalBackend, blueprint_id: str) -> list[str]:
    env = await backend.blueprints.environment(blueprint_id=blueprint_id, blueprint_name=None, snapshot_id=None)
    return [layer for layer in env.layers if not layer.startswith("sha256:")]


async def scratch_gone(backend: LocalBackend, blueprint_id: str) -> None:
    """Wait until the build's scratch dir is removed (the engine does it after the build has
    ended, off what a user waits for): so that its removal overlaps no timed work after it."""
    scratch = backend.blueprints.boxes_dir / f"build-{blueprint_id}"
    while scratch.exists():
        await anyio.sleep(0.005)


async def forget_steps(backend: LocalBackend, blueprint_id: str) -> None:
    """Make the next build cold: the step layers this one made leave the store (the image stays)."""
    for layer in await step_layers(backend, blueprint_id):
        await anyio.to_thread.run_sync(backend.blueprints.layers.remove, layer)


async def check_result(backend: LocalBackend, blueprint_id: str, docker: Docker | None, tag: str) -> None:
    """Once, untimed: the build made what the Dockerfile says, on the engine as in Docker."""
    box = (await backend.create_devbox(DevboxCreateParameters(blueprint_id=blueprint_id))).id
    result = await backend.execute(box, CHECK)
    await backend.shutdown_devbox(box)
    if result.exit_status != 0:
        raise RuntimeError(f"the built image is not as expected: {result.stderr}")
    print(f"  engine build: {' | '.join((result.stdout or '').split())}", file=sys.stderr)
    if docker is not None:
        out = await anyio.run_process(
            docker.argv("run", "--rm", "--network", "none", tag, "sh", "-c", CHECK), check=False, env=docker.env()
        )
        print(f"  docker build: {' | '.join(out.stdout.decode().split()) or out.stderr.decode()}", file=sys.stderr)


# --- (i) devbox create -------------------------------------------------------------------------


async def bench_create(
    backend: LocalBackend, blueprint_id: str, image: str, runs: int, docker: Docker | None
) -> list[Row]:
    measured = Figure("create_devbox(blueprint_id) on `FROM <minbase>`; shut down after, untimed")
    floor = Figure(" ".join(BWRAP_FLOOR))
    peer = Figure("docker run --rm --network none IMAGE true")
    for i in range(CREATE_WARMUP + runs):
        box_id = ""

        async def create() -> None:
            nonlocal box_id
            box_id = (await backend.create_devbox(DevboxCreateParameters(blueprint_id=blueprint_id))).id

        ms = await timed(create)
        await backend.shutdown_devbox(box_id)
        floor_ms = await timed(lambda: run_argv(BWRAP_FLOOR))
        docker_ms: float | None = None
        if docker is not None:
            docker_ms = await docker.timed("run", "--rm", "--network", "none", image, "true")
        if i >= CREATE_WARMUP:
            measured.samples.append(ms)
            floor.samples.append(floor_ms)
            if docker_ms is not None:
                peer.samples.append(docker_ms)
    rows = [Row("(i) devbox create, image blueprint", measured, floor, goal_ms=12)]
    if docker is not None and peer.samples:
        rows.append(peer_row("(i) peer: docker run --rm IMAGE true", peer, measured))
    return rows


# --- (c) cold build ----------------------------------------------------------------------------


async def floor_one_sandbox(backend: LocalBackend, base: Environment, context: Path, state_dir: Path) -> None:
    """(c)'s floor: the Dockerfile's RUN commands one after another in one sandbox over the same
    base, of the kind a RUN step gets (the image root, the host's CAs in a trust layer on top and
    in the environment, network), with the two COPYs' files placed from the host, as the build
    places them."""
    store = backend.blueprints.layers
    trust = await sandbox_trust(store, base.layers, backend.blueprints.trust)
    spec = SandboxSpec(
        state_dir=state_dir,
        layers=tuple(store.path(layer) for layer in trust.stack(base.layers)),
        skeleton=store.skeleton,
        etc_mask=store.etc_mask,
        network=True,
        hostname="buildkitsandbox",
        image_root=True,
    )
    env = {**STEP_ENV, **trust.env}
    sandbox = await Sandbox.start(spec)
    try:
        app = Path(f"/proc/{sandbox.init_pid}/root/srv/app")
        with tempfile.TemporaryFile() as output:
            for keyword, args in STEPS:
                if keyword == "COPY":
                    source = args.split()[0]
                    await anyio.to_thread.run_sync(place, context / source, app / source)
                elif keyword == "RUN":
                    code, _ = await sandbox.run(
                        ["/bin/sh", "-c", args], stdout=output, stderr=output, timeout=60, env=env, cwd="/srv/app"
                    )
                    if code != 0:
                        output.seek(0)
                        raise RuntimeError(f"floor: `{args}` exited {code}: {output.read().decode()}")
    finally:
        await sandbox.stop()
        await anyio.to_thread.run_sync(shutil.rmtree, state_dir, True)


def place(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True)
    else:
        shutil.copy2(source, dest)


async def bench_cold(
    backend: LocalBackend,
    base: Environment,
    image: str,
    context: Path,
    context_id: str,
    work: Path,
    runs: int,
    docker: Docker | None,
) -> list[Row]:
    text = dockerfile(image)
    measured = Figure("create_blueprint(dockerfile, build_context) + wait, no step cached")
    floor = Figure("one sandbox (image root, trust layer, network): 2 COPYs placed, 5 RUNs in turn")
    peer = Figure("docker build --no-cache (docker rmi after, untimed)")
    tag = "bench/ten:cold"
    for i in range(1 + runs):  # one warm-up
        blueprint_id = ""

        async def build(name: str = f"cold-{i}") -> None:
            nonlocal blueprint_id
            blueprint_id = await built_blueprint(backend, name, text, context_id)

        ms = await timed(build)
        await scratch_gone(backend, blueprint_id)
        if i == 0:
            await check_result(backend, blueprint_id, None, tag)
        await forget_steps(backend, blueprint_id)
        floor_ms = await timed(partial(floor_one_sandbox, backend, base, context, work / f"floor-sandbox-{i}"))
        docker_ms: float | None = None
        if docker is not None:
            docker_ms = await docker.timed("build", "--no-cache", "-q", "-t", tag, str(context))
            await docker.run("rmi", tag, check=False)
        if i:
            measured.samples.append(ms)
            floor.samples.append(floor_ms)
            if docker_ms is not None:
                peer.samples.append(docker_ms)
        print(
            f"  (c) run {i}: build {ms:.0f} ms, floor {floor_ms:.0f} ms, docker {docker_ms or 0:.0f} ms",
            file=sys.stderr,
        )
    rows = [Row("(c) 10-step build, cold", measured, floor, goal_ms=None)]
    if docker is not None and peer.samples:
        rows.append(peer_row("(c) peer: docker build --no-cache", peer, measured))
    return rows


# --- (r) cached rebuild ------------------------------------------------------------------------


async def bench_cached(
    backend: LocalBackend, image: str, context: Path, context_id: str, work: Path, runs: int, docker: Docker | None
) -> list[Row]:
    text = dockerfile(image)
    tag = "bench/ten:cached"
    first = await built_blueprint(backend, "cached-first", text, context_id)  # fills the cache, untimed
    if docker is not None:
        await docker.timed("build", "-q", "-t", tag, str(context))  # fills Docker's cache, untimed
        await check_result(backend, first, docker, tag)
    store = backend.blueprints.layers
    measured = Figure("create_blueprint(dockerfile, build_context) + wait, every step cached")
    floor = Figure("create_blueprint + wait of `FROM <minbase>` alone")
    direct = Figure("DockerfileBuild.build(dockerfile), every step cached")
    peer = Figure("docker build, every step cached")
    for i in range(BUILD_WARMUP + runs):
        blueprint_id = ""

        async def rebuild(name: str = f"cached-{i}") -> None:
            nonlocal blueprint_id
            blueprint_id = await built_blueprint(backend, name, text, context_id)

        ms = await timed(rebuild)
        await scratch_gone(backend, blueprint_id)
        if i == 0:
            view = await backend.get_blueprint(blueprint_id)
            assert view.build_log is not None and "built: 0 step(s) run" in view.build_log, view.build_log
        from_only = ""

        async def build_from_only(name: str = f"from-only-{i}") -> None:
            nonlocal from_only
            from_only = await built_blueprint(backend, name, f"FROM {image}\n")

        floor_ms = await timed(build_from_only)
        await scratch_gone(backend, from_only)
        steps = work / f"direct-{i}"
        steps.mkdir()
        builder = DockerfileBuild(store=store, work=steps, pull=registry_puller(store), context=context)
        outcome: list[Built] = []

        async def build_directly(builder: DockerfileBuild = builder, outcome: list[Built] = outcome) -> None:
            outcome.append(await builder.build(text))

        direct_ms = await timed(build_directly)
        assert outcome[0].built_steps == 0 and outcome[0].cached_steps == 7, outcome[0]
        shutil.rmtree(steps)
        docker_ms: float | None = None
        if docker is not None:
            docker_ms = await docker.timed("build", "-q", "-t", tag, str(context))
        if i >= BUILD_WARMUP:
            measured.samples.append(ms)
            floor.samples.append(floor_ms)
            direct.samples.append(direct_ms)
            if docker_ms is not None:
                peer.samples.append(docker_ms)
    rows = [
        Row("(r) 10-step rebuild, all cached", measured, floor, goal_ms=50),
        Row("(r') its DockerfileBuild.build alone", direct, floor, goal_ms=None),
    ]
    if docker is not None and peer.samples:
        rows.append(peer_row("(r) peer: docker build, all cached", peer, measured))
    return rows


# --- main --------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    figures = set(args.figures.split(","))
    packed, _diff_id = minbase()
    started = datetime.datetime.now().astimezone()
    load_before = os.getloadavg()
    rows: list[Row] = []
    docker: Docker | None = None
    with tempfile.TemporaryDirectory(prefix="bench-images-", dir=CACHE) as tmp:
        work = Path(tmp)
        (work / "registry").mkdir()
        try:
            if args.docker != "no":
                docker = await anyio.to_thread.run_sync(Docker.open, work / "docker", CACHE / "dockerd.log")
            with run_registry(work / "registry") as address:
                pusher = Pusher(address)
                push_minbase(pusher, REPO, TAG)
                pusher.http.close()
                image = f"{address}/{REPO}:{TAG}"
                print(f"image: {image}, {packed.stat().st_size / 1e6:.0f} MB gzip, one layer", file=sys.stderr)
                if "p" in figures:
                    rows += await bench_pull(address, work, args.runs, docker)
                if docker is not None:
                    await docker.run("pull", "-q", image)
                    (work / "context").mkdir()
                    (work / "context" / "Dockerfile").write_text(dockerfile(image))
                if figures & {"i", "r", "c"}:
                    rows += await engine_figures(args, figures, work, image, docker)
        finally:
            if docker is not None:
                await anyio.to_thread.run_sync(docker.close)
    ended = datetime.datetime.now().astimezone()
    title = f"image benchmarks, {started:%Y-%m-%d %H:%M}-{ended:%H:%M %Z}"
    print_table(title, rows)
    load_after = os.getloadavg()
    print(f"  load average (1, 5, 15 min): before {fmt_load(load_before)}, after {fmt_load(load_after)}")
    if docker is not None:
        print(f"  Docker {docker.version}, legacy builder")
        for failure in docker.failures:
            print(f"  Docker attempt failed and run again (untimed): {failure}")
    print_goals(rows)


async def engine_figures(
    args: argparse.Namespace, figures: set[str], work: Path, image: str, docker: Docker | None
) -> list[Row]:
    rows: list[Row] = []
    context = work / "context"
    context.mkdir(exist_ok=True)
    archive = write_context(context)
    data_dir = work / "data"
    try:
        async with LocalBackend(data_dir) as backend:
            context_id = await upload_context(backend, archive)
            print("building the `FROM <minbase>` blueprint (pulls the image; untimed) ...", file=sys.stderr)
            from_only = await built_blueprint(backend, "from-minbase", f"FROM {image}\n")
            base = await backend.blueprints.environment(blueprint_id=from_only, blueprint_name=None, snapshot_id=None)
            if "i" in figures:
                rows += await bench_create(backend, from_only, image, args.create_runs, docker)
            if "c" in figures:  # before (r): its step layers are removed between runs
                rows += await bench_cold(backend, base, image, context, context_id, work, args.cold_runs, docker)
            if "r" in figures:
                rows += await bench_cached(backend, image, context, context_id, work, args.build_runs, docker)
    finally:
        await shutdown_all(data_dir)
    return rows


def fmt_load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)


def print_goals(rows: list[Row]) -> None:
    by = {row.label.split(" ", 1)[0] + (" peer" if "peer" in row.label else ""): row for row in rows}

    def say(text: str, ok: bool) -> None:
        print(f"  goal: {text}: {'yes' if ok else 'NO'}")

    if (p := by.get("(p)")) is not None:
        say(f"(p) <= 1.2x its floor ({p.measured.p50 / p.floor.p50:.2f}x)", p.measured.p50 <= 1.2 * p.floor.p50)
    if (peer := by.get("(p) peer")) is not None:
        say(
            f"(p) faster than docker pull ({peer.measured.p50 / peer.floor.p50:.2f}x)",
            peer.measured.p50 > peer.floor.p50,
        )
    if (peer := by.get("(i) peer")) is not None:
        factor = peer.measured.p50 / peer.floor.p50
        say(f"(i) 30x faster than docker run ({factor:.1f}x)", factor >= 30)
    if (c := by.get("(c)")) is not None:
        say(f"(c) <= 1.3x its floor ({c.measured.p50 / c.floor.p50:.2f}x)", c.measured.p50 <= 1.3 * c.floor.p50)
    if (peer := by.get("(c) peer")) is not None:
        factor = peer.measured.p50 / peer.floor.p50
        say(f"(c) faster than docker build --no-cache ({factor:.1f}x)", factor > 1)
    if (peer := by.get("(r) peer")) is not None:
        factor = peer.measured.p50 / peer.floor.p50
        say(f"(r) faster than docker build, all cached ({factor:.1f}x)", factor > 1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed pulls, (p) (default 5)")
    parser.add_argument("--create-runs", type=int, default=50, help="timed creates, (i) (default 50)")
    parser.add_argument("--build-runs", type=int, default=20, help="timed cached rebuilds, (r) (default 20)")
    parser.add_argument("--cold-runs", type=int, default=10, help="timed cold builds, (c) (default 10)")
    parser.add_argument("--figures", default="p,i,r,c", help="which figures (default p,i,r,c)")
    parser.add_argument("--docker", choices=("auto", "no"), default="auto", help="Docker peers where Docker is")
    anyio.run(main, parser.parse_args())
