"""Async executions, stdin, kill, streaming, named shells, bounded output (issue 3 'Exec, complete')."""

from __future__ import annotations

import os
import signal

import anyio
import anyio.lowlevel
import pytest

from scenario_mcp.backend import InvalidRequestError, InvalidStateError, OperationTimeoutError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.executions import INLINE_OUTPUT_CAP
from scenario_mcp.local.launcher import launcher_socket, terminate
from scenario_mcp.local.output import OutputLog
from scenario_mcp.local.sandbox import MAX_MESSAGE
from scenario_mcp.models import DevboxCreateParameters

from .helpers import new_box, run_ok

pytestmark = pytest.mark.anyio


async def test_async_execution_runs_then_completes(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters())
    started = await backend.execute_async(box.id, "sleep 0.3; echo done")
    assert started.status == "running" and started.stdout is None
    with pytest.raises(OperationTimeoutError, match="still running"):
        await backend.wait_for_execution(box.id, started.execution_id, timeout_seconds=0.05)
    finished = await backend.wait_for_execution(box.id, started.execution_id, timeout_seconds=10)
    assert finished.status == "completed" and finished.exit_status == 0 and finished.stdout == "done\n"
    assert (await backend.get_execution(box.id, started.execution_id)).stdout == "done\n"


async def test_stdin_text_and_eof_reach_the_command(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters())
    started = await backend.execute_async(box.id, "tr a-z A-Z", attach_stdin=True)
    await backend.send_stdin(box.id, started.execution_id, text="hello\n")
    await backend.send_stdin(box.id, started.execution_id, signal="EOF")
    finished = await backend.wait_for_execution(box.id, started.execution_id, timeout_seconds=10)
    assert finished.stdout == "HELLO\n"


async def test_stdin_refused_without_attach_and_interrupt_stops(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters())
    started = await backend.execute_async(box.id, "sleep 60")
    with pytest.raises(InvalidRequestError, match="attach_stdin"):
        await backend.send_stdin(box.id, started.execution_id, text="x")
    await backend.send_stdin(box.id, started.execution_id, signal="INTERRUPT")
    finished = await backend.wait_for_execution(box.id, started.execution_id, timeout_seconds=10)
    assert finished.exit_status == 130


async def test_kill_takes_the_process_group(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters())
    started = await backend.execute_async(box.id, "sleep 300 & sleep 301; wait")
    await anyio.sleep(0.2)
    killed = await backend.kill_execution(box.id, started.execution_id)
    assert killed.status == "completed" and "killed" in (killed.stderr or "")
    left = await backend.execute(box.id, "ps -eo args | grep -c '^sleep 30[01]' || true")
    assert left.stdout.strip() == "0"
    with pytest.raises(InvalidStateError):
        await backend.kill_execution(box.id, started.execution_id)


async def test_stream_output_from_an_offset(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters())
    started = await backend.execute_async(box.id, "printf 0123456789; sleep 0.2; printf abc")
    await backend.wait_for_execution(box.id, started.execution_id, timeout_seconds=10)
    chunk = await backend.execution_output(box.id, started.execution_id, offset=4)
    assert chunk.output == "456789abc" and chunk.next_offset == 13 and chunk.done


async def test_named_shell_keeps_directory_and_environment(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters())
    await backend.execute(box.id, "mkdir -p proj && cd proj && export GREETING=hi", shell_name="main")
    result = await backend.execute(box.id, 'pwd; echo "$GREETING"', shell_name="main")
    assert result.stdout == "/home/user/proj\nhi\n"
    other = await backend.execute(box.id, 'pwd; echo "[$GREETING]"', shell_name="other")
    assert other.stdout == "/home/user\n[]\n"
    plain = await backend.execute(box.id, 'pwd; echo "[$GREETING]"')
    assert plain.stdout == "/home/user\n[]\n"
    assert result.shell_name == "main"


async def test_endless_output_is_bounded(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters())
    result = await backend.execute(box.id, "yes 0123456789 | head -c 20000000", timeout_seconds=60)
    assert result.exit_status == 0 and result.stdout_truncated
    assert len(result.stdout or "") == 64 * 1024
    log_dir = backend.devboxes.boxes_dir / box.id / "exec"
    on_disk = sum(p.stat().st_size for p in log_dir.iterdir())
    assert on_disk < 2 * 1024 * 1024  # 20 MB of output, a bounded log


def test_output_log_keeps_head_and_tail_and_counts_the_rest(tmp_path: anyio.Path) -> None:
    log = OutputLog(tmp_path / "x.out", head_cap=10, tail_cap=5)  # type: ignore[operator]
    for chunk in (b"0123456789", b"abcdefghij", b"KLMNOPQRST", b"uvwxyz"):
        log.write(chunk)
    assert log.total == 36 and log.dropped == 21
    assert log.read(0)[0] == b"0123456789"
    assert log.read(12) == (b"vwxyz", 36)  # inside the dropped span: resumes at the tail
    log.close()
    assert "[... 21 bytes of output dropped ...]" in log.text()


async def test_background_processes_survive_between_execs(backend: LocalBackend) -> None:
    box = await new_box(backend)
    pid = (await run_ok(backend, box, "sleep 300 >/dev/null 2>&1 & echo $!")).strip()
    # A server on the devbox's own loopback, started by one exec, answers the next.
    await run_ok(
        backend,
        box,
        "mkdir -p www && echo served-$RANDOM > www/index.html && cat www/index.html > expected && "
        "(cd www && nohup python3 -m http.server 8765 --bind 127.0.0.1 >/dev/null 2>&1 &)",
    )
    fetched = await run_ok(
        backend,
        box,
        'for i in $(seq 50); do python3 -c "import urllib.request as u;'
        "print(u.urlopen('http://127.0.0.1:8765/index.html', timeout=2).read().decode(), end='')\" "
        "2>/dev/null && exit 0; sleep 0.1; done; exit 1",
    )
    assert fetched == await run_ok(backend, box, "cat expected")
    assert fetched.startswith("served-")
    await run_ok(backend, box, f"kill -0 {pid}")
    assert (await run_ok(backend, box, f"cat /proc/{pid}/cmdline")).startswith("sleep")


async def test_timeout_kills_command_and_its_process_group(backend: LocalBackend) -> None:
    box = await new_box(backend)
    started = anyio.current_time()
    result = await backend.execute(box, "sleep 600 & echo $! > /tmp/child; echo before; sleep 600", timeout_seconds=1)
    assert anyio.current_time() - started < 10
    assert result.exit_status == 124
    assert result.stdout == "before\n"
    assert result.stderr is not None and "timed out after 1 s" in result.stderr
    # The background child was in the command's process group: gone (not even a zombie).
    child = (await run_ok(backend, box, "cat /tmp/child")).strip()
    gone = await backend.execute(box, f"test -e /proc/{child}")
    assert gone.exit_status != 0, f"child sleep {child} still exists"
    assert "sleep 600" not in await run_ok(backend, box, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '; echo")
    # The devbox itself is fine.
    assert await run_ok(backend, box, "echo alive") == "alive\n"


async def test_exec_timeout_must_be_positive_and_bounded(backend: LocalBackend) -> None:
    box = await new_box(backend)
    for bad in (0, -1, 10_000):
        with pytest.raises(InvalidRequestError, match="timeout_seconds"):
            await backend.execute(box, "true", timeout_seconds=bad)
    with pytest.raises(InvalidRequestError, match="command is empty"):
        await backend.execute(box, "   ")


async def test_large_stdout_truncated_inline(backend: LocalBackend) -> None:
    box = await new_box(backend)
    result = await backend.execute(box, "head -c 200000 /dev/zero | tr '\\0' a; echo oops >&2; exit 3")
    assert result.exit_status == 3
    assert result.stdout == "a" * INLINE_OUTPUT_CAP
    assert INLINE_OUTPUT_CAP == 64 * 1024
    assert result.stdout_truncated is True
    assert result.stderr == "oops\n"
    assert result.stderr_truncated is False
    exact = await backend.execute(box, f"head -c {INLINE_OUTPUT_CAP} /dev/zero | tr '\\0' b")
    assert exact.stdout == "b" * INLINE_OUTPUT_CAP and exact.stdout_truncated is False


async def test_working_directory(backend: LocalBackend) -> None:
    box = await new_box(backend)
    assert await run_ok(backend, box, "pwd") == "/home/user\n"
    await run_ok(backend, box, "mkdir -p proj/sub")
    assert await run_ok(backend, box, "pwd", working_directory="proj/sub") == "/home/user/proj/sub\n"
    assert await run_ok(backend, box, "pwd", working_directory="/tmp") == "/tmp\n"
    missing = await backend.execute(box, "echo should-not-run", working_directory="/no/such/dir")
    assert missing.exit_status != 0
    assert missing.stdout == ""
    assert missing.stderr is not None and "/no/such/dir" in missing.stderr


async def test_environment_variables_and_clean_env(backend: LocalBackend) -> None:
    box = await new_box(backend, environment_variables={"GREETING": "hi there"})
    assert await run_ok(backend, box, 'echo "$GREETING"') == "hi there\n"
    env = await run_ok(backend, box, "env")
    # Nothing of the host's (or the test runner's) environment leaks in.
    assert "PYTEST_CURRENT_TEST" not in env
    assert "VIRTUAL_ENV" not in env
    # The default blueprint's venv comes first on PATH.
    assert (await run_ok(backend, box, "command -v python")).strip() == "/opt/python/bin/python"


async def test_a_command_too_long_to_start_is_the_callers_to_fix(backend: LocalBackend) -> None:
    box = await backend.create_devbox(DevboxCreateParameters())
    with pytest.raises(InvalidRequestError, match="too long to start"):
        await backend.execute(box.id, "echo " + "x" * (MAX_MESSAGE + 1))
    assert (await backend.execute(box.id, "true")).exit_status == 0  # the devbox is fine


async def test_a_devbox_whose_init_is_dying_refuses_work_as_dead(backend: LocalBackend) -> None:
    """An init killed an instant ago still shows in /proc (not yet a zombie) while its launcher
    already refuses connections: an exec then is told the devbox died, and the devbox fails."""
    box = await backend.create_devbox(DevboxCreateParameters())
    for _ in range(20):  # a namespace with processes to take down keeps init exiting for longer
        await backend.execute_async(box.id, "sleep 100")
    sandbox = await backend.devboxes.sandbox(box.id)
    socket_path = launcher_socket(backend.devboxes.boxes_dir / box.id)
    assert socket_path is not None
    os.kill(sandbox.init_pid, signal.SIGKILL)
    with anyio.fail_after(5):
        while terminate(socket_path):  # probes: answered only while init still listens
            await anyio.lowlevel.checkpoint()
    with pytest.raises(InvalidStateError, match="has died"):
        await backend.execute(box.id, "true")
    view = await backend.get_devbox(box.id)
    assert view.status == "failure" and view.failure_message
