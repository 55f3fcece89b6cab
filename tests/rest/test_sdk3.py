"""Runloop's current SDK (runloop-api-client 3.x, Harbor 0.25's) against our REST API.

The SDK runs in its own venv (sdk3.py) as a subprocess, pointed at a real uvicorn server on
127.0.0.1 through RUNLOOP_BASE_URL, exactly as Harbor's users point it at Runloop; it makes the
calls Harbor's Runloop environment makes (sdk3_driver.py). SDK 1.32's own contract is
test_sdk.py, test_sdk_images.py and test_objects.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scenario_mcp.local.engine import LocalBackend

from ..local.oci_registry import Pusher, busybox_layer
from .sdk3 import SDK3_VERSION, drive, sdk3_python
from .server import TOKEN, serve_rest

pytestmark = pytest.mark.anyio

DOCKERFILE = """\
FROM {base}
COPY app /app
RUN echo built > /app/stamp.txt
WORKDIR /app
"""


@pytest.fixture(scope="session")
def sdk3() -> Path:
    return sdk3_python()


@pytest.fixture
async def served(backend: LocalBackend) -> AsyncIterator[str]:
    async with serve_rest(backend) as url:
        yield url


def test_the_sdk_is_the_pinned_3x(sdk3: Path) -> None:
    assert SDK3_VERSION.startswith("3.") and sdk3.is_file()


async def test_harbors_runloop_environment_from_build_to_shutdown(
    sdk3: Path, served: str, registry: Pusher, tmp_path: Path
) -> None:
    registry.image("sdk3/busybox", "1", [busybox_layer()], config={"Env": ["PATH=/bin"]})
    context = tmp_path / "environment"
    (context / "app").mkdir(parents=True)
    (context / "app" / "readme.txt").write_text("the task's files\n")
    seen = await drive(
        sdk3,
        "harbor_environment",
        served,
        TOKEN,
        blueprint_name="harbor_sdk3-task_blueprint",
        context=str(context),
        dockerfile=DOCKERFILE.format(base=f"{registry.address}/sdk3/busybox:1"),
    )
    # Nothing built yet: neither list has it (and the public catalogue here is empty).
    assert seen["found_before"] == [] and seen["public_total"] == 0
    assert seen["context_state"] == "READ_ONLY"
    # Both builds are listed by name, newest first, as Harbor picks the one to reuse.
    first, second = seen["built"]
    assert [(bp_id, status) for bp_id, status, _ in seen["listed"]] == [
        (second, "build_complete"),
        (first, "build_complete"),
    ]
    assert seen["listed"][0][2] >= seen["listed"][1][2]

    # CUSTOM_SIZE with 2 GiB memory and 4 GiB disk: the engine's limits say so.
    assert seen["devbox"]["status"] == "running"
    assert any(limit.startswith(f"file size <= {4 << 30} bytes") for limit in seen["devbox"]["limits"])
    assert any(f"memory <= {2 << 30} bytes" in limit for limit in seen["devbox"]["limits"])
    # The Dockerfile's WORKDIR; files uploaded to absolute paths outside home; the reward read back.
    assert seen["workdir"] == {"exit": 0, "stdout": "/app\n", "stderr": ""}
    assert seen["verifier"] == {"exit": 0, "stdout": "/solution:\nanswer.txt\n\n/tests:\ntest.sh\n", "stderr": ""}
    assert seen["reward"] == "1\n"
    # 300 lines: more than an execution view holds inline, so the SDK streamed the rest (SSE).
    many = seen["many_lines"]
    assert many["stdout"] == "".join(f"line {i}\n" for i in range(300)) and many["stderr"] == "oops\n"
    assert seen["shutdown"] == "shutdown"


async def test_devbox_calls_sizes_architectures_and_files_anywhere(sdk3: Path, served: str) -> None:
    seen = await drive(sdk3, "devbox_calls", served, TOKEN)
    # POST /v1/devboxes then wait_for_status; SMALL is 2 GiB memory and 4 GiB disk.
    assert seen["small"]["status"] == "running"
    assert any(f"memory <= {2 << 30} bytes" in limit for limit in seen["small"]["limits"])
    assert any(limit.startswith(f"file size <= {4 << 30} bytes") for limit in seen["small"]["limits"])
    # create_and_await_running; CUSTOM_SIZE echoed back as asked (3.x types half a core as a float),
    # without a disk size (the default).
    custom = seen["custom"]
    assert custom["status"] == "running"
    assert custom["launch"] == {"resource_size_request": "CUSTOM_SIZE", "custom_cpu_cores": 0.5, "custom_gb_memory": 3}
    assert any(f"memory <= {3 << 30} bytes" in limit for limit in custom["limits"])
    assert any(limit.startswith(f"file size <= {10 << 30} bytes") for limit in custom["limits"])

    assert seen["arm64"]["status"] == 400 and "arm64 is not available" in seen["arm64"]["message"]
    assert "x86_64" in seen["arm64"]["message"]
    assert seen["custom_without_cpu"]["status"] == 400
    assert "CUSTOM_SIZE needs custom_cpu_cores" in seen["custom_without_cpu"]["message"]
    assert seen["preset_with_custom"]["status"] == 400
    assert "goes with resource_size_request CUSTOM_SIZE" in seen["preset_with_custom"]["message"]

    assert seen["async"] == {"first": "running", "status": "completed", "exit": 3, "out": "done\n"}
    every_byte = list(range(256))
    assert seen["downloads"] == {
        "/srv/data/blob.bin": every_byte,
        "/home/user/rel/blob.bin": every_byte,
        "abs.bin": every_byte,
    }
    assert seen["missing"]["status"] == 400 and "no such file: /nope/missing" in seen["missing"]["message"]
    assert seen["directory"]["status"] == 400 and "/srv is a directory" in seen["directory"]["message"]
