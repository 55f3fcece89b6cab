"""The shared rules: what each says, and that the surfaces which enforce it (the MCP inputs, the
local engine, the remote backend's checks) enforce exactly it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from scenario_mcp.backend import InvalidRequestError
from scenario_mcp.conventions import (
    DEFAULT_EXEC_TIMEOUT,
    DEFAULT_LIST_LIMIT,
    HOME,
    LIST_SCRIPT,
    MAX_COMMIT_MESSAGE,
    MAX_EXEC_TIMEOUT,
    MAX_LIST_LIMIT,
    exec_timeout,
    exec_timeout_problem,
    list_argv,
    listed_names,
    under_home,
)
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.mcp_server.tools.inputs import ExecuteInput, ListScenariosInput, SnapshotDevboxInput
from scenario_mcp.models import DEFAULT_WORKING_DIRECTORY, DevboxCreateParameters
from scenario_mcp.remote.executions import checked_timeout, in_directory


def test_the_home_is_every_default_directory() -> None:
    assert HOME == "/home/user" == DEFAULT_WORKING_DIRECTORY
    assert under_home("proj/src") == "/home/user/proj/src"
    assert under_home("/srv/app") == "/srv/app"
    assert in_directory("ls", "proj") == "cd -- /home/user/proj && eval ls"


def test_exec_timeout_bounds() -> None:
    assert exec_timeout(None) == DEFAULT_EXEC_TIMEOUT == 120.0
    assert exec_timeout(7) == 7
    assert exec_timeout_problem(MAX_EXEC_TIMEOUT) is None
    for bad in (0, -1, MAX_EXEC_TIMEOUT + 0.5):
        assert exec_timeout_problem(bad) == f"timeout_seconds must be in (0, 3600], got {bad}"
    assert checked_timeout(None) == DEFAULT_EXEC_TIMEOUT


def test_the_mcp_inputs_take_their_bounds_from_the_rules() -> None:
    ExecuteInput(devbox_id="dbx_1", command="ls", timeout_seconds=MAX_EXEC_TIMEOUT, shell_name="a.b-c_9")
    with pytest.raises(ValidationError):
        ExecuteInput(devbox_id="dbx_1", command="ls", timeout_seconds=MAX_EXEC_TIMEOUT + 1)
    with pytest.raises(ValidationError):
        ExecuteInput(devbox_id="dbx_1", command="ls", shell_name="has space")
    with pytest.raises(ValidationError):
        ExecuteInput(devbox_id="dbx_1", command="ls", shell_name="x" * 65)
    assert ListScenariosInput().limit == DEFAULT_LIST_LIMIT
    ListScenariosInput(limit=MAX_LIST_LIMIT)
    with pytest.raises(ValidationError):
        ListScenariosInput(limit=MAX_LIST_LIMIT + 1)
    SnapshotDevboxInput(devbox_id="dbx_1", commit_message="x" * MAX_COMMIT_MESSAGE)
    with pytest.raises(ValidationError):
        SnapshotDevboxInput(devbox_id="dbx_1", commit_message="x" * (MAX_COMMIT_MESSAGE + 1))


def test_the_list_script_lists_the_home_and_nothing_outside() -> None:
    assert f"cd {HOME} " in LIST_SCRIPT and f"{HOME}|{HOME}/*)" in LIST_SCRIPT
    assert list_argv("") == ["/bin/sh", "-c", LIST_SCRIPT, "list", "."]
    assert listed_names("b\n\na/\n.hidden\n") == [".hidden", "a/", "b"]


@pytest.mark.anyio
async def test_the_local_engine_enforces_the_rules(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters(name="rules"))
    with pytest.raises(InvalidRequestError, match=r"timeout_seconds must be in \(0, 3600\]"):
        await backend.execute(box.id, "true", timeout_seconds=MAX_EXEC_TIMEOUT + 1)
    with pytest.raises(InvalidRequestError, match="shell_name 'no way' must match"):
        await backend.execute(box.id, "true", shell_name="no way")
    with pytest.raises(InvalidRequestError, match="limit must be between 1 and 5000"):
        await backend.list_devboxes(limit=MAX_LIST_LIMIT + 1)
    with pytest.raises(InvalidRequestError, match="commit_message is limited to 1000 characters"):
        await backend.snapshot_disk(box.id, commit_message="x" * (MAX_COMMIT_MESSAGE + 1))
    made = await backend.execute(box.id, "mkdir -p sub/dir && ln -s /etc sub/out && touch sub/.dot sub/file")
    assert made.exit_status == 0
    assert (await backend.execute(box.id, "pwd", working_directory="sub")).stdout == f"{HOME}/sub\n"
    assert await backend.list_files(box.id, "sub") == [".dot", "dir/", "file", "out/"]
    with pytest.raises(InvalidRequestError, match="outside /home/user"):
        await backend.list_files(box.id, "sub/out")
