"""A devbox's mounts on the local engine: files, objects, code cloned from a git daemon on
loopback, paths that try to escape, a planted symlink under a mount point, and a run whose scorer
does not see the mounted agent."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from scenario_mcp.backend import InvalidRequestError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import CommandScorer, DevboxCreateParameters, RunProfile

from .helpers import contract, scenario_with, score, start
from .test_agents import object_agent, run, tarball, uploaded

pytestmark = pytest.mark.anyio


def with_mounts(*mounts: dict[str, object]) -> DevboxCreateParameters:
    return DevboxCreateParameters.model_validate({"mounts": list(mounts)})


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def git_daemon(tmp_path: Path) -> Iterator[str]:
    """A repository (`tool`: main with README, tag v1 with an older one) served by `git daemon`
    on loopback; yields its git:// URL."""
    repo = tmp_path / "repos" / "tool"
    repo.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=repo)
    for text, tag in (("old\n", "v1"), ("new\n", None)):
        (repo / "README").write_text(text)
        git("add", "README", cwd=repo)
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", text, cwd=repo)
        if tag:
            git("tag", tag, cwd=repo)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = subprocess.Popen(
        [
            "git",
            "daemon",
            "--export-all",
            "--reuseaddr",
            f"--base-path={repo.parent}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(repo.parent),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            subprocess.run(["sleep", "0.05"], check=True)
        yield f"git://127.0.0.1:{port}/tool"
    finally:
        daemon.terminate()
        daemon.wait()


async def test_file_object_and_code_mounts(backend: LocalBackend, git_daemon: str) -> None:
    archive = await uploaded(backend, tarball({"data/a.txt": (b"A\n", 0o644)}))
    note = await uploaded(backend, b"plain bytes\n", "text")
    box = await backend.create_devbox(
        with_mounts(
            {"type": "file_mount", "target": "notes/todo.txt", "content": "fix it\n"},
            {"type": "file_mount", "target": "/etc/agent.conf", "content": "x=1\n"},
            {"type": "object_mount", "object_id": archive, "object_path": "/home/user/dataset"},
            {"type": "object_mount", "object_id": note, "object_path": "/home/user/note.txt"},
            {"type": "code_mount", "repo_name": git_daemon, "install_command": "echo installed > .installed"},
        )
    )
    assert await run(backend, box.id, "cat notes/todo.txt /etc/agent.conf dataset/data/a.txt note.txt") == (
        0,
        "fix it\nx=1\nA\nplain bytes\n",
    )
    code, output = await run(backend, box.id, "touch dataset/new")
    assert code != 0 and "Read-only file system" in output
    # The clone is the devbox's own (writable), at main, its install command run there.
    assert await run(backend, box.id, "cat tool/README tool/.installed && git -C tool log --oneline | wc -l") == (
        0,
        "new\ninstalled\n2\n",
    )
    assert (await run(backend, box.id, "echo more >> tool/README"))[0] == 0
    logs = [log for log in (await backend.devbox_logs(box.id)).logs if log.cmd and "installed" in log.cmd]
    assert logs and logs[0].exit_code == 0  # the install command is in the devbox's log


async def test_code_mount_at_a_ref_and_refusals(backend: LocalBackend, git_daemon: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="overlap"):
        await backend.create_devbox(
            with_mounts(
                {"type": "code_mount", "repo_name": git_daemon}, {"type": "code_mount", "repo_name": git_daemon}
            )
        )
    # Never a path of the server's own: no file:// clone, nor git's ext:: helpers.
    for url in (f"file://{tmp_path}/repos/tool", "ext::sh -c touch% /tmp/pwned"):
        with pytest.raises(InvalidRequestError, match=r"not cloned here|cannot tell|not a GitHub"):
            await backend.create_devbox(with_mounts({"type": "code_mount", "repo_name": url, "repo_owner": "x"}))
    with pytest.raises(InvalidRequestError, match="failed"):
        await backend.create_devbox(with_mounts({"type": "code_mount", "repo_name": git_daemon + "-missing"}))
    assert (await backend.list_devboxes(limit=10)).devboxes == []
    box = await backend.create_devbox(with_mounts({"type": "code_mount", "repo_name": git_daemon, "git_ref": "v1"}))
    assert await run(backend, box.id, "cat tool/README") == (0, "old\n")


@pytest.mark.parametrize(
    "mount",
    [
        {"type": "agent_mount", "agent_name": "hello-agent", "agent_path": "/home/user/../../etc"},
        {"type": "agent_mount", "agent_name": "hello-agent", "agent_path": "agent"},
        {"type": "agent_mount", "agent_name": "hello-agent", "agent_path": "/proc/1/root"},
        {"type": "agent_mount", "agent_name": "hello-agent", "agent_path": "/"},
        {"type": "file_mount", "target": "../../../etc/passwd", "content": "x"},
        {"type": "file_mount", "target": "/dev/sda", "content": "x"},
        {"type": "object_mount", "object_id": "obj_x", "object_path": "/home/user/../../../tmp"},
    ],
)
async def test_a_mount_path_that_escapes_is_refused(backend: LocalBackend, mount: dict[str, object]) -> None:
    await object_agent(backend)
    with pytest.raises(InvalidRequestError, match=r"absolute|`\.\.`|not a place"):
        await backend.create_devbox(with_mounts(mount))
    assert (await backend.list_devboxes(limit=10)).devboxes == []


async def test_a_symlink_planted_at_the_mount_point_is_not_followed(backend: LocalBackend) -> None:
    agent = await object_agent(backend)
    seed = await backend.create_devbox(DevboxCreateParameters())
    assert (await run(backend, seed.id, "ln -s / /home/user/agent && ln -s /etc /home/user/conf"))[0] == 0
    snapshot = await backend.snapshot_disk(seed.id)
    params = DevboxCreateParameters.model_validate(
        {
            "snapshot_id": snapshot.id,
            "mounts": [{"type": "agent_mount", "agent_id": agent.id, "agent_path": "/home/user/agent/x"}],
        }
    )
    with pytest.raises(Exception, match="not a directory"):
        await backend.create_devbox(params)
    # A file mount over the planted link replaces the link in the devbox's own layer, never /etc.
    box = await backend.create_devbox(
        DevboxCreateParameters.model_validate(
            {"snapshot_id": snapshot.id, "mounts": [{"type": "file_mount", "target": "conf", "content": "mine\n"}]}
        )
    )
    assert await run(backend, box.id, "test -L conf || cat conf; test -d /etc/ssl && echo etc-intact") == (
        0,
        "mine\netc-intact\n",
    )


async def test_a_run_mounts_its_agent_and_the_scorer_does_not_see_it(backend: LocalBackend) -> None:
    agent = await object_agent(backend)
    # Mounted inside the working directory: the scorer sees the agent's changes there, not the agent.
    checker = CommandScorer(command="test ! -e tools/hello/bin/hello && ! command -v hello && test -f result.txt")
    scenario = await scenario_with(backend, contract(("no_agent", 1, checker)))
    profile = RunProfile.model_validate(
        {"mounts": [{"type": "agent_mount", "agent_id": agent.id, "agent_path": "/home/user/tools/hello"}]}
    )
    run_view = await start(backend, scenario, run_profile=profile)
    assert await run(backend, run_view.devbox_id, "hello > result.txt && cat result.txt") == (
        0,
        "hello from /home/user/tools/hello/bin\n",
    )
    scored = await score(backend, run_view.id)
    assert scored.scoring_contract_result is not None and scored.scoring_contract_result.score == 1.0


def test_a_code_mount_token_is_for_the_clone_only() -> None:
    from scenario_mcp.local.mounts import _redacted, _repository, _without_token
    from scenario_mcp.models import CodeMount

    url, name = _repository(CodeMount(repo_name="https://git.example.com/team/tool.git", token="s3cret"))
    assert (url, name) == ("https://x-access-token:s3cret@git.example.com/team/tool.git", "tool")
    assert _without_token(url) == "https://git.example.com/team/tool.git"
    assert "s3cret" not in _redacted(f"fatal: could not read {url}")
    assert _repository(CodeMount(repo_owner="octo", repo_name="hello-world"))[0] == (
        "https://github.com/octo/hello-world.git"
    )
