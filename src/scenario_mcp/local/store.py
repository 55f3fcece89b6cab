"""SQLite store: every acknowledged state change is one committed transaction (WAL).

Objects are kept as their Runloop view (JSON) plus a few indexed columns for filtering, and an
`internal` JSON blob for engine-only state (init pids, layer chains) that never leaves the engine.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from ..backend import DataDirFullError

T = TypeVar("T")

# The document tables: the only names that reach SQL as a table.
Table = Literal[
    "scenarios",
    "runs",
    "devboxes",
    "snapshots",
    "blueprints",
    "executions",
    "benchmarks",
    "benchmark_runs",
    "scorers",
    "objects",
    "network_policies",
    "agents",
    "secrets",
]
TABLES: tuple[Table, ...] = get_args(Table)


def _document_table(kind: str) -> str:
    return f"""
        CREATE TABLE {kind} (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            name TEXT,
            state TEXT,
            parent_id TEXT,
            data TEXT NOT NULL,
            internal TEXT NOT NULL DEFAULT '{{}}'
        );
        CREATE INDEX {kind}_parent ON {kind}(parent_id);
    """


# Each entry migrates the schema from version N to N+1; never edit a released entry, append.
MIGRATIONS: tuple[str, ...] = (
    # 1: scenarios, runs, devboxes, snapshots, blueprints, executions and run logs
    "\n".join(
        _document_table(kind) for kind in ("scenarios", "runs", "devboxes", "snapshots", "blueprints", "executions")
    )
    + """
    CREATE TABLE run_logs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        source TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX run_logs_run ON run_logs(run_id, seq);
    """,
    # 2: benchmarks, benchmark runs and custom scorers
    "\n".join(_document_table(kind) for kind in ("benchmarks", "benchmark_runs", "scorers")),
    # 3: the execution each `command_id` started on a devbox (execute's idempotency key)
    """
    CREATE TABLE command_ids (
        devbox_id TEXT NOT NULL,
        command_id TEXT NOT NULL,
        execution_id TEXT NOT NULL,
        PRIMARY KEY (devbox_id, command_id)
    );
    """,
    # 4: storage objects; the expression index serves the expiry sweep (Store.expired)
    _document_table("objects")
    + """
    CREATE INDEX objects_expiry ON objects(json_extract(data, '$.delete_after_time_ms'));
    """,
    # 5: network policies (names unique, as Runloop's are per account)
    _document_table("network_policies") + "CREATE UNIQUE INDEX network_policies_name ON network_policies(name);",
    # 6: agents (installed once, mounted into devboxes)
    _document_table("agents"),
    # 7: secrets (names unique; values sealed with the data dir's key, local/secrets.py)
    _document_table("secrets") + "CREATE UNIQUE INDEX secrets_name ON secrets(name);",
)

SCHEMA_VERSION = len(MIGRATIONS)
# A field of a document's JSON a list may filter on: a plain name, so it is safe in a JSON path.
DATA_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The columns a list may search for text in (Store.list's `contains`).
TEXT_COLUMNS = frozenset({"id", "name"})
# Writes between two WAL checkpoints (each a few pages): bounds the WAL file to a few MiB.
CHECKPOINT_EVERY = 256


@dataclass(frozen=True)
class Row:
    id: str
    data: dict[str, Any]
    internal: dict[str, Any]


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    has_more: bool
    total_count: int


_STORE_THREADS: RunVar[anyio.CapacityLimiter] = RunVar("scenario_mcp_store_threads")


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn` in a worker thread of the store's own: its reads never queue behind file-system or
    process work that holds the shared worker threads (64 devboxes ending at once)."""
    try:
        limiter = _STORE_THREADS.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(4)  # one connection, used under a lock: a few suffice
        _STORE_THREADS.set(limiter)
    return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed transaction survives any crash of this process (kill -9
        # included); only a power loss or kernel crash may lose the last ones. FULL would fsync
        # every commit, ~2 ms each here, on every exec.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        # Checkpoints (which fsync) run only in worker threads, never inline on the event loop:
        # see put() and _run().
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        self._writes_since_checkpoint = 0
        self._migrate()

    def _migrate(self) -> None:
        version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"database {self.path} has schema version {version}, newer than this scenario-mcp "
                f"({SCHEMA_VERSION}); upgrade scenario-mcp or use another --data-dir"
            )
        for target in range(version, SCHEMA_VERSION):
            # One script per step so the schema change and its version number commit together.
            with self._lock:
                self._conn.executescript(
                    f"BEGIN IMMEDIATE;\n{MIGRATIONS[target]}\nPRAGMA user_version={target + 1};\nCOMMIT;"
                )

    def close(self) -> None:
        """Checkpoint the WAL into the database and close: a stopped server leaves no WAL behind."""
        with self._lock:
            with contextlib.suppress(sqlite3.Error):  # a busy or full disk: the WAL stays, still valid
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()

    # --- sync primitives (in a worker thread, or inline: see _run_now) -------------------------

    def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on the connection, in the calling (worker) thread; checkpoint when due."""
        with self._lock, self._disk_full_said():
            result = fn(self._conn)
            if self._writes_since_checkpoint >= CHECKPOINT_EVERY:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                self._writes_since_checkpoint = 0
            return result

    @contextlib.contextmanager
    def _disk_full_said(self) -> Iterator[None]:
        """A full disk is the caller's to fix, and said so; SQLite has rolled the write back whole
        (a transaction commits whole or not at all), so nothing half-made is stored."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_FULL:
                raise
            with contextlib.suppress(sqlite3.Error):
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            raise DataDirFullError(
                f"the data dir's disk is full ({self.path.parent}): nothing was stored; free space there and retry"
            ) from exc

    def _run_now(self, fn: Callable[[sqlite3.Connection], None]) -> bool:
        """Run a small write now, on the calling thread, if the connection is free and no
        checkpoint is due; False otherwise. A commit here does not fsync (WAL, synchronous=NORMAL):
        it costs less than the hop to a worker thread, which every exec's completion would pay."""
        if self._writes_since_checkpoint >= CHECKPOINT_EVERY or not self._lock.acquire(blocking=False):
            return False
        try:
            with self._disk_full_said():
                fn(self._conn)
        finally:
            self._lock.release()
        return True

    def _write_row(
        self,
        conn: sqlite3.Connection,
        kind: Table,
        ident: str,
        data: dict[str, Any],
        internal: dict[str, Any] | None,
        name: str | None,
        state: str | None,
        parent_id: str | None,
    ) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                f"""INSERT INTO {kind} (id, name, state, parent_id, data, internal)
                    VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET name=excluded.name, state=excluded.state,
                        parent_id=excluded.parent_id, data=excluded.data,
                        internal=CASE WHEN ? THEN excluded.internal ELSE {kind}.internal END""",
                (
                    ident,
                    name,
                    state,
                    parent_id,
                    json.dumps(data),
                    json.dumps(internal or {}),
                    internal is not None,
                ),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite rolls back by itself on some errors (a full disk)
                conn.execute("ROLLBACK")
            raise
        self._writes_since_checkpoint += 1

    def _get(self, kind: Table, ident: str) -> Row | None:
        row = self._run(lambda c: c.execute(f"SELECT id, data, internal FROM {kind} WHERE id = ?", (ident,)).fetchone())
        return None if row is None else Row(row[0], json.loads(row[1]), json.loads(row[2]))

    def _list(
        self,
        kind: Table,
        limit: int,
        starting_after: str | None,
        filters: dict[str, str | Sequence[str] | None],
        data_fields: Mapping[str, str | None],
        metadata: Mapping[str, Sequence[str]],
        contains: Sequence[tuple[Sequence[str], str]] = (),
    ) -> Page:
        where: list[str] = []
        args: list[Any] = []
        for columns, text in contains:
            # Any of the columns holds the text, in any case; the column names are checked.
            if not columns or not set(columns) <= TEXT_COLUMNS:
                raise ValueError(f"not searchable columns: {columns!r}")
            where.append("(" + " OR ".join(f"instr(lower({c}), lower(?)) > 0" for c in columns) + ")")
            args.extend(text for _ in columns)
        for column, value in filters.items():
            if value is None:
                continue
            if isinstance(value, str):
                where.append(f"{column} = ?")
                args.append(value)
            else:
                where.append(f"{column} IN ({', '.join('?' for _ in value)})")
                args.extend(value)
        for field, value in data_fields.items():
            if value is None:
                continue
            if not DATA_FIELD.fullmatch(field):
                raise ValueError(f"not a filterable field: {field!r}")
            where.append(f"json_extract(data, '$.{field}') = ?")
            args.append(value)
        for key, values in metadata.items():
            # Any of the values; keys are bound, never spliced into a JSON path.
            where.append(
                "EXISTS (SELECT 1 FROM json_each(data, '$.metadata') AS m "
                f"WHERE m.key = ? AND m.value IN ({', '.join('?' for _ in values)}))"
            )
            args.extend([key, *values])

        def op(conn: sqlite3.Connection) -> Page:
            clause = " AND ".join(where) or "1"
            total = int(conn.execute(f"SELECT COUNT(*) FROM {kind} WHERE {clause}", args).fetchone()[0])
            page_clause, page_args = clause, list(args)
            if starting_after is not None:
                # Newest first, as Runloop lists: "after" an id means older than it.
                page_clause += f" AND seq < (SELECT seq FROM {kind} WHERE id = ?)"
                page_args.append(starting_after)
            rows = conn.execute(
                f"SELECT id, data, internal FROM {kind} WHERE {page_clause} ORDER BY seq DESC LIMIT ?",
                [*page_args, limit + 1],
            ).fetchall()
            return Page(
                [Row(r[0], json.loads(r[1]), json.loads(r[2])) for r in rows[:limit]],
                has_more=len(rows) > limit,
                total_count=total,
            )

        return self._run(op)

    def _delete(self, kind: Table, ident: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            self._writes_since_checkpoint += 1
            return conn.execute(f"DELETE FROM {kind} WHERE id = ?", (ident,)).rowcount > 0

        return self._run(op)

    def _logs(self, run_id: str) -> list[tuple[int, str, str]]:
        return self._run(
            lambda c: [
                (int(r[0]), str(r[1]), str(r[2]))
                for r in c.execute(
                    "SELECT timestamp_ms, source, message FROM run_logs WHERE run_id = ? ORDER BY seq",
                    (run_id,),
                ).fetchall()
            ]
        )

    def _metadata_keys(self, kind: Table) -> list[str]:
        sql = f"SELECT DISTINCT m.key FROM {kind}, json_each({kind}.data, '$.metadata') AS m ORDER BY m.key"
        return self._run(lambda c: [str(r[0]) for r in c.execute(sql).fetchall()])

    def _metadata_values(self, kind: Table, key: str) -> list[str]:
        sql = (
            f"SELECT DISTINCT m.value FROM {kind}, json_each({kind}.data, '$.metadata') AS m "
            "WHERE m.key = ? ORDER BY m.value"
        )
        return self._run(lambda c: [str(r[0]) for r in c.execute(sql, (key,)).fetchall()])

    def integrity_check(self) -> str:
        return str(self._run(lambda c: c.execute("PRAGMA integrity_check").fetchone()[0]))

    # --- async API -----------------------------------------------------------------------------

    async def put(
        self,
        kind: Table,
        ident: str,
        data: dict[str, Any],
        *,
        internal: dict[str, Any] | None = None,
        name: str | None = None,
        state: str | None = None,
        parent_id: str | None = None,
    ) -> None:
        """Insert or replace one object; `internal=None` keeps the stored internal state."""

        def write(conn: sqlite3.Connection) -> None:
            self._write_row(conn, kind, ident, data, internal, name, state, parent_id)

        await self._write(write)

    async def get(self, kind: Table, ident: str) -> Row | None:
        """One row by id: inline when the connection is free (a primary-key read costs less than
        the hop to a worker thread), else in the store's own threads."""
        if self._writes_since_checkpoint < CHECKPOINT_EVERY and self._lock.acquire(blocking=False):
            try:
                row = self._conn.execute(f"SELECT id, data, internal FROM {kind} WHERE id = ?", (ident,)).fetchone()
            finally:
                self._lock.release()
            return None if row is None else Row(row[0], json.loads(row[1]), json.loads(row[2]))
        return await _in_thread(self._get, kind, ident)

    async def list(
        self,
        kind: Table,
        *,
        limit: int = 20,
        starting_after: str | None = None,
        data_fields: Mapping[str, str | None] | None = None,
        metadata: Mapping[str, Sequence[str]] | None = None,
        contains: Sequence[tuple[Sequence[str], str]] = (),
        **filters: str | Sequence[str] | None,
    ) -> Page:
        """A page, newest first. `filters` match columns (a sequence: any of), `data_fields` fields
        of the stored view, `metadata` the view's metadata (each key: any of its values), and each
        `contains` entry (columns, text) a text that one of those columns holds (`id`, `name`)."""
        return await _in_thread(
            self._list, kind, limit, starting_after, filters, data_fields or {}, metadata or {}, contains
        )

    async def expired(self, kind: Table, field: str, now_ms: int) -> builtins.list[str]:
        """The ids of this kind's objects whose `field` (a time in ms since the epoch) is at or
        before `now_ms`, oldest deadline first."""
        if not DATA_FIELD.fullmatch(field):
            raise ValueError(f"not a time field: {field!r}")
        expression = f"json_extract(data, '$.{field}')"
        sql = f"SELECT id FROM {kind} WHERE {expression} <= ? ORDER BY {expression}"
        return await _in_thread(self._run, lambda c: [str(r[0]) for r in c.execute(sql, (now_ms,)).fetchall()])

    async def delete(self, kind: Table, ident: str) -> bool:
        return await _in_thread(self._delete, kind, ident)

    async def add_log(self, run_id: str, timestamp_ms: int, source: str, message: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO run_logs (run_id, timestamp_ms, source, message) VALUES (?, ?, ?, ?)",
                (run_id, timestamp_ms, source, message),
            )
            self._writes_since_checkpoint += 1

        await self._write(write)

    async def _write(self, fn: Callable[[sqlite3.Connection], None]) -> None:
        """A small write (one row): inline when it can be (see _run_now), else in a worker thread."""
        if not self._run_now(fn):
            await _in_thread(self._run, fn)

    async def command_execution(self, devbox_id: str, command_id: str) -> str | None:
        """The execution `command_id` started on this devbox, if it started one."""

        def op(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT execution_id FROM command_ids WHERE devbox_id = ? AND command_id = ?", (devbox_id, command_id)
            ).fetchone()
            return None if row is None else str(row[0])

        return await _in_thread(self._run, op)

    async def set_command_execution(self, devbox_id: str, command_id: str, execution_id: str | None) -> None:
        """Record (or, with None, forget) the execution `command_id` started on this devbox."""

        def write(conn: sqlite3.Connection) -> None:
            if execution_id is None:
                conn.execute("DELETE FROM command_ids WHERE devbox_id = ? AND command_id = ?", (devbox_id, command_id))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO command_ids (devbox_id, command_id, execution_id) VALUES (?, ?, ?)",
                    (devbox_id, command_id, execution_id),
                )
            self._writes_since_checkpoint += 1

        await self._write(write)

    async def metadata_keys(self, kind: Table) -> builtins.list[str]:
        """Every key of the `metadata` of this kind's objects, sorted."""
        return await _in_thread(self._metadata_keys, kind)

    async def metadata_values(self, kind: Table, key: str) -> builtins.list[str]:
        """Every value one metadata key takes across this kind's objects, sorted."""
        return await _in_thread(self._metadata_values, kind, key)

    async def logs(self, run_id: str) -> builtins.list[tuple[int, str, str]]:
        return await _in_thread(self._logs, run_id)

    async def runs_with_logs_ended_before(self, cutoff_ms: int, states: Sequence[str]) -> builtins.list[str]:
        """Runs in one of `states` that ended before `cutoff_ms` and still have log entries."""

        def query(conn: sqlite3.Connection) -> builtins.list[str]:
            marks = ",".join("?" * len(states))
            rows = conn.execute(
                f"SELECT id FROM runs WHERE state IN ({marks}) "
                "AND json_extract(data, '$.start_time_ms') + COALESCE(json_extract(data, '$.duration_ms'), 0) < ? "
                "AND EXISTS (SELECT 1 FROM run_logs WHERE run_logs.run_id = runs.id)",
                (*states, cutoff_ms),
            ).fetchall()
            return [str(row[0]) for row in rows]

        return await _in_thread(self._run, query)

    async def delete_logs(self, run_ids: Sequence[str]) -> int:
        """Remove these runs' log entries (their rows stay); how many went."""

        def delete(conn: sqlite3.Connection) -> int:
            removed = 0
            conn.execute("BEGIN IMMEDIATE")
            try:
                for run_id in run_ids:
                    removed += conn.execute("DELETE FROM run_logs WHERE run_id = ?", (run_id,)).rowcount
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            self._writes_since_checkpoint += len(run_ids)
            return removed

        return await _in_thread(self._run, delete)
