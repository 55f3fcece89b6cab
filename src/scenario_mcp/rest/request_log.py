"""A request log: one JSON line per REST request (when it came, method, path, status, the client's
address and port, how long the server held it), for finding where a client's time goes
(benchmarks/bench_harbor.py reads it; a new client port is a new connection).

`scenario-mcp api --request-log FILE` turns it on. Timings are wall-clock: `start` is seconds since
the epoch when the request arrived, `ms` runs until the response's last byte was sent (a stream's
whole life).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestLog:
    """ASGI middleware appending one line per HTTP request to `path`."""

    def __init__(self, app: ASGIApp, path: Path) -> None:
        self.app = app
        self.path = path

    def _write(self, entry: dict[str, Any]) -> None:
        # Opened for each line (tens of microseconds): nothing to close, and a reader sees every
        # line as soon as its request ends.
        with open(self.path, "a") as out:
            out.write(json.dumps(entry) + "\n")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, began = time.time(), time.perf_counter()
        status = 0

        async def logged_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        finally:
            self._write(
                {
                    "start": round(start, 6),
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "client": "{}:{}".format(*scope["client"]) if scope.get("client") else None,
                    "ms": round((time.perf_counter() - began) * 1000, 3),
                }
            )
