"""Scenario runs: start one, list (per scenario and per benchmark run too), read, score, complete,
cancel, and download its logs as a zip."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from ..models import (
    Metadata,
    RunLogEntry,
    RunProfile,
    ScenarioRunView,
    StartScenarioRunParameters,
)
from .common import (
    RouteTable,
    backend,
    body,
    model_response,
    path_param,
    query_bool,
    query_limit,
    query_str,
)

CAMEL_HINT = {"run_profile": "Runloop spells it runProfile, in camelCase"}


class StartRunBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    scenario_id: str
    run_name: str | None = None
    benchmark_run_id: str | None = None
    metadata: Metadata | None = None
    run_profile: RunProfile | None = Field(default=None, alias="runProfile")


def logs_zip(run: ScenarioRunView, entries: list[RunLogEntry]) -> bytes:
    """A run's logs as Runloop hands them out: a zip. `run.log` is for people, `entries.jsonl` for
    programs (the remote backend reads it back), one file per source for grepping."""
    buffer = io.BytesIO()
    by_source: dict[str, list[str]] = {}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        lines = []
        for entry in entries:
            stamp = datetime.fromtimestamp(entry.timestamp_ms / 1000, UTC).isoformat(timespec="milliseconds")
            lines.append(f"{stamp} [{entry.source}] {entry.message}")
            by_source.setdefault(entry.source.split(":", 1)[0], []).append(f"{stamp} {entry.message}")
        archive.writestr("run.json", run.model_dump_json(indent=2))
        archive.writestr("run.log", "\n".join(lines) + ("\n" if lines else ""))
        archive.writestr("entries.jsonl", "".join(entry.model_dump_json() + "\n" for entry in entries))
        for source, source_lines in by_source.items():
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", source) or "log"
            archive.writestr(f"sources/{safe}.log", "\n".join(source_lines) + "\n")
    return buffer.getvalue()


async def start_run(request: Request) -> Response:
    start = await body(request, StartRunBody, hints=CAMEL_HINT)
    params = StartScenarioRunParameters(
        scenario_id=start.scenario_id,
        run_name=start.run_name,
        benchmark_run_id=start.benchmark_run_id,
        metadata=start.metadata,
        run_profile=start.run_profile,
    )
    return model_response(await backend(request).start_run(params))


async def runs_page(
    request: Request, *, scenario_id: str | None = None, benchmark_run_id: str | None = None
) -> Response:
    """A page of runs, filtered by the query (and by the scenario or benchmark run in the path)."""
    page = await backend(request).list_runs(
        limit=query_limit(request),
        starting_after=query_str(request, "starting_after"),
        scenario_id=scenario_id or query_str(request, "scenario_id"),
        state=query_str(request, "state"),
        benchmark_run_id=benchmark_run_id or query_str(request, "benchmark_run_id"),
        name=query_str(request, "name"),
    )
    with_total = query_bool(request, "include_total_count", True)
    return model_response(page if with_total else page.model_copy(update={"total_count": None}))


async def list_runs(request: Request) -> Response:
    return await runs_page(request)


async def list_scenario_runs(request: Request) -> Response:
    scenario_id = path_param(request, "id")
    await backend(request).get_scenario(scenario_id)  # 404 for an unknown scenario, not an empty list
    return await runs_page(request, scenario_id=scenario_id)


async def get_run(request: Request) -> Response:
    return model_response(await backend(request).get_run(path_param(request, "id")))


async def score_run(request: Request) -> Response:
    return model_response(await backend(request).score_run(path_param(request, "id")))


async def complete_run(request: Request) -> Response:
    return model_response(await backend(request).complete_run(path_param(request, "id")))


async def cancel_run(request: Request) -> Response:
    return model_response(await backend(request).cancel_run(path_param(request, "id")))


async def download_logs(request: Request) -> Response:
    run_id = path_param(request, "id")
    run = await backend(request).get_run(run_id)
    data = logs_zip(run, await backend(request).run_logs(run_id))
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{run_id}_logs.zip"'},
    )


# Before the scenario routes: `/v1/scenarios/start_run` and `/v1/scenarios/runs` are not scenario ids.
ROUTES: RouteTable = [
    ("POST", "/v1/scenarios/start_run", start_run),
    ("GET", "/v1/scenarios/runs", list_runs),
    ("GET", "/v1/scenarios/runs/{id}", get_run),
    ("POST", "/v1/scenarios/runs/{id}/score", score_run),
    ("POST", "/v1/scenarios/runs/{id}/complete", complete_run),
    ("POST", "/v1/scenarios/runs/{id}/cancel", cancel_run),
    ("POST", "/v1/scenarios/runs/{id}/download_logs", download_logs),
    ("GET", "/v1/scenarios/{id}/runs", list_scenario_runs),
]
