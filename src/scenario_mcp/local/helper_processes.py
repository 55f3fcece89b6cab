"""Host programs the engine runs for its own work (nsenter into a sandbox, `cp -a` of a layer),
started off the event loop and below the server in CPU priority.

Starting a program from Python blocks its thread until the child has exec'd (vfork): on a busy
machine that is milliseconds, during which the event loop answers nobody. And asyncio (3.11)
watches each child with a thread of its own. Here the start runs in a worker thread, the exit
is awaited on a pidfd, and each program (its whole process group) runs at a lower priority
than the server, so that hundreds of scorers at once leave the server's requests fast.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from typing import IO

import anyio
import anyio.to_thread

HELPER_NICE = 10  # CFS weight 110 against the server's 1024


def lower_priority(process_group: int) -> None:
    """Every process of the group, and so each one they start after, gets HELPER_NICE. Set from
    here once the program has started (a preexec_fn would cost a full fork of the server, a
    `nice` prefix one more exec), its first moments may still run at the server's priority."""
    with contextlib.suppress(OSError):  # gone already
        os.setpriority(os.PRIO_PGRP, process_group, HELPER_NICE)


async def start(
    argv: list[str],
    *,
    stdin: int | IO[bytes] | None,
    stdout: int | IO[bytes] | None,
    stderr: int | IO[bytes] | None,
    env: Mapping[str, str] | None,
) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session (its own process group) from a worker thread. Shielded: a
    program started for a caller who is gone would run on with nobody to end it; the caller ends
    it from a `finally` (`end`)."""

    def popen() -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env, start_new_session=True)

    with anyio.CancelScope(shield=True):
        process = await anyio.to_thread.run_sync(popen)
    lower_priority(process.pid)
    return process


async def wait(process: subprocess.Popen[bytes]) -> int:
    """Its exit status, awaited on a pidfd (no thread, no polling)."""
    if process.poll() is not None:
        return process.returncode
    pidfd = os.pidfd_open(process.pid)  # still our unreaped child: the pid cannot be reused
    try:
        while process.poll() is None:
            await anyio.wait_readable(pidfd)  # readable once it has exited
    finally:
        os.close(pidfd)
    return process.returncode


async def end(process: subprocess.Popen[bytes]) -> None:
    """Kill its whole process group if it still runs, and reap it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with anyio.CancelScope(shield=True):
            await wait(process)


async def run(
    argv: list[str], *, input: bytes | None = None, env: Mapping[str, str] | None = None
) -> tuple[int, bytes, bytes]:
    """Run a short program to its end: (exit status, stdout, stderr). Cancelled, it is killed.
    Its pipes are served on the event loop: no worker thread waits on a helper."""
    process = await start(
        argv,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        output: dict[int, bytes] = {}

        async def read(pipe: IO[bytes]) -> None:
            output[pipe.fileno()] = await _read_all(pipe.fileno())

        async with anyio.create_task_group() as tg:
            tg.start_soon(read, process.stdout)
            tg.start_soon(read, process.stderr)
            if input is not None and process.stdin is not None:
                tg.start_soon(_write_all, process.stdin, input)
        code = await wait(process)
        return code, output[process.stdout.fileno()], output[process.stderr.fileno()]
    finally:
        await end(process)
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


async def _read_all(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            await anyio.wait_readable(fd)
            continue
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


async def _write_all(pipe: IO[bytes], data: bytes) -> None:
    """Write `data`, then close: the program sees its end. One that stops reading gets the rest
    dropped (a broken pipe), as a shell's `cmd <<<data` would."""
    fd = pipe.fileno()
    os.set_blocking(fd, False)
    view = memoryview(data)
    with contextlib.suppress(BrokenPipeError), pipe:
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                await anyio.wait_writable(fd)
