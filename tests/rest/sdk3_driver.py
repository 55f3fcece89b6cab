"""Runloop's SDK 3.x against a Runloop-compatible server, as Harbor 0.25's Runloop environment uses it.

Run by tests/rest/test_sdk3.py with the python of the SDK's own venv (tests/rest/sdk3.py), never
imported: `python sdk3_driver.py SCENARIO JSON-ARGS`, with RUNLOOP_BASE_URL and RUNLOOP_API_KEY set
as Harbor's users set them. It prints what it saw as one JSON object and leaves the asserting to
the test. It needs nothing but the SDK and the standard library.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from runloop_api_client import APIStatusError, AsyncRunloopSDK
from runloop_api_client.lib.polling import PollingConfig
from runloop_api_client.types.blueprint_create_params import BuildContext

FAST = PollingConfig(interval_seconds=0.05, max_attempts=2400, timeout_seconds=120)
# The launch parameters Harbor builds for a task with cpus, memory_mb and storage_mb set.
HARBOR_LAUNCH: dict[str, Any] = {
    "architecture": "x86_64",
    "user_parameters": {"username": "root", "uid": 0},
    "keep_alive_time_seconds": 60 * 60 * 24,
    "resource_size_request": "CUSTOM_SIZE",
    "custom_cpu_cores": 1,
    "custom_gb_memory": 2,
    "custom_disk_size": 4,
}
# A verifier as Harbor's tests/test.sh: it reads the solution and writes the reward.
TEST_SH = 'mkdir -p /logs/verifier\n[ "$(cat /solution/answer.txt)" = 42 ] && echo 1 > /logs/verifier/reward.txt\n'
MANY_LINES = "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done; echo oops >&2"


def sdk() -> AsyncRunloopSDK:
    # Harbor's own client takes everything from the environment; no retries, so a failure shows.
    return AsyncRunloopSDK(max_retries=0)


async def status_error(call: Awaitable[object]) -> dict[str, Any]:
    """The status and message of a call expected to fail."""
    try:
        await call
    except APIStatusError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        return {"status": exc.status_code, "message": body.get("message", str(exc))}
    return {"status": 200, "message": ""}


async def harbor_environment(args: dict[str, Any]) -> dict[str, Any]:
    """Harbor's RunloopEnvironment from start to stop: look for a built blueprint by name (private
    and public), upload the build context, build, reuse, start a devbox, exec, upload the tests and
    the solution, download the reward, stop."""
    name, seen = args["blueprint_name"], {}
    client = sdk()
    try:
        private = await client.api.blueprints.list(name=name)
        public = await client.api.blueprints.list_public(name=name)
        seen["found_before"] = [bp.id for bp in private.blueprints + public.blueprints]
        seen["public_total"] = public.total_count

        built = []
        for _ in range(2):  # the second build of the same context is Harbor's --force-build
            context = await client.storage_object.upload_from_dir(
                dir_path=Path(args["context"]).resolve(), name=f"{name}_context.tar.gz", ttl=timedelta(hours=1)
            )
            blueprint = await client.blueprint.create(
                dockerfile=args["dockerfile"],
                name=name,
                build_context=BuildContext(object_id=context.id, type="object"),
                launch_parameters=HARBOR_LAUNCH,  # type: ignore[arg-type]
                polling_config=FAST,
            )
            built.append(blueprint.id)
        seen["built"] = built
        seen["context_state"] = (await context.refresh()).state
        listed = (await client.api.blueprints.list(name=name)).blueprints
        seen["listed"] = [(bp.id, bp.status, bp.create_time_ms) for bp in listed]

        devbox = await client.devbox.create_from_blueprint_id(
            blueprint_id=built[-1],
            name="harbor-trial",
            launch_parameters=HARBOR_LAUNCH,  # type: ignore[arg-type]
        )
        info = await devbox.get_info()
        seen["devbox"] = {"status": info.status, "limits": (info.model_extra or {}).get("limits", [])}
        seen["workdir"] = await run(devbox, "mkdir -p /logs/agent /logs/verifier && pwd")
        with tempfile.TemporaryDirectory() as scratch:
            (Path(scratch) / "test.sh").write_text(TEST_SH)
            (Path(scratch) / "answer.txt").write_text("42\n")
            await devbox.file.upload(path="/tests/test.sh", file=Path(scratch) / "test.sh")
            await devbox.file.upload(path="/solution/answer.txt", file=Path(scratch) / "answer.txt")
        seen["verifier"] = await run(devbox, "sh /tests/test.sh; ls /tests /solution")
        seen["reward"] = (await devbox.file.download(path="/logs/verifier/reward.txt")).decode()
        seen["many_lines"] = await run(devbox, MANY_LINES)
        seen["shutdown"] = (await devbox.shutdown()).status
    finally:
        await client.aclose()
    return seen


async def run(devbox: Any, command: str) -> dict[str, Any]:
    """Harbor's exec: one command in its named shell, then the whole output."""
    result = await devbox.cmd.exec(command=command, shell_name="main_shell", polling_config=FAST)
    return {"exit": result.exit_code, "stdout": await result.stdout(), "stderr": await result.stderr()}


async def devbox_calls(args: dict[str, Any]) -> dict[str, Any]:
    """The lower-level calls on the default environment: both ways to start a devbox, sizes and
    architectures, a command in the background, files anywhere, and what is refused."""
    seen: dict[str, Any] = {}
    client = sdk()
    api = client.api
    try:
        created = await api.devboxes.create(name="plain", launch_parameters={"resource_size_request": "SMALL"})
        running = await api.devboxes.await_running(created.id, polling_config=FAST)  # wait_for_status
        seen["small"] = {"status": running.status, "limits": (running.model_extra or {}).get("limits", [])}
        custom = await api.devboxes.create_and_await_running(
            launch_parameters={"resource_size_request": "CUSTOM_SIZE", "custom_cpu_cores": 0.5, "custom_gb_memory": 3},
            polling_config=FAST,
        )
        seen["custom"] = {
            "status": custom.status,
            "launch": custom.launch_parameters.model_dump(exclude_none=True) if custom.launch_parameters else {},
            "limits": (custom.model_extra or {}).get("limits", []),
        }
        seen["arm64"] = await status_error(api.devboxes.create(launch_parameters={"architecture": "arm64"}))
        seen["custom_without_cpu"] = await status_error(
            api.devboxes.create(launch_parameters={"resource_size_request": "CUSTOM_SIZE", "custom_gb_memory": 2})
        )
        seen["preset_with_custom"] = await status_error(
            api.devboxes.create(launch_parameters={"resource_size_request": "X_SMALL", "custom_gb_memory": 2})
        )

        started = await api.devboxes.execute_async(running.id, command="sleep 0.2; echo done; exit 3")
        done = await api.devboxes.executions.await_completed(
            started.execution_id, devbox_id=running.id, polling_config=FAST
        )
        seen["async"] = {"first": started.status, "status": done.status, "exit": done.exit_status, "out": done.stdout}

        devbox = client.devbox.from_id(running.id)
        with tempfile.TemporaryDirectory() as scratch:
            local = Path(scratch) / "blob.bin"
            local.write_bytes(bytes(range(256)))
            for path in ("/srv/data/blob.bin", "rel/blob.bin", "/home/user/abs.bin"):
                await devbox.file.upload(path=path, file=local)
        seen["downloads"] = {
            path: list(await devbox.file.download(path=path))
            for path in ("/srv/data/blob.bin", "/home/user/rel/blob.bin", "abs.bin")
        }
        seen["missing"] = await status_error(api.devboxes.download_file(running.id, path="/nope/missing"))
        seen["directory"] = await status_error(api.devboxes.download_file(running.id, path="/srv"))
        for box in (running.id, custom.id):
            await api.devboxes.shutdown(box)
    finally:
        await client.aclose()
    return seen


SCENARIOS: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
    "harbor_environment": harbor_environment,
    "devbox_calls": devbox_calls,
}

if __name__ == "__main__":
    scenario, raw = sys.argv[1], sys.argv[2]
    print(json.dumps(asyncio.run(SCENARIOS[scenario](json.loads(raw)))))
