"""The trash: directories moved aside at once, removed in the background by one `rm -rf`, whatever
their modes; what a dead server left there goes at the next start."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from scenario_mcp.local.trash import Trash

pytestmark = pytest.mark.anyio


def a_tree(top: Path) -> Path:
    """A devbox disk's awkward parts: a mode-000 directory (overlayfs's work/work), a read-only
    directory with a file in it, a symlink out of the tree."""
    (top / "work" / "work").mkdir(parents=True)
    (top / "work" / "work").chmod(0)
    (top / "ro").mkdir()
    (top / "ro" / "f").write_text("x")
    (top / "ro").chmod(0o500)
    (top / "out").symlink_to("/etc")
    return top


async def emptied(trash: Trash) -> None:
    with anyio.fail_after(10):
        while any(trash.directory.iterdir()):
            await anyio.sleep(0.02)


async def test_a_put_directory_is_gone_at_once_and_removed_soon(tmp_path: Path) -> None:
    trash = Trash(tmp_path / "trash")
    first, second = a_tree(tmp_path / "first"), a_tree(tmp_path / "second")
    async with anyio.create_task_group() as tg:
        tg.start_soon(trash.empty_forever)
        trash.put(first, second, tmp_path / "never-made")
        assert not first.exists() and not second.exists()
        await emptied(trash)
        third = a_tree(tmp_path / "third")  # a later put is removed too
        trash.put(third)
        await emptied(trash)
        tg.cancel_scope.cancel()
    assert Path("/etc").is_dir()  # a symlink is removed, not followed


async def test_what_a_dead_server_left_in_the_trash_goes_at_the_next_start(tmp_path: Path) -> None:
    Trash(tmp_path / "trash").put(a_tree(tmp_path / "left"))  # and the server died
    trash = Trash(tmp_path / "trash")
    assert any(trash.directory.iterdir())
    async with anyio.create_task_group() as tg:
        tg.start_soon(trash.empty_forever)
        await emptied(trash)
        tg.cancel_scope.cancel()


async def test_a_directory_on_another_file_system_is_removed_where_it_is(tmp_path: Path) -> None:
    if os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("/dev/shm is on the test's file system here")
    elsewhere = a_tree(Path("/dev/shm") / f"trash-test-{os.getpid()}")
    trash = Trash(tmp_path / "trash")
    async with anyio.create_task_group() as tg:
        tg.start_soon(trash.empty_forever)
        trash.put(elsewhere)
        with anyio.fail_after(10):
            while elsewhere.exists():
                await anyio.sleep(0.02)
        tg.cancel_scope.cancel()
