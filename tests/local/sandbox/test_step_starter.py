"""The C step starter: compiled once per source into the user's cache, by the host's compiler;
without one, builds fall back to Python's spare and say why once."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import subprocess
from pathlib import Path

import pytest

from scenario_mcp.local.sandbox import step_starter as module
from scenario_mcp.local.sandbox.step_starter import SOURCE, binary_path, compile_step_starter, step_starter


def test_it_compiles_into_its_target_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "step-starter"
    assert compile_step_starter(target) is None
    assert os.access(target, os.X_OK)
    assert [path.name for path in target.parent.iterdir()] == ["step-starter"]
    # Without its socket and user namespace it refuses to run (its usage), before doing anything.
    assert subprocess.run([target], timeout=10, check=False).returncode == 2


def test_its_binary_is_named_by_the_digest_of_its_source() -> None:
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    assert binary_path().name == f"step-starter-{digest}"
    assert step_starter() == binary_path()  # compiled here (or before), and found again


def test_without_a_compiler_it_says_how_to_get_one_and_builds_go_on_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setattr(module, "binary_path", lambda: tmp_path / "step-starter-x")
    monkeypatch.setattr(module, "_unavailable", [])
    problem = compile_step_starter(tmp_path / "x")
    assert problem is not None and "no C compiler" in problem and "apt-get install gcc" in problem
    with caplog.at_level(logging.WARNING):
        assert step_starter() is None
        assert step_starter() is None
    assert [r.getMessage() for r in caplog.records].count(
        f"build steps start the slower way (forked from Python): {problem}"
    ) == 1


def test_a_failed_compile_says_why_and_leaves_no_half_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "broken-cc"
    broken.write_text("#!/bin/sh\necho 'step_starter.c:1: error: no room' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("CC", str(broken))
    target = tmp_path / "cache" / "step-starter"
    problem = compile_step_starter(target)
    assert problem is not None and "could not compile step_starter.c" in problem and "no room" in problem
    assert list(target.parent.iterdir()) == []


def start(stage: list[str], words: list[str] | None, output: Path) -> int:
    """Start the forker as init does (its socket, a user namespace's descriptor, the stage
    operations), have it fork a spare, send the spare `words` as a request (None: hang up
    instead); the spare's exit status (it is this process's child: CLONE_PARENT)."""
    starter = step_starter()
    assert starter is not None
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    user_ns = os.open("/proc/self/ns/user", os.O_RDONLY)
    try:
        argv = [str(starter), str(theirs.fileno()), str(user_ns), *stage]
        forker = subprocess.Popen(argv, pass_fds=(theirs.fileno(), user_ns))
    finally:
        theirs.close()
        os.close(user_ns)
    with ours:
        ours.send(b"F")
        data, fds, _flags, _addr = socket.recv_fds(ours, 64, 1)
    assert forker.wait(timeout=10) == 0  # its socket closed: it is done
    with socket.socket(fileno=fds[0]) as spare, output.open("wb") as out, open(os.devnull, "rb") as null:
        if words is not None:
            request = b"".join(word.encode() + b"\0" for word in words)
            socket.send_fds(spare, [request], [null.fileno(), out.fileno(), out.fileno()])
    _, status = os.waitpid(int(data), 0)
    return os.waitstatus_to_exitcode(status)


def test_what_stops_a_step_is_said_on_its_stderr_and_it_exits_127(tmp_path: Path) -> None:
    output = tmp_path / "output"
    root = tmp_path / "root"
    root.mkdir()
    run = ["run", str(root), "/"]
    cases = [
        ([], [*run, "", "", "1", "X\x1f/a"], "unknown operation X"),
        ([], [*run, "", "", "3", f"D\x1f{root}/made"], "a malformed request"),
        ([], ["run", str(tmp_path / "missing"), "/", "", "", "0", "1", "true", "0"], f"chdir {tmp_path}/missing"),
        # A failure before the request (the step's /dev, say) is said once the request comes.
        ([f"D\x1f{tmp_path}/no/dir"], [*run, "", "", "0", "1", "true", "0"], f"mkdir {tmp_path}/no/dir"),
    ]
    for stage, words, said in cases:
        assert start(stage, words, output) == 127
        assert output.read_text() == f"the build step could not start: {said}: " + (
            "Invalid argument\n" if "unknown" in said or "malformed" in said else "No such file or directory\n"
        )


def test_a_build_that_ends_before_its_next_step_ends_the_forker_and_its_spare_quietly(tmp_path: Path) -> None:
    assert start([], None, tmp_path / "output") == 0
    assert (tmp_path / "output").read_text() == ""


def test_a_cache_it_cannot_write_to_is_said_and_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    problem = compile_step_starter(blocker / "cache" / "step-starter")
    assert problem is not None and problem.startswith("no place to compile the step starter to:")
