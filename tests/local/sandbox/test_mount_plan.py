"""The mount plan: typed operations that cross the spawner's pipe as JSON and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scenario_mcp.local.sandbox import SandboxSpec, prepare_dirs, root_plan, spawner
from scenario_mcp.local.sandbox.libc import SpawnError
from scenario_mcp.local.sandbox.mount_plan import (
    Bind,
    Dir,
    File,
    Mount,
    Move,
    ReadOnlyLayer,
    Symlink,
    decode,
    encode,
    starter_word,
)


def spec(tmp_path: Path, *, network: bool, image_root: bool = False) -> SandboxSpec:
    return SandboxSpec(
        state_dir=tmp_path / "box",
        layers=(tmp_path / "layer",),
        skeleton=tmp_path / "skeleton",
        etc_mask=tmp_path / "mask",
        network=network,
        hostname="dbx_1",
        image_root=image_root,
    )


def test_a_plan_round_trips_through_json(tmp_path: Path) -> None:
    plan = root_plan(spec(tmp_path, network=True))
    assert decode(json.loads(json.dumps(encode(plan)))) == plan
    assert {type(step) for step in plan} == {Mount, Bind, File, Dir, Symlink}


def test_the_root_is_mounted_first_and_etc_gets_the_runtime_layer_on_top(tmp_path: Path) -> None:
    networked, plain = root_plan(spec(tmp_path, network=True)), root_plan(spec(tmp_path, network=False))
    root = str(tmp_path / "box" / "root")
    assert isinstance(networked[0], Mount) and networked[0].target == root
    etc = next(step for step in networked if isinstance(step, Mount) and step.target == f"{root}/etc")
    lower = etc.options.split("lowerdir=")[1].split(",")[0].split(":")
    assert lower[0] == str(tmp_path / "box" / "runtime" / "etc")  # resolv.conf naming slirp's DNS wins
    assert lower[-2:] == [str(tmp_path / "mask" / "etc"), "/etc"]  # secrets masked over the host's /etc
    plain_etc = next(step for step in plain if isinstance(step, Mount) and step.target == f"{root}/etc")
    assert "runtime" not in plain_etc.options


def test_an_image_root_is_one_overlay_with_the_runtime_files_on_top(tmp_path: Path) -> None:
    box = spec(tmp_path, network=True, image_root=True)
    plan = root_plan(box)
    overlays = [step for step in plan if isinstance(step, Mount) and step.fstype == "overlay"]
    assert len(overlays) == 1  # no host /usr or /etc under an image
    lower = overlays[0].options.split("lowerdir=")[1].split(",")[0].split(":")
    assert lower == [str(box.runtime_layer), str(tmp_path / "layer"), str(tmp_path / "skeleton")]
    prepare_dirs(box)
    etc = box.runtime_layer / "etc"
    assert (etc / "resolv.conf").read_text() == "nameserver 10.0.2.3\n"
    assert (etc / "hostname").read_text() == "dbx_1\n"
    assert "127.0.1.1\tdbx_1" in (etc / "hosts").read_text()
    assert not (box.upper("usr")).exists()


def test_an_unknown_operation_is_refused() -> None:
    with pytest.raises(SpawnError, match="unknown setup operation"):
        decode([{"op": "chmod", "path": "/"}])
    with pytest.raises(TypeError):
        decode([{"op": "bind", "source": "/a"}])  # a field missing


def test_a_build_steps_operations_are_words_for_the_c_starter() -> None:
    plan = [
        Mount("overlay", "/r", "overlay", "nosuid,volatile,lowerdir=/a:/b"),
        Bind("/dev/null", "/r/dev/null"),
        Move("/stage/run", "/r/run"),
        File("/r/dev/tty"),
        Dir("/r/dev/shm"),
        Symlink("/proc/self/fd", "/r/dev/fd"),
    ]
    assert [starter_word(op).split("\x1f") for op in plan] == [
        ["M", "overlay", "/r", "overlay", "2", "volatile,lowerdir=/a:/b"],  # 2: MS_NOSUID
        ["B", "/dev/null", "/r/dev/null"],
        ["V", "/stage/run", "/r/run"],
        ["F", "/r/dev/tty"],
        ["D", "/r/dev/shm"],
        ["L", "/proc/self/fd", "/r/dev/fd"],
    ]
    with pytest.raises(SpawnError, match="separator"):
        starter_word(Dir("/r/a\x1fb"))
    with pytest.raises(SpawnError, match="no 'ro_layer' operation"):
        starter_word(ReadOnlyLayer("/r", "/agent", "/layer:/empty"))


def test_the_spawner_runs_isolated_on_the_standard_library_alone() -> None:
    """`python -I -S spawner.py`: no site-packages, nothing from the environment; it reads its
    requests until its stdin closes, then exits."""
    probe = (
        "import runpy, sys; sys.argv = [sys.argv[1]]; sys.stdin = open('/dev/null')\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('anyio', 'pydantic', 'scenario_mcp')))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe, spawner.__file__], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
