"""The blueprints toolset. Blueprints: reusable environments built from a Dockerfile and setup commands."""

from __future__ import annotations

from ....models import BlueprintBuildLogsListView, BlueprintListView, BlueprintView
from ..devboxes import create_blueprint, get_blueprint, get_blueprint_logs, list_blueprints
from ..inputs import BlueprintIdInput, CreateBlueprintInput, GetBlueprintInput, ListBlueprintsInput
from ..spec import READ, ToolSpec, hints

BLUEPRINT_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "create_blueprint",
        "Create blueprint",
        "Build a reusable environment, with network: a dockerfile, then file_mounts and system_setup_commands. "
        "Answers `queued` (or, with wait_seconds, waits that long for the build, with progress): wait with "
        "get_blueprint, then use its id in devboxes and scenarios.",
        CreateBlueprintInput,
        BlueprintView,
        create_blueprint,
        hints(),
        "blueprints",
        authoring=True,
        host_dirs=True,
        progress=True,
        waits=True,
    ),
    ToolSpec(
        "get_blueprint",
        "Get blueprint",
        "A blueprint and its build status (queued, building, build_complete, failed); with wait_seconds, waits "
        "for the build, with progress (bytes of the image pulled, steps done).",
        GetBlueprintInput,
        BlueprintView,
        get_blueprint,
        READ,
        "blueprints",
        authoring=True,
        progress=True,
        waits=True,
    ),
    ToolSpec(
        "get_blueprint_logs",
        "Blueprint build logs",
        "A blueprint's build log, one entry per step.",
        BlueprintIdInput,
        BlueprintBuildLogsListView,
        get_blueprint_logs,
        READ,
        "blueprints",
        authoring=True,
    ),
    ToolSpec(
        "list_blueprints",
        "List blueprints",
        "List blueprints, newest first.",
        ListBlueprintsInput,
        BlueprintListView,
        list_blueprints,
        READ,
        "blueprints",
        authoring=True,
    ),
)
