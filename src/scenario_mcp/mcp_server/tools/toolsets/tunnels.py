"""The tunnels toolset. Tunnels to a devbox's ports."""

from __future__ import annotations

from ..inputs import OpenDevboxPortInput, OpenDevboxPortView
from ..spec import ToolSpec, hints
from ..tunnels import open_devbox_port

TUNNEL_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "open_devbox_port",
        "Open devbox port",
        "Make a port of a devbox reachable from this machine (a server an agent started): the URL through "
        "the REST API server's tunnel host, and the header to send when authenticated.",
        OpenDevboxPortInput,
        OpenDevboxPortView,
        open_devbox_port,
        hints(idempotent=True),
        "tunnels",
        authoring=True,
    ),
)
