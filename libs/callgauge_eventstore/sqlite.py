"""The SQLite event store adapter (the embedded default).

One SQLite connection per store instance, used by one dedicated worker thread (a
single-thread executor), so the asyncio loop never blocks on the database. The file
is in WAL mode: readers never block the writer and see only committed transactions.

Gap-safe global positions
-------------------------
Every append runs in a ``BEGIN IMMEDIATE`` transaction, which takes SQLite's single
database-wide write lock *before* anything is read or a position is allocated (other
writers, from this process or any other, wait on ``busy_timeout``). Positions come from
``INTEGER PRIMARY KEY AUTOINCREMENT`` inside that transaction, and the lock is released
only when the transaction has committed. So positions are allocated and committed in
the same order: when a reader of ``read_all`` has seen position p, every event with a
position < p is already committed and visible, and no event can later commit with a
position <= p. A rolled-back append rolls back its AUTOINCREMENT counter too, so
positions stay dense (1, 2, 3, ...) — though readers must not rely on density.

Tables: ``events`` (position, id, stream, version, type, data, metadata JSON text,
recorded_at ISO-8601 UTC) with UNIQUE(id) and UNIQUE(stream, version); ``checkpoints``
(name, position); ``store_info`` (key, value) remembers the namespace the file belongs to.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from callgauge_eventstore._common import (
    AsyncContextStore,
    Notifier,
    StoreClosed,
    call_values,
    CALL_COUNTS_TABLE,
    call_counts_add_sql,
    call_counts_backfill_sql,
    call_counts_ddl,
    calls_ddl,
    calls_upgrade_ddl,
    calls_insert_sql,
    calls_query_sql,
    counted_query_sql,
    first_of_each_call,
    check_append_args,
    check_namespace,
    check_version,
    dump_metadata,
    idempotent_position,
    poll_all,
)
from callgauge_eventstore.port import (
    CallQuery,
    CallRow,
    EventStoreError,
    NewEvent,
    RecordedEvent,
    StoreUnavailable,
)

T = TypeVar("T")

MEMORY = ":memory:"
# the read connections of a file store, each on a thread of its own: "query" serves requests (a
# stream, a page of calls, a projection), "log" the relay's and the projectors' reads of the log
READ_LANES = ("query", "log")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position    INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    stream      TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    type        TEXT    NOT NULL,
    data        BLOB    NOT NULL,
    metadata    TEXT    NOT NULL DEFAULT '{}',
    recorded_at TEXT    NOT NULL,
    UNIQUE (stream, version)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    name     TEXT    PRIMARY KEY,
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS projection_rows (
    projection TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      BLOB NOT NULL,
    PRIMARY KEY (projection, key)
);
CREATE TABLE IF NOT EXISTS store_info (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_COLUMNS = "position, id, stream, version, type, data, metadata, recorded_at"
# an event's Kafka key (OutboxRelay.key_of in SQL): the metadata's partition_key, else its
# correlation_id, else the stream
_RELAY_KEY = ("COALESCE(NULLIF(json_extract(metadata, '$.partition_key'), ''), "
              "NULLIF(json_extract(metadata, '$.correlation_id'), ''), stream)")


def _projection_cp(name: str) -> str:
    return f"projection:{name}"


def _row_to_event(row: tuple[Any, ...]) -> RecordedEvent:
    position, id_, stream, version, type_, data, metadata, recorded_at = row
    return RecordedEvent(
        id=uuid.UUID(id_),
        type=type_,
        data=bytes(data),
        metadata=json.loads(metadata),
        stream=stream,
        version=version,
        position=position,
        recorded_at=datetime.fromisoformat(recorded_at),
    )


class SqliteEventStore(AsyncContextStore):
    """EventStore on one SQLite file (or ``":memory:"``, private to this instance).

    ``path``: the database file; parent directories are created on first use.
    ``namespace``: when given, recorded in the file on first use; opening a file that
    belongs to another namespace raises EventStoreError (two services must not share
    one file by accident).
    ``busy_timeout``: seconds a writer waits for another connection's write lock.

    Nothing is opened at construction: the connection is made by ``open()`` or by the
    first operation. Usable as ``async with SqliteEventStore(...) as store:``.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, namespace: str | None = None, busy_timeout: float = 30.0
    ) -> None:
        self._path = str(path)
        self._namespace = check_namespace(namespace) if namespace is not None else None
        self._busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # touched only by the worker thread
        # reads that need no write lock run on connections and threads of their own (READ_LANES): in
        # WAL mode they read the last commit while the writer writes, instead of queueing behind a
        # run's batches of appends; and a request's read (a run's stream, a page of calls) does not
        # queue behind the relay's and projectors' reads of the log, 500 events each (a file store
        # only: ":memory:" is private to one connection)
        self._readers: dict[str, ThreadPoolExecutor] = {}
        self._rconns: dict[str, sqlite3.Connection] = {}  # each touched only by its lane's thread
        self._open_lock: asyncio.Lock | None = None
        self._opened = False
        self._closed = False
        self._notifier = Notifier()

    @property
    def path(self) -> str:
        return self._path

    def __repr__(self) -> str:
        return f"SqliteEventStore({self._path!r}, namespace={self._namespace!r})"

    # -- plumbing -------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and create the tables if missing (idempotent)."""
        if self._closed:
            raise StoreClosed(f"{self!r} is closed")
        if self._opened:
            return
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self._opened:
                return
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="callgauge-sqlite")
            await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)
            if self._path != MEMORY and not self._readers:
                for lane in READ_LANES:
                    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"callgauge-sqlite-{lane}")
                    self._readers[lane] = reader
                    await asyncio.get_running_loop().run_in_executor(reader, self._connect_reader, lane)
            self._opened = True

    def _connect(self) -> None:
        if self._conn is not None:
            return
        if self._path != MEMORY:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit; transactions are explicit (BEGIN IMMEDIATE).
        conn = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None)
        try:
            if self._path != MEMORY:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise EventStoreError(f"{self._path}: cannot switch SQLite to WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous=NORMAL")  # durable across app crashes; WAL keeps it consistent
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                counts_made = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                           (CALL_COUNTS_TABLE,)).fetchone() is not None
                for statement in calls_ddl("BLOB") + calls_upgrade_ddl() + [call_counts_ddl()]:
                    conn.execute(statement)
                if not counts_made:  # a store made before the counts: count its calls once
                    conn.execute(call_counts_backfill_sql())
                if self._namespace is not None:
                    row = conn.execute("SELECT value FROM store_info WHERE key = 'namespace'").fetchone()
                    if row is None:
                        conn.execute(
                            "INSERT INTO store_info (key, value) VALUES ('namespace', ?)", (self._namespace,)
                        )
                    elif row[0] != self._namespace:
                        raise EventStoreError(
                            f"{self._path} holds the event store of namespace {row[0]!r}, "
                            f"not {self._namespace!r}"
                        )
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _connect_reader(self, lane: str) -> None:
        conn = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None)
        conn.execute("PRAGMA query_only=ON")
        self._rconns[lane] = conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn` on the writer's connection and thread (every write, and reads that must follow them)."""
        if not self._opened:
            await self.open()
        return await self._submit(self._executor, lambda: self._conn, fn)

    async def _read(self, fn: Callable[[sqlite3.Connection], T], lane: str = "query") -> T:
        """`fn`, a read, on its lane's connection and thread (the writer's for ":memory:")."""
        if not self._opened:
            await self.open()
        reader = self._readers.get(lane)
        if reader is None:
            return await self._run(fn)
        return await self._submit(reader, lambda: self._rconns.get(lane), fn)

    async def _submit(self, executor: ThreadPoolExecutor | None, conn: Callable[[], sqlite3.Connection | None],
                      fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed or executor is None:
            raise StoreClosed(f"{self!r} is closed")

        def job() -> T:
            c = conn()
            if c is None:
                raise StoreClosed(f"{self!r} is closed")
            try:
                return fn(c)
            except sqlite3.OperationalError as e:
                if _unavailable(e):
                    raise StoreUnavailable(f"{self._path}: {e}") from e
                raise

        try:
            return await asyncio.get_running_loop().run_in_executor(executor, job)
        except RuntimeError as e:  # executor shut down concurrently
            if self._closed:
                raise StoreClosed(f"{self!r} is closed") from e
            raise

    async def close(self) -> None:
        """Close the connection and stop the worker thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._notifier.notify()
        loop = asyncio.get_running_loop()
        readers, self._readers = self._readers, {}
        for lane, reader in readers.items():

            def shutdown_reader(lane: str = lane) -> None:
                conn = self._rconns.pop(lane, None)
                if conn is not None:
                    conn.close()

            await loop.run_in_executor(reader, shutdown_reader)
            await loop.run_in_executor(None, reader.shutdown, True)
        executor, self._executor = self._executor, None
        if executor is None:
            return

        def shutdown() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await loop.run_in_executor(executor, shutdown)
        await loop.run_in_executor(None, executor.shutdown, True)

    # -- writes ---------------------------------------------------------------------------

    async def append_to_stream(self, stream: str, current_version: int, events: Sequence[NewEvent]) -> int:
        """Append atomically; return the commit position of the last event.

        Appending an empty sequence is a no-op: nothing is checked or written and the
        store's current ``last_position()`` is returned. If every event id is already
        recorded in this stream, nothing is written, no version check is made, and the
        highest position among them is returned (idempotent repeat). DuplicateEventId if
        only some are recorded, or one is recorded in another stream.
        """
        expected = check_append_args(stream, current_version, events)
        if not events:
            return await self.last_position()
        events = list(events)

        def append(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")  # the write lock, before any read or allocation
            try:
                position = self._append_locked(conn, stream, expected, events)
                conn.execute("COMMIT")
                return position
            except BaseException:
                _rollback(conn)
                raise

        position = await self._run(append)
        self._notifier.notify()
        return position

    @staticmethod
    def _append_locked(conn: sqlite3.Connection, stream: str, expected: int, events: list[NewEvent]) -> int:
        ids = [str(ev.id) for ev in events]
        found: list[tuple[uuid.UUID, str, int]] = []
        for i in range(0, len(ids), 500):  # stay below SQLite's bound-parameter limit
            chunk = ids[i : i + 500]
            rows = conn.execute(
                f"SELECT id, stream, position FROM events WHERE id IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall()
            found.extend((uuid.UUID(r[0]), r[1], r[2]) for r in rows)
        repeat = idempotent_position(stream, events, found)
        if repeat is not None:
            return repeat

        actual = conn.execute("SELECT MAX(version) FROM events WHERE stream = ?", (stream,)).fetchone()[0]
        check_version(stream, expected, actual)
        first = 0 if actual is None else actual + 1
        recorded_at = datetime.now(UTC).isoformat()
        conn.executemany(
            "INSERT INTO events (id, stream, version, type, data, metadata, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    str(ev.id),
                    stream,
                    first + n,
                    ev.type,
                    bytes(ev.data),
                    dump_metadata(ev.metadata),
                    recorded_at,
                )
                for n, ev in enumerate(events)
            ],
        )
        return conn.execute("SELECT last_insert_rowid()").fetchone()[0]

    async def set_checkpoint(self, name: str, position: int) -> None:
        def upsert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO checkpoints (name, position) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                (name, int(position)),
            )

        await self._run(upsert)

    async def read_projection(self, name: str) -> tuple[dict[str, bytes], int]:
        def read(conn: sqlite3.Connection) -> tuple[dict[str, bytes], int]:
            conn.execute("BEGIN")  # one snapshot for the rows and their checkpoint
            try:
                rows = conn.execute("SELECT key, value FROM projection_rows WHERE projection = ?", (name,))
                out = {k: bytes(v) for k, v in rows.fetchall()}
                cp = conn.execute("SELECT position FROM checkpoints WHERE name = ?", (_projection_cp(name),))
                row = cp.fetchone()
            finally:
                conn.execute("COMMIT")
            return out, row[0] if row else 0

        return await self._read(read)

    async def commit_projection(
        self, name: str, position: int, upserts: Mapping[str, bytes], deletes: Sequence[str] = (),
        replace: bool = False,
    ) -> None:
        rows = [(name, str(k), bytes(v)) for k, v in upserts.items()]

        def commit(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if replace:
                    conn.execute("DELETE FROM projection_rows WHERE projection = ?", (name,))
                conn.executemany("DELETE FROM projection_rows WHERE projection = ? AND key = ?",
                                 [(name, k) for k in deletes])
                conn.executemany(
                    "INSERT INTO projection_rows (projection, key, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (projection, key) DO UPDATE SET value = excluded.value", rows)
                conn.execute(
                    "INSERT INTO checkpoints (name, position) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                    (_projection_cp(name), int(position)))
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

        await self._run(commit)

    async def commit_calls(self, name: str, position: int, rows: Sequence[CallRow]) -> None:
        # one insert per (run, outcome), so each one's rowcount is the calls it added to that count
        groups: dict[tuple[str, str], list[tuple]] = {}
        for r in first_of_each_call(rows):
            groups.setdefault((r.run_id, r.outcome), []).append(call_values(r))

        def commit(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                added = []
                for (run_id, outcome), values in groups.items():
                    n = conn.executemany(calls_insert_sql(), values).rowcount
                    if n > 0:
                        added.append((run_id, outcome, n))
                if added:
                    conn.executemany(call_counts_add_sql(), added)
                conn.execute(
                    "INSERT INTO checkpoints (name, position) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                    (name, int(position)))
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

        await self._run(commit)

    async def read_calls(self, query: CallQuery) -> list[tuple[tuple[float, int, str], bytes]]:
        statement, params = calls_query_sql(query)
        rows = await self._read(lambda conn: conn.execute(statement, params).fetchall())
        return [((key, idx, call_id), bytes(data)) for key, idx, call_id, data in rows]

    async def count_calls(self, query: CallQuery) -> int:
        statement, params = counted_query_sql(query) or calls_query_sql(query, count=True)
        return await self._read(lambda conn: conn.execute(statement, params).fetchone()[0])

    # -- reads ----------------------------------------------------------------------------

    async def read_stream(
        self, stream: str, from_version: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        def read(conn: sqlite3.Connection) -> list[RecordedEvent]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE stream = ? AND version >= ? ORDER BY version LIMIT ?",
                (stream, max(int(from_version), 0), -1 if limit is None else max(int(limit), 0)),
            ).fetchall()
            return [_row_to_event(r) for r in rows]

        return await self._read(read)

    async def stream_version(self, stream: str) -> int | None:
        return await self._run(
            lambda conn: conn.execute(
                "SELECT MAX(version) FROM events WHERE stream = ?", (stream,)
            ).fetchone()[0]
        )

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        if limit <= 0:
            raise ValueError("limit must be > 0")

        def read(conn: sqlite3.Connection) -> list[RecordedEvent]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?",
                (int(after_position), int(limit)),
            ).fetchall()
            return [_row_to_event(r) for r in rows]

        return await self._read(read, "log")

    async def last_position(self) -> int:
        return await self._run(
            lambda conn: conn.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()[0]
        )

    async def relay_keys(self, after_position: int, up_to: int) -> set[str]:
        """The Kafka keys the outbox relay gives the events in (after_position, up_to]: the metadata's
        partition_key, else its correlation_id, else the stream (one SQL pass, no event decoded)."""

        def read(conn: sqlite3.Connection) -> set[str]:
            rows = conn.execute(f"SELECT DISTINCT {_RELAY_KEY} FROM events "
                                "WHERE position > ? AND position <= ?",
                                (int(after_position), int(up_to))).fetchall()
            return {r[0] for r in rows}

        return await self._read(read, "log")

    async def relay_keys_after(self, after_position: int, limit: int) -> list[tuple[int, str]]:
        """(position, relay key) of the next `limit` events after after_position: the relay's lane
        scans with it without reading or decoding the events."""

        def read(conn: sqlite3.Connection) -> list[tuple[int, str]]:
            return conn.execute(f"SELECT position, {_RELAY_KEY} FROM events "
                                "WHERE position > ? ORDER BY position LIMIT ?",
                                (int(after_position), int(limit))).fetchall()

        return await self._read(read, "log")

    def news(self) -> asyncio.Event:
        """An event set at the next commit made through this instance (take it before reading, so a
        commit between the read and the wait is not missed): the outbox relay waits on it instead of
        polling."""
        return self._notifier.waiter()

    def subscribe_all(
        self, after_position: int = 0, poll_interval: float = 0.05
    ) -> AsyncIterator[RecordedEvent]:
        """Catch up from after_position, then follow new events; never ends by itself.

        Polls every poll_interval; appends made through this instance wake it at once.
        Appends from other connections (other processes) are seen at the next poll.
        """
        return poll_all(self.read_all, self._notifier, after_position, poll_interval)

    async def get_checkpoint(self, name: str) -> int:
        row = await self._run(
            lambda conn: conn.execute("SELECT position FROM checkpoints WHERE name = ?", (name,)).fetchone()
        )
        return 0 if row is None else row[0]


# SQLite's own words for a store that cannot write now: no space, an I/O error, a read-only file or
# directory. Any of them is temporary from the caller's side (StoreUnavailable), unlike a bad query.
_UNAVAILABLE = ("disk is full", "disk i/o error", "readonly", "unable to open")


def _unavailable(e: sqlite3.OperationalError) -> bool:
    return any(word in str(e).lower() for word in _UNAVAILABLE)


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the transaction the failure left, if any. After SQLITE_FULL or an I/O error SQLite
    has often rolled it back already; a second ROLLBACK would then raise "cannot rollback - no
    transaction is active" and hide the real cause, so it is only issued while one is open, and a
    failure of the rollback itself never replaces the error being raised."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
