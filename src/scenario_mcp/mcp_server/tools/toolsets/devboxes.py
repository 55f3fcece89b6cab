"""The devboxes toolset. Devboxes: start, inspect, suspend, snapshot and shut them down."""

from __future__ import annotations

from ....models import DevboxListView, DevboxSnapshotView, DevboxView
from ..devboxes import (
    create_devbox,
    get_devbox,
    list_devboxes,
    resume_devbox,
    shutdown_devbox,
    snapshot_devbox,
    suspend_devbox,
)
from ..inputs import CreateDevboxInput, DevboxIdInput, ListDevboxesInput, SnapshotDevboxInput
from ..spec import READ, ToolSpec, hints

DEVBOX_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "create_devbox",
        "Create devbox",
        "Start a sandboxed Linux devbox (default: Python 3 with pytest). Work in /home/user; no network unless asked.",
        CreateDevboxInput,
        DevboxView,
        create_devbox,
        hints(),
        "devboxes",
        authoring=True,
        bounded=True,
        pending=lambda p: {"status": "queued"},
    ),
    ToolSpec(
        "get_devbox",
        "Get devbox",
        "A devbox and its status.",
        DevboxIdInput,
        DevboxView,
        get_devbox,
        READ,
        "devboxes",
    ),
    ToolSpec(
        "list_devboxes",
        "List devboxes",
        "List devboxes, newest first.",
        ListDevboxesInput,
        DevboxListView,
        list_devboxes,
        READ,
        "devboxes",
        authoring=True,
    ),
    ToolSpec(
        "shutdown_devbox",
        "Shut down devbox",
        "Stop a devbox and discard its disk (snapshot it first to keep it).",
        DevboxIdInput,
        DevboxView,
        shutdown_devbox,
        hints(destructive=True, idempotent=True),
        "devboxes",
        authoring=True,
    ),
    ToolSpec(
        "suspend_devbox",
        "Suspend devbox",
        "Freeze a devbox's processes until resume_devbox.",
        DevboxIdInput,
        DevboxView,
        suspend_devbox,
        hints(),
        "devboxes",
        authoring=True,
    ),
    ToolSpec(
        "resume_devbox",
        "Resume devbox",
        "Thaw a suspended devbox.",
        DevboxIdInput,
        DevboxView,
        resume_devbox,
        hints(),
        "devboxes",
        authoring=True,
    ),
    ToolSpec(
        "snapshot_devbox",
        "Snapshot devbox disk",
        "Save a devbox's disk changes as a snapshot (a scenario's environment).",
        SnapshotDevboxInput,
        DevboxSnapshotView,
        snapshot_devbox,
        hints(),
        "devboxes",
        authoring=True,
        bounded=True,
        pending=lambda p: {"source_devbox_id": p.devbox_id},
    ),
)
