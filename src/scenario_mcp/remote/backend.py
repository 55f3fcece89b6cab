"""RemoteBackend: the Backend protocol over any Runloop-compatible REST API (Runloop's cloud, or
another machine running `scenario-mcp api`). Each area of the API is a mixin; commands go through
RemoteExecutions, which other areas (file listings, validation) use too."""

from __future__ import annotations

import os
from types import TracebackType
from urllib.parse import quote

import anyio
import httpx2
from anyio.abc import TaskGroup

from ..models import (
    COLLECTION_PATHS,
    ExecutionOutputChunk,
    ExecutionView,
    MetadataKeysView,
    MetadataKind,
    MetadataValuesView,
    ScenarioValidationView,
)
from ..reference_validation import validate_with_reference
from .agents import AgentsMixin
from .benchmarks import BenchmarksMixin
from .devboxes import DevboxesMixin
from .environments import EnvironmentsMixin
from .executions import RemoteExecutions
from .http import DEFAULT_BASE_URL, RemoteHttp
from .network_policies import NetworkPoliciesMixin
from .objects import ObjectsMixin
from .reference_runs import RunDevboxes
from .scenarios import ScenariosMixin
from .secrets import SecretsMixin


class RemoteBackend(
    ScenariosMixin,
    BenchmarksMixin,
    EnvironmentsMixin,
    DevboxesMixin,
    ObjectsMixin,
    NetworkPoliciesMixin,
    SecretsMixin,
    AgentsMixin,
):
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
        self.http = RemoteHttp(
            base_url,
            api_key,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_retries=max_retries,
            transport=transport,
        )
        self.executions = RemoteExecutions(self.http)
        self.upload_urls: dict[str, str] = {}  # see ObjectsMixin
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

    @property
    def base_url(self) -> str:
        return self.http.base_url

    @property
    def max_retries(self) -> int:
        return self.http.max_retries

    # --- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> RemoteBackend:
        self.http.open()
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self.executions.watchers = self._tg
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()  # command-deadline watchers
        try:
            await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            self.executions.watchers = None
            await self.http.close()

    # --- scenarios (the rest are in ScenariosMixin) --------------------------------------------

    async def validate_scenario(self, scenario_id: str) -> ScenarioValidationView:
        return await validate_with_reference(self, scenario_id, RunDevboxes(self))

    # --- metadata ------------------------------------------------------------------------------

    async def metadata_keys(self, kind: MetadataKind) -> MetadataKeysView:
        return await self.http.get(f"{COLLECTION_PATHS[kind]}/metadata/keys", MetadataKeysView)

    async def metadata_values(self, kind: MetadataKind, key: str) -> MetadataValuesView:
        path = f"{COLLECTION_PATHS[kind]}/metadata/keys/{quote(key, safe='')}/values"
        return await self.http.get(path, MetadataValuesView)

    # --- execution -----------------------------------------------------------------------------

    async def execute(
        self,
        devbox_id: str,
        command: str,
        *,
        timeout_seconds: float | None = None,
        working_directory: str | None = None,
        shell_name: str | None = None,
        command_id: str | None = None,
    ) -> ExecutionView:
        return await self.executions.execute(
            devbox_id,
            command,
            timeout_seconds=timeout_seconds,
            working_directory=working_directory,
            shell_name=shell_name,
            command_id=command_id,
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
        command_id: str | None = None,
    ) -> ExecutionView:
        return await self.executions.execute_async(
            devbox_id,
            command,
            timeout_seconds=timeout_seconds,
            working_directory=working_directory,
            shell_name=shell_name,
            attach_stdin=attach_stdin,
            command_id=command_id,
        )

    async def get_execution(self, devbox_id: str, execution_id: str) -> ExecutionView:
        return await self.executions.get(devbox_id, execution_id)

    async def wait_for_execution(
        self, devbox_id: str, execution_id: str, *, statuses: list[str] | None = None, timeout_seconds: float = 30
    ) -> ExecutionView:
        return await self.executions.wait(devbox_id, execution_id, statuses=statuses, timeout_seconds=timeout_seconds)

    async def kill_execution(
        self, devbox_id: str, execution_id: str, *, kill_process_group: bool = True
    ) -> ExecutionView:
        return await self.executions.kill(devbox_id, execution_id, kill_process_group=kill_process_group)

    async def send_stdin(
        self, devbox_id: str, execution_id: str, *, text: str | None = None, signal: str | None = None
    ) -> ExecutionView:
        return await self.executions.send_stdin(devbox_id, execution_id, text=text, signal=signal)

    async def execution_output(
        self, devbox_id: str, execution_id: str, *, stream: str = "stdout", offset: int = 0
    ) -> ExecutionOutputChunk:
        return await self.executions.output(devbox_id, execution_id, stream=stream, offset=offset)
