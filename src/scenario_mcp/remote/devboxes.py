"""Devboxes and their files on the remote API."""

from __future__ import annotations

import posixpath
import shlex

import anyio

from ..backend import InvalidRequestError
from ..conventions import list_argv, list_problem, listed_names
from ..models import (
    DevboxCreateParameters,
    DevboxListView,
    DevboxLogsListView,
    DevboxResourceUsageView,
    DevboxStatus,
    DevboxView,
    TunnelConfig,
    TunnelView,
    given,
)
from .errors import RemoteTimeoutError, RemoteUnavailableError
from .executions import RemoteExecutions
from .http import LONG_POLL_MARGIN, RemoteHttp, dump

# The server holds a devbox status wait at most 30 s.
DEVBOX_LONG_POLL = 30.0
# Runloop boots devboxes asynchronously: wait this long for one to run.
BOOT_TIMEOUT = 1800


async def wait_for_devbox(http: RemoteHttp, devbox_id: str, statuses: list[str], timeout_seconds: float) -> DevboxView:
    """Bounded long polls until the devbox reaches one of `statuses`, or the 408 at the deadline."""
    deadline = anyio.current_time() + timeout_seconds
    while True:
        hold = min(DEVBOX_LONG_POLL, max(0.0, deadline - anyio.current_time()))
        try:
            return await http.post(
                f"/v1/devboxes/{devbox_id}/wait_for_status",
                DevboxView,
                {"statuses": statuses, "timeout_seconds": int(hold) if hold.is_integer() else hold},
                timeout=hold + LONG_POLL_MARGIN,
            )
        except RemoteTimeoutError:
            if anyio.current_time() >= deadline:
                raise


def not_running_reason(view: DevboxView) -> str:
    return view.failure_message or view.failure_reason or view.shutdown_reason or "no reason given"


class DevboxesMixin:
    http: RemoteHttp
    executions: RemoteExecutions

    async def create_devbox(self, params: DevboxCreateParameters) -> DevboxView:
        """Create and wait until running (Runloop boots asynchronously; the local engine does not)."""
        view = await self.http.post("/v1/devboxes", DevboxView, dump(params))
        if view.status != DevboxStatus.RUNNING:
            view = await wait_for_devbox(self.http, view.id, ["running", "failure", "shutdown"], BOOT_TIMEOUT)
        if view.status != DevboxStatus.RUNNING:
            message = f"devbox {view.id} did not start: it is `{view.status.value}` ({not_running_reason(view)})"
            raise RemoteUnavailableError(503, message)
        return view

    async def get_devbox(self, devbox_id: str) -> DevboxView:
        return await self.http.get(f"/v1/devboxes/{devbox_id}", DevboxView)

    async def list_devboxes(
        self, *, limit: int = 20, starting_after: str | None = None, status: str | None = None
    ) -> DevboxListView:
        return await self.http.get(
            "/v1/devboxes", DevboxListView, limit=limit, starting_after=starting_after, status=status
        )

    async def wait_for_devbox_status(
        self, devbox_id: str, statuses: list[str], *, timeout_seconds: float = 30
    ) -> DevboxView:
        return await wait_for_devbox(self.http, devbox_id, statuses, timeout_seconds)

    async def _settle(self, view: DevboxView, transitional: DevboxStatus, target: list[str]) -> DevboxView:
        if view.status == transitional:
            return await wait_for_devbox(self.http, view.id, target, 600)
        return view

    async def enable_tunnel(self, devbox_id: str, config: TunnelConfig | None = None) -> TunnelView:
        body = dump(config) if config is not None else {}
        return await self.http.post(f"/v1/devboxes/{devbox_id}/enable_tunnel", TunnelView, body)

    async def remove_tunnel(self, devbox_id: str) -> None:
        await self.http.request("POST", f"/v1/devboxes/{devbox_id}/remove_tunnel", json_body={})

    async def shutdown_devbox(self, devbox_id: str) -> DevboxView:
        return await self.http.post(f"/v1/devboxes/{devbox_id}/shutdown", DevboxView)

    async def suspend_devbox(self, devbox_id: str) -> DevboxView:
        view = await self.http.post(f"/v1/devboxes/{devbox_id}/suspend", DevboxView)
        return await self._settle(view, DevboxStatus.SUSPENDING, ["suspended", "failure", "shutdown"])

    async def resume_devbox(self, devbox_id: str) -> DevboxView:
        view = await self.http.post(f"/v1/devboxes/{devbox_id}/resume", DevboxView)
        return await self._settle(view, DevboxStatus.RESUMING, ["running", "failure", "shutdown"])

    async def update_devbox(
        self, devbox_id: str, *, name: str | None = None, metadata: dict[str, str] | None = None
    ) -> DevboxView:
        body = given(name=name, metadata=metadata)
        return await self.http.post(f"/v1/devboxes/{devbox_id}", DevboxView, body, idempotent=True)

    async def keep_alive_devbox(self, devbox_id: str) -> DevboxView:
        await self.http.request("POST", f"/v1/devboxes/{devbox_id}/keep_alive")
        return await self.get_devbox(devbox_id)

    async def devbox_logs(
        self, devbox_id: str, *, execution_id: str | None = None, shell_name: str | None = None
    ) -> DevboxLogsListView:
        return await self.http.get(
            f"/v1/devboxes/{devbox_id}/logs", DevboxLogsListView, execution_id=execution_id, shell_name=shell_name
        )

    async def devbox_usage(self, devbox_id: str) -> DevboxResourceUsageView:
        return await self.http.get(f"/v1/devboxes/{devbox_id}/usage", DevboxResourceUsageView)

    # --- files ---------------------------------------------------------------------------------

    async def read_file(self, devbox_id: str, file_path: str) -> str:
        response = await self.http.request(
            "POST",
            f"/v1/devboxes/{devbox_id}/read_file_contents",
            json_body={"file_path": file_path},
            accept="text/plain",
        )
        return response.text

    async def write_file(self, devbox_id: str, file_path: str, contents: str) -> None:
        await self.http.request(
            "POST",
            f"/v1/devboxes/{devbox_id}/write_file_contents",
            json_body={"file_path": file_path, "contents": contents},
        )

    async def upload_file(self, devbox_id: str, path: str, data: bytes) -> None:
        await self.http.request(
            "POST",
            f"/v1/devboxes/{devbox_id}/upload_file",
            files={"file": (posixpath.basename(path) or "file", data, "application/octet-stream")},
            data={"path": path},
        )

    async def download_file(self, devbox_id: str, path: str) -> bytes:
        response = await self.http.request(
            "POST",
            f"/v1/devboxes/{devbox_id}/download_file",
            json_body={"path": path},
            accept="application/octet-stream",
        )
        return response.content

    async def list_files(self, devbox_id: str, path: str = ".") -> list[str]:
        """Runloop has no listing endpoint: list with a command, as the local engine does inside."""
        result = await self.executions.execute(devbox_id, shlex.join(list_argv(path)), timeout_seconds=60)
        if result.exit_status != 0:
            raise InvalidRequestError(list_problem(devbox_id, path, result.stderr or ""))
        return listed_names(result.stdout or "")
