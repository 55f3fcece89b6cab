"""The SQLite store: migrations, persistence, filters, newest-first paging, run logs."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from scenario_mcp.backend import DataDirFullError
from scenario_mcp.local.engine import LocalBackend
from scenario_mcp.local.store import CHECKPOINT_EVERY, SCHEMA_VERSION, TABLES, Store
from scenario_mcp.models import (
    BashScriptScorer,
    InputContext,
    ScenarioCreateParameters,
    ScoringContract,
    ScoringFunction,
)

pytestmark = pytest.mark.anyio


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def test_migrations_set_user_version_and_create_tables(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "db.sqlite3"
    store = Store(path)
    store.close()
    assert SCHEMA_VERSION >= 1
    assert user_version(path) == SCHEMA_VERSION
    conn = sqlite3.connect(path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()
    assert {*TABLES, "run_logs"} <= tables
    assert journal == "wal"


async def test_reopen_keeps_data_and_does_not_remigrate(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    store = Store(path)
    await store.put("scenarios", "scn_1", {"a": 1}, internal={"secret": True}, name="one", state="active")
    await store.add_log("scr_1", 5, "run", "hello")
    store.close()

    store = Store(path)  # would fail with "table already exists" if it migrated again
    try:
        row = await store.get("scenarios", "scn_1")
        assert row is not None
        assert row.data == {"a": 1}
        assert row.internal == {"secret": True}
        assert await store.logs("scr_1") == [(5, "run", "hello")]
        assert store.integrity_check() == "ok"
    finally:
        store.close()
    assert user_version(path) == SCHEMA_VERSION


def test_newer_schema_is_refused_with_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RuntimeError) as info:
        Store(path)
    message = str(info.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert "newer" in message
    assert str(path) in message
    # The refused database is left as it was.
    assert user_version(path) == SCHEMA_VERSION + 1


async def test_get_missing_is_none_and_put_replaces(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    try:
        assert await store.get("runs", "scr_nope") is None
        await store.put("runs", "scr_1", {"v": 1}, internal={"pid": 7}, state="running")
        # internal=None keeps the stored internal state; data and columns are replaced.
        await store.put("runs", "scr_1", {"v": 2}, state="scored")
        row = await store.get("runs", "scr_1")
        assert row is not None and row.data == {"v": 2} and row.internal == {"pid": 7}
        page = await store.list("runs", state="running")
        assert page.rows == [] and page.total_count == 0
        assert [r.id for r in (await store.list("runs", state="scored")).rows] == ["scr_1"]
        # An explicit internal replaces it.
        await store.put("runs", "scr_1", {"v": 3}, internal={}, state="scored")
        row = await store.get("runs", "scr_1")
        assert row is not None and row.internal == {}
        # Replacing keeps the object's place in the listing (one row, not a new one).
        assert (await store.list("runs")).total_count == 1
    finally:
        store.close()


async def test_list_filters(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    try:
        await store.put("runs", "r1", {"n": 1}, name="alpha", state="running", parent_id="scn_a")
        await store.put("runs", "r2", {"n": 2}, name="beta", state="scored", parent_id="scn_a")
        await store.put("runs", "r3", {"n": 3}, name="alpha", state="failed", parent_id="scn_b")
        await store.put("scenarios", "s1", {}, name="alpha")  # another kind is not mixed in

        async def ids(**filters: object) -> list[str]:
            return [r.id for r in (await store.list("runs", **filters)).rows]  # type: ignore[arg-type]

        assert await ids() == ["r3", "r2", "r1"]
        assert await ids(parent_id="scn_a") == ["r2", "r1"]
        assert await ids(state="failed") == ["r3"]
        assert await ids(state=["running", "scored"]) == ["r2", "r1"]
        assert await ids(name="alpha") == ["r3", "r1"]
        assert await ids(name="alpha", parent_id="scn_a") == ["r1"]
        assert await ids(state=None, parent_id="scn_b") == ["r3"]
        assert await ids(state="nope") == []
        page = await store.list("runs", parent_id="scn_a")
        assert page.total_count == 2 and not page.has_more
    finally:
        store.close()


async def test_text_search_and_expired_times(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    try:
        await store.put("objects", "obj_a1", {"delete_after_time_ms": 100}, name="Harbor_ctx.tar.gz")
        await store.put("objects", "obj_b2", {"delete_after_time_ms": 50}, name="notes")
        await store.put("objects", "obj_c3", {"delete_after_time_ms": None}, name="harbor%_x")
        await store.put("objects", "obj_d4", {}, name=None)

        async def ids(*contains: tuple[tuple[str, ...], str]) -> list[str]:
            return [r.id for r in (await store.list("objects", contains=contains)).rows]

        assert await ids((("name",), "HARBOR")) == ["obj_c3", "obj_a1"]  # a part, in any case
        assert await ids((("name",), "%_")) == ["obj_c3"]  # no pattern characters: the text itself
        assert await ids((("id", "name"), "b2")) == ["obj_b2"]
        assert await ids((("id", "name"), "a"), (("name",), "tar")) == ["obj_a1"]  # every entry matches
        with pytest.raises(ValueError, match="not searchable"):
            await ids((("data",), "x"))

        # Deadlines at or before now, the earliest first; none and null never expire.
        assert await store.expired("objects", "delete_after_time_ms", 49) == []
        assert await store.expired("objects", "delete_after_time_ms", 100) == ["obj_b2", "obj_a1"]
        with pytest.raises(ValueError, match="not a time field"):
            await store.expired("objects", "x') OR 1=1 --", 0)
    finally:
        store.close()


async def test_newest_first_paging(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    try:
        ids = [f"scn_{i:02d}" for i in range(7)]
        for i, ident in enumerate(ids):
            await store.put("scenarios", ident, {"i": i}, state="active" if i % 2 == 0 else "archived")
        newest_first = list(reversed(ids))

        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            page = await store.list("scenarios", limit=3, starting_after=cursor)
            pages += 1
            assert page.total_count == 7  # the filter's total, not the page's
            seen += [r.id for r in page.rows]
            if not page.has_more:
                break
            assert len(page.rows) == 3
            cursor = page.rows[-1].id
        assert seen == newest_first
        assert pages == 3

        exact = await store.list("scenarios", limit=7)
        assert len(exact.rows) == 7 and not exact.has_more
        short = await store.list("scenarios", limit=6)
        assert len(short.rows) == 6 and short.has_more

        # Paging combines with filters.
        active = await store.list("scenarios", limit=2, state="active")
        assert [r.id for r in active.rows] == ["scn_06", "scn_04"]
        assert active.has_more and active.total_count == 4
        rest = await store.list("scenarios", limit=2, state="active", starting_after="scn_04")
        assert [r.id for r in rest.rows] == ["scn_02", "scn_00"]
        assert not rest.has_more

        # After the oldest there is nothing.
        last = await store.list("scenarios", starting_after="scn_00")
        assert last.rows == [] and not last.has_more
    finally:
        store.close()


async def test_run_logs_in_insertion_order_per_run(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite3")
    try:
        # Out-of-order timestamps: logs keep the order they were written in.
        await store.add_log("scr_a", 30, "run", "first")
        await store.add_log("scr_b", 10, "run", "other run")
        await store.add_log("scr_a", 20, "exec:exe_1", "second")
        await store.add_log("scr_a", 20, "scorer:tests", "third\nmultiline")
        assert await store.logs("scr_a") == [
            (30, "run", "first"),
            (20, "exec:exe_1", "second"),
            (20, "scorer:tests", "third\nmultiline"),
        ]
        assert await store.logs("scr_b") == [(10, "run", "other run")]
        assert await store.logs("scr_none") == []
    finally:
        store.close()


async def test_the_wal_stays_bounded_though_puts_commit_inline(tmp_path: Path) -> None:
    # Puts commit on the event loop and never checkpoint there; a worker thread checkpoints every
    # CHECKPOINT_EVERY writes, so the WAL is reused instead of growing with every write.
    store = Store(tmp_path / "db.sqlite3")
    payload = {"blob": "x" * 3000}
    wal = tmp_path / "db.sqlite3-wal"
    for i in range(CHECKPOINT_EVERY):
        await store.put("devboxes", f"dbx_{i}", payload)
    one_interval = wal.stat().st_size
    for i in range(CHECKPOINT_EVERY, 6 * CHECKPOINT_EVERY):
        await store.put("devboxes", f"dbx_{i}", payload)
    assert wal.stat().st_size < 2 * one_interval  # without checkpoints: about 6 times
    assert (await store.get("devboxes", f"dbx_{6 * CHECKPOINT_EVERY - 1}")) is not None
    store.close()


# --- a full disk (issue 15) ---------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: a data dir whose disk fills up in a moment."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


async def test_a_full_disk_is_a_clear_error_stores_nothing_half_made_and_work_resumes(small_disk: Path) -> None:
    async with LocalBackend(small_disk / "data") as engine:
        made = [await engine.create_scenario(_scenario("before"))]
        filler = _fill(small_disk)
        refused = None
        for i in range(200):  # the WAL's free pages may take a few writes before one needs the disk
            try:
                made.append(await engine.create_scenario(_scenario(f"while-full-{i}", text="x" * 20_000)))
            except DataDirFullError as exc:
                refused = exc
                break
        assert refused is not None, "no write failed on a full disk"
        assert "disk is full" in refused.message and str(small_disk) in refused.message
        assert refused.status == 507
        assert "free space" in refused.message
        # What was acknowledged is all there; the refused one is not, not even in part.
        listed = await engine.list_scenarios(limit=1000)
        assert {s.id for s in listed.scenarios} == {s.id for s in made}
        filler.unlink()  # space again: the same engine goes on
        after = await engine.create_scenario(_scenario("after"))
        assert (await engine.get_scenario(after.id)).name == "after"
    db = sqlite3.connect(small_disk / "data" / "scenario-mcp.sqlite3")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM scenarios").fetchone()[0] == len(made) + 1
    finally:
        db.close()


def _scenario(name: str, text: str = "p") -> ScenarioCreateParameters:
    return ScenarioCreateParameters(
        name=name,
        input_context=InputContext(problem_statement=text),
        scoring_contract=ScoringContract(
            scoring_function_parameters=[
                ScoringFunction(name="s", weight=1, scorer=BashScriptScorer(bash_script="echo 1"))
            ]
        ),
    )
