"""A devbox's resource usage: Runloop's billing figures from its lifecycle and size, and what the
engine measured of it (its cgroups' CPU time and memory peak, its writable layer's size)."""

from __future__ import annotations

import time
from pathlib import Path

from ..models import DevboxResourceUsageView, DevboxView
from .launch import RESOURCE_SIZES, limit_request
from .layers import tree_size
from .limits import Cgroups

GIB = 1 << 30


def devbox_usage(view: DevboxView, cgroups: Cgroups | None, upper: Path) -> DevboxResourceUsageView:
    """Usage of one devbox; `cgroups` is None once it has ended (its cgroups are gone, so the
    measured figures are null). The engine keeps no suspend history: active time is elapsed time."""
    launch = view.launch_parameters
    limits = limit_request(launch)
    size = launch.resource_size_request
    vcpus = RESOURCE_SIZES[size][0] if size in RESOURCE_SIZES else float(launch.custom_cpu_cores or 1)
    end_ms = view.end_time_ms
    elapsed = max(0, ((end_ms if end_ms is not None else int(time.time() * 1000)) - view.create_time_ms) // 1000)
    return DevboxResourceUsageView(
        id=view.id,
        total_active_seconds=elapsed,
        total_elapsed_seconds=elapsed,
        vcpu_seconds=int(elapsed * vcpus),
        memory_gb_seconds=elapsed * limits.memory_bytes // GIB,
        disk_gb_seconds=elapsed * limits.disk_bytes // GIB,
        start_time_ms=view.create_time_ms,
        end_time_ms=end_ms,
        status=view.status.value,
        cpu_seconds_used=None if cgroups is None else cgroups.cpu_seconds(),
        memory_peak_bytes=None if cgroups is None else cgroups.memory_peak_bytes(),
        disk_bytes_used=tree_size(upper) if upper.is_dir() else None,
    )
