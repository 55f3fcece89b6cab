"""Launch parameters as Runloop spells sizes, and blueprint views as Runloop's enums say them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from scenario_mcp.models import BlueprintView, LaunchParameters


def test_custom_size_needs_cpu_and_memory_and_presets_take_no_custom_fields() -> None:
    LaunchParameters(resource_size_request="CUSTOM_SIZE", custom_cpu_cores=1, custom_gb_memory=2, custom_disk_size=4)
    LaunchParameters(resource_size_request="MEDIUM")
    LaunchParameters(custom_gb_memory=2)  # no size request: the engine's older spelling of CUSTOM_SIZE
    with pytest.raises(ValidationError, match="CUSTOM_SIZE needs custom_cpu_cores and custom_gb_memory"):
        LaunchParameters(resource_size_request="CUSTOM_SIZE")
    with pytest.raises(ValidationError, match="custom_disk_size goes with resource_size_request CUSTOM_SIZE"):
        LaunchParameters(resource_size_request="LARGE", custom_disk_size=8)
    with pytest.raises(ValidationError, match="resource_size_request"):
        LaunchParameters(resource_size_request="HUGE")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="architecture"):
        LaunchParameters(architecture="riscv64")  # type: ignore[arg-type]


def test_a_blueprint_record_with_a_free_text_reason_reads_as_runloops_enum() -> None:
    """Records stored before failure_reason was the enum kept the message there."""
    stored = {"id": "bpt_x", "name": "n", "status": "failed", "create_time_ms": 1, "failure_reason": "step 2 exited 1"}
    view = BlueprintView.model_validate(stored)
    assert view.failure_reason == "build_failed" and view.failure_message == "step 2 exited 1"
    kept = BlueprintView.model_validate({**stored, "failure_reason": "out_of_disk", "failure_message": "full"})
    assert kept.failure_reason == "out_of_disk" and kept.failure_message == "full"
