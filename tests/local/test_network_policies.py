"""Network policies on the engine: an allowlist devbox reaches its hosts' addresses and nothing else
(the rule is in its own namespace, below anything its commands can change)."""

from __future__ import annotations

import pytest

from scenario_mcp.backend import InvalidRequestError
from scenario_mcp.local.devboxes import default_network
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import DevboxCreateParameters, LaunchParameters, NetworkPolicyCreateParameters

pytestmark = pytest.mark.anyio

INTERFACES = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '"

CONNECT = """python3 - <<'PY'
import socket
for host, port in [("pypi.org", 443), ("192.0.2.1", 80), ("127.0.0.1", 1)]:
    try:
        socket.create_connection((host, port), timeout=10).close()
        print(host, "open")
    except ConnectionRefusedError:
        print(host, "refused")
    except OSError as exc:
        print(host, type(exc).__name__)
PY"""


async def test_an_allowlist_devbox_reaches_its_hosts_and_nothing_else(backend: LocalBackend) -> None:
    policy = await backend.create_network_policy(
        NetworkPolicyCreateParameters(name="pypi-only", allowed_hostnames=["pypi.org"])
    )
    box = await backend.create_devbox(
        DevboxCreateParameters(launch_parameters=LaunchParameters(network_policy_id=policy.id))
    )
    seen = await backend.execute(box.id, CONNECT, timeout_seconds=60)
    assert seen.stdout.splitlines() == ["pypi.org open", "192.0.2.1 refused", "127.0.0.1 refused"], seen.stderr
    assert (await backend.execute(box.id, "getent hosts pypi.org")).exit_status == 0  # DNS still answers
    # Root in the devbox cannot lift the rule.
    lifted = await backend.execute(box.id, "nft delete table inet scenario_mcp_allow 2>&1; nft list ruleset 2>&1")
    assert "Operation not permitted" in lifted.stdout


async def test_an_allowlist_host_that_does_not_resolve_fails_the_launch_clearly(backend: LocalBackend) -> None:
    policy = await backend.create_network_policy(
        NetworkPolicyCreateParameters(name="nowhere", allowed_hostnames=["no-such-host.invalid"])
    )
    with pytest.raises(InvalidRequestError, match="does not resolve"):
        await backend.create_devbox(
            DevboxCreateParameters(launch_parameters=LaunchParameters(network_policy_id=policy.id))
        )


async def test_devboxes_that_say_nothing_get_the_servers_default_network(
    backend: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCENARIO_MCP_DEVBOX_NETWORK", "on")
    backend.devboxes.default_network = default_network()
    said_nothing = await backend.create_devbox(DevboxCreateParameters())
    assert len((await backend.execute(said_nothing.id, INTERFACES)).stdout.split()) == 2  # lo and tap0
    said_no = await backend.create_devbox(DevboxCreateParameters(launch_parameters=LaunchParameters(network=False)))
    assert (await backend.execute(said_no.id, INTERFACES)).stdout.split() == ["lo"]
    monkeypatch.setenv("SCENARIO_MCP_DEVBOX_NETWORK", "maybe")
    with pytest.raises(RuntimeError, match="give `on` or `off`"):
        default_network()
