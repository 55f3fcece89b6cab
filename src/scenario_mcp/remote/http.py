"""The one HTTP client of a RemoteBackend: timeouts, and a retry policy that never runs a request
twice unless running it twice is harmless.

429 and 503 say the request was not taken, and a connection that never reached the server sent
nothing: those are always sent again. Any other 5xx, a timeout or a broken connection may come
after the server acted, so only idempotent requests (GETs, and POSTs that say so) are sent again.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urljoin

import anyio
import httpx2
from pydantic import BaseModel

from .. import __version__
from ..models import given
from .errors import RemoteError, RemoteTimeoutError, RemoteUnavailableError, raise_for_status

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.runloop.ai"
RETRY_ALWAYS = frozenset({429, 503})
MAX_BACKOFF = 10.0
# The client's read timeout for a long poll is the server's hold plus this, so the server's 408
# arrives first.
LONG_POLL_MARGIN = 10.0

T = TypeVar("T")
V = TypeVar("V", bound=BaseModel)


def dump(model: BaseModel) -> dict[str, Any]:
    # Omitted, not null: Runloop's updates keep a field that is absent and clear one that is empty.
    return model.model_dump(mode="json", exclude_none=True, by_alias=True)


def should_retry(status: int, idempotent: bool) -> bool:
    return status in RETRY_ALWAYS or (status >= 500 and idempotent)


def retry_delay(attempt: int, response: httpx2.Response | None) -> float:
    """Exponential backoff with jitter, unless the server said how long to wait (capped alike)."""
    delay: float = min(MAX_BACKOFF, 0.2 * 2**attempt) * (0.5 + random.random() / 2)
    retry_after = response.headers.get("retry-after") if response is not None else None
    if retry_after:
        with contextlib.suppress(ValueError):
            delay = min(MAX_BACKOFF, max(0.0, float(retry_after)))
    return delay


def transport_failure(
    exc: httpx2.TransportError, base_url: str, where: str, idempotent: bool
) -> tuple[bool, RemoteError]:
    """Whether a request that failed on the way may be sent again, and the error if not."""
    if isinstance(exc, (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)):
        # It never reached the server.
        return True, RemoteUnavailableError(503, f"cannot reach the remote API at {base_url} ({where}): {exc}")
    if isinstance(exc, httpx2.TimeoutException):
        message = f"the remote API at {base_url} did not answer {where} in time: {type(exc).__name__}"
        return idempotent, RemoteError(504, message)
    return idempotent, RemoteError(502, f"the connection to {base_url} failed during {where}: {exc}")


async def poll(fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], *, timeout: float, what: str) -> T:
    """For objects Runloop offers no long poll on (runs, blueprints): backoff from 50 ms to 1 s."""
    delay = 0.05
    with anyio.move_on_after(timeout):
        while True:
            value = await fetch()
            if done(value):
                return value
            await anyio.sleep(delay)
            delay = min(1.0, delay * 1.5)
    raise RemoteTimeoutError(408, f"{what} did not finish within {timeout:g} s")


class RemoteHttp:
    """One shared httpx2 client for a base URL, opened and closed with its backend."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float,
        connect_timeout: float,
        max_retries: int,
        transport: httpx2.AsyncBaseTransport | None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.connect_timeout = connect_timeout
        headers = {"User-Agent": f"scenario-mcp/{__version__}", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client_args: dict[str, Any] = {
            "base_url": self.base_url,
            "headers": headers,
            "timeout": httpx2.Timeout(timeout, connect=connect_timeout),
            "limits": httpx2.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=30.0),
            "transport": transport,
        }
        self._client: httpx2.AsyncClient | None = None

    def open(self) -> None:
        self._client = httpx2.AsyncClient(**self._client_args)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx2.AsyncClient:
        assert self._client is not None, "use RemoteBackend as an async context manager"
        return self._client

    def read_timeout(self, seconds: float) -> httpx2.Timeout:
        return httpx2.Timeout(seconds, connect=self.connect_timeout)

    def _options(
        self,
        method: str,
        json_body: dict[str, Any] | None,
        params: dict[str, Any] | None,
        files: dict[str, Any] | None,
        data: dict[str, Any] | None,
        timeout: float | None,
        accept: str | None,
    ) -> dict[str, Any]:
        options: dict[str, Any] = {"params": params}
        if json_body is not None:
            options["json"] = json_body
        elif method == "POST" and files is None:
            options["json"] = {}
        if files is not None:
            options["files"] = files
            options["data"] = data
        if timeout is not None:
            options["timeout"] = self.read_timeout(timeout)
        if accept is not None:
            options["headers"] = {"Accept": accept}
        return options

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        timeout: float | None = None,
        accept: str | None = None,
        idempotent: bool | None = None,
    ) -> httpx2.Response:
        """One request, sent again with backoff as the retry policy allows; an error answer raises."""
        if idempotent is None:
            idempotent = method == "GET"
        options = self._options(method, json_body, params, files, data, timeout, accept)
        where = f"{method} {path}"
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = await self.client.request(method, path, **options)
            except httpx2.TransportError as exc:
                again, error = transport_failure(exc, self.base_url, where, idempotent)
                if not again or last:
                    raise error from exc
                await anyio.sleep(retry_delay(attempt, None))
                continue
            if should_retry(response.status_code, idempotent) and not last:
                log.info(
                    "remote API answered %s to %s; retrying (attempt %d)", response.status_code, where, attempt + 1
                )
                await anyio.sleep(retry_delay(attempt, response))
                continue
            raise_for_status(response, where)
            return response
        raise AssertionError("unreachable")

    async def get(self, path: str, model: type[V], **params: Any) -> V:
        response = await self.request("GET", path, params=given(**params))
        return model.model_validate_json(response.content)

    async def post(
        self,
        path: str,
        model: type[V],
        body: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        idempotent: bool = False,
        **params: Any,
    ) -> V:
        response = await self.request(
            "POST", path, json_body=body, params=given(**params), timeout=timeout, idempotent=idempotent
        )
        return model.model_validate_json(response.content)

    async def presigned(
        self, method: str, url: str, *, content: bytes | AsyncIterable[bytes] | None = None, timeout: float = 600
    ) -> httpx2.Response:
        """One request to a presigned URL (an object's upload or download): without the API key,
        which such a URL refuses beside its own signature, and sent once. A path is taken as one on
        the API's own host."""
        request = self.client.build_request(
            method, urljoin(self.base_url + "/", url), content=content, timeout=self.read_timeout(timeout)
        )
        request.headers.pop("Authorization", None)
        where = f"{method} of a presigned URL"
        try:
            response = await self.client.send(request)
        except httpx2.TransportError as exc:
            raise transport_failure(exc, self.base_url, where, idempotent=False)[1] from exc
        raise_for_status(response, where)
        return response
