"""RemoteBackend: the Backend protocol over any Runloop-compatible REST API (Runloop's cloud, or
another machine running `scenario-mcp api`), with httpx2.

One shared async client; every request has a timeout; 429s, 5xx answers and connections that
never reached the server are retried with exponential backoff (honouring `Retry-After`). Waiting
is done with the API's own bounded long polls (`wait_for_status`, at most 25-30 s each), never by
tight polling. A command's timeout, which Runloop does not have, is enforced client-side by
killing the execution. Errors from the remote side are BackendErrors carrying the remote status
and message, so an agent sees what the server said.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import os
import posixpath
import random
import shlex
import time
import uuid
import zipfile
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import httpx2
from anyio.abc import TaskGroup
from pydantic import BaseModel

from . import __version__
from .backend import (
    BackendError,
    EnvironmentUnavailableError,
    InvalidRequestError,
    InvalidStateError,
    NotFoundError,
    OperationTimeoutError,
)
from .models import (
    COLLECTION_PATHS,
    BenchmarkCreateParameters,
    BenchmarkListView,
    BenchmarkRunListView,
    BenchmarkRunView,
    BenchmarkView,
    BlueprintBuildLogsListView,
    BlueprintCreateParameters,
    BlueprintListView,
    BlueprintView,
    CreateCustomScorerParameters,
    DevboxCreateParameters,
    DevboxListView,
    DevboxLogsListView,
    DevboxSnapshotListView,
    DevboxSnapshotView,
    DevboxStatus,
    DevboxView,
    ExecutionOutputChunk,
    ExecutionStatus,
    ExecutionView,
    MetadataKeysView,
    MetadataKind,
    MetadataValuesView,
    RunLogEntry,
    ScenarioCreateParameters,
    ScenarioListView,
    ScenarioRunListView,
    ScenarioRunState,
    ScenarioRunView,
    ScenarioScorersListView,
    ScenarioScorerView,
    ScenarioUpdateParameters,
    ScenarioValidationView,
    ScenarioView,
    StartBenchmarkRunParameters,
    StartScenarioRunParameters,
    ValidationAttempt,
    given,
)
from .validation import judge_validation

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.runloop.ai"
HOME = "/home/user"

# The server holds a devbox status wait at most 30 s and an execution wait at most 25 s; the
# client's read timeout is that hold plus a margin, so the server's 408 arrives first.
DEVBOX_LONG_POLL = 30.0
EXECUTION_LONG_POLL = 25.0
LONG_POLL_MARGIN = 10.0
# Runloop returns the last `last_n` lines of output inline (100 by default); ask for all of it.
LAST_N = "1000000"
# The same command deadline the local engine applies, so both backends behave alike.
DEFAULT_EXEC_TIMEOUT = 120.0
MAX_EXEC_TIMEOUT = 3600.0
TIMEOUT_EXIT_STATUS = 124
RETRY_ALWAYS = frozenset({429, 503})
MAX_BACKOFF = 10.0

T = TypeVar("T")
V = TypeVar("V", bound=BaseModel)

_LIST_SCRIPT = r"""
cd /home/user || exit 9
p=$(realpath -e -- "$1" 2>/dev/null) || { echo "no such directory: $1" >&2; exit 2; }
case "$p" in /home/user|/home/user/*) ;; *) echo "resolves to $p, outside /home/user" >&2; exit 3;; esac
[ -d "$p" ] || { echo "$1 is not a directory" >&2; exit 4; }
cd -- "$p" || exit 2
for f in * .[!.]* ..?*; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  if [ -d "$f" ]; then printf '%s/\n' "$f"; else printf '%s\n' "$f"; fi
done
"""


# --- errors --------------------------------------------------------------------------------------


class RemoteError(BackendError):
    """An error answered by the remote API: its HTTP status and its message."""

    def __init__(self, status: int, message: str) -> None:
        BackendError.__init__(self, message)
        self.status = status


class RemoteInvalidRequestError(RemoteError, InvalidRequestError):
    pass


class RemoteNotFoundError(RemoteError, NotFoundError):
    kind = "object"
    ident = ""


class RemoteInvalidStateError(RemoteError, InvalidStateError):
    pass


class RemoteTimeoutError(RemoteError, OperationTimeoutError):
    pass


class RemoteUnavailableError(RemoteError, EnvironmentUnavailableError):
    pass


_ERRORS: dict[int, type[RemoteError]] = {
    400: RemoteInvalidRequestError,
    404: RemoteNotFoundError,
    408: RemoteTimeoutError,
    409: RemoteInvalidStateError,
    422: RemoteInvalidRequestError,
    503: RemoteUnavailableError,
}


def remote_error(status: int, message: str) -> RemoteError:
    return _ERRORS.get(status, RemoteError)(status, message)


def _error_message(response: httpx2.Response) -> str:
    """The message of an error body in Runloop's shape, or in any common shape, or its text."""
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        text = response.text.strip()
        return text[:2000] or response.reason_phrase
    if isinstance(data, dict):
        for key in ("message", "detail", "error"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])
    return json.dumps(data)[:2000]


def is_unified_diff(text: str) -> bool:
    """A reference output that is a patch (git diff / diff -u) rather than commands."""
    lines = text.lstrip().splitlines()
    return bool(lines) and (
        lines[0].startswith("diff --git ")
        or any(a.startswith("--- ") and b.startswith("+++ ") for a, b in itertools.pairwise(lines))
    )


def _dump(model: BaseModel) -> dict[str, Any]:
    # Omitted, not null: Runloop's updates keep a field that is absent and clear one that is empty.
    return model.model_dump(mode="json", exclude_none=True, by_alias=True)


def uuid7() -> str:
    """A UUIDv7 (RFC 9562: milliseconds since the epoch, then random bits), as Runloop's
    `command_id` wants; Python has uuid7 only from 3.14."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # the RFC's variant
    return str(uuid.UUID(int=value))


class RemoteBackend:
    """The Backend protocol over a Runloop-compatible REST API. Use as an async context manager."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
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
        self._tg: TaskGroup | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> RemoteBackend:
        """RUNLOOP_BASE_URL (default https://api.runloop.ai) and RUNLOOP_API_KEY."""
        env = os.environ if environ is None else environ
        base_url = env.get("RUNLOOP_BASE_URL") or DEFAULT_BASE_URL
        api_key = env.get("RUNLOOP_API_KEY") or None
        if api_key is None and base_url.rstrip("/") == DEFAULT_BASE_URL:
            raise RuntimeError(
                "the remote backend needs RUNLOOP_API_KEY (your Runloop API key) to talk to "
                f"{DEFAULT_BASE_URL}; or set RUNLOOP_BASE_URL to a `scenario-mcp api` server"
            )
        return cls(base_url, api_key)

    # --- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> RemoteBackend:
        self._client = httpx2.AsyncClient(**self._client_args)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._tg is not None and self._client is not None
        self._tg.cancel_scope.cancel()  # command-deadline watchers
        try:
            await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx2.AsyncClient:
        assert self._client is not None, "use RemoteBackend as an async context manager"
        return self._client

    # --- HTTP ----------------------------------------------------------------------------------

    async def _backoff(self, attempt: int, response: httpx2.Response | None) -> None:
        delay = min(MAX_BACKOFF, 0.2 * 2**attempt) * (0.5 + random.random() / 2)
        if response is not None:
            retry_after = response.headers.get("retry-after")
            if retry_after:
                with contextlib.suppress(ValueError):
                    delay = min(MAX_BACKOFF, max(0.0, float(retry_after)))
        await anyio.sleep(delay)

    async def _request(
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
        """One request, sent again after a connection failure, a 429 or 5xx, with backoff. A request
        that may have reached the server is sent again only if it is idempotent (GETs, and POSTs
        that say so, as `execute` with its command_id)."""
        if idempotent is None:
            idempotent = method == "GET"
        kwargs: dict[str, Any] = {"params": params}
        if json_body is not None:
            kwargs["json"] = json_body
        elif method == "POST" and files is None:
            kwargs["json"] = {}
        if files is not None:
            kwargs["files"] = files
            kwargs["data"] = data
        if timeout is not None:
            kwargs["timeout"] = httpx2.Timeout(timeout, connect=self._client_args["timeout"].connect)
        if accept is not None:
            kwargs["headers"] = {"Accept": accept}
        where = f"{method} {path}"
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = await self.client.request(method, path, **kwargs)
            except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout) as exc:
                # The request never reached the server: always safe to send again.
                if last:
                    raise RemoteUnavailableError(
                        503, f"cannot reach the remote API at {self.base_url} ({where}): {exc or type(exc).__name__}"
                    ) from exc
                await self._backoff(attempt, None)
                continue
            except httpx2.TimeoutException as exc:
                if idempotent and not last:
                    await self._backoff(attempt, None)
                    continue
                raise RemoteError(
                    504, f"the remote API at {self.base_url} did not answer {where} in time: {type(exc).__name__}"
                ) from exc
            except httpx2.TransportError as exc:
                if idempotent and not last:
                    await self._backoff(attempt, None)
                    continue
                raise RemoteError(502, f"the connection to {self.base_url} failed during {where}: {exc}") from exc
            status = response.status_code
            # 429 and 503 say the request was not taken; a 502 or 504 may come after it was.
            retryable = status in RETRY_ALWAYS or (status >= 500 and idempotent)
            if retryable and not last:
                log.info("remote API answered %s to %s; retrying (attempt %d)", status, where, attempt + 1)
                await self._backoff(attempt, response)
                continue
            if status >= 400:
                message = _error_message(response)
                raise remote_error(status, f"{message} [remote API: {status} on {where}]")
            return response
        raise AssertionError("unreachable")

    async def _get(self, path: str, model: type[V], **params: Any) -> V:
        response = await self._request("GET", path, params=given(**params))
        return model.model_validate_json(response.content)

    async def _post(
        self,
        path: str,
        model: type[V],
        body: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        idempotent: bool = False,
        **params: Any,
    ) -> V:
        response = await self._request(
            "POST", path, json_body=body, params=given(**params), timeout=timeout, idempotent=idempotent
        )
        return model.model_validate_json(response.content)

    async def _poll(
        self, fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], *, timeout: float, what: str
    ) -> T:
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

    # --- scenarios -----------------------------------------------------------------------------

    async def create_scenario(self, params: ScenarioCreateParameters) -> ScenarioView:
        return await self._post("/v1/scenarios", ScenarioView, _dump(params))

    async def get_scenario(self, scenario_id: str) -> ScenarioView:
        return await self._get(f"/v1/scenarios/{scenario_id}", ScenarioView)

    async def list_scenarios(
        self, *, limit: int = 20, starting_after: str | None = None, name: str | None = None
    ) -> ScenarioListView:
        return await self._get("/v1/scenarios", ScenarioListView, limit=limit, starting_after=starting_after, name=name)

    async def update_scenario(self, scenario_id: str, params: ScenarioUpdateParameters) -> ScenarioView:
        return await self._post(f"/v1/scenarios/{scenario_id}", ScenarioView, _dump(params))

    async def archive_scenario(self, scenario_id: str) -> ScenarioView:
        return await self._post(f"/v1/scenarios/{scenario_id}/archive", ScenarioView)

    async def unarchive_scenario(self, scenario_id: str) -> ScenarioView:
        return await self._post(f"/v1/scenarios/{scenario_id}/unarchive", ScenarioView)

    async def validate_scenario(self, scenario_id: str) -> ScenarioValidationView:
        """Runloop has no validation endpoint: validate with two runs of the scenario, scored as any run.

        One run applies the reference output and must score 1.0; the other is left untouched and must
        score below it. Both runs are canceled afterwards (their devboxes shut down).
        """
        scenario = await self.get_scenario(scenario_id)
        if not scenario.reference_output:
            raise InvalidRequestError(
                f"scenario {scenario_id} has no reference_output to validate; set one with update_scenario "
                "(a unified diff, or commands that solve the task)"
            )
        attempts: dict[bool, ValidationAttempt] = {}

        async def attempt(apply: bool) -> None:
            attempts[apply] = await self._validation_attempt(scenario, apply)

        async with anyio.create_task_group() as tg:
            tg.start_soon(attempt, True)
            tg.start_soon(attempt, False)
        gold, untouched = attempts[True], attempts[False]
        return judge_validation(scenario, gold, untouched)

    async def _validation_attempt(self, scenario: ScenarioView, apply: bool) -> ValidationAttempt:
        label = "reference_output" if apply else "nothing"
        run = await self.start_run(
            StartScenarioRunParameters(
                scenario_id=scenario.id,
                run_name=f"validate-{'gold' if apply else 'untouched'}",
                metadata={"scenario_mcp_validation": "gold" if apply else "untouched"},
            )
        )
        output: str | None = None
        try:
            if apply:
                output = await self._apply_reference(scenario, run.devbox_id)
            await self.score_run(run.id)
            scored = await self._poll(
                lambda: self.get_run(run.id),
                lambda r: r.state != ScenarioRunState.SCORING,
                timeout=scenario.scorer_timeout_sec + 60,
                what=f"scoring run {run.id}",
            )
            if scored.state != ScenarioRunState.SCORED:
                raise RemoteError(409, f"run {run.id} ended `{scored.state.value}`: {scored.failure_reason}")
            return ValidationAttempt(
                devbox_id=run.devbox_id, applied=label, apply_output=output, result=scored.scoring_contract_result
            )
        except BackendError as exc:
            return ValidationAttempt(devbox_id=run.devbox_id, applied=label, apply_output=output, error=exc.message)
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await self.cancel_run(run.id)
                except BackendError:
                    log.warning("could not cancel validation run %s", run.id)

    async def _apply_reference(self, scenario: ScenarioView, devbox_id: str) -> str:
        reference = scenario.reference_output or ""
        if is_unified_diff(reference):
            await self.write_file(devbox_id, ".scenario-reference.patch", reference)
            command = (
                "(git apply --whitespace=nowarn /home/user/.scenario-reference.patch 2>/dev/null "
                "|| patch -p1 --forward < /home/user/.scenario-reference.patch); rc=$?; "
                "rm -f /home/user/.scenario-reference.patch; exit $rc"
            )
        else:
            command = reference
        result = await self.execute(
            devbox_id, command, working_directory=scenario.working_directory, timeout_seconds=600
        )
        output = (result.stdout or "") + (result.stderr or "")
        if result.exit_status != 0:
            raise InvalidRequestError(f"applying the reference output exited {result.exit_status}: {output[-2000:]}")
        return output

    # --- runs ----------------------------------------------------------------------------------

    async def start_run(self, params: StartScenarioRunParameters) -> ScenarioRunView:
        """Start a run and wait until its devbox is running, as the local engine returns it."""
        run = await self._post("/v1/scenarios/start_run", ScenarioRunView, _dump(params))
        box = await self.wait_for_devbox_status(run.devbox_id, ["running", "failure", "shutdown"], timeout_seconds=1800)
        if box.status != DevboxStatus.RUNNING:
            reason = box.failure_message or box.failure_reason or box.shutdown_reason or "no reason given"
            raise RemoteUnavailableError(
                503, f"the devbox {box.id} of run {run.id} did not start: it is `{box.status.value}` ({reason})"
            )
        return run

    async def get_run(self, run_id: str) -> ScenarioRunView:
        return await self._get(f"/v1/scenarios/runs/{run_id}", ScenarioRunView)

    async def list_runs(
        self,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        scenario_id: str | None = None,
        state: str | None = None,
        benchmark_run_id: str | None = None,
    ) -> ScenarioRunListView:
        return await self._get(
            "/v1/scenarios/runs",
            ScenarioRunListView,
            limit=limit,
            starting_after=starting_after,
            scenario_id=scenario_id,
            state=state,
            benchmark_run_id=benchmark_run_id,
        )

    async def score_run(self, run_id: str) -> ScenarioRunView:
        return await self._post(f"/v1/scenarios/runs/{run_id}/score", ScenarioRunView)

    async def complete_run(self, run_id: str) -> ScenarioRunView:
        return await self._post(f"/v1/scenarios/runs/{run_id}/complete", ScenarioRunView)

    async def cancel_run(self, run_id: str) -> ScenarioRunView:
        return await self._post(f"/v1/scenarios/runs/{run_id}/cancel", ScenarioRunView)

    async def run_logs(self, run_id: str) -> list[RunLogEntry]:
        response = await self._request("POST", f"/v1/scenarios/runs/{run_id}/download_logs", accept="application/zip")
        try:
            archive = zipfile.ZipFile(io.BytesIO(response.content))
        except zipfile.BadZipFile as exc:
            raise RemoteError(502, f"the logs of run {run_id} are not a zip archive: {exc}") from exc
        with archive:
            names = archive.namelist()
            if "entries.jsonl" in names:  # a scenario-mcp server: the entries themselves
                lines = archive.read("entries.jsonl").decode("utf-8", errors="replace").splitlines()
                return [RunLogEntry.model_validate_json(line) for line in lines if line.strip()]
            # Runloop's own archive: one entry per file.
            return [
                RunLogEntry(
                    timestamp_ms=0,
                    source=name,
                    message=archive.read(name).decode("utf-8", errors="replace"),
                )
                for name in names
                if not name.endswith("/")
            ]

    # --- benchmarks ----------------------------------------------------------------------------

    async def create_benchmark(self, params: BenchmarkCreateParameters) -> BenchmarkView:
        return await self._post("/v1/benchmarks", BenchmarkView, _dump(params))

    async def get_benchmark(self, benchmark_id: str) -> BenchmarkView:
        return await self._get(f"/v1/benchmarks/{benchmark_id}", BenchmarkView)

    async def list_benchmarks(self, *, limit: int = 20, starting_after: str | None = None) -> BenchmarkListView:
        return await self._get("/v1/benchmarks", BenchmarkListView, limit=limit, starting_after=starting_after)

    async def archive_benchmark(self, benchmark_id: str) -> BenchmarkView:
        return await self._post(f"/v1/benchmarks/{benchmark_id}/archive", BenchmarkView, idempotent=True)

    async def unarchive_benchmark(self, benchmark_id: str) -> BenchmarkView:
        return await self._post(f"/v1/benchmarks/{benchmark_id}/unarchive", BenchmarkView, idempotent=True)

    async def update_benchmark_scenarios(
        self, benchmark_id: str, *, add: list[str] | None = None, remove: list[str] | None = None
    ) -> BenchmarkView:
        body = given(scenarios_to_add=add, scenarios_to_remove=remove)
        return await self._post(f"/v1/benchmarks/{benchmark_id}/scenarios", BenchmarkView, body)

    async def start_benchmark_run(self, params: StartBenchmarkRunParameters) -> BenchmarkRunView:
        return await self._post("/v1/benchmarks/start_run", BenchmarkRunView, _dump(params))

    async def get_benchmark_run(self, benchmark_run_id: str) -> BenchmarkRunView:
        return await self._get(f"/v1/benchmark_runs/{benchmark_run_id}", BenchmarkRunView)

    async def list_benchmark_runs(
        self, *, limit: int = 20, starting_after: str | None = None, benchmark_id: str | None = None
    ) -> BenchmarkRunListView:
        return await self._get(
            "/v1/benchmark_runs",
            BenchmarkRunListView,
            limit=limit,
            starting_after=starting_after,
            benchmark_id=benchmark_id,
        )

    async def complete_benchmark_run(self, benchmark_run_id: str) -> BenchmarkRunView:
        return await self._post(f"/v1/benchmark_runs/{benchmark_run_id}/complete", BenchmarkRunView)

    async def cancel_benchmark_run(self, benchmark_run_id: str) -> BenchmarkRunView:
        return await self._post(f"/v1/benchmark_runs/{benchmark_run_id}/cancel", BenchmarkRunView)

    # --- custom scorers ------------------------------------------------------------------------

    async def create_custom_scorer(self, params: CreateCustomScorerParameters) -> ScenarioScorerView:
        return await self._post("/v1/scenarios/scorers", ScenarioScorerView, _dump(params))

    async def get_custom_scorer(self, scorer_id: str) -> ScenarioScorerView:
        return await self._get(f"/v1/scenarios/scorers/{scorer_id}", ScenarioScorerView)

    async def list_custom_scorers(
        self, *, limit: int = 20, starting_after: str | None = None
    ) -> ScenarioScorersListView:
        return await self._get(
            "/v1/scenarios/scorers", ScenarioScorersListView, limit=limit, starting_after=starting_after
        )

    async def update_custom_scorer(self, scorer_id: str, params: CreateCustomScorerParameters) -> ScenarioScorerView:
        return await self._post(f"/v1/scenarios/scorers/{scorer_id}", ScenarioScorerView, _dump(params))

    # --- blueprints ----------------------------------------------------------------------------

    async def create_blueprint(self, params: BlueprintCreateParameters) -> BlueprintView:
        """Create and wait for the build to finish, as the local engine does."""
        view = await self._post("/v1/blueprints", BlueprintView, _dump(params))
        return await self._poll(
            lambda: self.get_blueprint(view.id),
            lambda b: b.status in ("build_complete", "failed"),
            timeout=3600,
            what=f"the build of blueprint {view.id}",
        )

    async def get_blueprint(self, blueprint_id: str) -> BlueprintView:
        return await self._get(f"/v1/blueprints/{blueprint_id}", BlueprintView)

    async def list_blueprints(self, *, limit: int = 20, starting_after: str | None = None) -> BlueprintListView:
        return await self._get("/v1/blueprints", BlueprintListView, limit=limit, starting_after=starting_after)

    async def blueprint_logs(self, blueprint_id: str) -> BlueprintBuildLogsListView:
        return await self._get(f"/v1/blueprints/{blueprint_id}/logs", BlueprintBuildLogsListView)

    async def metadata_keys(self, kind: MetadataKind) -> MetadataKeysView:
        return await self._get(f"{COLLECTION_PATHS[kind]}/metadata/keys", MetadataKeysView)

    async def metadata_values(self, kind: MetadataKind, key: str) -> MetadataValuesView:
        path = f"{COLLECTION_PATHS[kind]}/metadata/keys/{quote(key, safe='')}/values"
        return await self._get(path, MetadataValuesView)

    async def delete_blueprint(self, blueprint_id: str) -> None:
        await self._request("POST", f"/v1/blueprints/{blueprint_id}/delete")

    # --- devboxes ------------------------------------------------------------------------------

    async def create_devbox(self, params: DevboxCreateParameters) -> DevboxView:
        """Create and wait until running (Runloop boots asynchronously; the local engine does not)."""
        view = await self._post("/v1/devboxes", DevboxView, _dump(params))
        if view.status != DevboxStatus.RUNNING:
            view = await self.wait_for_devbox_status(view.id, ["running", "failure", "shutdown"], timeout_seconds=1800)
        if view.status != DevboxStatus.RUNNING:
            reason = view.failure_message or view.failure_reason or view.shutdown_reason or "no reason given"
            raise RemoteUnavailableError(503, f"devbox {view.id} did not start: it is `{view.status.value}` ({reason})")
        return view

    async def get_devbox(self, devbox_id: str) -> DevboxView:
        return await self._get(f"/v1/devboxes/{devbox_id}", DevboxView)

    async def list_devboxes(
        self, *, limit: int = 20, starting_after: str | None = None, status: str | None = None
    ) -> DevboxListView:
        return await self._get(
            "/v1/devboxes", DevboxListView, limit=limit, starting_after=starting_after, status=status
        )

    async def wait_for_devbox_status(
        self, devbox_id: str, statuses: list[str], *, timeout_seconds: float = 30
    ) -> DevboxView:
        deadline = anyio.current_time() + timeout_seconds
        while True:
            hold = min(DEVBOX_LONG_POLL, max(0.0, deadline - anyio.current_time()))
            try:
                return await self._post(
                    f"/v1/devboxes/{devbox_id}/wait_for_status",
                    DevboxView,
                    {"statuses": statuses, "timeout_seconds": int(hold) if hold.is_integer() else hold},
                    timeout=hold + LONG_POLL_MARGIN,
                )
            except RemoteTimeoutError:
                if anyio.current_time() >= deadline:
                    raise

    async def _settle(self, view: DevboxView, transitional: DevboxStatus, target: list[str]) -> DevboxView:
        if view.status == transitional:
            return await self.wait_for_devbox_status(view.id, target, timeout_seconds=600)
        return view

    async def shutdown_devbox(self, devbox_id: str) -> DevboxView:
        return await self._post(f"/v1/devboxes/{devbox_id}/shutdown", DevboxView)

    async def suspend_devbox(self, devbox_id: str) -> DevboxView:
        view = await self._post(f"/v1/devboxes/{devbox_id}/suspend", DevboxView)
        return await self._settle(view, DevboxStatus.SUSPENDING, ["suspended", "failure", "shutdown"])

    async def resume_devbox(self, devbox_id: str) -> DevboxView:
        view = await self._post(f"/v1/devboxes/{devbox_id}/resume", DevboxView)
        return await self._settle(view, DevboxStatus.RESUMING, ["running", "failure", "shutdown"])

    async def update_devbox(
        self, devbox_id: str, *, name: str | None = None, metadata: dict[str, str] | None = None
    ) -> DevboxView:
        body = given(name=name, metadata=metadata)
        return await self._post(f"/v1/devboxes/{devbox_id}", DevboxView, body, idempotent=True)

    async def keep_alive_devbox(self, devbox_id: str) -> DevboxView:
        await self._request("POST", f"/v1/devboxes/{devbox_id}/keep_alive")
        return await self.get_devbox(devbox_id)

    async def devbox_logs(self, devbox_id: str, *, execution_id: str | None = None) -> DevboxLogsListView:
        return await self._get(f"/v1/devboxes/{devbox_id}/logs", DevboxLogsListView, execution_id=execution_id)

    # --- execution -----------------------------------------------------------------------------

    @staticmethod
    def _command(command: str, working_directory: str | None) -> str:
        if not working_directory:
            return command
        wd = working_directory if working_directory.startswith("/") else posixpath.join(HOME, working_directory)
        return f"cd -- {shlex.quote(wd)} && eval {shlex.quote(command)}"

    @staticmethod
    def _check_timeout(timeout_seconds: float | None) -> float:
        timeout = DEFAULT_EXEC_TIMEOUT if timeout_seconds is None else timeout_seconds
        if not 0 < timeout <= MAX_EXEC_TIMEOUT:
            raise InvalidRequestError(f"timeout_seconds must be in (0, {MAX_EXEC_TIMEOUT:.0f}], got {timeout}")
        return timeout

    async def _start(
        self, devbox_id: str, command: str, working_directory: str | None, shell_name: str | None, attach_stdin: bool
    ) -> ExecutionView:
        body: dict[str, Any] = {"command": self._command(command, working_directory)}
        if shell_name is not None:
            body["shell_name"] = shell_name
        if attach_stdin:
            body["attach_stdin"] = True
        return await self._post(f"/v1/devboxes/{devbox_id}/execute_async", ExecutionView, body)

    async def execute(
        self,
        devbox_id: str,
        command: str,
        *,
        timeout_seconds: float | None = None,
        working_directory: str | None = None,
        shell_name: str | None = None,
    ) -> ExecutionView:
        """`execute` (one request: it waits for the command up to its optimistic timeout), then
        bounded long polls until it completes or its deadline kills it.

        Not execute_async + wait_for_status: that is two round trips for every command, and
        execute_async cannot be sent again safely; `execute`'s command_id makes it idempotent."""
        timeout = self._check_timeout(timeout_seconds)
        deadline = anyio.current_time() + timeout
        hold = min(EXECUTION_LONG_POLL, timeout)
        body: dict[str, Any] = {
            "command": self._command(command, working_directory),
            "command_id": uuid7(),
            "optimistic_timeout": int(hold),  # an integer in Runloop's API; a shorter deadline polls
        }
        if shell_name is not None:
            body["shell_name"] = shell_name
        started = await self._post(
            f"/v1/devboxes/{devbox_id}/execute",
            ExecutionView,
            body,
            timeout=hold + LONG_POLL_MARGIN,
            idempotent=True,
            last_n=LAST_N,
        )
        if started.status == ExecutionStatus.COMPLETED:
            return started
        while (remaining := deadline - anyio.current_time()) > 0:
            try:
                return await self._wait_once(devbox_id, started.execution_id, ["completed"], remaining)
            except RemoteTimeoutError:
                continue
        return await self._time_out(devbox_id, started.execution_id, timeout)

    async def _wait_once(
        self, devbox_id: str, execution_id: str, statuses: list[str], remaining: float
    ) -> ExecutionView:
        hold = min(EXECUTION_LONG_POLL, remaining)
        return await self._post(
            f"/v1/devboxes/{devbox_id}/executions/{execution_id}/wait_for_status",
            ExecutionView,
            {"statuses": statuses, "timeout_seconds": hold},
            timeout=hold + LONG_POLL_MARGIN,
            last_n=LAST_N,
        )

    async def _time_out(self, devbox_id: str, execution_id: str, timeout: float) -> ExecutionView:
        try:
            view = await self.kill_execution(devbox_id, execution_id, kill_process_group=True)
        except (RemoteInvalidStateError, RemoteInvalidRequestError):
            view = await self.get_execution(devbox_id, execution_id)  # it completed meanwhile
            if view.status == ExecutionStatus.COMPLETED:
                return view
        note = f"\n[scenario-mcp] timed out after {timeout:g} s; the command and its process group were killed"
        return view.model_copy(
            update={
                "status": ExecutionStatus.COMPLETED,
                "exit_status": TIMEOUT_EXIT_STATUS,
                "stderr": (view.stderr or "") + note,
            }
        )

    async def execute_async(
        self,
        devbox_id: str,
        command: str,
        *,
        timeout_seconds: float | None = None,
        working_directory: str | None = None,
        shell_name: str | None = None,
        attach_stdin: bool = False,
    ) -> ExecutionView:
        timeout = self._check_timeout(timeout_seconds)
        started = await self._start(devbox_id, command, working_directory, shell_name, attach_stdin)
        if timeout_seconds is not None and started.status != ExecutionStatus.COMPLETED:
            assert self._tg is not None
            self._tg.start_soon(self._deadline, devbox_id, started.execution_id, timeout)
        return started

    async def _deadline(self, devbox_id: str, execution_id: str, timeout: float) -> None:
        """A command's timeout, which Runloop does not have: kill it when the time is up."""
        await anyio.sleep(timeout)
        try:
            view = await self.get_execution(devbox_id, execution_id)
            if view.status != ExecutionStatus.COMPLETED:
                log.info("execution %s on %s reached its %g s timeout; killing it", execution_id, devbox_id, timeout)
                await self.kill_execution(devbox_id, execution_id, kill_process_group=True)
        except BackendError as exc:
            log.info("could not enforce the timeout of execution %s: %s", execution_id, exc.message)

    async def get_execution(self, devbox_id: str, execution_id: str) -> ExecutionView:
        return await self._get(f"/v1/devboxes/{devbox_id}/executions/{execution_id}", ExecutionView, last_n=LAST_N)

    async def wait_for_execution(
        self, devbox_id: str, execution_id: str, *, statuses: list[str] | None = None, timeout_seconds: float = 30
    ) -> ExecutionView:
        deadline = anyio.current_time() + timeout_seconds
        while True:
            try:
                return await self._wait_once(
                    devbox_id, execution_id, statuses or ["completed"], max(0.0, deadline - anyio.current_time())
                )
            except RemoteTimeoutError:
                if anyio.current_time() >= deadline:
                    raise

    async def kill_execution(
        self, devbox_id: str, execution_id: str, *, kill_process_group: bool = True
    ) -> ExecutionView:
        return await self._post(
            f"/v1/devboxes/{devbox_id}/executions/{execution_id}/kill",
            ExecutionView,
            {"kill_process_group": kill_process_group},
            last_n=LAST_N,
        )

    async def send_stdin(
        self, devbox_id: str, execution_id: str, *, text: str | None = None, signal: str | None = None
    ) -> ExecutionView:
        await self._request(
            "POST",
            f"/v1/devboxes/{devbox_id}/executions/{execution_id}/send_std_in",
            json_body=given(text=text, signal=signal),
        )
        return await self.get_execution(devbox_id, execution_id)

    async def execution_output(
        self, devbox_id: str, execution_id: str, *, stream: str = "stdout", offset: int = 0
    ) -> ExecutionOutputChunk:
        """The next slice of output from `offset`, read off the SSE stream; waits at most one long poll."""
        if stream not in ("stdout", "stderr"):
            raise InvalidRequestError(f"stream must be stdout or stderr, got {stream!r}")
        path = f"/v1/devboxes/{devbox_id}/executions/{execution_id}/stream_{stream}_updates"
        output, next_offset, ended = "", offset, False
        timeout = httpx2.Timeout(EXECUTION_LONG_POLL + LONG_POLL_MARGIN, connect=self._client_args["timeout"].connect)
        with anyio.move_on_after(EXECUTION_LONG_POLL):
            async with self.client.sse(path, params={"offset": str(offset)}, timeout=timeout) as source:
                if source.response.status_code >= 400:
                    await source.response.aread()
                    raise remote_error(
                        source.response.status_code,
                        f"{_error_message(source.response)} [remote API: {source.response.status_code} on GET {path}]",
                    )
                async for event in source:
                    if event.event == "error":
                        try:
                            error = json.loads(event.data)
                            code, message = int(error.get("code", 500)), str(error.get("message", event.data))
                        except (json.JSONDecodeError, AttributeError, ValueError):
                            code, message = 500, event.data
                        if code == 408:  # the server's hold ended: nothing more yet
                            break
                        raise remote_error(code, f"{message} [remote API: {code} on GET {path}]")
                    data = json.loads(event.data)
                    output = str(data.get("output", ""))
                    given = data.get("offset")
                    next_offset = int(given) if given is not None else offset + len(output.encode())
                    break
                else:
                    ended = True
        return ExecutionOutputChunk(
            execution_id=execution_id,
            stream="stdout" if stream == "stdout" else "stderr",
            offset=offset,
            output=output,
            next_offset=next_offset,
            done=ended,
        )

    # --- files ---------------------------------------------------------------------------------

    async def read_file(self, devbox_id: str, file_path: str) -> str:
        response = await self._request(
            "POST",
            f"/v1/devboxes/{devbox_id}/read_file_contents",
            json_body={"file_path": file_path},
            accept="text/plain",
        )
        return response.text

    async def write_file(self, devbox_id: str, file_path: str, contents: str) -> None:
        await self._request(
            "POST",
            f"/v1/devboxes/{devbox_id}/write_file_contents",
            json_body={"file_path": file_path, "contents": contents},
        )

    async def upload_file(self, devbox_id: str, path: str, data: bytes) -> None:
        await self._request(
            "POST",
            f"/v1/devboxes/{devbox_id}/upload_file",
            files={"file": (posixpath.basename(path) or "file", data, "application/octet-stream")},
            data={"path": path},
        )

    async def download_file(self, devbox_id: str, path: str) -> bytes:
        response = await self._request(
            "POST",
            f"/v1/devboxes/{devbox_id}/download_file",
            json_body={"path": path},
            accept="application/octet-stream",
        )
        return response.content

    async def list_files(self, devbox_id: str, path: str = ".") -> list[str]:
        """Runloop has no listing endpoint: list with a command, as the local engine does inside."""
        result = await self.execute(
            devbox_id, f"sh -c {shlex.quote(_LIST_SCRIPT)} list {shlex.quote(path or '.')}", timeout_seconds=60
        )
        if result.exit_status != 0:
            raise InvalidRequestError(f"cannot list {path!r} on devbox {devbox_id}: {(result.stderr or '').strip()}")
        return sorted(line for line in (result.stdout or "").splitlines() if line)

    # --- snapshots -----------------------------------------------------------------------------

    async def snapshot_disk(
        self,
        devbox_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        commit_message: str | None = None,
    ) -> DevboxSnapshotView:
        body = given(name=name, metadata=metadata, commit_message=commit_message)
        return await self._post(f"/v1/devboxes/{devbox_id}/snapshot_disk", DevboxSnapshotView, body, timeout=1800)

    async def list_snapshots(
        self, *, limit: int = 20, starting_after: str | None = None, devbox_id: str | None = None
    ) -> DevboxSnapshotListView:
        return await self._get(
            "/v1/devboxes/disk_snapshots",
            DevboxSnapshotListView,
            limit=limit,
            starting_after=starting_after,
            devbox_id=devbox_id,
        )

    async def get_snapshot(self, snapshot_id: str) -> DevboxSnapshotView:
        # Runloop has no plain GET for one snapshot; its status view carries the snapshot.
        response = await self._request("GET", f"/v1/devboxes/disk_snapshots/{snapshot_id}/status")
        status = response.json()
        if not isinstance(status, dict) or not status.get("snapshot"):
            state = status.get("status") if isinstance(status, dict) else None
            detail = status.get("error_message") if isinstance(status, dict) else None
            if state == "deleted":
                raise RemoteNotFoundError(404, f"snapshot {snapshot_id!r} was deleted")
            raise RemoteInvalidStateError(
                409, f"snapshot {snapshot_id} is `{state}`" + (f": {detail}" if detail else "")
            )
        return DevboxSnapshotView.model_validate(status["snapshot"])

    async def update_snapshot(
        self,
        snapshot_id: str,
        *,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        commit_message: str | None = None,
    ) -> DevboxSnapshotView:
        body = given(name=name, metadata=metadata, commit_message=commit_message)
        path = f"/v1/devboxes/disk_snapshots/{snapshot_id}"
        return await self._post(path, DevboxSnapshotView, body, idempotent=True)

    async def delete_snapshot(self, snapshot_id: str) -> None:
        await self._request("POST", f"/v1/devboxes/disk_snapshots/{snapshot_id}/delete")
