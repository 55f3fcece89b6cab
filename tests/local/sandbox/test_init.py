"""The devbox's init: ids it maps, users its commands may switch to, what stays locked."""

from __future__ import annotations

import os

import pytest

from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.models import DevboxCreateParameters

pytestmark = pytest.mark.anyio


async def test_a_root_server_maps_a_range_of_ids_so_su_works(backend: LocalBackend) -> None:
    assert os.geteuid() == 0, "the id range is a root server's"
    box = (await backend.create_devbox(DevboxCreateParameters())).id
    mapped = await backend.execute(box, "cat /proc/self/uid_map /proc/self/gid_map")
    assert [line.split() for line in (mapped.stdout or "").splitlines()] == [["0", "0", "65536"]] * 2
    setup = await backend.execute(box, "useradd -m alice && echo secret > /root/private && chmod 600 /root/private")
    assert setup.exit_status == 0, setup
    as_alice = await backend.execute(box, "su alice -s /bin/bash -c 'id -un; cat /root/private; touch ~/mine'")
    assert (as_alice.stdout or "").splitlines()[0] == "alice"
    assert "Permission denied" in (as_alice.stderr or "")  # another user is not root
    owner = await backend.execute(box, "stat -c %U /home/alice/mine")
    assert owner.stdout == "alice\n"


async def test_the_nested_namespace_still_locks_the_mounts(backend: LocalBackend) -> None:
    box = (await backend.create_devbox(DevboxCreateParameters())).id
    for command in ("umount /proc/sys", "mount -o remount,rw /proc/sys", "umount /usr"):
        result = await backend.execute(box, command)
        assert result.exit_status != 0, (command, result)
