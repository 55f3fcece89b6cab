"""Disk snapshots on real sandboxes: what a snapshot keeps, what it refuses."""

from __future__ import annotations

import pytest

from scenario_mcp.backend import InvalidRequestError, NotFoundError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import DevboxCreateParameters

from .helpers import new_box, run_ok

pytestmark = pytest.mark.anyio


async def test_snapshot_then_new_devbox_sees_files_but_not_later_changes(backend: LocalBackend) -> None:
    original = await new_box(backend)
    await backend.write_file(original, "proj/kept.txt", "from before the snapshot\n")
    await run_ok(backend, original, "echo tool > /usr/local/bin/mytool && rm /opt/python/bin/pip")
    snapshot = await backend.snapshot_disk(original, name="snap-1", metadata={"k": "v"}, commit_message="first")
    assert snapshot.source_devbox_id == original
    assert snapshot.name == "snap-1" and snapshot.metadata == {"k": "v"} and snapshot.commit_message == "first"
    assert snapshot.size_bytes is not None and snapshot.size_bytes > 0

    # The original carries on; none of this may leak into the snapshot.
    await backend.write_file(original, "proj/kept.txt", "changed after\n")
    await backend.write_file(original, "proj/later.txt", "later\n")
    await run_ok(backend, original, "rm /usr/local/bin/mytool")

    clone = await new_box(backend, snapshot_id=snapshot.id)
    view = await backend.get_devbox(clone)
    assert view.snapshot_id == snapshot.id
    assert await backend.read_file(clone, "proj/kept.txt") == "from before the snapshot\n"
    assert (await backend.execute(clone, "test -e proj/later.txt")).exit_status != 0
    assert await run_ok(backend, clone, "cat /usr/local/bin/mytool") == "tool\n"
    # A deletion (a whiteout over a lower layer) is part of the snapshot too.
    assert (await backend.execute(clone, "test -e /opt/python/bin/pip")).exit_status != 0
    assert (await backend.execute(clone, "pytest --version")).exit_status == 0

    # Layers stack: snapshot over the original's chain, and a snapshot of the clone over that.
    original_layers = (await backend.devboxes.internal(original))["layers"]
    clone_layers = (await backend.devboxes.internal(clone))["layers"]
    assert clone_layers == [snapshot.id, *original_layers]
    await backend.write_file(clone, "proj/second.txt", "2\n")
    second = await backend.snapshot_disk(clone)
    grandchild = await new_box(backend, snapshot_id=second.id)
    assert (await backend.devboxes.internal(grandchild))["layers"] == [second.id, snapshot.id, *original_layers]
    assert await backend.read_file(grandchild, "proj/kept.txt") == "from before the snapshot\n"
    assert await backend.read_file(grandchild, "proj/second.txt") == "2\n"
    # The clone's changes do not reach the original either.
    assert (await backend.execute(original, "test -e proj/second.txt")).exit_status != 0


async def test_unknown_snapshot_refused(backend: LocalBackend) -> None:
    with pytest.raises(NotFoundError, match="snp_missing"):
        await backend.create_devbox(DevboxCreateParameters(snapshot_id="snp_missing"))
    with pytest.raises(InvalidRequestError, match="at most one"):
        await backend.create_devbox(DevboxCreateParameters(snapshot_id="snp_x", blueprint_id="bpt_y"))
