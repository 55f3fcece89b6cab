"""Dockerfile builds in the engine's sandboxes, from scratch with a static busybox (no registry
needed): every step a layer, the cache, COPY and ADD semantics, multi-stage, a failing RUN."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import time
from pathlib import Path

import pytest

from scenario_mcp.local.builds import Base, BuildError, Built, DockerfileBuild, registry_puller
from scenario_mcp.local.dockerfile import Instruction
from scenario_mcp.local.layers import LayerStore
from scenario_mcp.local.sandbox import Sandbox, SandboxSpec

from .oci_registry import Pusher, busybox_layer

pytestmark = pytest.mark.anyio

BUSYBOX = Path("/bin/busybox")
PRELUDE = 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'


async def no_registry(reference: str) -> Base:
    raise BuildError(f"this test pulls no image ({reference})")


@pytest.fixture
def store(tmp_path: Path) -> LayerStore:
    layers = LayerStore(tmp_path / "layers")
    layers.ensure_base()
    return layers


@pytest.fixture
def context(tmp_path: Path) -> Path:
    assert BUSYBOX.exists(), "install busybox-static (scripts/setup.sh does with the test extras)"
    ctx = tmp_path / "context"
    (ctx / "src" / "pkg").mkdir(parents=True)
    shutil.copy(BUSYBOX, ctx / "busybox")
    (ctx / "src" / "app.py").write_text("print('app')\n")
    (ctx / "src" / "pkg" / "mod.py").write_text("X = 1\n")
    (ctx / "src" / "secret.key").write_text("do not copy\n")
    (ctx / ".dockerignore").write_text("src/*.key\n")
    with tarfile.open(ctx / "bundle.tar.gz", "w:gz") as archive:
        data = b"from the archive\n"
        member = tarfile.TarInfo("bundled/readme.txt")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    return ctx


def builder(store: LayerStore, context: Path, tmp_path: Path, **kwargs: object) -> DockerfileBuild:
    (tmp_path / "work").mkdir(exist_ok=True)
    return DockerfileBuild(store, tmp_path / "work", no_registry, context, **kwargs)  # type: ignore[arg-type]


async def view(store: LayerStore, layers: list[str], tmp_path: Path, command: str, *, shell: bool = True) -> str:
    """Run a command in a sandbox over the built layers (as a devbox from the image would)."""
    spec = SandboxSpec(
        state_dir=tmp_path / f"view-{time.monotonic_ns()}",
        layers=tuple(store.path(layer) for layer in layers),
        skeleton=store.skeleton,
        etc_mask=store.etc_mask,
        image_root=True,
    )
    sandbox = await Sandbox.start(spec)
    try:
        code, out, err = await sandbox.run_quiet(["/bin/sh", "-c", command] if shell else command.split())
        assert code == 0, err.decode()
        return out.decode()
    finally:
        await sandbox.stop()


async def test_each_step_is_a_layer_and_the_files_are_what_docker_gives(
    store: LayerStore, context: Path, tmp_path: Path
) -> None:
    dockerfile = PRELUDE + (
        "ENV GREETING=hello\n"
        "WORKDIR /app\n"
        "COPY src/ ./\n"
        "COPY --chown=1000:1000 --chmod=600 src/app.py /opt/owned.py\n"
        "ADD bundle.tar.gz /srv/\n"
        'RUN echo "$GREETING from $(pwd)" > greeting && echo "bob:x:1001:1001::/tmp:/bin/sh" >> /etc/passwd\n'
        "USER bob\n"
        "RUN id -un > /tmp/who\n"
    )
    built = await builder(store, context, tmp_path).build(dockerfile)
    assert built.built_steps == 7 and len(built.layers) == 7
    assert built.config.working_dir == "/app" and built.config.user == "bob"
    listing = await view(
        store,
        built.layers,
        tmp_path,
        "cat /app/greeting /tmp/who /srv/bundled/readme.txt; ls /app /app/pkg; ls -ln /opt/owned.py",
    )
    lines = listing.splitlines()
    assert lines[:3] == ["hello from /app", "bob", "from the archive"]
    assert "app.py" in lines and "pkg" in lines and "mod.py" in lines
    assert "secret.key" not in listing  # .dockerignore
    assert lines[-1].split()[:4] == ["-rw-------", "1", "1000", "1000"]


async def test_an_unchanged_dockerfile_rebuilds_from_cache_and_a_change_only_from_there(
    store: LayerStore, context: Path, tmp_path: Path
) -> None:
    dockerfile = PRELUDE + "RUN echo one > /one\nCOPY src/app.py /app.py\nRUN echo two > /two\n"
    first = await builder(store, context, tmp_path).build(dockerfile)
    assert first.built_steps == 5
    started = time.perf_counter()
    again = await builder(store, context, tmp_path).build(dockerfile)
    assert (again.cached_steps, again.built_steps, again.layers) == (5, 0, first.layers)
    assert time.perf_counter() - started < 1.0
    (context / "src" / "app.py").write_text("print('changed')\n")
    changed = await builder(store, context, tmp_path).build(dockerfile)
    assert (changed.cached_steps, changed.built_steps) == (3, 2)  # from the COPY of the changed file on
    assert changed.layers[2:] == first.layers[2:]


async def test_a_sandbox_starts_ahead_for_a_cold_build_and_not_for_a_cached_one(
    store: LayerStore, context: Path, tmp_path: Path
) -> None:
    """A build likely to run a step starts its sandbox at its start, in the background; a
    rebuild whose last build's layers are all there starts none; once they are gone, a rebuild
    is likely cold again (a sandbox leaves its dir in the build's scratch, kept here to look)."""
    dockerfile = PRELUDE + "ENV A=1\nRUN echo one > /one\n"

    async def build(name: str) -> tuple[bool, Built]:
        work = tmp_path / name
        work.mkdir()
        builder = DockerfileBuild(store, work, no_registry, context, remove_scratch=False, stop_later=True)
        try:
            built = await builder.build(dockerfile)
        finally:
            await builder.aclose()
        return (work / "sandbox").exists(), built

    started, built = await build("cold")
    assert started and built.built_steps == 3
    started, built = await build("cached")
    assert not started and built.cached_steps == 3
    for layer in built.layers:
        store.remove(layer)
    started, built = await build("cold-again")
    assert started and built.built_steps == 3


async def test_each_run_in_a_row_sees_what_every_run_before_it_made(
    store: LayerStore, context: Path, tmp_path: Path
) -> None:
    """RUN after RUN, each in a root of its own over the layers before it: every step sees all
    the steps before it, its own layer holds only its own change."""
    runs = "".join(f"RUN cat /{n - 1} > /{n} && echo {n} >> /{n}\n" for n in range(1, 7))
    built = await builder(store, context, tmp_path).build(PRELUDE + "RUN echo 0 > /0\n" + runs)
    assert built.built_steps == 9
    assert await view(store, built.layers, tmp_path, "cat /6") == "".join(f"{n}\n" for n in range(7))
    assert sorted(p.name for p in store.path(built.layers[0]).iterdir()) == ["6"]


async def test_multi_stage_copies_from_an_earlier_stage(store: LayerStore, context: Path, tmp_path: Path) -> None:
    dockerfile = PRELUDE.replace("FROM scratch", "FROM scratch AS build") + (
        "RUN mkdir -p /out && echo built > /out/artifact\n"
        "FROM scratch\n"
        "COPY --from=build /bin/busybox /bin/busybox\n"
        "COPY --from=build /out/artifact /artifact\n"
        'CMD ["/bin/busybox", "cat", "/artifact"]\n'
    )
    built = await builder(store, context, tmp_path).build(dockerfile)
    assert built.config.cmd == ("/bin/busybox", "cat", "/artifact")
    assert await view(store, built.layers, tmp_path, "/bin/busybox cat /artifact", shell=False) == "built\n"
    listing = await view(store, built.layers, tmp_path, "/bin/busybox ls /", shell=False)
    assert "out" not in listing.split()  # only what was copied, not the build stage's tree


async def test_a_failing_run_fails_the_build_with_its_line_and_output(
    store: LayerStore, context: Path, tmp_path: Path
) -> None:
    logged: list[tuple[int, str, bool]] = []

    async def log(step: Instruction, output: str, failed: bool) -> None:
        logged.append((step.line, output, failed))

    dockerfile = PRELUDE + "RUN echo about to fail && exit 3\n"
    with pytest.raises(BuildError, match=r"line 4: `echo about to fail && exit 3` exited 3: about to fail"):
        await builder(store, context, tmp_path, log=log).build(dockerfile)
    assert logged[-1] == (4, "about to fail\n", True)


async def test_each_run_logs_its_own_output_only(store: LayerStore, context: Path, tmp_path: Path) -> None:
    """The steps share one output file, emptied per step: a short output after a long one is
    not followed by the rest of the long one."""
    logged: list[tuple[int, str, bool]] = []

    async def log(step: Instruction, output: str, failed: bool) -> None:
        logged.append((step.line, output, failed))

    dockerfile = PRELUDE + "RUN echo a long first line of output\nRUN echo short\n"
    await builder(store, context, tmp_path, log=log).build(dockerfile)
    assert logged[-2:] == [(4, "a long first line of output\n", False), (5, "short\n", False)]


async def test_a_steps_layer_holds_only_what_the_step_changed(store: LayerStore, context: Path, tmp_path: Path) -> None:
    built = await builder(store, context, tmp_path).build(PRELUDE + "RUN mkdir /made\n")
    assert sorted(os.listdir(store.path(built.layers[0]))) == ["made"]  # no empty /usr or /etc over the image's


async def test_copy_refuses_paths_outside_the_context(store: LayerStore, context: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="outside the build context"):
        await builder(store, context, tmp_path).build("FROM scratch\nCOPY ../etc/passwd /x\n")
    with pytest.raises(BuildError, match="matches no file"):
        await builder(store, context, tmp_path).build("FROM scratch\nCOPY missing.txt /x\n")


async def test_copy_through_an_absolute_symlink_stays_inside_the_root(
    store: LayerStore, context: Path, tmp_path: Path
) -> None:
    """An image's absolute symlink points inside the image, never at the host's directory."""
    marker = Path("/tmp") / f"scenario-mcp-escape-{os.getpid()}"
    dockerfile = PRELUDE + f"RUN ln -s /tmp /escape\nCOPY src/app.py /escape/{marker.name}\n"
    built = await builder(store, context, tmp_path).build(dockerfile)
    assert not marker.exists()
    assert "print('app')" in await view(store, built.layers, tmp_path, f"cat /tmp/{marker.name}")


async def test_a_copied_directory_meets_the_images_symlinks_inside_the_root(
    store: LayerStore, context: Path, tmp_path: Path
) -> None:
    """Each file a directory COPY writes is resolved inside the root, not only its top: an
    image's absolute symlink where a copied file goes, or on the way there, leads inside the
    image. (--chown on a copied link changes the link, never what it names on the host.)"""
    victim = tmp_path / "host-victim"
    victim.write_text("the host's\n")
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    (context / "src" / "host-link").symlink_to(host_dir)
    dockerfile = PRELUDE + (
        f"RUN mkdir -p /app/pkg && ln -s {victim} /app/app.py && ln -s {tmp_path} /app/pkg/mod.py.d\n"
        "COPY --chown=1000:1000 src/ /app/\n"
    )
    built = await builder(store, context, tmp_path).build(dockerfile)
    assert victim.read_text() == "the host's\n"
    assert host_dir.stat().st_uid == os.getuid() and not any(host_dir.iterdir())
    inside = await view(store, built.layers, tmp_path, f"cat {victim}; ls -ln /app/pkg/mod.py; readlink /app/host-link")
    assert inside.splitlines()[0] == "print('app')"  # where the image's link led, in the image
    assert inside.splitlines()[1].split()[2:4] == ["1000", "1000"]
    assert inside.splitlines()[2] == str(host_dir)  # a link, copied as one


async def test_add_extracts_an_archive_through_the_images_symlinks_inside_the_root(
    store: LayerStore, context: Path, tmp_path: Path
) -> None:
    """ADD of a local archive lands where the image's symlinks lead inside the image, as with
    Docker, and never where they would lead on the host."""
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    dockerfile = PRELUDE + f"RUN mkdir -p /srv && ln -s {host_dir} /srv/bundled\nADD bundle.tar.gz /srv/\n"
    built = await builder(store, context, tmp_path).build(dockerfile)
    assert not any(host_dir.iterdir())
    inside = await view(store, built.layers, tmp_path, f"cat /srv/bundled/readme.txt {host_dir}/readme.txt")
    assert inside == "from the archive\n" * 2


async def test_from_an_image_in_a_registry_keeps_its_config_and_layers(
    registry: Pusher, store: LayerStore, context: Path, tmp_path: Path
) -> None:
    config = {"Env": ["PATH=/bin", "FROM_IMAGE=yes"], "WorkingDir": "/data", "Cmd": ["/bin/sh"]}
    registry.image("tiny/busybox", "1", [busybox_layer()], config=config)
    reference = f"{registry.address}/tiny/busybox:1"
    dockerfile = f"FROM {reference}\nENV ADDED=1\nRUN env | sort > /env.txt && pwd > /pwd.txt\n"
    build = DockerfileBuild(store, tmp_path / "work", registry_puller(store), context)
    (tmp_path / "work").mkdir()
    built = await build.build(dockerfile)
    assert built.layers[-1].startswith("sha256:")  # the image's layer, shared from the store
    assert built.config.env_dict == {"PATH": "/bin", "FROM_IMAGE": "yes", "ADDED": "1"}
    assert built.config.working_dir == "/data" and built.config.cmd == ("/bin/sh",)
    seen = await view(store, built.layers, tmp_path, "cat /env.txt /pwd.txt")
    assert "FROM_IMAGE=yes" in seen and "ADDED=1" in seen and seen.endswith("/data\n")


async def test_a_build_that_stops_later_leaves_its_sandbox_to_aclose(
    store: LayerStore, context: Path, tmp_path: Path
) -> None:
    build = builder(store, context, tmp_path, stop_later=True)
    await build.build(PRELUDE + "RUN true\n")
    assert build._box is not None
    init = Path(f"/proc/{build._box.sandbox.init_pid}")
    assert init.exists()  # still running: its owner stops it once the outcome is told
    await build.aclose()
    assert build._box is None and not init.exists()
