"""The guard in front of both HTTP surfaces (the MCP transports and the REST API).

Every request is checked before the app sees it, in this order:
- `Host` must name this server (loopback names, or the address it is bound to): 421 otherwise,
  so a DNS-rebinding page cannot talk to a loopback server;
- a browser's `Origin`, when sent, must be one of those hosts too: 403 otherwise. Clients that are
  not browsers (SDKs, curl) send no `Origin` and pass;
- with a token, `Authorization: Bearer <token>` is required: 401 otherwise. A token is mandatory
  when binding anything but a loopback address. Tokens are never read from the query string.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # the CLI reads the token rules on every start; starlette loads only to serve
    from starlette.datastructures import Headers
    from starlette.responses import Response
    from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_ENV = "SCENARIO_MCP_TOKEN"
# What `scenario-mcp api` read before both surfaces shared this guard; still read there, after TOKEN_ENV.
LEGACY_API_TOKEN_ENV = "SCENARIO_MCP_API_TOKEN"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="scenario-mcp"'}


class BindRefused(ValueError):
    """Binding as asked would expose the server without authentication."""


def is_loopback(host: str) -> bool:
    """`localhost`, `127.0.0.1`, `127.1.2.3`, `::1` or `[::1]`: an address only this machine reaches."""
    host = host.strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_from_env(*, legacy_api: bool = False) -> str | None:
    """The bearer token set in the environment, if any (an empty value is none)."""
    names = (TOKEN_ENV, LEGACY_API_TOKEN_ENV) if legacy_api else (TOKEN_ENV,)
    return next((value for name in names if (value := os.environ.get(name))), None)


def check_bind(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise BindRefused(
            f"refusing to serve on {host!r} without a bearer token: that address is reachable from other machines. "
            f"Pass --token (or set {TOKEN_ENV}) so clients must send `Authorization: Bearer <token>`, "
            "or bind 127.0.0.1"
        )


def bearer_matches(authorization: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>` (the scheme in any case), compared in constant time."""
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credentials.strip().encode(), token.encode())


@dataclass(frozen=True)
class Refusal:
    """Why the guard turned a request away; each surface renders it in its own error shape."""

    status: int
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)


def plain_refusal(refusal: Refusal) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": refusal.message}, status_code=refusal.status, headers=dict(refusal.headers))


def _hostname(value: str) -> str:
    """`example.com:8000` / `[::1]:8000` / `127.0.0.1` -> the bare, lower-case host name."""
    return (urlsplit(f"//{value}").hostname or "").lower()


class HttpGuard:
    """ASGI middleware: Host (421), Origin (403) and bearer-token (401) checks, in that order.

    `open_paths`, and the paths under `open_prefixes`, skip the token check only (a health check,
    presigned URLs that carry their own credential), never the Host and Origin checks.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        bind_host: str,
        token: str | None,
        open_paths: Collection[str] = (),
        open_prefixes: Collection[str] = (),
        render: Callable[[Refusal], Response] = plain_refusal,
    ) -> None:
        self.app = app
        self.token = token
        self.open_paths = frozenset(open_paths)
        self.open_prefixes = tuple(open_prefixes)
        self.render = render
        bare = bind_host.strip("[]").lower()
        # A wildcard bind answers on every address the machine has: any Host may be right, and the
        # token (mandatory there) is what keeps strangers out.
        self.any_host = bare in WILDCARD_HOSTS
        self.allowed_hosts = set(LOOPBACK_NAMES) | {bare}

    def _host_ok(self, host: str | None) -> bool:
        if not host:
            return False
        return self.any_host or _hostname(host) in self.allowed_hosts

    def _origin_ok(self, origin: str | None) -> bool:
        if origin is None:
            return True  # not a browser, or same-origin
        parsed = urlsplit(origin)
        if parsed.scheme not in ("http", "https"):
            return False
        return self.any_host or (parsed.hostname or "").lower() in self.allowed_hosts

    def refusal(self, headers: Headers, path: str) -> Refusal | None:
        if not self._host_ok(headers.get("host")):
            return Refusal(421, "misdirected request: unexpected Host header")
        if not self._origin_ok(headers.get("origin")):
            return Refusal(403, "forbidden: cross-origin request refused")
        if self.token is None or path in self.open_paths or path.startswith(self.open_prefixes):
            return None
        authorization = headers.get("authorization")
        if not authorization:
            return Refusal(401, "missing bearer token: send `Authorization: Bearer <token>`", BEARER_CHALLENGE)
        if not bearer_matches(authorization, self.token):
            return Refusal(401, "invalid bearer token", BEARER_CHALLENGE)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from starlette.datastructures import Headers

        if scope["type"] == "http" and (refusal := self.refusal(Headers(scope=scope), scope["path"])):
            await self.render(refusal)(scope, receive, send)
            return
        await self.app(scope, receive, send)
