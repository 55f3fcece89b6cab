"""One build sandbox per build: its steps share its user, PID and network namespaces, each in a
mount namespace and root of its own; each step's layer is exactly its own changes; nothing a step
starts outlives it; and no step reaches the host's view the sandbox's init keeps."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from scenario_mcp.local.builds import BuildError
from scenario_mcp.local.layers import LayerStore
from scenario_mcp.local.sandbox import HOST_DIRS

from .test_builds import PRELUDE, builder, context, store, view

pytestmark = pytest.mark.anyio
__all__ = ["context", "store"]  # fixtures


@pytest.fixture(params=[True, False], ids=["c-starter", "python-spare"])
def starter(request: pytest.FixtureRequest) -> bool:
    """Each step's process made by the C step starter, or forked from Python (where no C
    compiler is): the same guarantees either way."""
    return bool(request.param)


def entries(layer: Path) -> dict[str, str]:
    """A layer's files, by path: `dir`, `file:<contents>`, `link:<target>` or `whiteout`. The
    empty /usr and /etc every frozen layer gets (for a host-based stack) are left out."""
    found: dict[str, str] = {}
    for path in sorted(layer.rglob("*")):
        name = str(path.relative_to(layer))
        st = path.lstat()
        if name in HOST_DIRS and not any(path.iterdir()):
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            found[name] = "whiteout"
        elif stat.S_ISDIR(st.st_mode):
            found[name] = "dir"
        elif stat.S_ISLNK(st.st_mode):
            found[name] = f"link:{os.readlink(path)}"
        else:
            found[name] = f"file:{path.read_text()}"
    return found


async def test_each_steps_layer_is_exactly_its_changes_and_deletions_are_whiteouts(
    store: LayerStore, context: Path, tmp_path: Path, starter: bool
) -> None:
    dockerfile = PRELUDE + (
        "RUN mkdir /data && echo one > /data/a && echo keep > /data/b\n"
        "COPY src/app.py /data/app.py\n"
        "RUN rm /data/a && echo two > /data/c && ln -s c /data/link\n"
        "RUN rm -r /data\n"
    )
    built = await builder(store, context, tmp_path, use_step_starter=starter).build(dockerfile)
    assert built.built_steps == 6
    removed, linked, copied, made = (entries(store.path(layer)) for layer in built.layers[:4])
    assert made == {"data": "dir", "data/a": "file:one\n", "data/b": "file:keep\n"}
    assert copied == {"data": "dir", "data/app.py": "file:print('app')\n"}
    assert linked == {"data": "dir", "data/a": "whiteout", "data/c": "file:two\n", "data/link": "link:c"}
    assert removed == {"data": "whiteout"}
    assert await view(store, built.layers[1:], tmp_path, "ls /data; cat /data/link") == "app.py\nb\nc\nlink\ntwo\n"
    assert await view(store, built.layers, tmp_path, "ls / | grep -c data || true") == "0\n"


async def test_the_steps_share_one_sandbox_each_with_a_root_of_its_own_and_nothing_outlives_a_step(
    store: LayerStore, context: Path, tmp_path: Path, starter: bool
) -> None:
    namespaces = "for ns in net pid user; do readlink /proc/self/ns/$ns; done"
    dockerfile = PRELUDE + (
        f"RUN ({namespaces}) > /first && echo x > /run/mine && echo x > /dev/shm/mine && echo x > /dev/mine"
        " && (sleep 300 > /dev/null 2>&1 &) && echo started\n"
        f"RUN ({namespaces}) > /second && ps -o comm > /processes && ls /run /dev/shm /dev > /fresh\n"
    )
    built = await builder(store, context, tmp_path, use_step_starter=starter).build(dockerfile)
    first, second = [
        (await view(store, built.layers, tmp_path, f"cat /{name}")).split() for name in ("first", "second")
    ]
    assert first == second  # net, pid, user: the build sandbox's, started once
    assert "sleep" not in await view(store, built.layers, tmp_path, "cat /processes")
    assert "mine" not in await view(store, built.layers, tmp_path, "cat /fresh")  # each step's own /run, /dev
    assert "null" in await view(store, built.layers, tmp_path, "cat /fresh")


async def test_what_a_step_leaves_forking_or_killing_is_ended_and_the_next_step_still_starts(
    store: LayerStore, context: Path, tmp_path: Path, starter: bool
) -> None:
    """A leftover that keeps forking is ended all the same, and a RUN that kills or stops every
    process it can see leaves a build whose next step starts (Python's spare, forked while a RUN runs, is
    spared when what the RUN left is killed, and made anew when the RUN killed it)."""
    forker = "(while :; do sleep 300 & done) > /dev/null 2>&1 &"
    killer = 'for d in /proc/[0-9]*; do p=${d#/proc/}; [ "$p" = 1 ] || [ "$p" = $$ ] || kill -9 "$p"; done'
    dockerfile = PRELUDE + (
        f"RUN {forker} sleep 0.05 && echo forking\n"
        "RUN ps -o comm > /after-forker\n"
        f"RUN {killer}; echo killed > /killed\n"
        "RUN ps -o comm > /after-killer\n"
        f"RUN {killer.replace('-9', '-STOP')}; echo stopped > /stopped\n"
        "RUN ps -o comm > /after-stopper\n"
    )
    built = await builder(store, context, tmp_path, use_step_starter=starter).build(dockerfile)
    assert built.built_steps == 8
    after_forker = await view(store, built.layers, tmp_path, "cat /after-forker")
    assert "sleep" not in after_forker and "ps" in after_forker
    assert await view(store, built.layers, tmp_path, "cat /killed") == "killed\n"
    assert "ps" in await view(store, built.layers, tmp_path, "cat /after-killer")
    assert "ps" in await view(store, built.layers, tmp_path, "cat /after-stopper")


async def test_a_steps_proc_is_hardened_and_its_mounts_locked_though_made_before_its_request(
    store: LayerStore, context: Path, tmp_path: Path, starter: bool
) -> None:
    # A step's /proc (mounted once by init) and its /dev and /run (made by the process that takes
    # the step, before the step is known) are moved into its root: locked there all the same.
    probes = [
        "! umount /proc/sys",
        "! mount -o remount,rw /proc/sys",
        "! umount /proc/kcore",
        "! cat /proc/kcore",
        "! umount /dev/null",
        "! umount -l /",
        "! mount -t proc proc /mnt",
        "! echo 1 > /proc/sys/vm/drop_caches",
        "! ls /stage /steps",
    ]
    dockerfile = PRELUDE + "RUN mkdir -p /mnt\n" + "".join(f"RUN {probe}\n" for probe in probes)
    built = await builder(store, context, tmp_path, use_step_starter=starter).build(dockerfile)
    assert built.built_steps == 3 + len(probes)


async def test_steps_after_copies_and_failures_get_fresh_roots_and_leave_no_scratch(
    store: LayerStore, context: Path, tmp_path: Path, starter: bool
) -> None:
    # Step dirs are used again (made ready while a later RUN runs): a COPY's, a RUN's and a
    # failed step's upper dirs never show in a later step's root or layer.
    dockerfile = PRELUDE + (
        "COPY src/app.py /one/app.py\n"
        "RUN echo a > /one/a\n"
        "COPY src/pkg /two/\n"
        "COPY src/app.py /three/app.py\n"
        "RUN echo b > /two/b && ls -R /one /two /three > /seen\n"
        "RUN echo c > /c\n"
    )
    built = await builder(store, context, tmp_path, use_step_starter=starter).build(dockerfile)
    assert built.built_steps == 8
    assert entries(store.path(built.layers[0])) == {"c": "file:c\n"}
    assert entries(store.path(built.layers[1]))["two/b"] == "file:b\n"
    assert set(entries(store.path(built.layers[1]))) == {"two", "two/b", "seen"}
    seen = await view(store, built.layers, tmp_path, "cat /seen")
    assert seen.split() == ["/one:", "a", "app.py", "/three:", "app.py", "/two:", "b", "mod.py"]
    assert not any((tmp_path / "work").iterdir())  # the build sandbox's dir is gone
    with pytest.raises(BuildError, match="exited 3"):
        await builder(store, context, tmp_path, use_step_starter=starter).build(PRELUDE + "RUN echo x > /x && exit 3\n")
    again = await builder(store, context, tmp_path, use_step_starter=starter).build(PRELUDE + "RUN ls / > /listing\n")
    assert "x" not in (await view(store, again.layers, tmp_path, "cat /listing")).split()


async def test_a_step_cannot_reach_the_host_view_its_sandboxs_init_keeps(
    store: LayerStore, context: Path, tmp_path: Path, starter: bool
) -> None:
    marker = tmp_path / "host-marker"
    marker.write_text("on the host\n")
    # Init (PID 1 here) keeps the host's view to make each step's root: none of it shows.
    probes = [
        f"! cat /proc/1/root{marker}",
        "! ls /proc/1/root/",
        "! ls /proc/1/cwd/",
        "for fd in /proc/1/fd/*; do ! readlink $fd || exit 1; done",
        "! cat /proc/1/environ",
        "! cat /proc/1/maps",
        "! readlink /proc/1/exe",
        "kill -9 1; echo init lives on",
    ]
    dockerfile = PRELUDE + "".join(f"RUN {probe}\n" for probe in probes)
    built = await builder(store, context, tmp_path, use_step_starter=starter).build(dockerfile)
    assert built.built_steps == 2 + len(probes)


async def test_while_a_run_runs_the_processes_outside_its_group_are_the_engines_and_show_no_host(
    store: LayerStore, context: Path, tmp_path: Path, starter: bool
) -> None:
    # A RUN is a process group of its own (the server ends a timed-out step by its group). Outside
    # it, it sees init and the next step's spare, made once its command is exec'd (forked
    # undumpable, by init's Python or by the C starter's forker, itself undumpable since before
    # any step ran): none shows the host's root it keeps. The probe waits (up to 2 s) for the
    # spare, made as the step starts.
    expected = 3 if starter else 2  # init, the spare (and the forker)
    others = 'for d in /proc/[0-9]*; do [ "$(cut -d" " -f5 $d/stat 2>/dev/null)" = "$own" ] || echo ${d#/proc/}; done'
    probe = (
        f'own=$(cut -d" " -f5 /proc/$$/stat); [ "$own" = $$ ] || exit 9; i=0;'
        f" while [ $( ({others}) | wc -l) -lt {expected} ] && [ $i -lt 100 ]; do sleep 0.02; i=$((i+1)); done;"
        f" for p in $({others}); do echo $p >> /others;"
        " ! ls /proc/$p/root/ > /dev/null 2>&1 || exit 1; ! readlink /proc/$p/cwd || exit 1; done"
    )
    dockerfile = PRELUDE + f"RUN {probe}\nRUN true\nRUN {probe.replace('/others', '/again')}\n"
    built = await builder(store, context, tmp_path, use_step_starter=starter).build(dockerfile)
    for name in ("others", "again"):
        seen = (await view(store, built.layers, tmp_path, f"cat /{name}")).split()
        assert seen[0] == "1"
        assert len(seen) == expected


async def test_a_user_the_image_does_not_have_fails_the_step_with_its_name(
    store: LayerStore, context: Path, tmp_path: Path, starter: bool
) -> None:
    # Looked up in the step's layers before anything starts: the build fails at that line, naming the user.
    missing = r"^Dockerfile line 5 \(RUN\): user 'nobody2' is not in the image's /etc/passwd$"
    with pytest.raises(BuildError, match=missing):
        await builder(store, context, tmp_path, use_step_starter=starter).build(PRELUDE + "USER nobody2\nRUN true\n")


async def test_a_workdir_is_made_for_its_run_step_and_holds_only_what_the_step_made(
    store: LayerStore, context: Path, tmp_path: Path, starter: bool
) -> None:
    built = await builder(store, context, tmp_path, use_step_starter=starter).build(
        PRELUDE + "WORKDIR /srv/app\nRUN pwd > here\n"
    )
    assert entries(store.path(built.layers[0])) == {"srv": "dir", "srv/app": "dir", "srv/app/here": "file:/srv/app\n"}
