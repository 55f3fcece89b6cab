"""Launch parameters as the local engine honours them: the architecture it can run, and Runloop's
resource sizes as the limits it enforces (limits.py).

A size's memory becomes the devbox's memory limit (a cgroup where the engine can make one, else a
per-process rlimit) and its disk the file-size cap of every command; its CPU count is kept in the
view but not enforced: every devbox shares the CPUs with cgroup shares (limits.DEVBOX_CPU_SHARES).
A devbox with no size request keeps the engine's own defaults (4 GiB memory, 10 GiB disk).
"""

from __future__ import annotations

import platform
from typing import Any

from ..backend import InvalidRequestError
from ..models import CUSTOM_SIZE_FIELDS, LaunchParameters
from .limits import DEFAULT_DISK_BYTES, DEFAULT_MEMORY_BYTES, LimitRequest

# Runloop's presets: (CPU cores, memory GiB, disk GiB), as its OpenAPI describes ResourceSize.
RESOURCE_SIZES: dict[str, tuple[float, int, int]] = {
    "X_SMALL": (0.5, 1, 4),
    "SMALL": (1, 2, 4),
    "MEDIUM": (2, 4, 8),
    "LARGE": (2, 8, 16),
    "X_LARGE": (4, 16, 16),
    "XX_LARGE": (8, 32, 16),
}
SIZE_FIELDS = ("resource_size_request", *CUSTOM_SIZE_FIELDS)
_MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def host_architecture() -> str:
    """This machine's architecture in Runloop's words (x86_64 or arm64), or the kernel's own."""
    machine = platform.machine().lower()
    return _MACHINES.get(machine, machine)


def check_launch(launch: LaunchParameters | None) -> None:
    """Refuse what this engine cannot do, before anything is made."""
    if launch is None or launch.architecture is None:
        return
    host = host_architecture()
    if launch.architecture != host:
        raise InvalidRequestError(
            f"launch_parameters.architecture {launch.architecture} is not available: this engine runs devboxes "
            f"natively on its host, which is {host}; ask for {host} or leave architecture out"
        )


def merged_launch(defaults: dict[str, Any], given: LaunchParameters | None) -> LaunchParameters:
    """A blueprint's launch defaults under a devbox's own launch parameters. A size is one whole:
    a devbox that asks for one (a preset, or custom fields) replaces the blueprint's entirely."""
    asked = (given or LaunchParameters()).model_dump(exclude_unset=True)
    if any(field in asked for field in SIZE_FIELDS):
        defaults = {name: value for name, value in defaults.items() if name not in SIZE_FIELDS}
    return LaunchParameters(**{**defaults, **asked})


def limit_request(launch: LaunchParameters) -> LimitRequest:
    """The memory and disk limits a devbox's launch parameters ask for."""
    size = launch.resource_size_request
    if size is not None and size in RESOURCE_SIZES:
        _cpus, memory_gib, disk_gib = RESOURCE_SIZES[size]
        return LimitRequest(memory_bytes=memory_gib << 30, disk_bytes=disk_gib << 30)
    # CUSTOM_SIZE, or the custom fields alone (the engine's older spelling of it).
    return LimitRequest(
        memory_bytes=(launch.custom_gb_memory << 30) if launch.custom_gb_memory else DEFAULT_MEMORY_BYTES,
        disk_bytes=(launch.custom_disk_size << 30) if launch.custom_disk_size else DEFAULT_DISK_BYTES,
    )
