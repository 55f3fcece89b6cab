"""Devboxes on real namespace sandboxes: execs, files, snapshots, isolation, lifecycle."""

from __future__ import annotations

import os
import secrets
import signal
from pathlib import Path

import anyio
import pytest
from anyio.abc import SocketStream

from scenario_mcp.backend import InvalidRequestError, InvalidStateError, NotFoundError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import BashScriptScorer, DevboxCreateParameters, DevboxStatus, LaunchParameters, now_ms

from ..conftest import seed_default_blueprint
from .helpers import (
    contract,
    mounts_mentioning,
    new_box,
    pid_namespace,
    pids_in_namespace,
    run_ok,
    scenario_with,
    start,
)

pytestmark = pytest.mark.anyio


# --- files ------------------------------------------------------------------------------------


# write_file through such links is refused by the same check, but the refusal races with
# sending the contents (the write helper exits before reading stdin, and the engine then fails
# with BrokenResourceError instead of InvalidRequestError); asserted once that is fixed.


# --- isolation --------------------------------------------------------------------------------


async def test_system_writes_stay_in_the_devbox_layer(backend: LocalBackend) -> None:
    box = await new_box(backend)
    tag = f"scenario-mcp-test-{secrets.token_hex(6)}"
    host_paths = [Path("/usr/local") / tag, Path("/etc") / tag, Path("/usr/local/bin") / tag]
    try:
        await run_ok(
            backend,
            box,
            f"mkdir -p /usr/local/{tag} && echo in-box > /usr/local/{tag}/f && "
            f"echo x > /etc/{tag} && echo y > /usr/local/bin/{tag}",
        )
        assert await run_ok(backend, box, f"cat /usr/local/{tag}/f") == "in-box\n"
        for path in host_paths:
            assert not path.exists(), f"{path} leaked onto the host"
        upper = backend.devboxes.boxes_dir / box / "upper"
        assert (upper / "usr" / "local" / tag / "f").read_text() == "in-box\n"
        assert (upper / "etc" / tag).exists()
        # Another devbox does not see them.
        other = await new_box(backend)
        assert (await backend.execute(other, f"test -e /usr/local/{tag}/f")).exit_status != 0
    finally:
        for path in host_paths:  # never leave a mess on the host if the test fails
            if path.is_dir():
                for child in path.iterdir():
                    child.unlink()
                path.rmdir()
            elif path.exists():
                path.unlink()


async def test_host_secrets_and_processes_hidden(backend: LocalBackend) -> None:
    assert Path("/etc/shadow").exists(), "the host should have /etc/shadow for this test to mean anything"
    box = await new_box(backend)
    shadow = await backend.execute(box, "cat /etc/shadow")
    assert shadow.exit_status != 0
    assert shadow.stdout == ""
    assert (await backend.execute(box, "test -e /etc/shadow")).exit_status != 0
    # /etc/passwd, not a secret, is still there.
    assert "root:" in await run_ok(backend, box, "cat /etc/passwd")
    # Its own PID namespace: the host's processes (this test runner) are invisible.
    pids = (await run_ok(backend, box, "ls /proc | grep -E '^[0-9]+$'")).split()
    assert "1" in pids
    assert len(pids) < 10
    assert "pytest" not in await run_ok(backend, box, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
    assert (await run_ok(backend, box, "cat /proc/sys/kernel/hostname")).strip() == box[:63]


async def test_network_isolation_from_host_loopback(backend: LocalBackend) -> None:
    token = secrets.token_hex(8)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def handle(stream: SocketStream) -> None:
        async with stream:
            await stream.send(token.encode() + b"\n")

    probe = (
        'python3 -c "import socket,sys\n'
        "try:\n"
        f"    s = socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
        "except OSError as e:\n"
        "    print('refused', e); sys.exit(7)\n"
        'print(s.recv(100).decode().strip())"'
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        try:
            isolated = await new_box(backend)
            refused = await backend.execute(isolated, probe, timeout_seconds=20)
            assert refused.exit_status == 7, (refused.stdout, refused.stderr)
            assert token not in (refused.stdout or "")

            networked = await new_box(backend, launch_parameters=LaunchParameters(network=True))
            assert (await backend.get_devbox(networked)).launch_parameters.network is True
            # With network too: the host's loopback is not the devbox's (tests/local/test_network.py).
            also_refused = await backend.execute(networked, probe, timeout_seconds=20)
            assert also_refused.exit_status == 7, (also_refused.stdout, also_refused.stderr)
            assert token not in (also_refused.stdout or "")
        finally:
            tg.cancel_scope.cancel()
    await listener.aclose()


# --- lifecycle --------------------------------------------------------------------------------


async def test_shutdown_leaves_no_process_or_mount(backend: LocalBackend) -> None:
    box = await new_box(backend)
    await run_ok(backend, box, "sleep 300 >/dev/null 2>&1 & (setsid sleep 301 >/dev/null 2>&1 &) ; true")
    init_pid = (await backend.devboxes.internal(box))["init_pid"]
    ns = pid_namespace(init_pid)
    assert ns is not None and ns != pid_namespace(os.getpid())
    members = pids_in_namespace(ns)
    assert init_pid in members and len(members) >= 3  # init, its sleeper, our two sleeps
    assert mounts_mentioning(box), "the devbox's overlays should be visible in its own mount table"

    view = await backend.shutdown_devbox(box)
    assert view.status == DevboxStatus.SHUTDOWN
    assert view.shutdown_reason == "api_shutdown"
    assert view.end_time_ms is not None and view.end_time_ms >= view.create_time_ms
    assert [t.status for t in view.state_transitions] == [
        DevboxStatus.PROVISIONING,
        DevboxStatus.RUNNING,
        DevboxStatus.SHUTDOWN,
    ]
    assert view == await backend.get_devbox(box)  # stored, not just returned

    assert not Path(f"/proc/{init_pid}").exists() or pid_namespace(init_pid) != ns
    assert pids_in_namespace(ns) == []
    assert mounts_mentioning(box) == []
    host_mounts = Path("/proc/mounts").read_text()
    assert box not in host_mounts

    # Shutting down again is harmless and changes nothing.
    again = await backend.shutdown_devbox(box)
    assert again == view


async def test_a_shutdown_devbox_gives_its_disk_back(backend: LocalBackend) -> None:
    box = await new_box(backend)
    await run_ok(backend, box, "head -c 1M /dev/zero > blob")
    await backend.shutdown_devbox(box)
    state_dir = backend.devboxes.boxes_dir / box
    # Moved aside by the time the shutdown answers; removed a moment later.
    assert not any((state_dir / part).exists() for part in ("upper", "work", "root"))
    trash = backend.devboxes.trash.directory
    with anyio.fail_after(10):
        while any(trash.iterdir()):
            await anyio.sleep(0.02)


async def test_a_disk_a_dead_server_left_behind_goes_at_the_next_start(
    data_dir: Path, default_blueprint_cache: Path
) -> None:
    async with LocalBackend(data_dir) as engine:
        await seed_default_blueprint(engine, default_blueprint_cache)
        box = await engine.create_devbox(DevboxCreateParameters())
        await engine.shutdown_devbox(box.id)
        running = await engine.create_devbox(DevboxCreateParameters())
        await engine.write_file(running.id, "keep.txt", "mine")
        boxes_dir = engine.devboxes.boxes_dir
    # As if the server died between the shutdown's answer and the removal of the disk:
    left = boxes_dir / box.id / "upper" / "root" / "home" / "user" / "left.txt"
    left.parent.mkdir(parents=True)
    left.write_text("x")
    async with LocalBackend(data_dir) as engine:
        assert not (boxes_dir / box.id / "upper").exists()
        assert (await engine.read_file(running.id, "keep.txt")) == "mine"  # a live devbox keeps its disk
        await engine.shutdown_devbox(running.id)


async def test_shutdown_devbox_refuses_work(backend: LocalBackend) -> None:
    box = await new_box(backend)
    await backend.write_file(box, "f.txt", "x")
    await backend.shutdown_devbox(box)
    with pytest.raises(InvalidStateError, match="`shutdown`") as info:
        await backend.execute(box, "true")
    assert info.value.status == 409
    with pytest.raises(InvalidStateError, match="`shutdown`"):
        await backend.read_file(box, "f.txt")
    with pytest.raises(InvalidStateError, match="`shutdown`"):
        await backend.write_file(box, "f.txt", "y")
    with pytest.raises(InvalidStateError, match="`shutdown`"):
        await backend.snapshot_disk(box)
    with pytest.raises(NotFoundError):
        await backend.execute("dbx_missing", "true")


async def test_a_status_wait_answers_when_the_status_changes(backend: LocalBackend) -> None:
    """A long poll holds while the devbox is not there yet, and answers on the change itself (not
    on a later timer tick: Runloop's SDK sends its next request only when this one answers)."""
    box = await new_box(backend)
    seen: list[DevboxStatus] = []

    async def wait() -> None:
        seen.append((await backend.wait_for_devbox_status(box, ["suspended"], timeout_seconds=20)).status)

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        assert seen == []
        await backend.suspend_devbox(box)
        await anyio.wait_all_tasks_blocked()
        assert seen == [DevboxStatus.SUSPENDED]


async def test_list_devboxes_paging_and_status_filter(backend: LocalBackend) -> None:
    boxes = [await new_box(backend, name=f"box{i}") for i in range(3)]
    await backend.shutdown_devbox(boxes[1])
    page = await backend.list_devboxes(limit=2)
    assert [b.id for b in page.devboxes] == [boxes[2], boxes[1]]
    assert page.has_more and page.total_count == 3
    rest = await backend.list_devboxes(limit=2, starting_after=boxes[1])
    assert [b.id for b in rest.devboxes] == [boxes[0]] and not rest.has_more
    running = await backend.list_devboxes(status="running")
    assert [b.id for b in running.devboxes] == [boxes[2], boxes[0]]
    assert [b.id for b in (await backend.list_devboxes(status="shutdown")).devboxes] == [boxes[1]]
    with pytest.raises(InvalidRequestError, match="limit"):
        await backend.list_devboxes(limit=0)


async def test_launch_commands_run_at_create(backend: LocalBackend) -> None:
    box = await new_box(
        backend, launch_parameters=LaunchParameters(launch_commands=["echo one > boot.txt", "echo two >> boot.txt"])
    )
    assert await backend.read_file(box, "boot.txt") == "one\ntwo\n"


async def test_a_suspended_devbox_resumes_after_a_server_restart(data_dir: Path, default_blueprint_cache: Path) -> None:
    async with LocalBackend(data_dir) as engine:
        await seed_default_blueprint(engine, default_blueprint_cache)
        box = await engine.create_devbox(DevboxCreateParameters())
        # Its own session: a background process that outlives the server (an execution does not).
        ticker = "(setsid sh -c 'while true; do date +%s%N >> ticks; sleep 0.01; done' >/dev/null 2>&1 &)"
        await engine.execute(box.id, ticker)
        await engine.write_file(box.id, "kept.txt", "state")
        await engine.suspend_devbox(box.id)
    async with LocalBackend(data_dir) as engine:
        assert (await engine.get_devbox(box.id)).status == DevboxStatus.SUSPENDED
        ticks = engine.devboxes.boxes_dir / box.id / "upper" / "root" / "home" / "user" / "ticks"
        frozen = ticks.read_text()
        await anyio.sleep(0.2)
        assert ticks.read_text() == frozen  # still frozen: the restart woke nothing
        resumed = await engine.resume_devbox(box.id)
        assert resumed.status == DevboxStatus.RUNNING
        assert await engine.read_file(box.id, "kept.txt") == "state"
        before = (await engine.execute(box.id, "wc -l < ticks")).stdout
        await anyio.sleep(0.3)
        after = (await engine.execute(box.id, "wc -l < ticks")).stdout
        assert int(after or 0) > int(before or 0)  # its processes run again
        await engine.shutdown_devbox(box.id)


# --- keep-alive without a server (issue 15) -----------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


async def test_a_devbox_ends_at_its_keep_alive_time_with_no_server_and_the_next_start_records_it(
    data_dir: Path, default_blueprint_cache: Path
) -> None:
    async with LocalBackend(data_dir) as engine:
        await seed_default_blueprint(engine, default_blueprint_cache)
        short = await engine.create_devbox(
            DevboxCreateParameters(launch_parameters=LaunchParameters(keep_alive_time_seconds=2))
        )
        kept = await engine.create_devbox(
            DevboxCreateParameters(launch_parameters=LaunchParameters(keep_alive_time_seconds=2))
        )
        await run_ok(engine, short.id, "sleep 1000 >/dev/null 2>&1 &")
        pids = {box.id: (await engine.devboxes.internal(box.id))["init_pid"] for box in (short, kept)}
        await anyio.sleep(1.2)
        await engine.keep_alive_devbox(kept.id)  # moves kept's deadline to ~3.2 s from its start
        expires = {box.id: (await engine.devboxes.internal(box.id))["expires_ms"] for box in (short, kept)}
    # The server is gone; each init keeps the time itself.
    with anyio.fail_after(5):
        while _alive(pids[short.id]):
            await anyio.sleep(0.05)
    assert now_ms() >= expires[short.id]
    assert _alive(pids[kept.id])  # its deadline was moved
    with anyio.fail_after(5):
        while _alive(pids[kept.id]):
            await anyio.sleep(0.05)
    assert now_ms() >= expires[kept.id]
    async with LocalBackend(data_dir) as engine:
        for box in (short, kept):
            view = await engine.get_devbox(box.id)
            assert view.status == DevboxStatus.SHUTDOWN and view.shutdown_reason == "keep_alive_timeout", view


async def test_a_running_server_records_a_devbox_its_init_ended_at_keep_alive(backend: LocalBackend) -> None:
    box = await backend.create_devbox(
        DevboxCreateParameters(launch_parameters=LaunchParameters(keep_alive_time_seconds=1))
    )
    pid = (await backend.devboxes.internal(box.id))["init_pid"]
    with anyio.fail_after(5):
        while _alive(pid):
            await anyio.sleep(0.05)
    with pytest.raises(InvalidStateError, match="keep_alive_timeout"):
        await backend.execute(box.id, "true")
    view = await backend.get_devbox(box.id)
    assert view.status == DevboxStatus.SHUTDOWN and view.shutdown_reason == "keep_alive_timeout"


# --- faults from outside (issue 15) -------------------------------------------------------------


async def test_an_init_killed_from_outside_fails_its_devbox_and_its_run(
    data_dir: Path, default_blueprint_cache: Path
) -> None:
    async with LocalBackend(data_dir, sweep_interval=0.2) as engine:
        await seed_default_blueprint(engine, default_blueprint_cache)
        scenario = await scenario_with(engine, contract(("s", 1, BashScriptScorer(bash_script="echo 1.0"))))
        run = await start(engine, scenario)
        os.kill((await engine.devboxes.internal(run.devbox_id))["init_pid"], signal.SIGKILL)
        with anyio.fail_after(10):
            while (box := await engine.get_devbox(run.devbox_id)).status == "running":
                await anyio.sleep(0.05)
            while (current := await engine.get_run(run.id)).state == "running":
                await anyio.sleep(0.05)
        assert box.status == DevboxStatus.FAILURE and "killed from outside" in (box.failure_message or "")
        assert current.state == "failed" and f"devbox {run.devbox_id} failed" in (current.failure_reason or "")
        with pytest.raises(InvalidStateError, match="failure"):
            await engine.execute(run.devbox_id, "true")
