"""What the local engine makes of launch parameters: its host's architecture only, and Runloop's
sizes as memory and disk limits."""

from __future__ import annotations

import platform

import pytest

from scenario_mcp.backend import InvalidRequestError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.launch import RESOURCE_SIZES, check_launch, host_architecture, limit_request, merged_launch
from scenario_mcp.local.limits import DEFAULT_DISK_BYTES, DEFAULT_MEMORY_BYTES
from scenario_mcp.models import BlueprintCreateParameters, DevboxCreateParameters, LaunchParameters

pytestmark = pytest.mark.anyio

OTHER = {"x86_64": "arm64", "arm64": "x86_64"}


def test_only_the_hosts_architecture_is_launched() -> None:
    host = host_architecture()
    assert host == {"amd64": "x86_64", "aarch64": "arm64"}.get(platform.machine().lower(), platform.machine().lower())
    check_launch(None)
    check_launch(LaunchParameters(architecture=host))  # type: ignore[arg-type]
    if host in OTHER:
        with pytest.raises(InvalidRequestError, match=f"{OTHER[host]} is not available.*which is {host}"):
            check_launch(LaunchParameters(architecture=OTHER[host]))  # type: ignore[arg-type]


@pytest.mark.parametrize(("size", "memory_gib", "disk_gib"), [(s, m, d) for s, (_, m, d) in RESOURCE_SIZES.items()])
def test_each_preset_size_is_its_memory_and_disk(size: str, memory_gib: int, disk_gib: int) -> None:
    request = limit_request(LaunchParameters(resource_size_request=size))  # type: ignore[arg-type]
    assert (request.memory_bytes, request.disk_bytes) == (memory_gib << 30, disk_gib << 30)


def test_custom_sizes_and_no_size() -> None:
    custom = LaunchParameters(resource_size_request="CUSTOM_SIZE", custom_cpu_cores=2, custom_gb_memory=6)
    assert (limit_request(custom).memory_bytes, limit_request(custom).disk_bytes) == (6 << 30, DEFAULT_DISK_BYTES)
    assert limit_request(LaunchParameters(custom_disk_size=3)).disk_bytes == 3 << 30
    plain = limit_request(LaunchParameters())
    assert (plain.memory_bytes, plain.disk_bytes) == (DEFAULT_MEMORY_BYTES, DEFAULT_DISK_BYTES)


def test_a_devbox_size_replaces_its_blueprints_whole_size() -> None:
    blueprint = {"resource_size_request": "CUSTOM_SIZE", "custom_cpu_cores": 2, "custom_gb_memory": 8, "network": True}
    assert merged_launch(blueprint, None).model_dump(exclude_none=True) == blueprint
    small = merged_launch(blueprint, LaunchParameters(resource_size_request="SMALL"))
    assert small.model_dump(exclude_none=True) == {"resource_size_request": "SMALL", "network": True}
    roomier = merged_launch(blueprint, LaunchParameters(custom_gb_memory=16))
    assert (roomier.resource_size_request, roomier.custom_cpu_cores, roomier.custom_gb_memory) == (None, None, 16)
    kept = merged_launch(blueprint, LaunchParameters(keep_alive_time_seconds=60))
    assert (kept.custom_gb_memory, kept.keep_alive_time_seconds) == (8, 60)


async def test_a_devbox_or_blueprint_for_another_architecture_is_refused_before_anything_is_made(
    backend: LocalBackend,
) -> None:
    other = OTHER.get(host_architecture(), "x86_64")
    launch = LaunchParameters(architecture=other)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="is not available"):
        await backend.create_devbox(DevboxCreateParameters(launch_parameters=launch))
    with pytest.raises(InvalidRequestError, match="is not available"):
        await backend.create_blueprint(BlueprintCreateParameters(name="b", launch_parameters=launch))
    assert (await backend.list_devboxes()).devboxes == []
    assert "b" not in [bp.name for bp in (await backend.list_blueprints()).blueprints]
    sized = await backend.create_devbox(
        DevboxCreateParameters(launch_parameters=LaunchParameters(resource_size_request="X_SMALL"))
    )
    assert sized.launch_parameters.resource_size_request == "X_SMALL"
    assert f"file size <= {4 << 30} bytes (rlimit)" in sized.limits
    assert any(f"memory <= {1 << 30} bytes" in limit for limit in sized.limits)
