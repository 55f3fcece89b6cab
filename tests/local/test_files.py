"""Devbox files on real sandboxes: round trips, paths kept inside the home directory."""

from __future__ import annotations

import pytest

from scenario_mcp.backend import InvalidRequestError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import LaunchParameters, UserParameters

from .helpers import new_box, run_ok

pytestmark = pytest.mark.anyio


async def test_file_roundtrip_nested_utf8(backend: LocalBackend) -> None:
    box = await new_box(backend)
    text = "héllo ✓ wörld\nline two\n\ttabbed 🚀\n"
    await backend.write_file(box, "deep/er/still/notes.txt", text)
    assert await backend.read_file(box, "deep/er/still/notes.txt") == text
    assert await backend.read_file(box, "/home/user/deep/er/still/notes.txt") == text
    # It is a real file in the devbox, byte for byte.
    assert await run_ok(backend, box, "cat deep/er/still/notes.txt") == text
    # Overwrite replaces the contents; empty files work.
    await backend.write_file(box, "/home/user/deep/er/still/notes.txt", "short")
    assert await backend.read_file(box, "deep/er/still/notes.txt") == "short"
    await backend.write_file(box, "empty", "")
    assert await backend.read_file(box, "empty") == ""
    # A symlink that stays inside home is fine.
    await run_ok(backend, box, "ln -s deep/er/still/notes.txt inside-link")
    assert await backend.read_file(box, "inside-link") == "short"


@pytest.mark.parametrize(
    "path",
    ["../etc/passwd", "a/../../x", "/etc/passwd", "/home/user/../root/x", "/home/userx/f", "/tmp/f", "", "."],
)
async def test_file_tools_refuse_paths_outside_home(backend: LocalBackend, path: str) -> None:
    box = await new_box(backend)
    with pytest.raises(InvalidRequestError):
        await backend.read_file(box, path)
    with pytest.raises(InvalidRequestError):
        await backend.write_file(box, path, "pwned")
    assert await run_ok(backend, box, "ls /tmp") == ""


async def test_file_tools_refuse_symlinks_planted_outside_home(backend: LocalBackend) -> None:
    box = await new_box(backend)
    await run_ok(
        backend,
        box,
        "echo secret > /root/secret && ln -s /etc/passwd link && ln -s /etc etcdir && "
        "ln -s /root/secret rootlink && mkdir -p sub && ln -s ../../../root sub/up",
    )
    for path in ("link", "etcdir/hostname", "rootlink", "sub/up/secret"):
        with pytest.raises(InvalidRequestError, match="outside /home/user"):
            await backend.read_file(box, path)
    assert await run_ok(backend, box, "cat /root/secret") == "secret\n"


async def test_read_file_errors(backend: LocalBackend) -> None:
    box = await new_box(backend)
    with pytest.raises(InvalidRequestError, match="no such file"):
        await backend.read_file(box, "missing.txt")
    await run_ok(backend, box, "mkdir adir && printf '\\377\\376' > binary")
    with pytest.raises(InvalidRequestError, match="not a regular file"):
        await backend.read_file(box, "adir")
    with pytest.raises(InvalidRequestError, match="not UTF-8"):
        await backend.read_file(box, "binary")


async def test_uploads_and_downloads_reach_any_path_in_the_devbox(backend: LocalBackend) -> None:
    """Bytes go anywhere (Runloop's upload_file and download_file; Harbor's /tests, /logs): an
    absolute path as it is, a relative one under /home/user; parent directories are made."""
    box = await new_box(backend)
    data = bytes(range(256)) * 3
    await backend.upload_file(box, "/tests/deep/test.sh", data)
    await backend.upload_file(box, "rel/x.bin", b"\x00")
    await backend.upload_file(box, "../user/up.bin", b"up")  # relative, so it may climb: it lands in home
    assert await backend.download_file(box, "/tests/deep/test.sh") == data
    assert await run_ok(backend, box, "cat /home/user/rel/x.bin | od -An -tx1") == " 00\n"
    assert await backend.download_file(box, "/home/user/up.bin") == b"up"
    await backend.upload_file(box, "/tests/deep/test.sh", b"shorter")  # replaces, not appends
    assert await backend.download_file(box, "/tests/deep/test.sh") == b"shorter"
    await backend.upload_file(box, "/empty", b"")
    assert await backend.download_file(box, "/empty") == b""
    # The text tools keep to home.
    with pytest.raises(InvalidRequestError, match="escapes the devbox home"):
        await backend.read_file(box, "/tests/deep/test.sh")


async def test_what_uploads_and_writes_make_belongs_to_the_devboxs_user(backend: LocalBackend) -> None:
    """As on Runloop: in a devbox whose user is not root (here launch_parameters.user_parameters
    on the host environment), upload_file and write_file leave the file and every directory they
    made the user's; directories that were there keep their owner, and so does what a planted
    symlink points to."""
    agent = LaunchParameters(user_parameters=UserParameters(username="agent", uid=4321))
    box = await new_box(backend, launch_parameters=agent)
    await backend.upload_file(box, "/tests/deep/test.sh", b"echo hi\n")
    await backend.upload_file(box, "/tmp/flat.txt", b"x")
    await backend.write_file(box, "notes/day/a.txt", "x")
    owners = await run_ok(
        backend,
        box,
        "stat -c '%n %u:%g' / /tmp /tests /tests/deep /tests/deep/test.sh /tmp/flat.txt "
        "/home/user/notes /home/user/notes/day /home/user/notes/day/a.txt",
    )
    assert owners.splitlines() == [
        "/ 0:0",
        "/tmp 0:0",
        *(f"{path} 4321:4321" for path in ("/tests", "/tests/deep", "/tests/deep/test.sh", "/tmp/flat.txt")),
        *(f"/home/user/{path} 4321:4321" for path in ("notes", "notes/day", "notes/day/a.txt")),
    ]
    # The user can change what it was given (the commands run as uid 4321).
    assert await run_ok(backend, box, "id -u; echo more >> /tests/deep/test.sh && rm /tmp/flat.txt && echo ok") == (
        "4321\nok\n"
    )
    # A symlink at the path: the link changes hands, never its target (root's /etc/passwd here).
    await backend.upload_file(box, "/tests/deep/test.sh", b"again")
    owned_before = await run_ok(backend, box, "stat -c %u:%g /etc/hostname")
    await run_ok(backend, box, "ln -s /etc/hostname /tests/link")
    await backend.upload_file(box, "/tests/link", b"written through the link")
    assert await run_ok(backend, box, "stat -c %u:%g /etc/hostname; stat -c %u:%g /tests/link") == (
        f"{owned_before}4321:4321\n"
    )
    # A root devbox: what it makes stays root's.
    root_box = await new_box(backend)
    await backend.upload_file(root_box, "/tests/deep/test.sh", b"x")
    assert await run_ok(backend, root_box, "stat -c %u /tests /tests/deep/test.sh") == "0\n0\n"


@pytest.mark.parametrize(
    ("path", "problem"),
    [("/", "root directory"), ("", "non-empty"), ("a\x00b", "NUL"), ("/tmp", "directory"), ("/no/such", "no such")],
)
async def test_uploads_and_downloads_refuse_what_is_not_a_file(backend: LocalBackend, path: str, problem: str) -> None:
    box = await new_box(backend)
    with pytest.raises(InvalidRequestError, match=problem):
        await backend.download_file(box, path)
    if problem != "no such":
        with pytest.raises(InvalidRequestError, match=problem):
            await backend.upload_file(box, path, b"x")
