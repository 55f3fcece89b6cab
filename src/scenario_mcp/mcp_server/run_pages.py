"""The benchmark-run pages the HTTP transports serve beside /mcp: `/runs` lists the benchmark
runs, `/runs/{id}` is a run's report (harness/report.py; `?compare=OTHER_ID` compares), behind the
same guard as /mcp (http.py)."""

from __future__ import annotations

import time
from html import escape
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..backend import Backend, BackendError, NotFoundError
from ..harness.console import run_logs
from ..harness.report import render_report
from ..harness.runner import results_of

RUNS_PATH = "/runs"
LISTED = 200


def is_run_page(path: str) -> bool:
    return path in (RUNS_PATH, RUNS_PATH + "/") or path.startswith(RUNS_PATH + "/")


async def _respond(send: Send, status: int, body: str) -> None:
    data = body.encode()
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(data)).encode()),
        # The report is self-contained: nothing it needs comes from elsewhere, and no page may frame it.
        (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"),
        (b"x-frame-options", b"DENY"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def _page(title: str, body: str) -> str:
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
        "<style>body{font:14px system-ui,sans-serif;margin:1.5em}td,th{padding:.3em .6em;text-align:left}"
        "th{background:#f0f2f5}</style></head><body>" + body + "</body></html>"
    )


async def _list(backend: Backend) -> str:
    runs = (await backend.list_benchmark_runs(limit=LISTED)).runs
    rows = "".join(
        f"<tr><td><a href='{RUNS_PATH}/{escape(r.id)}'>{escape(r.id)}</a></td><td>{escape(r.name or '')}</td>"
        f"<td>{escape(r.state)}</td><td>{'' if r.score is None else f'{r.score:.3f}'}</td>"
        f"<td>{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(r.start_time_ms / 1000))}</td></tr>"
        for r in runs
    )
    return _page(
        "benchmark runs",
        "<h1>Benchmark runs</h1><table><tr><th>id</th><th>name</th><th>state</th><th>score</th>"
        f"<th>started (UTC)</th></tr>{rows}</table>",
    )


async def _report(backend: Backend, benchmark_run_id: str, compare_id: str | None) -> str:
    suite = await results_of(backend, benchmark_run_id)
    compare = await results_of(backend, compare_id) if compare_id else None
    return render_report(suite, compare=compare, logs=await run_logs(backend, suite))


def run_pages(backend: Backend) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") not in ("GET", "HEAD"):
            await _respond(send, 405, _page("method not allowed", "<p>only GET</p>"))
            return
        path: str = scope["path"].rstrip("/")
        query = _query(scope)
        try:
            if path == RUNS_PATH:
                await _respond(send, 200, await _list(backend))
            else:
                await _respond(send, 200, await _report(backend, path.rsplit("/", 1)[-1], query.get("compare")))
        except NotFoundError as exc:
            await _respond(send, 404, _page("not found", f"<p>{escape(exc.message)}</p>"))
        except BackendError as exc:
            await _respond(send, exc.status, _page("error", f"<p>{escape(exc.message)}</p>"))

    return app


def _query(scope: Scope) -> dict[str, Any]:
    from urllib.parse import parse_qs

    raw: bytes = scope.get("query_string", b"")
    return {key: values[-1] for key, values in parse_qs(raw.decode()).items()}
