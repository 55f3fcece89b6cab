"""A devbox's own network: what a networked devbox reaches and what it does not.

Every attempt runs inside a real devbox; every server it tries to reach is on the host's loopback
or inside another devbox (no test aims at any other address). The host's non-loopback addresses
are argued from the mechanism: the egress rules installed in the devbox's namespace list each of
them (read from outside), and the devbox cannot change those rules.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.sandbox import network
from scenario_mcp.models import (
    BashScriptScorer,
    DevboxCreateParameters,
    ExecutionView,
    InputContext,
    LaunchParameters,
    ScenarioCreateParameters,
    ScenarioEnvironment,
    ScoringContract,
    ScoringFunction,
    StartScenarioRunParameters,
)

from ..oci_registry import free_port

pytestmark = pytest.mark.anyio

GATEWAY = "10.0.2.2"  # slirp4netns's gateway: where a default setup maps the host's loopback


async def run(backend: LocalBackend, devbox_id: str, command: str) -> ExecutionView:
    return await backend.execute(devbox_id, command, timeout_seconds=60)


async def networked(backend: LocalBackend) -> str:
    box = await backend.create_devbox(DevboxCreateParameters(launch_parameters=LaunchParameters(network=True)))
    return box.id


def fetch_command(url: str) -> str:
    """A command that prints what an HTTP GET of `url` answers, or why it got no answer."""
    script = (
        "import urllib.request, sys\n"
        "try:\n"
        f"    print('ANSWER', urllib.request.urlopen({url!r}, timeout=5).read()[:2000])\n"
        "except Exception as exc:\n"
        "    print('NO ANSWER', type(exc).__name__, exc)\n"
    )
    return f"python3 -c {shlex.quote(script)}"


def connect_command(host: str, port: int) -> str:
    return f"timeout 8 bash -c 'cat < /dev/tcp/{host}/{port}' && echo CONNECTED"


@asynccontextmanager
async def scenario_mcp_process(tmp_path: Path, *args: str) -> AsyncIterator[str]:
    """`scenario-mcp <args> --port P` on the host's 127.0.0.1; yields its base URL once it answers."""
    port = free_port()
    data_dir = tmp_path / f"served-{port}"
    log = tmp_path / f"served-{port}.log"
    with open(log, "wb") as stderr:
        process = await anyio.open_process(
            [sys.executable, "-m", "scenario_mcp", *args, "--data-dir", str(data_dir), "--port", str(port)],
            stdin=None,
            stdout=None,
            stderr=stderr,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx2.AsyncClient() as client:
                with anyio.fail_after(30):
                    while True:
                        assert process.returncode is None, log.read_text()
                        try:
                            await client.get(base + "/")
                            break
                        except httpx2.TransportError:
                            await anyio.sleep(0.05)
            yield base
        finally:
            process.terminate()
            with anyio.move_on_after(10):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_the_rest_api_on_the_host_loopback_is_unreachable(backend: LocalBackend, tmp_path: Path) -> None:
    async with scenario_mcp_process(tmp_path, "api") as base:
        async with httpx2.AsyncClient() as client:
            control = await client.get(base + "/v1/scenarios")
        assert control.status_code == 200  # control: it answers the host, with no token
        box = await networked(backend)
        for host in ("127.0.0.1", GATEWAY):
            result = await run(backend, box, fetch_command(base.replace("127.0.0.1", host) + "/v1/scenarios"))
            assert "NO ANSWER" in (result.stdout or ""), result
            assert "ANSWER b" not in (result.stdout or "")


async def test_the_mcp_http_transport_on_the_host_loopback_is_unreachable(
    backend: LocalBackend, tmp_path: Path
) -> None:
    async with scenario_mcp_process(tmp_path, "serve", "--transport", "http") as base:
        box = await networked(backend)
        for host in ("127.0.0.1", GATEWAY):
            result = await run(backend, box, fetch_command(base.replace("127.0.0.1", host) + "/mcp"))
            assert "NO ANSWER" in (result.stdout or ""), result
            # An answer of any kind (even 406 for a GET) would be an HTTPError: not seen.
            assert "HTTPError" not in (result.stdout or "")


async def test_a_plain_server_on_the_host_loopback_is_unreachable(backend: LocalBackend, loopback_server: int) -> None:
    box = await networked(backend)
    for host in ("127.0.0.1", "localhost", GATEWAY):
        result = await run(backend, box, connect_command(host, loopback_server))
        assert "hello from the host" not in (result.stdout or "") and "CONNECTED" not in (result.stdout or "")


async def test_a_server_in_another_networked_devbox_is_unreachable(backend: LocalBackend) -> None:
    server, client = await networked(backend), await networked(backend)
    await run(backend, server, "nohup python3 -m http.server 8765 >/dev/null 2>&1 & sleep 1")
    own = await run(backend, server, fetch_command("http://127.0.0.1:8765/"))
    assert "ANSWER b" in (own.stdout or "")  # control: it answers inside its own devbox
    address = (await run(backend, server, "hostname -I")).stdout or ""
    for host in ("127.0.0.1", GATEWAY, *address.split()):
        other = await run(backend, client, fetch_command(f"http://{host}:8765/"))
        assert "NO ANSWER" in (other.stdout or ""), (host, other)


async def test_a_server_inside_answers_on_its_own_loopback(backend: LocalBackend) -> None:
    box = await networked(backend)
    # Port 80: root in the devbox may bind it, though it holds no capability over the namespace.
    await run(backend, box, "nohup python3 -m http.server 80 --bind 127.0.0.1 >/dev/null 2>&1 & sleep 1")
    result = await run(backend, box, fetch_command("http://127.0.0.1:80/"))
    assert "ANSWER b" in (result.stdout or ""), result


async def test_dns_resolves_a_registry_and_pip_downloads_from_it(backend: LocalBackend) -> None:
    box = await networked(backend)
    resolved = await run(backend, box, "getent hosts pypi.org")
    assert resolved.exit_status == 0 and "pypi.org" in (resolved.stdout or ""), resolved
    download = await run(backend, box, "pip download --no-deps --quiet --dest /tmp/dl six && ls /tmp/dl")
    assert download.exit_status == 0 and ".whl" in (download.stdout or ""), download


async def test_the_default_environment_builds_with_network(tmp_path: Path) -> None:
    async with LocalBackend(tmp_path / "fresh") as engine:
        view = await engine.blueprints.ensure_default()
        assert view.status == "build_complete", view.failure_reason
        box = await engine.create_devbox(DevboxCreateParameters(blueprint_id=view.id))
        result = await engine.execute(box.id, "pytest --version")
        assert result.exit_status == 0, result
        await engine.shutdown_devbox(box.id)


async def test_the_devbox_cannot_change_its_network(backend: LocalBackend) -> None:
    box = await networked(backend)
    for command in ("nft flush ruleset", "ip route del default", "ip link set tap0 down", "ip addr flush dev tap0"):
        result = await run(backend, box, command)
        assert result.exit_status != 0 and "not permitted" in (result.stderr or ""), (command, result)
    still = await run(backend, box, "ip route show default")
    assert "10.0.2.2" in (still.stdout or "")


async def test_the_egress_rules_refuse_the_hosts_own_addresses(backend: LocalBackend) -> None:
    box = await networked(backend)
    sandbox = await backend.devboxes.sandbox(box)
    listed = await anyio.run_process(["nsenter", "-t", str(sandbox.init_pid), "-n", "nft", "-j", "list", "ruleset"])
    blocked = json.dumps(json.loads(listed.stdout))
    v4, v6 = network.host_addresses()
    expected = (await anyio.run_process(["ip", "-j", "addr"])).stdout
    host_v4 = {a["local"] for i in json.loads(expected) for a in i["addr_info"] if a["family"] == "inet"}
    assert set(v4) == host_v4 - {a for a in host_v4 if a.startswith("127.")}
    for address in [*v4, "169.254.0.0", "127.0.0.0"]:
        assert f'"{address}"' in blocked or f'"addr": "{address}"' in blocked, address
    assert v6, "the host has IPv6 addresses (at least ::1) to refuse"


async def test_each_devbox_has_its_own_network_namespace(backend: LocalBackend) -> None:
    first, second = await networked(backend), await networked(backend)
    host = Path("/proc/self/ns/net").readlink()
    seen = set()
    for box in (first, second, (await backend.create_devbox(DevboxCreateParameters())).id):
        sandbox = await backend.devboxes.sandbox(box)
        seen.add(Path(f"/proc/{sandbox.init_pid}/ns/net").readlink())
    assert host not in seen and len(seen) == 3


def test_ruleset_names_every_blocked_address() -> None:
    rules = network.egress_ruleset(["192.0.2.2"], ["fd00::2"])
    assert "192.0.2.2" in rules and "fd00::2" in rules and "169.254.0.0/16" in rules
    assert f"ip daddr {network.SLIRP_DNS}" in rules  # DNS to slirp4netns's forwarder stays open
    # `nft -c` parses and checks without applying; in a fresh namespace so the host is untouched.
    checked = subprocess.run(
        ["unshare", "-n", "nft", "-c", "-f", "-"], input=rules, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr


def test_host_addresses_skip_loopback() -> None:
    v4, _v6 = network.host_addresses()
    assert all(not address.startswith("127.") for address in v4)
    assert len(v4) == len(set(v4))


async def test_a_scorer_of_a_networked_scenario_has_no_network(backend: LocalBackend) -> None:
    """The run's devbox has network; the fresh sandbox its scorer runs in has none."""
    interfaces = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '"
    scorer = BashScriptScorer(bash_script=f'[ "$({interfaces})" = "lo " ] && echo 1.0 || echo 0.0')
    scenario = await backend.create_scenario(
        ScenarioCreateParameters(
            name="network at scoring time",
            input_context=InputContext(problem_statement="Nothing to do."),
            environment_parameters=ScenarioEnvironment(launch_parameters=LaunchParameters(network=True)),
            scoring_contract=ScoringContract(
                scoring_function_parameters=[ScoringFunction(name="no-network", weight=1, scorer=scorer)]
            ),
        )
    )
    run = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    seen = await backend.execute(run.devbox_id, interfaces)
    assert seen.stdout == "lo tap0 "  # control: the run's devbox has its network
    await backend.score_run(run.id)
    with anyio.fail_after(60):
        while (scored := await backend.get_run(run.id)).state == "scoring":
            await anyio.sleep(0.02)
    assert scored.scoring_contract_result is not None and scored.scoring_contract_result.score == 1.0, scored
