"""End to end, slow: `pip install` from PyPI in a Dockerfile RUN step on a real Debian image, from
behind this machine's TLS-intercepting proxy. Run by scripts/e2e-images.sh (which installs what it
needs); exits non-zero on any failure.

1. Debian's minbase (mmdebstrap, cached under .tools/bench-images/) is pushed to docker-registry
   on a free loopback port.
2. A Dockerfile FROM it is built with DockerfileBuild in the engine's own sandboxes (network on),
   with the host's added CAs (the default): `apt-get install python3-pip` (plain HTTP; its
   ca-certificates runs update-ca-certificates with the trust layer there), `pip install six`
   (HTTPS to PyPI), `python3 -c "import six"`.
3. The image it made, run without any added trust, works and holds none of the host's CAs.
4. The same Dockerfile with --no-host-ca-certs (a build argument makes the pip step run again; the
   apt step is a cache hit, so its layer is the one step 2 froze): the pip step fails with the
   certificate error. So the added CAs are what made step 2 work, and the apt step's layer did not
   keep them. Skipped, and said so, on a host that adds no CA (no interception to prove).
"""

from __future__ import annotations

import re
import ssl
import sys
import tempfile
import time
from pathlib import Path

import anyio

from scenario_mcp.local.builds import BuildError, Built, DockerfileBuild, registry_puller
from scenario_mcp.local.dockerfile import Instruction
from scenario_mcp.local.layers import LayerStore, remove_tree
from scenario_mcp.local.sandbox import Sandbox, SandboxSpec
from scenario_mcp.local.trust import TrustSettings
from tests.local.oci_registry import MINBASE_CACHE, Pusher, minbase, push_minbase, run_registry

PACKAGE = "six"  # small, pure Python, no dependencies
DOCKERFILE = """\
FROM {image}
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip
ARG ATTEMPT
RUN pip install --break-system-packages {package}
RUN python3 -c "import {package}; print('{package}', {package}.__version__)"
"""
CERTIFICATE_ERROR = "CERTIFICATE_VERIFY_FAILED"


def say(message: str) -> None:
    print(f"e2e-images: {message}", file=sys.stderr, flush=True)


class Steps:
    """Each step's outcome as the build logs it, with how long it took."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.outputs: list[str] = []

    async def __call__(self, step: Instruction, output: str, failed: bool) -> None:
        now = time.monotonic()
        status = "FAILED" if failed else "cached" if output == "cached" else "done"
        say(f"  line {step.line} {step.keyword} {step.args[:60]!r}: {status} ({now - self.last:.1f} s)")
        self.last = now
        self.outputs.append(output)


async def build(store: LayerStore, work: Path, image: str, trust: TrustSettings, attempt: str) -> Built:
    steps = Steps()
    builder = DockerfileBuild(
        store, work, registry_puller(store), build_args={"ATTEMPT": attempt}, log=steps, trust=trust
    )
    try:
        return await builder.build(DOCKERFILE.format(image=image, package=PACKAGE))
    except BuildError as exc:
        raise StepFailed(str(exc), "\n".join(steps.outputs)) from exc


class StepFailed(Exception):
    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


async def run_in_image(store: LayerStore, layers: list[str], work: Path, script: str) -> str:
    """A command in a sandbox over the built image's layers alone: no trust layer, no network."""
    spec = SandboxSpec(
        state_dir=Path(tempfile.mkdtemp(prefix="view-", dir=work)),
        layers=tuple(store.path(layer) for layer in layers),
        skeleton=store.skeleton,
        etc_mask=store.etc_mask,
        image_root=True,
    )
    sandbox = await Sandbox.start(spec)
    try:
        code, out, err = await sandbox.run_quiet(["/bin/sh", "-c", script])
    finally:
        await sandbox.stop()
    if code != 0:
        raise AssertionError(f"{script!r} exited {code} in the built image: {err.decode()}")
    return out.decode()


async def check_the_image(store: LayerStore, built: Built, work: Path, host_pems: list[str]) -> None:
    seen = await run_in_image(
        store,
        built.layers,
        work,
        f"python3 -c 'import {PACKAGE}; print({PACKAGE}.__file__)'; cat /etc/ssl/certs/ca-certificates.crt; "
        "ls /etc/ssl",
    )
    say(f"  the image imports {PACKAGE} from {seen.splitlines()[0]}")
    assert "scenario-mcp" not in seen, "the image's trust store or /etc/ssl keeps something of the trust layer"
    assert not any(pem in seen for pem in host_pems), "the image's bundle keeps a CA of the host's"
    say("  the image's bundle and /etc/ssl hold none of the host's CAs")


async def main() -> int:
    host_cas = TrustSettings()
    host_pems = [ssl.DER_cert_to_PEM_cert(der) for der in host_cas.certificates()]
    started = time.monotonic()
    packed, _ = minbase()
    say(f"minbase {packed.stat().st_size / 1e6:.0f} MB gzip ({time.monotonic() - started:.1f} s)")
    with tempfile.TemporaryDirectory(prefix="e2e-images-", dir=MINBASE_CACHE) as tmp:
        work = Path(tmp)
        (work / "registry").mkdir()
        (work / "steps").mkdir()
        store = LayerStore(work / "layers")
        store.ensure_base()
        with run_registry(work / "registry") as address:
            pusher = Pusher(address)
            push_minbase(pusher, "e2e/minbase", "bookworm")
            pusher.http.close()
            image = f"{address}/e2e/minbase:bookworm"
            try:
                await the_run(store, work, image, host_pems)
            finally:
                await anyio.to_thread.run_sync(remove_tree, work / "layers")
    say(f"passed in {time.monotonic() - started:.1f} s")
    return 0


async def the_run(store: LayerStore, work: Path, image: str, host_pems: list[str]) -> None:
    say(f"build with the host's {len(host_pems)} added CA(s) (the default)")
    started = time.monotonic()
    built = await build(store, work / "steps", image, TrustSettings(), "with-host-cas")
    say(f"  built in {time.monotonic() - started:.1f} s")
    await check_the_image(store, built, work, host_pems)
    if not host_pems:
        say("this host adds no CA: no interception here, nothing to prove with --no-host-ca-certs (skipped)")
        return
    say("build again with --no-host-ca-certs (the pip step runs again)")
    started = time.monotonic()
    try:
        await build(store, work / "steps", image, TrustSettings(host_ca_certs=False), "without")
    except StepFailed as exc:
        if CERTIFICATE_ERROR not in exc.output:
            raise AssertionError(f"the pip step failed, but not on the certificate: {exc}") from exc
        reason = re.search(r"certificate verify failed: [^()'\"]*", exc.output)
        said = reason.group(0).strip() if reason else CERTIFICATE_ERROR
        say(f"  the pip step failed as it should ({time.monotonic() - started:.1f} s): {said}")
        return
    raise AssertionError("without the host's CAs the pip step worked: the CAs were not what made it work")


if __name__ == "__main__":
    try:
        sys.exit(anyio.run(main))
    except StepFailed as failure:
        say(f"FAILED: {failure}\n--- the build's output ---\n{failure.output[-4000:]}")
        sys.exit(1)
    except AssertionError as failure:
        say(f"FAILED: {failure}")
        sys.exit(1)
