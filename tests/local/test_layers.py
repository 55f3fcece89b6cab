"""The layer store on a real filesystem: the base, frozen layers, the scorer's subtree, sizes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from scenario_mcp.local.layers import SKELETON_DIRS, LayerStore, host_secrets, tree_size
from scenario_mcp.local.sandbox import SandboxError

pytestmark = pytest.mark.anyio


def make_upper(root: Path, files: dict[str, str]) -> Path:
    """A sandbox's upper directories (root/, usr/, etc/) holding `files` (path -> contents)."""
    for part in ("root", "usr", "etc"):
        (root / part).mkdir(parents=True, exist_ok=True)
    for rel, contents in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(contents)
    return root


def test_base_has_the_skeleton_with_its_modes_and_is_built_once(tmp_path: Path) -> None:
    store = LayerStore(tmp_path / "layers")
    store.ensure_base()
    for rel, mode in SKELETON_DIRS.items():
        assert stat.S_IMODE((store.skeleton / rel).stat().st_mode) == mode, rel
    marker = store.base / ".complete"
    built = marker.stat().st_mtime_ns
    store.ensure_base()
    assert marker.stat().st_mtime_ns == built
    assert not list(store.root.glob(".tmp-base-*"))


@pytest.mark.skipif(os.geteuid() != 0, reason="the /etc mask is built only when the server runs as root")
def test_base_masks_every_host_secret_with_a_whiteout(tmp_path: Path) -> None:
    store = LayerStore(tmp_path / "layers")
    store.ensure_base()
    secrets = host_secrets()
    assert Path("/etc/shadow") in secrets
    for secret in secrets:
        whiteout = (store.etc_mask / secret.relative_to("/")).lstat()
        assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == os.makedev(0, 0), secret


def test_host_secrets_are_what_others_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "public").write_text("x")
    (tmp_path / "private").write_text("x")
    os.chmod(tmp_path / "private", 0o600)
    (tmp_path / "closed").mkdir()
    (tmp_path / "closed" / "inside").write_text("x")
    os.chmod(tmp_path / "closed", 0o700)
    (tmp_path / "link").symlink_to("private")
    assert sorted(host_secrets(tmp_path)) == [tmp_path / "closed", tmp_path / "private"]


async def test_freeze_keeps_what_changed_and_reports_its_size(tmp_path: Path) -> None:
    store = LayerStore(tmp_path / "layers")
    upper = make_upper(tmp_path / "upper", {"root/home/user/a.txt": "hello", "usr/local/bin/tool": "#!/bin/sh\n"})
    size = await store.freeze(upper, "snp_1")
    layer = store.path("snp_1")
    assert store.exists("snp_1")
    assert (layer / "home/user/a.txt").read_text() == "hello"
    assert (layer / "usr/local/bin/tool").read_text() == "#!/bin/sh\n"
    assert size == tree_size(layer) == len("hello") + len("#!/bin/sh\n")
    assert not list(store.root.glob(".tmp-*"))


async def test_freeze_of_an_untouched_box_is_an_empty_layer(tmp_path: Path) -> None:
    store = LayerStore(tmp_path / "layers")
    assert await store.freeze(make_upper(tmp_path / "upper", {}), "snp_empty") == 0
    assert store.exists("snp_empty")
    assert sorted(p.name for p in store.path("snp_empty").iterdir()) == [
        "etc",
        "usr",
    ]  # no marker: an image root would show it


async def test_subtree_layer_holds_only_the_working_directory(tmp_path: Path) -> None:
    store = LayerStore(tmp_path / "layers")
    upper = make_upper(
        tmp_path / "upper",
        {"root/home/user/project/calc.py": "code", "root/home/user/notes.txt": "other", "usr/local/bin/pytest": "fake"},
    )
    layer = tmp_path / "agent"
    await store.subtree_layer(upper, "/home/user/project", layer)
    assert (layer / "home/user/project/calc.py").read_text() == "code"
    assert not (layer / "home/user/notes.txt").exists()
    assert not (layer / "usr/local/bin/pytest").exists()
    assert (layer / "usr").is_dir() and (layer / "etc").is_dir()


async def test_subtree_layer_of_a_directory_the_agent_never_touched_is_empty(tmp_path: Path) -> None:
    store = LayerStore(tmp_path / "layers")
    layer = tmp_path / "agent"
    await store.subtree_layer(make_upper(tmp_path / "upper", {}), "/home/user/project", layer)
    assert tree_size(layer) == 0


async def test_subtree_layer_refuses_a_directory_outside_the_box(tmp_path: Path) -> None:
    store = LayerStore(tmp_path / "layers")
    with pytest.raises(SandboxError, match="escapes"):
        await store.subtree_layer(make_upper(tmp_path / "upper", {}), "../../etc", tmp_path / "agent")


async def test_remove_deletes_a_layer(tmp_path: Path) -> None:
    store = LayerStore(tmp_path / "layers")
    await store.freeze(make_upper(tmp_path / "upper", {"root/x": "1"}), "bpt_x")
    store.remove("bpt_x")
    assert not store.exists("bpt_x") and not store.path("bpt_x").exists()
    store.remove("bpt_x")  # removing what is gone is no error
