"""The MCP resources: a scenario's problem statement, a run's state and logs, a devbox's files.

Templates:
  scenario://{scenario_id}/problem_statement   text/markdown
  run://{run_id}                               application/json (state and score)
  run://{run_id}/logs                          text/plain (every entry timestamped, with its source)
  devbox://{devbox_id}/files/{+path}           the file, text or binary (path relative to /home/user)
  benchmark-run://{benchmark_run_id}           application/json (every attempt and the summary, as bench run --json)
resources/list shows the concrete ones for recent scenarios and runs. Unknown ids are the
protocol's resource-not-found error. A solver server reads through its SolverBackend, so what it
can see here is exactly what its tools can.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from mcp.server import MCPServer
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.types import Resource

from ..backend import Backend, BackendError, NotFoundError
from ..models import RunLogEntry, ScenarioRunView, ScenarioView
from .docs import DOCS_URI

LISTED_PER_KIND = 50
DEVBOX_FILES_PREFIX = "devbox://"


def problem_statement_text(scenario: ScenarioView) -> str:
    text = f"# {scenario.name}\n\n{scenario.input_context.problem_statement}"
    extra = scenario.input_context.additional_context
    if extra:
        text += f"\n\n## Additional context\n\n{extra}"
    return text + f"\n\n(Work in {scenario.working_directory} on your run's devbox.)\n"


def logs_text(entries: list[RunLogEntry]) -> str:
    return "\n".join(f"[{iso(e.timestamp_ms)}] {e.source}\n{e.message}\n" for e in entries)


def iso(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


@contextmanager
def _not_found() -> Iterator[None]:
    """An unknown id is the protocol's resource-not-found error, with the backend's message."""
    try:
        yield
    except NotFoundError as exc:
        raise ResourceNotFoundError(exc.message) from exc


def register_resources(server: MCPServer[Any], backend: Backend) -> None:
    @server.resource(
        "scenario://{scenario_id}/problem_statement",
        name="problem_statement",
        title="Scenario problem statement",
        description="The task text of a scenario, with its additional context and working directory.",
        mime_type="text/markdown",
    )
    async def problem_statement(scenario_id: str) -> str:
        with _not_found():
            scenario = await backend.get_scenario(scenario_id)
        return problem_statement_text(scenario)

    @server.resource(
        "run://{run_id}",
        name="run",
        title="Scenario run",
        description="A run's state, devbox and score (with each scoring function's result), as JSON.",
        mime_type="application/json",
    )
    async def run_view(run_id: str) -> str:
        with _not_found():
            run = await backend.get_run(run_id)
        return run.model_dump_json(indent=2)

    @server.resource(
        "run://{run_id}/logs",
        name="run_logs",
        title="Scenario run logs",
        description="Every execution and scorer of a run, in order, each entry headed by its timestamp and source.",
        mime_type="text/plain",
    )
    async def run_logs(run_id: str) -> str:
        with _not_found():
            entries = await backend.run_logs(run_id)
        return logs_text(entries)

    @server.resource(
        "benchmark-run://{benchmark_run_id}",
        name="benchmark_run",
        title="Benchmark run results",
        description="A benchmark run's results as JSON (the schema of `scenario-mcp bench run --json`): every "
        "attempt with each scorer's result, and the summary (mean, standard error, pass@k, errors).",
        mime_type="application/json",
    )
    async def benchmark_run(benchmark_run_id: str) -> str:
        from ..harness.runner import results_of

        try:
            suite = await results_of(backend, benchmark_run_id)
        except BackendError as exc:
            raise ResourceNotFoundError(exc.message) from exc
        return suite.model_dump_json(indent=2)

    @server.resource(
        "devbox://{devbox_id}/files/{+path}",
        name="devbox_file",
        title="Devbox file",
        description="A file in a devbox, by path relative to /home/user: text when it is UTF-8, else binary.",
        mime_type="application/octet-stream",
    )
    async def devbox_file(devbox_id: str, path: str) -> str | bytes:
        try:
            data = await backend.download_file(devbox_id, path)
        except NotFoundError as exc:
            raise ResourceNotFoundError(exc.message) from exc
        except BackendError as exc:
            # A missing file or a directory: nothing to read at this URI.
            raise ResourceNotFoundError(f"devbox://{devbox_id}/files/{path}: {exc.message}") from exc
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data


def adjust_mime_types(uri: str, contents: Any) -> Any:
    """A devbox file resource is served with the MIME type its name and content suggest."""
    if not uri.startswith(DEVBOX_FILES_PREFIX) or not isinstance(contents, Iterable):
        return contents
    adjusted = []
    for item in contents:
        if isinstance(item, ReadResourceContents):
            guessed = mimetypes.guess_type(uri.rsplit("/", 1)[-1])[0]
            if isinstance(item.content, str):
                textual = guessed and (guessed.startswith("text/") or guessed.endswith(("json", "xml")))
                item = replace(item, mime_type=guessed if textual else "text/plain")
            else:
                item = replace(item, mime_type=guessed or "application/octet-stream")
        adjusted.append(item)
    return adjusted


class ResourceLister:
    """resources/list: the problem statement of recent scenarios, and recent runs with their logs."""

    def __init__(self, backend: Backend, *, pinned_run_id: str | None = None) -> None:
        self._backend = backend
        self._pinned_run_id = pinned_run_id

    async def resources(self) -> list[Resource]:
        docs = Resource(
            uri=DOCS_URI,
            name="tools_reference",
            title="scenario-mcp tools reference",
            description="What the tool descriptions leave out: waiting, maps, scorer types, paths, states.",
            mime_type="text/markdown",
        )
        if self._pinned_run_id is not None:
            run = await self._backend.get_run(self._pinned_run_id)
            scenario = await self._backend.get_scenario(run.scenario_id)
            return [docs, *self._scenario(scenario), *self._run(run)]
        scenarios = await self._backend.list_scenarios(limit=LISTED_PER_KIND)
        runs = await self._backend.list_runs(limit=LISTED_PER_KIND)
        listed: list[Resource] = [docs]
        for scenario in scenarios.scenarios:
            listed.extend(self._scenario(scenario))
        for run in runs.runs:
            listed.extend(self._run(run))
        return listed

    @staticmethod
    def _scenario(scenario: ScenarioView) -> list[Resource]:
        return [
            Resource(
                uri=f"scenario://{scenario.id}/problem_statement",
                name=f"{scenario.id}/problem_statement",
                title=f"Problem statement: {scenario.name}",
                description=f"The task of scenario {scenario.name!r} ({scenario.status}).",
                mime_type="text/markdown",
            )
        ]

    @staticmethod
    def _run(run: ScenarioRunView) -> list[Resource]:
        label = run.name or run.id
        return [
            Resource(
                uri=f"run://{run.id}",
                name=run.id,
                title=f"Run {label}",
                description=f"Run {label} of scenario {run.scenario_id}: state and score (JSON).",
                mime_type="application/json",
            ),
            Resource(
                uri=f"run://{run.id}/logs",
                name=f"{run.id}/logs",
                title=f"Run {label} logs",
                description=f"Every execution and scorer output of run {label}, timestamped.",
                mime_type="text/plain",
            ),
        ]
