"""What an agent inside a devbox must not reach: each test runs the attempt inside a devbox.

The server under test runs as root here (as on CI); tests/local/test_unprivileged.py starts the
engine as an ordinary user for the other way of running it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from scenario_mcp.backend import InvalidRequestError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import BlueprintCreateParameters, DevboxCreateParameters, ExecutionView, LaunchParameters

from .conftest import seed_image

pytestmark = pytest.mark.anyio

# Everywhere a file could land in a devbox but /usr (the host's own, unchanged, and large).
SEARCHED = "/home /root /tmp /var /opt /run /srv /mnt /etc /dev/shm"


async def run(backend: LocalBackend, devbox_id: str, command: str) -> ExecutionView:
    return await backend.execute(devbox_id, command, timeout_seconds=30)


# Every test runs twice: on a host-based devbox (the default environment) and on one made from a
# container image (a Debian image with python3, built as a Dockerfile blueprint): what an agent
# must not reach is the same on both.
_ENVIRONMENT: dict[str, str | None] = {"kind": "host", "blueprint_id": None, "pulled": None}


@pytest.fixture(autouse=True, params=["host", "image"])
def environment(request: pytest.FixtureRequest) -> Iterator[str]:
    _ENVIRONMENT.update(kind=request.param, blueprint_id=None, pulled=None)
    if request.param == "image":
        reference, pulled = request.getfixturevalue("debian_image")
        _ENVIRONMENT.update(reference=reference, pulled=str(pulled))
    yield request.param
    _ENVIRONMENT.update(kind="host", blueprint_id=None, pulled=None)


async def image_blueprint(backend: LocalBackend) -> str:
    if _ENVIRONMENT["blueprint_id"] is None:
        assert _ENVIRONMENT["pulled"] is not None and _ENVIRONMENT["reference"] is not None
        seed_image(backend, Path(_ENVIRONMENT["pulled"]))
        queued = await backend.create_blueprint(
            BlueprintCreateParameters(name="isolation-image", dockerfile=f"FROM {_ENVIRONMENT['reference']}\n")
        )
        built = await backend.wait_for_blueprint(queued.id, timeout_seconds=120)
        assert built.status == "build_complete", built.failure_message
        _ENVIRONMENT["blueprint_id"] = built.id
    return _ENVIRONMENT["blueprint_id"]


async def new_box(backend: LocalBackend, *, network: bool = False) -> str:
    blueprint_id = await image_blueprint(backend) if _ENVIRONMENT["kind"] == "image" else None
    box = await backend.create_devbox(
        DevboxCreateParameters(
            blueprint_id=blueprint_id, launch_parameters=LaunchParameters(network=network) if network else None
        )
    )
    return box.id


@pytest.fixture
def host_marker(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A file on the host with unique contents, in a directory the devbox must not see."""
    token = f"host-secret-{uuid.uuid4().hex}"
    path = tmp_path / "marker.txt"
    path.write_text(token)
    yield path, token


# --- host files ----------------------------------------------------------------------------------


async def test_cannot_read_a_host_file_by_its_host_path(backend: LocalBackend, host_marker: tuple[Path, str]) -> None:
    path, token = host_marker
    result = await run(backend, await new_box(backend), f"cat {path}")
    assert result.exit_status != 0 and token not in (result.stdout or "")


async def test_cannot_find_a_host_file_anywhere(backend: LocalBackend, host_marker: tuple[Path, str]) -> None:
    _, token = host_marker
    result = await run(backend, await new_box(backend), f"grep -rl {token} {SEARCHED} 2>/dev/null; true")
    assert result.stdout == ""


def in_image(path: str) -> Path | None:
    """The image's own file at `path` (on an image devbox), or None (on a host-based one)."""
    if _ENVIRONMENT["kind"] != "image":
        return None
    assert _ENVIRONMENT["pulled"] is not None
    (layer,) = (Path(_ENVIRONMENT["pulled"]) / "_image-layers").iterdir()  # the image has one layer
    return layer / path.lstrip("/")


async def test_cannot_read_the_host_root_home(backend: LocalBackend) -> None:
    result = await run(backend, await new_box(backend), "ls -A /root")
    image_root = in_image("/root")
    own = sorted(os.listdir(image_root)) if image_root else []  # the image's own dotfiles, or nothing
    assert result.exit_status == 0 and result.stdout.split() == own  # the devbox's own /root


async def test_cannot_see_the_host_work_tree(backend: LocalBackend) -> None:
    result = await run(backend, await new_box(backend), f"ls {Path(__file__).resolve().parent}")
    assert result.exit_status != 0


async def test_cannot_read_the_data_dir(backend: LocalBackend) -> None:
    result = await run(backend, await new_box(backend), f"ls {backend.data_dir}")
    assert result.exit_status != 0 and "No such file" in (result.stderr or "")


async def test_cannot_read_the_sqlite_database(backend: LocalBackend) -> None:
    box = await new_box(backend)
    direct = await run(backend, box, f"cat {backend.data_dir}/scenario-mcp.sqlite3")
    found = await run(backend, box, "find / -xdev -name '*.sqlite3' 2>/dev/null; true")
    assert direct.exit_status != 0 and found.stdout == ""


async def test_cannot_see_another_devbox_layer(backend: LocalBackend) -> None:
    first, second = await new_box(backend), await new_box(backend)
    token = uuid.uuid4().hex
    await run(backend, first, f"echo {token} > /home/user/mine.txt")
    result = await run(backend, second, f"cat /home/user/mine.txt; ls {backend.devboxes.boxes_dir}")
    assert token not in (result.stdout or "") and result.exit_status != 0


async def test_cannot_see_host_temp_files(backend: LocalBackend) -> None:
    name = f"scenario-mcp-host-{uuid.uuid4().hex}"
    Path("/tmp", name).write_text("host")
    try:
        result = await run(backend, await new_box(backend), f"ls /tmp/{name}")
        assert result.exit_status != 0
    finally:
        Path("/tmp", name).unlink()


async def test_host_environment_is_not_inherited(backend: LocalBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    token = uuid.uuid4().hex
    monkeypatch.setenv("SCENARIO_MCP_HOST_SECRET", token)
    box = await new_box(backend)
    result = await run(backend, box, "env; cat /proc/1/environ | tr '\\0' '\\n'")
    assert token not in (result.stdout or "") and "SCENARIO_MCP_HOST_SECRET" not in (result.stdout or "")


# --- system directories --------------------------------------------------------------------------


async def test_writing_usr_lands_in_the_devbox_layer_not_on_the_host(backend: LocalBackend) -> None:
    name = f"scenario-mcp-{uuid.uuid4().hex}"
    box = await new_box(backend)
    result = await run(backend, box, f"echo x > /usr/local/bin/{name} && cat /usr/local/bin/{name}")
    assert result.stdout == "x\n"
    assert not Path("/usr/local/bin", name).exists()


async def test_overwriting_etc_hosts_does_not_touch_the_host(backend: LocalBackend) -> None:
    before = Path("/etc/hosts").read_bytes()
    result = await run(backend, await new_box(backend), "echo '6.6.6.6 evil' > /etc/hosts && cat /etc/hosts")
    assert "evil" in (result.stdout or "")
    assert Path("/etc/hosts").read_bytes() == before


async def test_deleting_system_files_does_not_touch_the_host(backend: LocalBackend) -> None:
    result = await run(backend, await new_box(backend), "rm -f /usr/bin/env; test -e /usr/bin/env")
    assert result.exit_status != 0
    assert Path("/usr/bin/env").exists()


async def test_shadow_is_not_readable(backend: LocalBackend) -> None:
    result = await run(backend, await new_box(backend), "cat /etc/shadow /etc/gshadow")
    image_shadow = in_image("/etc/shadow")
    if image_shadow is None:
        assert result.exit_status != 0 and "root:" not in (result.stdout or "")
    else:  # the image's own shadow file, never the host's
        image_own = image_shadow.read_text() + image_shadow.with_name("gshadow").read_text()
        assert result.stdout == image_own and Path("/etc/shadow").read_text() != image_shadow.read_text()


async def test_root_only_host_files_are_hidden(backend: LocalBackend) -> None:
    candidates = ("/etc/ssl/private", "/etc/shadow-", "/etc/security/opasswd")
    hidden = [p for p in candidates if Path(p).exists() and not ((own := in_image(p)) and own.exists())]
    assert hidden, "expected some root-only files on this host"
    result = await run(backend, await new_box(backend), " ; ".join(f"ls -d {p} 2>/dev/null" for p in hidden) + "; true")
    assert result.stdout == ""


async def test_ssh_host_private_keys_are_hidden(backend: LocalBackend) -> None:
    result = await run(backend, await new_box(backend), "cat /etc/ssh/ssh_host_*_key 2>&1; true")
    assert "PRIVATE KEY" not in (result.stdout or "")


async def test_only_harmless_device_nodes(backend: LocalBackend) -> None:
    result = await run(backend, await new_box(backend), "ls /dev")
    names = set((result.stdout or "").split())
    assert names <= {"null", "zero", "full", "random", "urandom", "tty", "fd", "stdin", "stdout", "stderr", "shm"}
    assert not any(n.startswith(("vd", "sd", "nvme", "mem", "kmsg")) for n in names)


async def test_cannot_mount_a_host_disk(backend: LocalBackend) -> None:
    result = await run(backend, await new_box(backend), "mount -t ext4 /dev/vda /mnt || mount -t proc proc /mnt/x")
    assert result.exit_status != 0


async def test_cannot_write_kernel_settings(backend: LocalBackend) -> None:
    before = Path("/proc/sys/kernel/panic").read_text()
    result = await run(backend, await new_box(backend), "echo 4242 > /proc/sys/kernel/panic")
    assert result.exit_status != 0
    assert Path("/proc/sys/kernel/panic").read_text() == before


async def test_cannot_undo_the_proc_protections(backend: LocalBackend) -> None:
    box = await new_box(backend)
    for attempt in (
        "umount /proc/sys",
        "umount -l /proc/sys",
        "mount -o remount,rw /proc/sys",
        "mkdir -p /tmp/p && mount -t proc proc /tmp/p",
        "mkdir -p /tmp/s && mount -t sysfs sysfs /tmp/s",
    ):
        result = await run(backend, box, attempt)
        assert result.exit_status != 0, attempt
    check = await run(backend, box, "echo 4242 > /proc/sys/kernel/panic")
    assert check.exit_status != 0 and "Read-only" in (check.stderr or "")


async def test_chroot_escape_stays_in_the_devbox(backend: LocalBackend) -> None:
    escape = (
        "import os\n"
        "os.makedirs('jail', exist_ok=True); os.chroot('jail')\n"
        "for _ in range(64): os.chdir('..')\n"
        "os.chroot('.'); print(sorted(os.listdir('/')))\n"
    )
    result = await run(backend, await new_box(backend), f'python3 -c "{escape}"')
    assert "work" not in (result.stdout or "") and "farm" not in (result.stdout or "")


async def test_hostname_change_stays_in_the_devbox(backend: LocalBackend) -> None:
    host = socket.gethostname()
    box = await new_box(backend)
    await run(backend, box, "hostname evil-devbox")
    assert socket.gethostname() == host
    assert (await run(backend, box, "hostname")).stdout == f"{box}\n"  # refused inside too: UTS is locked


# --- processes -----------------------------------------------------------------------------------


async def test_cannot_see_host_processes(backend: LocalBackend) -> None:
    result = await run(backend, await new_box(backend), "ls /proc | grep -c '^[0-9]'")
    assert int(result.stdout or "0") < 10  # only the devbox's own few processes


async def test_cannot_signal_a_host_process(backend: LocalBackend) -> None:
    victim = await anyio.open_process(["sleep", "60"])
    try:
        await run(backend, await new_box(backend), f"kill -9 {victim.pid}")
        assert victim.returncode is None and Path(f"/proc/{victim.pid}").exists()
    finally:
        victim.kill()
        await victim.wait()


async def test_cannot_see_another_devboxs_processes(backend: LocalBackend) -> None:
    first, second = await new_box(backend), await new_box(backend)
    await run(backend, first, "sleep 4242 &")
    seen = await run(backend, second, "ps -eo args")
    assert "sleep 4242" not in (seen.stdout or "")
    own = await run(backend, first, "ps -eo args")
    assert "sleep 4242" in (own.stdout or "")  # control: it runs in the first devbox


# --- network -------------------------------------------------------------------------------------


async def test_no_network_interfaces_but_loopback(backend: LocalBackend) -> None:
    result = await run(backend, await new_box(backend), "cat /proc/net/dev | tail -n +3 | cut -d: -f1")
    assert [line.strip() for line in (result.stdout or "").splitlines()] == ["lo"]


async def test_cannot_reach_the_host_loopback(backend: LocalBackend, loopback_server: int) -> None:
    result = await run(
        backend, await new_box(backend), f"timeout 5 bash -c 'cat < /dev/tcp/127.0.0.1/{loopback_server}'"
    )
    assert result.exit_status != 0 and "hello from the host" not in (result.stdout or "")


async def test_cannot_reach_another_devboxs_loopback_port(backend: LocalBackend) -> None:
    server, client = await new_box(backend), await new_box(backend)
    await run(backend, server, "nohup python3 -m http.server 8765 --bind 127.0.0.1 >/dev/null 2>&1 & sleep 1")
    own = await run(backend, server, "timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/8765' && echo open")
    assert own.stdout == "open\n"  # control: the port is open in its own devbox
    other = await run(backend, client, "timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/8765' && echo open")
    assert other.stdout == "" and other.exit_status != 0


# --- file tools ----------------------------------------------------------------------------------


async def test_file_tools_refuse_dot_dot(backend: LocalBackend) -> None:
    box = await new_box(backend)
    with pytest.raises(InvalidRequestError, match="escapes the devbox home"):
        await backend.read_file(box, "../../etc/passwd")
    with pytest.raises(InvalidRequestError, match="escapes the devbox home"):
        await backend.write_file(box, "a/../../x", "x")


async def test_file_tools_refuse_absolute_paths_outside_home(backend: LocalBackend) -> None:
    box = await new_box(backend)
    with pytest.raises(InvalidRequestError, match="escapes the devbox home"):
        await backend.read_file(box, "/etc/passwd")
    assert await backend.write_file(box, "/home/user/ok.txt", "fine") is None  # absolute inside home is fine


async def test_file_tools_refuse_a_planted_symlink_out_of_home(backend: LocalBackend) -> None:
    box = await new_box(backend)
    await run(backend, box, "ln -s /etc/passwd /home/user/link && ln -s /etc /home/user/etcdir")
    with pytest.raises(InvalidRequestError, match="outside /home/user"):
        await backend.read_file(box, "link")
    with pytest.raises(InvalidRequestError, match="outside /home/user"):
        await backend.write_file(box, "etcdir/evil.conf", "x")


async def test_file_tools_never_reach_a_host_file_through_a_symlink(
    backend: LocalBackend, host_marker: tuple[Path, str]
) -> None:
    path, _token = host_marker
    box = await new_box(backend)
    await run(backend, box, f"ln -s {path} /home/user/host-link")
    with pytest.raises(InvalidRequestError):
        await backend.read_file(box, "host-link")


async def test_symlink_swapped_between_check_and_use_never_leaks(
    backend: LocalBackend, host_marker: tuple[Path, str]
) -> None:
    """Paths are resolved inside the devbox: even a won race reaches only the devbox's own files."""
    path, token = host_marker
    box = await new_box(backend)
    await run(
        backend,
        box,
        f"echo inside > /home/user/plain; "
        f"(while :; do ln -sfn {path} /home/user/flip; ln -sfn /home/user/plain /home/user/flip; done) "
        ">/dev/null 2>&1 &",
    )
    for _ in range(40):
        try:
            text = await backend.read_file(box, "flip")
        except InvalidRequestError:
            continue
        assert token not in text
    await run(backend, box, "kill %1 2>/dev/null; pkill -f 'ln -sfn' ; true")


async def test_downloads_anywhere_never_read_a_host_file(backend: LocalBackend, host_marker: tuple[Path, str]) -> None:
    """upload_file and download_file take any path (Harbor's /tests, /logs): resolved inside the
    devbox, a host path or a symlink to one names the devbox's own file, never the host's."""
    path, _token = host_marker
    box = await new_box(backend)
    await run(backend, box, f"ln -s {path} /home/user/host-link && ln -s {path.parent} /tmp/host-dir")
    for attempt in (str(path), "host-link", f"/tmp/host-dir/{path.name}", f"/proc/1/root{path}"):
        with pytest.raises(InvalidRequestError, match="no such file"):
            await backend.download_file(box, attempt)
    host_shadow = Path("/etc/shadow").read_bytes()
    with contextlib.suppress(InvalidRequestError):  # none at all in the devbox, or:
        assert await backend.download_file(box, "/etc/shadow") != host_shadow  # masked, or the image's own


async def test_uploads_anywhere_never_write_a_host_file(backend: LocalBackend, host_marker: tuple[Path, str]) -> None:
    path, token = host_marker
    box = await new_box(backend)
    await run(backend, box, f"ln -s {path} /home/user/host-link && ln -s {path.parent} /tmp/host-dir")
    for attempt in (str(path), "host-link", f"/tmp/host-dir/{path.name}", "/usr/bin/planted", "/etc/planted"):
        await backend.upload_file(box, attempt, b"pwned")
        assert await backend.download_file(box, attempt) == b"pwned"  # the devbox's own file
    assert path.read_text() == token
    assert not Path("/usr/bin/planted").exists() and not Path("/etc/planted").exists()


# --- scorers and references ----------------------------------------------------------------------


async def test_scorer_and_reference_are_not_in_the_run_devbox(backend: LocalBackend) -> None:
    from scenario_mcp.models import (
        BashScriptScorer,
        InputContext,
        ScenarioCreateParameters,
        ScenarioEnvironment,
        ScoringContract,
        ScoringFunction,
        StartScenarioRunParameters,
        TestBasedScorer,
        TestFile,
    )

    secret = uuid.uuid4().hex
    image = await image_blueprint(backend) if _ENVIRONMENT["kind"] == "image" else None
    scenario = await backend.create_scenario(
        ScenarioCreateParameters(
            name="hidden",
            input_context=InputContext(problem_statement="p"),
            environment_parameters=ScenarioEnvironment(blueprint_id=image) if image else None,
            scoring_contract=ScoringContract(
                scoring_function_parameters=[
                    ScoringFunction(name="a", weight=1, scorer=BashScriptScorer(bash_script=f"echo {secret}; echo 1")),
                    ScoringFunction(
                        name="b",
                        weight=1,
                        scorer=TestBasedScorer(
                            test_command="pytest -q",
                            test_files=[TestFile(file_path="test_hidden.py", file_contents=f"# {secret}\n")],
                        ),
                    ),
                ]
            ),
            reference_output=f"echo {secret}",
        )
    )
    run_view = await backend.start_run(StartScenarioRunParameters(scenario_id=scenario.id))
    found = await run(
        backend,
        run_view.devbox_id,
        f"grep -rl {secret} {SEARCHED} 2>/dev/null; find / -xdev -name 'score.sh'; true",
    )
    assert found.stdout == ""
    assert secret not in os.environ.get("PATH", "")
