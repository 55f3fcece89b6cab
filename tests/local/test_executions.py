"""Async executions, stdin, kill, streaming, named shells, bounded output (issue 3 'Exec, complete')."""

from __future__ import annotations

import anyio
import pytest

from scenario_mcp.backend import InvalidRequestError, InvalidStateError, OperationTimeoutError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.output import OutputLog
from scenario_mcp.models import DevboxCreateParameters

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
