"""Pulling images from a real OCI registry on loopback (docker-registry) into the layer store.

No test here reaches beyond loopback: the images are built by the tests and pushed to the local
registry; Docker Hub's name rules are shown through the mirror setting pointed at it.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import anyio
import pytest

from scenario_mcp.local.images import find_image, pull_image
from scenario_mcp.local.layers import LayerStore
from scenario_mcp.local.registry import ImageError

from .oci_registry import (
    Pusher,
    RegistryFront,
    base_dirs,
    directory,
    file,
    hardlink,
    make_tar,
    sandbox_output,
    sha256,
    symlink,
)
from .test_oci_layer import EXPECTED_VIEW, VIEW_SCRIPT, three_layers

pytestmark = pytest.mark.anyio


def leftovers(store: LayerStore) -> list[str]:
    """Anything in the store that is not a complete layer or record: scratch trees, temp files."""
    found = []
    for folder in (store.image_layers, store.images):
        if folder.is_dir():
            found += [p.name for p in folder.iterdir() if p.name.startswith(".tmp-") or ".tmp-" in p.name]
    return found


def image_layer_count(store: LayerStore) -> int:
    return (
        len([p for p in store.image_layers.iterdir() if not p.name.startswith(".")])
        if store.image_layers.is_dir()
        else 0
    )


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
async def test_a_three_layer_image_is_pulled_and_overlay_shows_its_whiteouts(
    registry: Pusher, tmp_path: Path, compression: str
) -> None:
    config = {
        "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"],
        "WorkingDir": "/app",
        "User": "1000:1000",
        "Entrypoint": ["/entry.sh"],
        "Cmd": ["serve", "--port", "80"],
        "ExposedPorts": {"80/tcp": {}},
        "Labels": {"org.opencontainers.image.title": "three"},
    }
    tars = [make_tar(entries) for entries in three_layers()]
    repo = f"tests/three-{compression}"
    digest, _ = registry.image(repo, "v1", tars, config=config, compression=compression)
    store = LayerStore(tmp_path / "layers")
    seen: list[tuple[int, int, str]] = []
    record = await pull_image(f"{registry.address}/{repo}:v1", store, progress=lambda *p: seen.append(p))
    assert record.manifest_digest == digest
    assert record.diff_ids == tuple(sha256(t) for t in tars)
    assert record.references == (f"{registry.address}/{repo}:v1",)
    assert record.config.env == ("PATH=/usr/bin:/bin", "LANG=C.UTF-8")
    assert (record.config.working_dir, record.config.user) == ("/app", "1000:1000")
    assert record.config.entrypoint == ("/entry.sh",) and record.config.cmd == ("serve", "--port", "80")
    assert (
        record.config.exposed_ports == ("80/tcp",) and record.config.labels["org.opencontainers.image.title"] == "three"
    )
    assert find_image(store, f"{registry.address}/{repo}:v1") == record
    done = [d for d, _, _ in seen]
    assert done == sorted(done) and seen[-1][0] == seen[-1][1] > 0 and "pulled" in seen[-1][2]
    layers = [store.image_layer_path(d) for d in reversed(record.diff_ids)]
    assert await sandbox_output(layers, tmp_path / "view", VIEW_SCRIPT) == EXPECTED_VIEW
    assert leftovers(store) == []


async def test_hard_links_and_symlinks_out_of_the_layer_survive_a_pull(registry: Pusher, tmp_path: Path) -> None:
    tar = make_tar(
        [
            *base_dirs(),
            file("bin/tool", "#!/bin/sh\n", mode=0o4755),
            hardlink("bin/tool-alias", "bin/tool"),
            symlink("etc/passwd-link", "../../../../../etc/passwd"),
            symlink("abs", "/etc/hostname"),
        ]
    )
    registry.image("tests/links", "v1", [tar], compression="none")
    store = LayerStore(tmp_path / "layers")
    record = await pull_image(f"{registry.address}/tests/links:v1", store)
    layer = store.image_layer_path(record.diff_ids[0])
    assert (layer / "bin/tool").stat().st_ino == (layer / "bin/tool-alias").stat().st_ino
    assert (layer / "bin/tool").stat().st_mode & 0o7777 == 0o4755
    assert os.readlink(layer / "etc/passwd-link") == "../../../../../etc/passwd"
    assert os.readlink(layer / "abs") == "/etc/hostname"


async def test_a_layer_with_dotdot_entries_is_refused_and_nothing_is_left(registry: Pusher, tmp_path: Path) -> None:
    good = make_tar([*base_dirs(), file("ok", "fine")])
    bad = make_tar([file("innocent", "x"), file("../../escaped", "gotcha")])
    registry.image("tests/dotdot", "v1", [good, bad])
    store = LayerStore(tmp_path / "deep" / "layers")
    with pytest.raises(ImageError, match="leaves the layer"):
        await pull_image(f"{registry.address}/tests/dotdot:v1", store)
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "deep" / "escaped").exists()
    assert not store.has_image_layer(sha256(bad))
    assert store.list_images() == [] and leftovers(store) == []


async def test_a_corrupted_blob_is_refused_and_nothing_half_unpacked_is_left(registry: Pusher, tmp_path: Path) -> None:
    big = make_tar([*base_dirs(), *(file(f"f{i}", os.urandom(2000).hex()) for i in range(50))])
    registry.image("tests/corrupt", "v1", [big])
    store = LayerStore(tmp_path / "layers")
    with (
        RegistryFront(registry.address, "corrupt") as front,
        pytest.raises(ImageError, match=r"layer sha256:\w+: (digest mismatch|cannot unpack)"),
    ):
        await pull_image(f"{front.address}/tests/corrupt:v1", store)
    assert image_layer_count(store) == 0 and store.list_images() == [] and leftovers(store) == []


async def test_a_truncated_blob_is_refused_and_nothing_half_unpacked_is_left(registry: Pusher, tmp_path: Path) -> None:
    big = make_tar([*base_dirs(), *(file(f"f{i}", os.urandom(20_000)) for i in range(50))])
    registry.image("tests/truncated", "v1", [big])
    store = LayerStore(tmp_path / "layers")
    with (
        RegistryFront(registry.address, "truncate") as front,
        pytest.raises(ImageError, match=r"layer sha256:\w+: (the gzip stream ends early|got \d+ bytes)"),
    ):
        await pull_image(f"{front.address}/tests/truncated:v1", store)
    assert image_layer_count(store) == 0 and store.list_images() == [] and leftovers(store) == []


async def test_a_refused_path_stops_the_pull_at_once_though_the_registry_stalls(
    registry: Pusher, tmp_path: Path
) -> None:
    # The refusal is in the blob's first bytes; the registry sends no more after 1.5 MiB: the
    # download, the decoder and the unpacker must all stop now, not at the HTTP timeout.
    bad = make_tar([file("../escape", "x"), file("big", os.urandom(4 << 20))])
    registry.image("tests/stalled", "v1", [bad])
    store = LayerStore(tmp_path / "deep" / "layers")
    with (
        RegistryFront(registry.address, "stall") as front,
        anyio.fail_after(20),
        pytest.raises(ImageError, match="leaves the layer"),
    ):
        await pull_image(f"{front.address}/tests/stalled:v1", store)
    assert not (tmp_path / "deep" / "escape").exists()
    assert image_layer_count(store) == 0 and store.list_images() == [] and leftovers(store) == []


async def test_a_config_whose_diff_id_lies_is_refused(registry: Pusher, tmp_path: Path) -> None:
    tar = make_tar([*base_dirs(), file("a", "1")])
    registry.image("tests/lying", "v1", [tar], diff_ids=[sha256(b"something else")])
    store = LayerStore(tmp_path / "layers")
    with pytest.raises(ImageError, match="diff_id mismatch"):
        await pull_image(f"{registry.address}/tests/lying:v1", store)
    assert image_layer_count(store) == 0 and leftovers(store) == []


async def test_an_index_picks_this_machines_platform_or_names_the_ones_it_has(registry: Pusher, tmp_path: Path) -> None:
    tar = make_tar([*base_dirs(), file("which", "native")])
    other = make_tar([*base_dirs(), file("which", "foreign")])
    native, native_size = registry.image("tests/multi", "native", [tar])
    arm, arm_size = registry.image("tests/multi", "arm", [other], platform="linux/arm64")
    s390, s390_size = registry.image("tests/multi", "s390", [other], platform="linux/s390x")
    from scenario_mcp.local.images import host_platform

    index = registry.index(
        "tests/multi", "v1", [("linux/arm64/v8", arm, arm_size), (host_platform(), native, native_size)]
    )
    store = LayerStore(tmp_path / "layers")
    record = await pull_image(f"{registry.address}/tests/multi:v1", store)
    assert (record.manifest_digest, record.index_digest, record.platform) == (native, index, host_platform())
    assert (store.image_layer_path(record.diff_ids[0]) / "which").read_text() == "native"

    registry.index("tests/multi", "foreign", [("linux/arm64/v8", arm, arm_size), ("linux/s390x", s390, s390_size)])
    with pytest.raises(ImageError) as caught:
        await pull_image(f"{registry.address}/tests/multi:foreign", store, platform="linux/amd64")
    assert str(caught.value) == (
        f"{registry.address}/tests/multi:foreign has no linux/amd64 image; "
        "the platforms it has: linux/arm64/v8, linux/s390x"
    )


async def test_pull_by_digest_then_again_without_the_registry(registry: Pusher, tmp_path: Path) -> None:
    digest, _ = registry.image("tests/bydigest", "v1", [make_tar([*base_dirs(), file("d", "1")])])
    store = LayerStore(tmp_path / "layers")
    with RegistryFront(registry.address, "open") as front:
        first = await pull_image(f"{front.address}/tests/bydigest@{digest}", store)
        asked = len(front.requests)
        again = await pull_image(f"{front.address}/tests/bydigest@{digest}", store)
        assert len(front.requests) == asked  # known by digest: no registry round trip
    assert first.manifest_digest == again.manifest_digest == digest
    bad = "sha256:" + "0" * 64
    with pytest.raises(ImageError, match="HTTP 404"):
        await pull_image(f"{registry.address}/tests/bydigest@{bad}", store)


async def test_anonymous_token_auth(registry: Pusher, tmp_path: Path) -> None:
    registry.image("tests/token", "v1", [make_tar([*base_dirs(), file("t", "1")])])
    store = LayerStore(tmp_path / "layers")
    with RegistryFront(registry.address, "token") as front:
        record = await pull_image(f"{front.address}/tests/token:v1", store, auths={})
        assert front.token_requests[0] == {"service": "front", "scope": "repository:tests/token:pull"}
        assert len(front.token_requests) == 1  # one token serves the manifest, config and layers
    assert record.diff_ids


async def test_token_auth_with_credentials_from_docker_config(
    registry: Pusher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.image("tests/private", "v1", [make_tar([*base_dirs(), file("p", "1")])])
    store = LayerStore(tmp_path / "layers")
    with RegistryFront(registry.address, "token", credentials=("alice", "s3cret")) as front:
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "nowhere"))
        with pytest.raises(ImageError, match=r"token service .* HTTP 401"):
            await pull_image(f"{front.address}/tests/private:v1", store)
        docker_config = tmp_path / "docker"
        docker_config.mkdir()
        auth = base64.b64encode(b"alice:s3cret").decode()
        (docker_config / "config.json").write_text(json.dumps({"auths": {front.address: {"auth": auth}}}))
        monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))
        record = await pull_image(f"{front.address}/tests/private:v1", store)
    assert record.references == (f"{front.address}/tests/private:v1",)


async def test_basic_auth_with_credentials(registry: Pusher, tmp_path: Path) -> None:
    registry.image("tests/basic", "v1", [make_tar([*base_dirs(), file("b", "1")])])
    store = LayerStore(tmp_path / "layers")
    with RegistryFront(registry.address, "basic", credentials=("bob", "pw")) as front:
        with pytest.raises(ImageError, match="wants a login"):
            await pull_image(f"{front.address}/tests/basic:v1", store, auths={})
        record = await pull_image(f"{front.address}/tests/basic:v1", store, auths={front.address: ("bob", "pw")})
    assert record.diff_ids


async def test_a_layer_shared_by_two_images_is_fetched_and_unpacked_once(registry: Pusher, tmp_path: Path) -> None:
    base = make_tar([*base_dirs(), directory("opt"), file("opt/base", "shared " * 5000)])
    registry.image("tests/app-a", "v1", [base, make_tar([*base_dirs(), file("opt/a", "a")])])
    registry.image("tests/app-b", "v1", [base, make_tar([*base_dirs(), file("opt/b", "b")])])
    store = LayerStore(tmp_path / "layers")
    a = await pull_image(f"{registry.address}/tests/app-a:v1", store)
    shared = store.image_layer_path(sha256(base))
    inode = shared.stat().st_ino
    with RegistryFront(registry.address, "open") as front:
        b = await pull_image(f"{front.address}/tests/app-b:v1", store)
        blobs = [p for p in front.requests if "/blobs/" in p]
    assert a.diff_ids[0] == b.diff_ids[0] == sha256(base)
    assert shared.stat().st_ino == inode
    assert len(blobs) == 2  # b's config and its own layer; not the shared one
    assert image_layer_count(store) == 3


async def test_docker_hub_names_through_a_mirror(
    registry: Pusher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.image("library/mirrored", "1.0", [make_tar([*base_dirs(), file("m", "1")])])
    monkeypatch.setenv("SCENARIO_MCP_REGISTRY_MIRROR", f"http://{registry.address}")
    store = LayerStore(tmp_path / "layers")
    record = await pull_image("mirrored:1.0", store)
    assert record.references == ("docker.io/library/mirrored:1.0",)
    assert find_image(store, "mirrored:1.0") == find_image(store, "docker.io/library/mirrored:1.0") == record


async def test_collect_frees_layers_only_nothing_references(registry: Pusher, tmp_path: Path) -> None:
    base = make_tar([*base_dirs(), file("base", "b")])
    only_a, only_b = make_tar([file("a", "a")]), make_tar([file("b", "b")])
    registry.image("tests/gc-a", "v1", [base, only_a])
    registry.image("tests/gc-b", "v1", [base, only_b])
    store = LayerStore(tmp_path / "layers")
    a = await pull_image(f"{registry.address}/tests/gc-a:v1", store)
    b = await pull_image(f"{registry.address}/tests/gc-b:v1", store)
    assert store.collect().image_layers == []  # every layer belongs to a recorded image

    store.remove_image(a.manifest_digest)
    report = store.collect(diff_ids=[])
    assert report.image_layers == [sha256(only_a)] and report.freed_bytes > 0
    assert store.has_image_layer(sha256(base)) and store.has_image_layer(sha256(only_b))

    report = store.collect(images=[], diff_ids=[sha256(only_b)])  # b forgotten, but a devbox still stacks its top
    assert report.images == [b.manifest_digest]
    assert report.image_layers == [sha256(base)]
    assert store.has_image_layer(sha256(only_b)) and store.list_images() == []
