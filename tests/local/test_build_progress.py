"""A build's progress reports (build_progress.py): steps from the Dockerfile, pulls as a fraction
of their step, never going down, and kept for a waiter that comes late."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from scenario_mcp.local.build_progress import BuildTracker, DeferredSaves, planned_steps
from scenario_mcp.models import BlueprintCreateParameters

pytestmark = pytest.mark.anyio

DOCKERFILE = "FROM a\nENV X=1\nRUN make\nFROM b AS two\nCOPY --from=0 /x /x\nADD y /y\nWORKDIR /w\n"


def test_the_steps_are_the_layer_making_instructions_and_the_setup() -> None:
    assert planned_steps(BlueprintCreateParameters(name="d", dockerfile=DOCKERFILE)) == 3
    with_setup = BlueprintCreateParameters(name="s", dockerfile=DOCKERFILE, system_setup_commands=["true"])
    assert planned_steps(with_setup) == 4
    assert planned_steps(BlueprintCreateParameters(name="from-only", dockerfile="FROM a\n")) == 1
    assert planned_steps(BlueprintCreateParameters(name="broken", dockerfile="FROM a\nRUN <<EOF\nnever closed\n")) == 1


async def test_reports_rise_across_two_pulls_and_a_late_waiter_gets_them_all() -> None:
    tracker = BuildTracker(BlueprintCreateParameters(name="d", dockerfile=DOCKERFILE))
    tracker.started()
    tracker.pulling(0, 0, "resolving a")
    tracker.pulling(3 << 20, 4 << 20, "layer sha256:aaaa")
    tracker.pulling(1 << 20, 4 << 20, "layer sha256:bbbb")  # a second image's pull, in the same step
    tracker.step("line 3: RUN make")
    tracker.end("build_complete")
    reports = await tracker.after(0)
    done = [r.done for r in reports]
    assert done == sorted(done) and done[-1] == reports[-1].total == 3
    assert [r.seq for r in reports] == list(range(1, len(reports) + 1))
    assert reports[3].message == "layer sha256:aaaa (3.0 of 4.0 MiB)" and 0 < reports[3].done < 1
    assert reports[4].done == reports[3].done  # not back down to a quarter
    assert reports[5].message == "step 1 of 3 done: line 3: RUN make" and reports[5].done == 1
    assert await tracker.after(reports[-1].seq) == []  # ended: nothing to wait for


async def test_a_waiter_is_woken_by_the_next_report() -> None:
    tracker = BuildTracker(BlueprintCreateParameters(name="d", dockerfile=DOCKERFILE))
    got: list[str] = []

    async def wait() -> None:
        got.extend(r.message for r in await tracker.after(1))

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.sleep(0.05)
        assert got == []
        tracker.started()
    assert got == ["building"]


async def test_deferred_saves_fold_requests_made_meanwhile_and_the_last_save_has_everything() -> None:
    log: list[str] = []
    saved: list[list[str]] = []
    release = anyio.Event()

    async def save() -> None:
        snapshot = list(log)
        if not saved:
            await release.wait()  # the first save is slow: three more entries come meanwhile
        saved.append(snapshot)

    async with anyio.create_task_group() as tg:
        saves = DeferredSaves(tg, save)
        log.append("step 1")
        await saves.request()
        assert saved == []  # not awaited: the step after it goes on
        await anyio.lowlevel.checkpoint()  # the first save is under way
        for entry in ("step 2", "step 3", "step 4"):
            log.append(entry)
            await saves.request()
        release.set()
    # One save for the first entry, one for the three that came while it was written.
    assert saved == [["step 1"], ["step 1", "step 2", "step 3", "step 4"]]


async def test_a_save_asked_for_after_the_last_one_ended_is_made_too() -> None:
    saved: list[int] = []
    async with anyio.create_task_group() as tg:
        saves = DeferredSaves(tg, lambda: _append(saved))
        await saves.request()
        await anyio.sleep(0.01)
        await saves.request()
    assert saved == [1, 2]


async def _append(saved: list[int]) -> None:
    saved.append(len(saved) + 1)


async def test_a_failing_save_is_kept_and_does_not_end_the_task_group() -> None:
    calls: list[int] = []

    async def save() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk full")

    async with anyio.create_task_group() as tg:
        saves = DeferredSaves(tg, save)
        await saves.request()
        await anyio.sleep(0.01)
        await saves.request()  # the next one is still made
    assert len(calls) == 2 and isinstance(saves.error, OSError)
