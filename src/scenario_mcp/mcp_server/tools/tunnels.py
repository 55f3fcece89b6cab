"""The tunnel tool: a devbox's port, reachable from this machine through the REST API's tunnel host."""

from __future__ import annotations

import os

from ...backend import Backend
from ...models import TunnelConfig
from .inputs import OpenDevboxPortInput, OpenDevboxPortView

# The port `scenario-mcp api` (the tunnel host) listens on: its default, unless the environment says.
DEFAULT_API_PORT = "8080"


async def open_devbox_port(backend: Backend, params: OpenDevboxPortInput) -> OpenDevboxPortView:
    view = await backend.get_devbox(params.devbox_id)
    tunnel = view.tunnel
    if tunnel is None:
        mode = "authenticated" if params.authenticated else "open"
        tunnel = await backend.enable_tunnel(params.devbox_id, TunnelConfig(auth_mode=mode))
    host = f"{params.port}-{tunnel.tunnel_key}.localhost"
    api_port = os.environ.get("SCENARIO_MCP_API_PORT", DEFAULT_API_PORT)
    headers = {"X-Runloop-Tunnel-Authorization": f"Bearer {tunnel.auth_token}"} if tunnel.auth_token else {}
    return OpenDevboxPortView(
        devbox_id=params.devbox_id,
        port=params.port,
        tunnel_key=tunnel.tunnel_key,
        host=host,
        url=f"http://{host}:{api_port}/",
        headers=headers,
    )
