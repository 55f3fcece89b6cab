"""Tunnels on the local engine (Runloop's V2 tunnels): one per devbox, every port of it reachable
from the host as `{port}-{tunnel_key}` under the tunnel host (the REST server itself,
`http://{port}-{tunnel_key}.localhost:{api_port}`), open or with a bearer token.

A devbox has its own network namespace, so nothing in it listens on the host: each connection is
made from a thread that enters the namespace of the devbox's init (setns), connects to the port on
the devbox's loopback, and leaves; the socket stays in the devbox's namespace and is handed back.
That needs CAP_SYS_ADMIN (a server run as root). A tunnel serves only a running devbox: it is gone
when the devbox stops.
"""

from __future__ import annotations

import hmac
import os
import secrets
import socket
import threading
from typing import TYPE_CHECKING

import anyio

from ..backend import AccessDeniedError, EnvironmentUnavailableError, InvalidStateError, NotFoundError
from ..models import DevboxStatus, DevboxView, TunnelConfig, TunnelView, now_ms
from .sandbox import libc

if TYPE_CHECKING:
    from .devboxes import Devboxes

CONNECT_TIMEOUT = 5.0


def connect_in_namespace(pid: int, port: int, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
    """A TCP connection to 127.0.0.1:`port` in the network namespace of process `pid`, made from a
    thread of its own (setns changes only the calling thread, which ends after)."""
    result: list[socket.socket | BaseException] = []

    def connect() -> None:
        try:
            target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            try:
                libc.setns(target, libc.CLONE_NEWNET, "setns(the devbox's network namespace)")
            finally:
                os.close(target)
            result.append(socket.create_connection(("127.0.0.1", port), timeout=timeout))
        except BaseException as exc:  # handed to the caller
            result.append(exc)

    # A thread that never goes back to the host's namespace: it ends here, and is not reused.
    thread = threading.Thread(target=connect, name=f"tunnel-{pid}-{port}", daemon=True)
    thread.start()
    thread.join()
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    outcome.settimeout(None)
    return outcome


class Tunnels:
    def __init__(self, devboxes: Devboxes) -> None:
        self.devboxes = devboxes

    async def enable(self, devbox_id: str, config: TunnelConfig | None) -> TunnelView:
        view = await self.devboxes.get(devbox_id)
        if view.status != DevboxStatus.RUNNING:
            raise InvalidStateError(f"devbox {devbox_id} is `{view.status.value}`; a tunnel needs a running devbox")
        if view.tunnel is not None:
            raise InvalidStateError(
                f"devbox {devbox_id} has a tunnel already ({view.tunnel.tunnel_key}); use it, or remove_tunnel first"
            )
        config = config or TunnelConfig()
        authenticated = config.auth_mode == "authenticated"
        tunnel = TunnelView(
            tunnel_key=secrets.token_hex(12),  # lowercase letters and digits: a DNS label
            auth_mode="authenticated" if authenticated else "open",
            auth_token=secrets.token_urlsafe(32) if authenticated else None,
            create_time_ms=now_ms(),
            http_keep_alive=config.http_keep_alive if config.http_keep_alive is not None else True,
            wake_on_http=bool(config.wake_on_http),
        )
        await self.devboxes.set_tunnel(devbox_id, tunnel)
        return tunnel

    async def remove(self, devbox_id: str) -> None:
        view = await self.devboxes.get(devbox_id)
        if view.tunnel is None:
            raise InvalidStateError(f"devbox {devbox_id} has no tunnel; enable_tunnel makes one")
        await self.devboxes.set_tunnel(devbox_id, None)

    async def _devbox(self, tunnel_key: str) -> DevboxView:
        for view in await self.devboxes.running_views():
            if view.tunnel is not None and hmac.compare_digest(view.tunnel.tunnel_key, tunnel_key):
                return view
        raise NotFoundError("tunnel", tunnel_key)

    async def connect(self, tunnel_key: str, port: int, authorization: str | None) -> socket.socket:
        """A connection to `port` of the devbox whose tunnel this is, once its token is checked."""
        view = await self._devbox(tunnel_key)
        assert view.tunnel is not None
        if view.tunnel.auth_mode == "authenticated":
            expected = f"Bearer {view.tunnel.auth_token}"
            if authorization is None or not hmac.compare_digest(authorization.encode(), expected.encode()):
                raise AccessDeniedError(
                    f"this tunnel is authenticated: send `X-Runloop-Tunnel-Authorization: Bearer TOKEN` with the "
                    f"auth_token of devbox {view.id}'s tunnel"
                )
        sandbox = await self.devboxes.sandbox(view.id)
        try:
            return await anyio.to_thread.run_sync(connect_in_namespace, sandbox.init_pid, port)
        except OSError as exc:
            raise EnvironmentUnavailableError(
                f"nothing answers on port {port} of devbox {view.id} ({exc.strerror or exc}); start a server "
                "listening there (on 0.0.0.0 or 127.0.0.1)"
            ) from exc
