"""The trust given to a sandbox on an image: the CAs to add, the trust layer made over an image's
own layers (Debian, Alpine and RHEL layouts, whiteouts and opaque directories honoured), the
environment, and Dockerfile RUN steps that see all of it while the layers they make keep none."""

from __future__ import annotations

import io
import os
import shutil
import ssl
import stat
import subprocess
from pathlib import Path

import pytest

from scenario_mcp.local import trust as trust_module
from scenario_mcp.local.builds import Base, BuildError, DockerfileBuild
from scenario_mcp.local.dockerfile import Instruction
from scenario_mcp.local.layers import LayerStore, remove_tree
from scenario_mcp.local.oci_layer import unpack_layer
from scenario_mcp.local.sandbox import Sandbox, SandboxSpec
from scenario_mcp.local.trust import (
    EXTRA_CA_FILE,
    NotRemembered,
    SandboxTrust,
    TrustError,
    TrustSettings,
    proxy_env,
    sandbox_trust,
    strip_added_cas,
    trust_for,
)

from .oci_registry import Entry, directory, file, make_tar, opaque, sha256, symlink, whiteout

pytestmark = pytest.mark.anyio

BUSYBOX = Path("/bin/busybox")
DEBIAN = "/etc/ssl/certs/ca-certificates.crt"
RHEL = "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"
BUNDLE_ENV = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT")


def make_ca(where: Path, name: str) -> Path:
    """A real self-signed CA certificate (PEM), made by openssl."""
    pem = where / f"{name}.crt"
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(where / "key.pem")]
    subprocess.run(
        ["openssl", "req", "-x509", *key, "-out", str(pem), "-days", "30", "-subj", f"/CN={name}"],
        check=True,
        capture_output=True,
    )
    return pem


@pytest.fixture(scope="module")
def cas(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    assert shutil.which("openssl"), "install openssl (scripts/setup.sh does with the test extras)"
    where = tmp_path_factory.mktemp("cas")
    return [make_ca(where, "test-ca-one"), make_ca(where, "test-ca-two")]


def der(pem: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.read_text())


@pytest.fixture
def host_cas(tmp_path: Path, cas: list[Path]) -> TrustSettings:
    """The host's added CAs as /usr/local/share/ca-certificates keeps them, in a test directory."""
    host = tmp_path / "host-cas"
    (host / "subdir").mkdir(parents=True)
    shutil.copy(cas[0], host / "one.crt")
    shutil.copy(cas[1], host / "subdir" / "two.crt")
    (host / "README").write_text("not a certificate\n")
    return TrustSettings(host_ca_sources=((host, "*.crt"),))


@pytest.fixture
def store(tmp_path: Path) -> LayerStore:
    layers = LayerStore(tmp_path / "layers")
    layers.ensure_base()
    return layers


def put_layer(store: LayerStore, entries: list[Entry], *, mknod_whiteouts: bool | None = None) -> str:
    """An image layer in the store, unpacked from a tar as a pull unpacks it; returns its id."""
    tar = make_tar(entries)
    diff_id = sha256(tar)
    scratch = store.image_layer_scratch(diff_id)
    unpack_layer(io.BytesIO(tar), scratch, mknod_whiteouts=mknod_whiteouts)
    store.commit_image_layer(scratch, diff_id)
    return diff_id


def debian_bundle(data: str = "IMAGE BUNDLE\n") -> list[Entry]:
    return [directory("etc"), directory("etc/ssl"), directory("etc/ssl/certs"), file(DEBIAN[1:], data)]


def layer_file(store: LayerStore, trust: SandboxTrust, path: str) -> bytes:
    assert trust.layer is not None
    return (store.path(trust.layer) / path.lstrip("/")).read_bytes()


# -- the CAs to add -----------------------------------------------------------------------------


def test_the_cas_come_from_the_host_dirs_and_the_extra_files_each_once(
    host_cas: TrustSettings, cas: list[Path], tmp_path: Path
) -> None:
    assert host_cas.certificates() == [der(cas[0]), der(cas[1])]  # sorted paths, deep; README passed over
    (tmp_path / "one.der").write_bytes(der(cas[0]))
    with_extra = TrustSettings(False, (tmp_path / "one.der",), host_cas.host_ca_sources)
    assert with_extra.certificates() == [der(cas[0])]  # DER too; the host's turned off
    both = TrustSettings(True, (tmp_path / "one.der", cas[1]), host_cas.host_ca_sources)
    assert both.certificates() == [der(cas[0]), der(cas[1])]
    assert TrustSettings(False).certificates() == []


def test_an_extra_file_that_cannot_be_used_is_refused_with_its_name(tmp_path: Path, cas: list[Path]) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    broken = cas[0].read_text().replace("\n", "\nAAAA", 3)
    (tmp_path / "broken.pem").write_text(broken)
    for name, reason in [
        ("missing.pem", "No such file"),
        ("notes.txt", "no certificate in it"),
        ("broken.pem", "OpenSSL cannot load"),
    ]:
        with pytest.raises(TrustError, match=f"extra CA file {tmp_path / name}: .*{reason}"):
            TrustSettings(False, (tmp_path / name,)).check()


def test_proxies_pass_through_as_the_host_spells_them() -> None:
    environ = {"HTTPS_PROXY": "http://proxy:3128", "no_proxy": "localhost", "HTTP_PROXY": "", "PATH": "/bin"}
    assert proxy_env(environ) == {"HTTPS_PROXY": "http://proxy:3128", "no_proxy": "localhost"}


# -- the trust layer over an image's layers -----------------------------------------------------


async def test_a_debian_bundle_gets_the_cas_appended_and_the_env_names_it(
    store: LayerStore, host_cas: TrustSettings, cas: list[Path]
) -> None:
    image = [put_layer(store, [*debian_bundle(), file("etc/os-release", "ID=debian\n")])]
    trust = await sandbox_trust(store, image, host_cas, environ={"HTTPS_PROXY": "http://proxy:3128"})
    assert trust.stack(image) == (trust.layer, *image)
    assert set(trust.files) == {DEBIAN, EXTRA_CA_FILE}
    bundle = layer_file(store, trust, DEBIAN)
    assert bundle.startswith(b"IMAGE BUNDLE\n")
    assert certificates(bundle) == certificates(layer_file(store, trust, EXTRA_CA_FILE)) == [der(c) for c in cas]
    assert trust.env == {
        **dict.fromkeys(BUNDLE_ENV, DEBIAN),
        "NODE_EXTRA_CA_CERTS": EXTRA_CA_FILE,
        "HTTPS_PROXY": "http://proxy:3128",
    }
    # Only what is there: not the image's other files.
    assert sorted(p.name for p in store.path(trust.layer or "").rglob("*") if p.is_file()) == [
        "ca-certificates.crt",
        "scenario-mcp-ca.pem",
    ]


def certificates(data: bytes) -> list[bytes]:
    """The certificates in a PEM bundle, DER-encoded."""
    chunks = data.decode().split("-----BEGIN CERTIFICATE-----")[1:]
    return [ssl.PEM_cert_to_DER_cert("-----BEGIN CERTIFICATE-----" + chunk.split("# ")[0]) for chunk in chunks]


async def test_the_layer_is_made_once_and_shared_by_images_with_the_same_bundle(
    store: LayerStore, host_cas: TrustSettings
) -> None:
    first = [put_layer(store, debian_bundle())]
    other = [put_layer(store, [directory("srv"), file("srv/app", "x")]), *first]
    changed = [put_layer(store, debian_bundle("ANOTHER BUNDLE\n"))]
    one = await sandbox_trust(store, first, host_cas, environ={})
    assert one.layer is not None
    made = (store.path(one.layer) / DEBIAN[1:]).stat().st_mtime_ns
    again = await sandbox_trust(store, other, host_cas, environ={})
    assert again.layer == one.layer and (store.path(one.layer) / DEBIAN[1:]).stat().st_mtime_ns == made
    assert (await sandbox_trust(store, changed, host_cas, environ={})).layer != one.layer
    fewer = TrustSettings(host_ca_sources=((host_cas.host_ca_sources[0][0], "one.crt"),))
    assert (await sandbox_trust(store, first, fewer, environ={})).layer != one.layer
    # Collected: made again. A layer made again under its id with other files: its own trust layer.
    remove_tree(store.path(one.layer))
    assert (await sandbox_trust(store, first, host_cas, environ={})).layer == one.layer
    assert store.exists(one.layer)
    step = store.root / "step-1"
    (step / "etc/ssl/certs").mkdir(parents=True)
    (step / DEBIAN[1:]).write_text("STEP BUNDLE\n")
    before = await sandbox_trust(store, ["step-1", *first], host_cas, environ={})
    remove_tree(step)
    (step / "etc/ssl/certs").mkdir(parents=True)
    (step / DEBIAN[1:]).write_text("REBUILT STEP BUNDLE\n")
    after = await sandbox_trust(store, ["step-1", *first], host_cas, environ={})
    assert after.layer != before.layer and layer_file(store, after, DEBIAN).startswith(b"REBUILT")


async def test_a_ca_the_host_adds_or_rotates_reaches_the_next_sandbox(
    store: LayerStore, host_cas: TrustSettings, cas: list[Path]
) -> None:
    # The next sandbox's trust is looked up without a thread hop when nothing changed: a CA
    # file added, or one rewritten in place, must still be read and make a new layer.
    image = [put_layer(store, debian_bundle())]
    host = host_cas.host_ca_sources[0][0]
    (host / "subdir" / "two.crt").unlink()
    one = await sandbox_trust(store, image, host_cas, environ={})
    assert await sandbox_trust(store, image, host_cas, environ={}) == one
    shutil.copy(cas[1], host / "added.crt")
    added = await sandbox_trust(store, image, host_cas, environ={})
    assert added.layer != one.layer and layer_file(store, added, DEBIAN).count(b"BEGIN CERTIFICATE") == 2
    (host / "added.crt").write_text((host / "one.crt").read_text() + "\n")  # rotated: now the first CA again
    rotated = await sandbox_trust(store, image, host_cas, environ={})
    assert rotated.layer == one.layer and layer_file(store, rotated, DEBIAN).count(b"BEGIN CERTIFICATE") == 1


def step_layer(store: LayerStore, name: str, change: str) -> str:
    """A build step's layer in the store, as a RUN leaves one (plain dirs, overlayfs's marks)."""
    top = store.root / name
    etc = top / "etc"
    etc.mkdir(parents=True)
    os.chmod(etc, 0o755)  # as the image's /etc: a copied-up directory keeps its attributes
    if change == "another file in /etc":
        (etc / "bench-mode").write_text("bench\n")
    elif change == "/etc/ssl made private":
        (etc / "ssl").mkdir()
        os.chmod(etc / "ssl", 0o700)
    elif change == "a bundle at another trust-store path":
        (etc / "ssl").mkdir(mode=0o755)
        (etc / "ssl" / "cert.pem").write_text("ALPINE-STYLE BUNDLE\n")
    elif change == "the bundle rewritten":
        (etc / "ssl" / "certs").mkdir(parents=True, mode=0o755)
        (etc / DEBIAN[1:].removeprefix("etc/")).write_text("UPDATED BUNDLE\n")
    elif change == "/etc/ssl/certs removed":
        (etc / "ssl").mkdir(mode=0o755)
        os.mknod(etc / "ssl" / "certs", 0o600 | stat.S_IFCHR, os.makedev(0, 0))
    elif change == "/etc/ssl made opaque":
        (etc / "ssl").mkdir(mode=0o755)
        os.setxattr(etc / "ssl", "user.overlay.opaque", b"y")
    return name


STEP_CHANGES = [
    "another file in /etc",
    "/etc/ssl made private",
    "a bundle at another trust-store path",
    "the bundle rewritten",
    "/etc/ssl/certs removed",
    "/etc/ssl made opaque",
]


def debian_image(store: LayerStore, change: str) -> list[str]:
    """An image with Debian's CA bundle (its directories, then the bundle), for a step on top
    that makes `change` (skipped where that needs root and this is not)."""
    if change == "/etc/ssl/certs removed" and os.geteuid() != 0:
        pytest.skip("mknod of a whiteout needs root")
    image = [put_layer(store, [directory("etc"), directory("etc/ssl"), directory("etc/ssl/certs")])]
    return [put_layer(store, [file(DEBIAN[1:], "IMAGE BUNDLE\n")]), *image]


@pytest.mark.parametrize("change", STEP_CHANGES)
async def test_a_build_steps_trust_is_the_one_made_from_scratch(
    store: LayerStore, host_cas: TrustSettings, change: str
) -> None:
    # A build's next step reuses its previous step's trust unless its layer changes what that
    # was made from: either way the same as made from scratch for the step's layers.
    image = debian_image(store, change)
    below = await sandbox_trust(store, image, host_cas, environ={})
    layers = [step_layer(store, "step-top", change), *image]
    incremental = await sandbox_trust(store, layers, host_cas, environ={})
    trust_module._MADE.clear()
    trust_module._SEEN.clear()
    scratch = await sandbox_trust(store, layers, host_cas, environ={})
    assert incremental == scratch
    assert (incremental.layer == below.layer) == (change == "another file in /etc")


@pytest.mark.parametrize("change", STEP_CHANGES)
async def test_a_step_two_layers_above_a_known_image_gets_the_trust_made_from_scratch(
    store: LayerStore, host_cas: TrustSettings, change: str
) -> None:
    # A RUN, then a COPY, then the next RUN: its image is two layers above the last one whose
    # trust was made. Reused when neither changes what that was made from; either way the same as
    # made from scratch.
    image = debian_image(store, change)
    below = await sandbox_trust(store, image, host_cas, environ={})
    copied = put_layer(store, [directory("srv"), file("srv/app.py", "print()\n")])
    layers = [copied, step_layer(store, "step-top", change), *image]
    certificates = host_cas.certificates()
    if change == "another file in /etc":  # reused: a stat per path, no trust layer looked for
        incremental = trust_for(store, layers, certificates, environ={}, remembered_only=True)
        assert incremental.layer == below.layer
    else:
        with pytest.raises(NotRemembered):
            trust_for(store, layers, certificates, environ={}, remembered_only=True)
        incremental = await sandbox_trust(store, layers, host_cas, environ={})
    trust_module._MADE.clear()
    trust_module._SEEN.clear()
    assert incremental == await sandbox_trust(store, layers, host_cas, environ={})


async def test_a_first_step_on_an_empty_image_gets_the_trust_of_its_own_layer(
    store: LayerStore, host_cas: TrustSettings
) -> None:
    # FROM scratch: what the empty image was looked at for is remembered as well, so a step
    # that writes a bundle there does not reuse the empty image's trust.
    empty = await sandbox_trust(store, [], host_cas, environ={})
    layers = [step_layer(store, "step-top", "the bundle rewritten")]
    incremental = await sandbox_trust(store, layers, host_cas, environ={})
    trust_module._MADE.clear()
    trust_module._SEEN.clear()
    assert incremental == await sandbox_trust(store, layers, host_cas, environ={})
    assert incremental.layer != empty.layer


@pytest.mark.parametrize("mknod_whiteouts", [None, False], ids=["device-whiteout", "xattr-whiteout"])
async def test_a_bundle_whited_out_by_a_later_layer_is_not_the_images(
    store: LayerStore, host_cas: TrustSettings, mknod_whiteouts: bool | None
) -> None:
    if mknod_whiteouts is None and os.geteuid() != 0:
        pytest.skip("mknod of a whiteout needs root")
    bottom = put_layer(store, debian_bundle())
    gone = put_layer(store, [directory("etc/ssl/certs"), whiteout(DEBIAN[1:])], mknod_whiteouts=mknod_whiteouts)
    trust = await sandbox_trust(store, [gone, bottom], host_cas, environ={})
    assert trust.files == (EXTRA_CA_FILE,)
    assert trust.env == {**dict.fromkeys(BUNDLE_ENV, EXTRA_CA_FILE), "NODE_EXTRA_CA_CERTS": EXTRA_CA_FILE}
    assert not (store.path(trust.layer or "") / DEBIAN[1:]).exists()


async def test_an_opaque_directory_hides_the_bundle_below_and_a_newer_bundle_wins(
    store: LayerStore, host_cas: TrustSettings
) -> None:
    bottom = put_layer(store, debian_bundle("OLD\n"))
    hidden = put_layer(store, [directory("etc/ssl/certs"), opaque("etc/ssl/certs"), file("etc/ssl/certs/x", "x")])
    assert (await sandbox_trust(store, [hidden, bottom], host_cas, environ={})).files == (EXTRA_CA_FILE,)
    newer = put_layer(store, [directory("etc/ssl/certs"), file(DEBIAN[1:], "NEW\n")])
    trust = await sandbox_trust(store, [newer, hidden, bottom], host_cas, environ={})
    assert layer_file(store, trust, DEBIAN).startswith(b"NEW\n\n# scenario-mcp")


async def test_a_rhel_layout_gets_one_file_at_the_end_of_its_symlinks(
    store: LayerStore, host_cas: TrustSettings, tmp_path: Path
) -> None:
    layer = put_layer(
        store,
        [
            directory("etc"),
            directory("etc/pki", mode=0o750),
            directory("etc/pki/ca-trust/extracted/pem"),
            file(RHEL[1:], "RHEL BUNDLE\n", mode=0o444),
            directory("etc/pki/tls/certs"),
            symlink("etc/pki/tls/certs/ca-bundle.crt", RHEL),
            symlink("etc/pki/tls/cert.pem", "certs/ca-bundle.crt"),
            directory("etc/ssl"),
            symlink("etc/ssl/certs", "../pki/tls/certs"),  # Fedora's
        ],
    )
    trust = await sandbox_trust(store, [layer], host_cas, environ={})
    assert set(trust.files) == {RHEL, EXTRA_CA_FILE}
    assert trust.env["SSL_CERT_FILE"] == "/etc/pki/tls/certs/ca-bundle.crt"  # the first name the image has
    top = store.path(trust.layer or "")
    assert layer_file(store, trust, RHEL).startswith(b"RHEL BUNDLE\n")
    assert (top / RHEL[1:]).stat().st_mode & 0o777 == 0o444
    assert (top / "etc/pki").stat().st_mode & 0o777 == 0o750  # overlayfs shows the topmost directory's mode
    assert not (top / "etc/ssl/certs").exists()  # a directory here would hide the image's symlink
    assert not (top / "etc/pki/tls").exists()
    # As the sandbox sees it (overlayfs): every name of the bundle is the bundle with the CAs.
    busybox = put_layer(store, [directory("bin"), file("bin/busybox", BUSYBOX.read_bytes(), mode=0o755)])
    script = "busybox cat /etc/ssl/certs/ca-bundle.crt /etc/pki/tls/cert.pem; busybox ls -ld /etc/ssl/certs"
    seen = await view(store, list(trust.stack([busybox, layer])), tmp_path, script)
    assert seen.count("RHEL BUNDLE") == 2 and seen.count("BEGIN CERTIFICATE") == 4
    assert "/etc/ssl/certs -> ../pki/tls/certs" in seen


async def test_an_alpine_layout_with_its_relative_symlink(store: LayerStore, host_cas: TrustSettings) -> None:
    layer = put_layer(store, [*debian_bundle("ALPINE\n"), symlink("etc/ssl/cert.pem", "certs/ca-certificates.crt")])
    trust = await sandbox_trust(store, [layer], host_cas, environ={})
    assert set(trust.files) == {DEBIAN, EXTRA_CA_FILE}
    assert trust.env["SSL_CERT_FILE"] == DEBIAN


async def test_nothing_to_add_makes_no_layer_and_only_the_proxies(store: LayerStore) -> None:
    image = [put_layer(store, debian_bundle())]
    trust = await sandbox_trust(store, image, TrustSettings(False), environ={"NO_PROXY": "example.com"})
    assert trust == SandboxTrust(None, {"NO_PROXY": "example.com"})
    assert trust.stack(image) == tuple(image)


def test_strip_takes_the_added_cas_out_of_copied_up_files(tmp_path: Path) -> None:
    block = b"\n# scenario-mcp: CAs added for this sandbox, not part of the image (begin)\nPEM\n"
    block += b"# scenario-mcp: CAs added for this sandbox (end)\n"
    upper = tmp_path / "upper"
    (upper / "etc/ssl/certs").mkdir(parents=True)
    (upper / DEBIAN[1:]).write_bytes(b"IMAGE\n" + block + b"APPENDED BY THE STEP\n")
    (upper / EXTRA_CA_FILE[1:]).write_bytes(block)
    os.chmod(upper / DEBIAN[1:], 0o600)
    assert strip_added_cas(upper, [DEBIAN, EXTRA_CA_FILE, RHEL]) == [DEBIAN, EXTRA_CA_FILE]
    assert (upper / DEBIAN[1:]).read_bytes() == b"IMAGE\nAPPENDED BY THE STEP\n"
    assert (upper / DEBIAN[1:]).stat().st_mode & 0o777 == 0o600
    assert not (upper / EXTRA_CA_FILE[1:]).exists()
    assert strip_added_cas(upper, [DEBIAN]) == []
    # A symlink a command left in the tree is not followed out of it (here: to the first tree).
    (tmp_path / "other").mkdir()
    (tmp_path / "other/etc").symlink_to(upper / "etc")
    (upper / DEBIAN[1:]).write_bytes(b"IMAGE\n" + block)
    assert strip_added_cas(tmp_path / "other", [DEBIAN]) == []
    assert (upper / DEBIAN[1:]).read_bytes() == b"IMAGE\n" + block


# -- Dockerfile builds ------------------------------------------------------------------------


async def no_registry(reference: str) -> Base:
    raise BuildError(f"this test pulls no image ({reference})")


PRELUDE = 'FROM scratch AS base\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'


def build(store: LayerStore, tmp_path: Path, trust: TrustSettings, logged: list[str]) -> DockerfileBuild:
    assert BUSYBOX.exists(), "install busybox-static (scripts/setup.sh does with the test extras)"
    context = tmp_path / "context"
    context.mkdir(exist_ok=True)
    shutil.copy(BUSYBOX, context / "busybox")
    (tmp_path / "work").mkdir(exist_ok=True)

    async def log(step: Instruction, output: str, failed: bool) -> None:
        logged.append(output)

    return DockerfileBuild(store, tmp_path / "work", no_registry, context, log=log, trust=trust)


async def view(store: LayerStore, layers: list[str], tmp_path: Path, command: str) -> str:
    """A command in a sandbox over the built layers alone, as a devbox from the image without
    added trust would see them."""
    spec = SandboxSpec(
        state_dir=tmp_path / f"view-{len(list(tmp_path.iterdir()))}",
        layers=tuple(store.path(layer) for layer in layers),
        skeleton=store.skeleton,
        etc_mask=store.etc_mask,
        image_root=True,
    )
    sandbox = await Sandbox.start(spec)
    try:
        code, out, err = await sandbox.run_quiet(["/bin/busybox", "sh", "-c", command])
        assert code == 0, err.decode()
        return out.decode()
    finally:
        await sandbox.stop()


async def test_run_steps_see_the_cas_and_the_env_and_their_layers_keep_none(
    store: LayerStore, host_cas: TrustSettings, cas: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("no_proxy", "localhost")
    dockerfile = PRELUDE + (
        f'RUN env | grep -E "CERT|CA_BUNDLE|PROXY|proxy" | sort && grep -c "BEGIN CERT" {EXTRA_CA_FILE}\n'
        f"RUN mkdir -p /etc/ssl/certs && echo IMAGE BUNDLE > {DEBIAN}\n"
        f'RUN echo "SSL_CERT_FILE=$SSL_CERT_FILE" && grep -c "BEGIN CERT" {DEBIAN} && echo MINE >> {DEBIAN}\n'
        "FROM base\n"
        f"COPY --from=base {DEBIAN} /copied.crt\n"
    )
    logged: list[str] = []
    built = await build(store, tmp_path, host_cas, logged).build(dockerfile)
    assert logged[2].splitlines() == [
        "HTTPS_PROXY=http://proxy.invalid:3128",
        f"NODE_EXTRA_CA_CERTS={EXTRA_CA_FILE}",  # no bundle in the image yet: the CAs alone
        f"PIP_CERT={EXTRA_CA_FILE}",
        f"REQUESTS_CA_BUNDLE={EXTRA_CA_FILE}",
        f"SSL_CERT_FILE={EXTRA_CA_FILE}",
        "no_proxy=localhost",
        "2",
    ]
    assert logged[4].splitlines() == [f"SSL_CERT_FILE={DEBIAN}", "2"]  # the image's bundle, with the CAs
    seen = await view(store, built.layers, tmp_path, f"cat {DEBIAN} /copied.crt; ls /etc/ssl")
    assert seen == "IMAGE BUNDLE\nMINE\nIMAGE BUNDLE\nMINE\ncerts\n"  # no CA, no added file in any layer
    for layer in built.layers:
        for path in store.path(layer).rglob("*"):
            assert not path.is_file() or b"scenario-mcp" not in path.read_bytes(), path


async def test_with_the_host_cas_turned_off_a_run_step_gets_nothing_added(
    store: LayerStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    logged: list[str] = []
    dockerfile = PRELUDE + f"RUN env | sort; ls {EXTRA_CA_FILE} || echo no added file\n"
    await build(store, tmp_path, TrustSettings(False), logged).build(dockerfile)
    assert "CERT" not in logged[-1] and "PROXY" not in logged[-1].upper()
    assert logged[-1].endswith("no added file\n")


async def test_an_extra_ca_file_gone_since_the_start_fails_the_run_step_with_its_line(
    store: LayerStore, tmp_path: Path
) -> None:
    settings = TrustSettings(False, (tmp_path / "gone.pem",))
    with pytest.raises(BuildError, match=r"line 3 \(RUN\): extra CA file .*gone.pem: No such file"):
        await build(store, tmp_path, settings, []).build(PRELUDE + "RUN true\n")
