"""Agents on the local engine, called directly: installed once (from an uploaded archive, PyPI and
npm), mounted read-only into several devboxes with their executables on PATH, reused for the same
source, and a failed install that says why."""

from __future__ import annotations

import io
import tarfile

import pytest

from scenario_mcp.backend import InvalidStateError, NotFoundError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import AgentCreateParameters, AgentView, DevboxCreateParameters, ObjectCreateParameters

pytestmark = pytest.mark.anyio

HELLO = b'#!/bin/sh\necho "hello from $(dirname "$0")"\n'


def tarball(files: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, (content, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), mode
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


async def uploaded(backend: LocalBackend, content: bytes, content_type: str = "tgz") -> str:
    view = await backend.create_object(
        ObjectCreateParameters.model_validate({"name": "a", "content_type": content_type})
    )
    await backend.upload_object(view.id, content)
    return (await backend.complete_object(view.id)).id


async def installed(backend: LocalBackend, body: dict[str, object], timeout: float = 300) -> AgentView:
    created = await backend.create_agent(AgentCreateParameters.model_validate(body))
    assert created.status == "queued" and created.id.startswith("agt_")
    return await backend.wait_for_agent(created.id, timeout_seconds=timeout)


async def run(backend: LocalBackend, devbox_id: str, command: str) -> tuple[int | None, str]:
    done = await backend.execute(devbox_id, command)
    return done.exit_status, (done.stdout or "") + (done.stderr or "")


async def object_agent(backend: LocalBackend, setup: list[str] | None = None) -> AgentView:
    object_id = await uploaded(backend, tarball({"bin/hello": (HELLO, 0o755), "README": (b"an agent\n", 0o644)}))
    source = {"type": "object", "object": {"object_id": object_id, "agent_setup": setup or ["echo set up > setup.txt"]}}
    return await installed(backend, {"name": "hello-agent", "version": "1", "source": source})


async def test_object_agent_installs_once_and_mounts_read_only_into_two_devboxes(backend: LocalBackend) -> None:
    agent = await object_agent(backend)
    assert agent.status == "build_complete", (await backend.agent_logs(agent.id)).logs
    logs = "\n".join(entry.message for entry in (await backend.agent_logs(agent.id)).logs)
    assert "unpacked the object" in logs and "$ echo set up > setup.txt" in logs

    first = await backend.create_devbox(
        DevboxCreateParameters.model_validate(
            {"mounts": [{"type": "agent_mount", "agent_id": agent.id, "agent_path": "/home/user/tools/hello"}]}
        )
    )
    second = await backend.create_devbox(
        DevboxCreateParameters.model_validate(
            {"mounts": [{"type": "agent_mount", "agent_name": "hello-agent", "agent_path": "/opt/hello"}]}
        )
    )
    assert await run(backend, first.id, "hello") == (0, "hello from /home/user/tools/hello/bin\n")
    assert await run(backend, second.id, "hello && cat /opt/hello/setup.txt") == (
        0,
        "hello from /opt/hello/bin\nset up\n",
    )

    # A planted change: refused (the mount has no writable layer), and gone for the other devbox.
    code, output = await run(backend, first.id, "echo 'echo pwned' > /home/user/tools/hello/bin/hello")
    assert code != 0 and "Read-only file system" in output
    code, output = await run(backend, first.id, "rm -f /home/user/tools/hello/README; touch /home/user/tools/hello/x")
    assert code != 0 and "Read-only file system" in output
    code, output = await run(
        backend, first.id, "umount /home/user/tools/hello || mount -o remount,rw /home/user/tools/hello"
    )
    assert code != 0
    assert await run(backend, second.id, "hello; ls /opt/hello") == (
        0,
        "hello from /opt/hello/bin\nREADME\nbin\nsetup.txt\n",
    )
    layer = backend.agents.layers.path((await backend._store.get("agents", agent.id)).internal["layers"][0])  # type: ignore[union-attr]
    assert (layer / "bin" / "hello").read_bytes() == HELLO

    # A devbox without the mount has none of it.
    plain = await backend.create_devbox(DevboxCreateParameters())
    assert (await run(backend, plain.id, "command -v hello; ls /opt/hello"))[0] != 0

    # The same name, version and source again: no second install.
    again = await installed(
        backend, {"name": "hello-agent", "version": "1", "source": agent.source.model_dump() if agent.source else None}
    )
    assert again.status == "build_complete" and again.id != agent.id
    assert "installed already" in (await backend.agent_logs(again.id)).logs[0].message


async def test_an_install_that_fails_says_why(backend: LocalBackend) -> None:
    agent = await object_agent(backend, ["echo 'no compiler here' >&2; exit 3"])
    assert agent.status == "failed"
    assert agent.failure_message is not None and "exited 3" in agent.failure_message
    logs = [entry for entry in (await backend.agent_logs(agent.id)).logs if entry.level == "error"]
    assert any("no compiler here" in entry.message for entry in logs)
    mount = {"type": "agent_mount", "agent_id": agent.id, "agent_path": "/opt/x"}
    with pytest.raises(InvalidStateError, match="failed"):
        await backend.create_devbox(DevboxCreateParameters.model_validate({"mounts": [mount]}))
    with pytest.raises(NotFoundError):
        await backend.create_devbox(
            DevboxCreateParameters.model_validate({"mounts": [{"type": "agent_mount", "agent_name": "nobody"}]})
        )


async def test_list_get_and_delete(backend: LocalBackend) -> None:
    agent = await object_agent(backend)
    listed = await backend.list_agents(name="hello")
    assert [a.id for a in listed.agents] == [agent.id] and listed.total_count == 1
    assert (await backend.list_agents(version="latest")).agents[0].id == agent.id
    assert (await backend.get_agent(agent.id)).name == "hello-agent"
    layer_id = (await backend._store.get("agents", agent.id)).internal["layers"][0]  # type: ignore[union-attr]
    mount = {"type": "agent_mount", "agent_id": agent.id, "agent_path": "/opt/hello"}
    box = await backend.create_devbox(DevboxCreateParameters.model_validate({"mounts": [mount]}))
    # A suspended and resumed devbox has its mounts again.
    await backend.suspend_devbox(box.id)
    await backend.resume_devbox(box.id)
    assert (await run(backend, box.id, "hello"))[0] == 0
    # Deleted while mounted: the devbox keeps it until it ends, then the garbage collector frees it.
    await backend.delete_agent(agent.id)
    with pytest.raises(NotFoundError):
        await backend.get_agent(agent.id)
    assert backend.agents.layers.exists(layer_id) and (await run(backend, box.id, "hello"))[0] == 0
    await backend.shutdown_devbox(box.id)
    await backend.collect_garbage(grace_seconds=0)
    assert not backend.agents.layers.exists(layer_id)


async def test_pip_and_npm_agents_from_the_registries(backend: LocalBackend) -> None:
    """Real registries (PyPI, npm's): a build sandbox cannot reach the host's loopback, by design
    (network.py), so a package index served there would not be reached; scripts/setup.sh installs npm."""
    pip_agent, npm_agent = (
        await installed(
            backend, {"name": "cowsay", "version": "6.1", "source": {"type": "pip", "pip": {"package_name": "cowsay"}}}
        ),
        await installed(
            backend,
            {"name": "semver", "version": "7.6.3", "source": {"type": "npm", "npm": {"package_name": "semver"}}},
        ),
    )
    for agent in (pip_agent, npm_agent):
        assert agent.status == "build_complete", (await backend.agent_logs(agent.id)).logs
    mounts = [
        {"type": "agent_mount", "agent_name": "cowsay"},
        {"type": "agent_mount", "agent_id": npm_agent.id, "agent_path": "/home/user/semver"},
    ]
    boxes = [await backend.create_devbox(DevboxCreateParameters.model_validate({"mounts": mounts})) for _ in range(2)]
    for box in boxes:
        code, output = await run(backend, box.id, "cowsay -t moo && semver -r '>=1.2' 1.2.3 1.0.0")
        assert code == 0 and "moo" in output and output.endswith("1.2.3\n"), output
        assert (await run(backend, box.id, "command -v cowsay semver"))[
            1
        ] == "/opt/agents/cowsay/bin/cowsay\n/home/user/semver/bin/semver\n"
    # The devbox's own Python is untouched by the agent's venv.
    assert (await run(backend, boxes[0].id, "command -v python3"))[1] == "/opt/python/bin/python3\n"
