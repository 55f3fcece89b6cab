"""What a tool is (tools/spec.py): the annotation presets."""

from __future__ import annotations

from mcp.types import ToolAnnotations

from scenario_mcp.mcp_server.tools.spec import READ, hints


def closed(*, read_only: bool, destructive: bool, idempotent: bool) -> ToolAnnotations:
    return ToolAnnotations(
        read_only_hint=read_only, destructive_hint=destructive, idempotent_hint=idempotent, open_world_hint=False
    )


def test_hints_are_closed_world_and_say_only_what_is_asked() -> None:
    # open_world_hint is false here; build_server turns it on over a remote backend.
    assert hints() == closed(read_only=False, destructive=False, idempotent=False)
    assert hints(destructive=True, idempotent=True) == closed(read_only=False, destructive=True, idempotent=True)
    assert closed(read_only=True, destructive=False, idempotent=True) == READ
    assert hints().title is None
