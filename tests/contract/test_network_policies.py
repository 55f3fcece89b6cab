"""Network policies, the same assertions on both backends: records, and what a policy does to the
devboxes that name it (all egress, or none)."""

from __future__ import annotations

import pytest

from scenario_mcp.backend import Backend, InvalidRequestError, InvalidStateError, NotFoundError
from scenario_mcp.models import (
    DevboxCreateParameters,
    LaunchParameters,
    NetworkPolicyCreateParameters,
    NetworkPolicyUpdateParameters,
)

pytestmark = pytest.mark.anyio

# Whether the devbox has any interface but loopback.
INTERFACES = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '"


async def test_a_policy_lives_and_its_name_is_unique(engine: Backend) -> None:
    created = await engine.create_network_policy(
        NetworkPolicyCreateParameters(
            name="harbor-allowlist", allowed_hostnames=["PyPI.org", "*.github.com", "pypi.org"], description="d"
        )
    )
    assert created.id.startswith("npo_") and created.create_time_ms == created.update_time_ms
    assert created.egress.allowed_hostnames == ["*.github.com", "pypi.org"]  # normalised, once each
    assert not created.egress.allow_all and not created.egress.allow_devbox_to_devbox
    with pytest.raises(InvalidStateError, match="exists already"):
        await engine.create_network_policy(NetworkPolicyCreateParameters(name="harbor-allowlist"))
    with pytest.raises(InvalidRequestError, match="not a hostname"):
        await engine.create_network_policy(
            NetworkPolicyCreateParameters(name="bad", allowed_hostnames=["https://pypi.org/simple"])
        )

    other = await engine.create_network_policy(NetworkPolicyCreateParameters(name="open", allow_all=True))
    assert other.egress.allow_all and other.egress.allow_devbox_to_devbox  # allow_all implies it, as on Runloop
    assert [p.id for p in (await engine.list_network_policies(name="ALLOWLIST")).network_policies] == [created.id]
    assert [p.id for p in (await engine.list_network_policies(policy_id=other.id)).network_policies] == [other.id]
    assert {p.id for p in (await engine.list_network_policies()).network_policies} >= {created.id, other.id}

    updated = await engine.update_network_policy(
        created.id, NetworkPolicyUpdateParameters(allowed_hostnames=[], description="now none")
    )
    assert updated.egress.allowed_hostnames == [] and updated.description == "now none"
    assert updated.name == "harbor-allowlist" and updated.update_time_ms >= created.update_time_ms
    with pytest.raises(InvalidStateError):
        await engine.update_network_policy(other.id, NetworkPolicyUpdateParameters(name="harbor-allowlist"))

    assert (await engine.delete_network_policy(other.id)).id == other.id
    with pytest.raises(NotFoundError):
        await engine.get_network_policy(other.id)


async def test_a_devbox_gets_the_egress_its_policy_says(engine: Backend) -> None:
    none = await engine.create_network_policy(NetworkPolicyCreateParameters(name="no-network", allowed_hostnames=[]))
    everything = await engine.create_network_policy(NetworkPolicyCreateParameters(name="all", allow_all=True))
    closed = await engine.create_devbox(
        DevboxCreateParameters(launch_parameters=LaunchParameters(network_policy_id=none.id))
    )
    assert (await engine.execute(closed.id, INTERFACES)).stdout.split() == ["lo"]
    opened = await engine.create_devbox(
        DevboxCreateParameters(launch_parameters=LaunchParameters(network_policy_id=everything.id))
    )
    assert len((await engine.execute(opened.id, INTERFACES)).stdout.split()) == 2  # lo and its own tap
    with pytest.raises(InvalidRequestError, match="names no network policy"):
        await engine.create_devbox(
            DevboxCreateParameters(launch_parameters=LaunchParameters(network_policy_id="npo_missing"))
        )
    with pytest.raises(InvalidRequestError, match="give one of the two"):
        await engine.create_devbox(
            DevboxCreateParameters(launch_parameters=LaunchParameters(network_policy_id=none.id, network=True))
        )
    for box in (closed, opened):
        await engine.shutdown_devbox(box.id)
