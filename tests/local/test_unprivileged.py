"""The other way of running the server: as an ordinary user (issue 3: "test both ways").

Run unprivileged, the devbox's root is the server's own uid: host files only root may read stay
unreadable, host-root-owned system directories are read-only to the devbox, /proc/sys is not its
to write, and its home is writable. The engine runs in a subprocess as uid 65534 (nobody).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import anyio
import pytest

pytestmark = pytest.mark.anyio

SCRIPT = """
import anyio, json, sys
from pathlib import Path
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import BlueprintCreateParameters, DevboxCreateParameters, LaunchParameters

async def main():
    async with LocalBackend(Path(sys.argv[1])) as backend:
        blueprint = await backend.create_blueprint(BlueprintCreateParameters(name="empty"))
        blueprint = await backend.wait_for_blueprint(blueprint.id, timeout_seconds=120)
        box = await backend.create_devbox(DevboxCreateParameters(blueprint_id=blueprint.id))
        results = {"limits": box.limits}
        for name, command in json.loads(sys.argv[2]).items():
            run = await backend.execute(box.id, command)
            results[name] = [run.exit_status, run.stdout, run.stderr]
        await backend.shutdown_devbox(box.id)
        net = await backend.create_devbox(
            DevboxCreateParameters(blueprint_id=blueprint.id, launch_parameters=LaunchParameters(network=True))
        )
        for name, command in json.loads(sys.argv[3]).items():
            run = await backend.execute(net.id, command)
            results["net:" + name] = [run.exit_status, run.stdout, run.stderr]
        await backend.shutdown_devbox(net.id)
        print(json.dumps(results))

anyio.run(main)
"""

ATTEMPTS = {
    "whoami": "id -u",
    "shadow": "cat /etc/shadow",
    "usr": "touch /usr/local/bin/scenario-mcp-unprivileged",
    "home": "echo hi > /home/user/f && cat /home/user/f",
    "sysctl": "echo 9 > /proc/sys/kernel/panic",
    "rlimits": "ulimit -v; ulimit -u",
}

# In a devbox with network (slirp4netns joins the devbox's user namespace to serve it).
NETWORK_ATTEMPTS = {
    "dns": "getent hosts pypi.org",
    "host_loopback": "timeout 5 bash -c 'cat < /dev/tcp/127.0.0.1/{port}';"
    " timeout 5 bash -c 'cat < /dev/tcp/10.0.2.2/{port}'",
    "rules": "nft flush ruleset",
}


# What the engine imports beyond the standard library, copied where uid 65534 can read it (the
# checkout and its virtualenv may sit under a directory only root may enter).
PACKAGES = (
    "scenario_mcp",
    "anyio",
    "sniffio",
    "idna",
    "pydantic",
    "pydantic_core",
    "typing_extensions",
    "annotated_types",
    "typing_inspection",
    "dockerfile_parse",  # blueprints' Dockerfiles
    "httpx2",  # image pulls
    "platformdirs",  # where builds' step starter is compiled to
)


def readable_copy_of_packages(dest: Path) -> Path:
    dest.mkdir()
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, dest / origin.parent.name, ignore=shutil.ignore_patterns("__pycache__"))
            for info in origin.parent.parent.glob(f"{name}-*.dist-info"):  # read by packages that ask their version
                shutil.copytree(info, dest / info.name)
        else:
            shutil.copy2(origin, dest / origin.name)
    subprocess.run(["chmod", "-R", "a+rX", str(dest)], check=True)
    return dest


def interpreter() -> str:
    """A Python the unprivileged user can run, of the same version as the test environment's."""
    for candidate in ("/usr/bin/python3", sys.executable):
        real = os.path.realpath(candidate)
        if all(os.access(p, os.X_OK) for p in Path(real).parents) and Path(real).exists():
            probe = subprocess.run(
                [
                    "setpriv",
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "--inh-caps=-all",
                    "--bounding-set=-all",
                    real,
                    "-c",
                    "import sys; print(sys.version_info[:2])",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if probe.stdout.strip() == str(sys.version_info[:2]):
                return real
    raise AssertionError("no Python of this version that uid 65534 can run (install python3 from the distribution)")


async def test_an_unprivileged_server_gives_devboxes_no_host_privilege() -> None:
    assert os.geteuid() == 0, "this test drops to uid 65534 from root"
    data_dir = Path(tempfile.mkdtemp(prefix="scenario-mcp-unprivileged-"))
    os.chown(data_dir, 65534, 65534)
    path = str(readable_copy_of_packages(data_dir / "packages"))
    greeter = socket.socket()
    greeter.bind(("127.0.0.1", 0))
    greeter.listen()
    port = greeter.getsockname()[1]
    network_attempts = {name: command.format(port=port) for name, command in NETWORK_ATTEMPTS.items()}
    try:
        result = await anyio.run_process(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                interpreter(),
                "-c",
                SCRIPT,
                str(data_dir / "data"),
                json.dumps(ATTEMPTS),
                json.dumps(network_attempts),
            ],
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(data_dir), "PYTHONPATH": path},
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode()
        seen = json.loads(result.stdout.decode().strip().splitlines()[-1])
    finally:
        greeter.close()
        shutil.rmtree(data_dir, ignore_errors=True)
    assert seen["whoami"][:2] == [0, "0\n"]  # root inside, the server's uid outside
    assert seen["shadow"][0] != 0 and "Permission denied" in seen["shadow"][2]
    assert seen["usr"][0] != 0 and "Permission denied" in seen["usr"][2]
    assert not Path("/usr/local/bin/scenario-mcp-unprivileged").exists()
    assert seen["home"][:2] == [0, "hi\n"]
    assert seen["sysctl"][0] != 0
    # No cgroups to make unprivileged: rlimits stand in, and the view says so.
    assert not any(limit.startswith("pids") for limit in seen["limits"])
    assert f"memory <= {4 << 30} bytes per process (rlimit)" in seen["limits"]
    assert "processes <= 1024 per user (rlimit)" in seen["limits"]
    assert seen["rlimits"][1].split() == [str((4 << 30) // 1024), "1024"]
    # With network: out through slirp4netns, but not to the host's loopback, and no way to
    # loosen the egress rules.
    assert seen["net:dns"][0] == 0 and "pypi.org" in seen["net:dns"][1], seen["net:dns"]
    assert seen["net:host_loopback"][0] != 0 and "refused" in seen["net:host_loopback"][2]
    assert seen["net:rules"][0] != 0 and "not permitted" in seen["net:rules"][2]
