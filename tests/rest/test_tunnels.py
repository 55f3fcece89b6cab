"""Tunnels over the REST API: a real HTTP server started inside a devbox (python3 -m http.server on
the devbox's own loopback, in its own network namespace) reached from the host through the REST
server's tunnel host, open and authenticated, and gone once the devbox stops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import anyio
import httpx2
import pytest
from runloop_api_client import AsyncRunloop

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import TunnelConfig
from scenario_mcp.remote import RemoteBackend

from .helpers import error, ok
from .server import TOKEN, serve_rest

pytestmark = pytest.mark.anyio

PORT = 8123
SERVE = f"echo 'hello through the tunnel' > index.html && python3 -m http.server {PORT} --bind 127.0.0.1"


@pytest.fixture
async def api(backend: LocalBackend) -> AsyncIterator[httpx2.AsyncClient]:
    async with (
        serve_rest(backend) as url,
        httpx2.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client,
    ):
        yield client


async def _through(api: httpx2.AsyncClient, key: str, path: str = "/index.html", **headers: str) -> httpx2.Response:
    """A request to the tunnel host `{PORT}-{key}.localhost:{api port}`, as a browser sends it
    (to loopback), without the API's token."""
    api_port = urlsplit(str(api.base_url)).port
    async with httpx2.AsyncClient(base_url=str(api.base_url), timeout=30) as plain:
        return await plain.get(path, headers={"Host": f"{PORT}-{key}.localhost:{api_port}", **headers})


async def _serving(api: httpx2.AsyncClient, key: str, **headers: str) -> httpx2.Response:
    with anyio.fail_after(20):
        while True:
            response = await _through(api, key, **headers)
            if response.status_code != 502:  # the server in the devbox is not listening yet
                return response
            await anyio.sleep(0.1)


async def test_an_open_tunnel_reaches_a_server_in_the_devbox_until_it_stops(api: httpx2.AsyncClient) -> None:
    box = ok(await api.post("/v1/devboxes", json={"tunnel": {"auth_mode": "open"}}))
    tunnel = box["tunnel"]
    assert tunnel["auth_mode"] == "open" and tunnel["auth_token"] is None
    ok(await api.post(f"/v1/devboxes/{box['id']}/execute_async", json={"command": SERVE}))
    served = await _serving(api, tunnel["tunnel_key"])
    assert served.status_code == 200 and served.text == "hello through the tunnel\n"
    assert (await _through(api, tunnel["tunnel_key"], "/missing")).status_code == 404  # the devbox's server's
    assert "already" in error(await api.post(f"/v1/devboxes/{box['id']}/enable_tunnel", json={}), 409)
    ok(await api.post(f"/v1/devboxes/{box['id']}/shutdown"))
    assert (await _through(api, tunnel["tunnel_key"])).status_code == 404


async def test_an_authenticated_tunnel_needs_its_token(api: httpx2.AsyncClient) -> None:
    box = ok(await api.post("/v1/devboxes", json={}))
    assert box["tunnel"] is None
    ok(await api.post(f"/v1/devboxes/{box['id']}/execute_async", json={"command": SERVE}))
    tunnel = ok(await api.post(f"/v1/devboxes/{box['id']}/enable_tunnel", json={"auth_mode": "authenticated"}))
    key, token = tunnel["tunnel_key"], tunnel["auth_token"]
    assert token and ok(await api.get(f"/v1/devboxes/{box['id']}"))["tunnel"]["tunnel_key"] == key
    auth = {"X-Runloop-Tunnel-Authorization": f"Bearer {token}"}
    served = await _serving(api, key, **auth)
    assert served.status_code == 200 and served.text == "hello through the tunnel\n"
    assert (await _through(api, key)).status_code == 403
    assert (await _through(api, key, **{"X-Runloop-Tunnel-Authorization": "Bearer wrong"})).status_code == 403
    assert (await _through(api, key, Authorization=f"Bearer {TOKEN}")).status_code == 403  # the API's is not it
    assert (await _through(api, "0" * 24, **auth)).status_code == 404
    ok(await api.post(f"/v1/devboxes/{box['id']}/remove_tunnel", json={}))
    assert (await _through(api, key, **auth)).status_code == 404
    ok(await api.post(f"/v1/devboxes/{box['id']}/shutdown"))


async def test_sdk_1_32_and_the_remote_backend_enable_and_remove_a_tunnel(backend: LocalBackend) -> None:
    async with serve_rest(backend) as url, AsyncRunloop(bearer_token=TOKEN, base_url=url, max_retries=0) as sdk:
        box = await sdk.devboxes.create()
        tunnel = await sdk.devboxes.enable_tunnel(box.id, auth_mode="authenticated")
        assert tunnel.auth_mode == "authenticated" and tunnel.auth_token and len(tunnel.tunnel_key) == 24
        assert (await sdk.devboxes.retrieve(box.id)).tunnel.tunnel_key == tunnel.tunnel_key  # type: ignore[union-attr]
        await sdk.devboxes.remove_tunnel(box.id)
        async with RemoteBackend(url, TOKEN) as remote:
            again = await remote.enable_tunnel(box.id, TunnelConfig(auth_mode="open"))
            assert again.auth_mode == "open" and again.auth_token is None
            await remote.remove_tunnel(box.id)
            assert (await remote.get_devbox(box.id)).tunnel is None
        await sdk.devboxes.shutdown(box.id)
