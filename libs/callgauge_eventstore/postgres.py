"""The PostgreSQL event store adapter (psycopg 3, async, with a connection pool).

Each store lives in its own schema (the namespace), so several services can share one
database: ``<schema>.events`` and ``<schema>.checkpoints``, created if missing on
``open()`` (or the first operation; the DDL is skipped when both tables exist, so a role
without CREATE privilege works on a prepared schema). Nothing connects at import or
construction.

Gap-safe global positions
-------------------------
A plain ``BIGSERIAL`` is NOT safe for readers: two concurrent transactions may take
positions 10 and 11 and commit in the order 11, 10; a reader of ``read_all`` that saw 11
and moved its cursor past it would never see 10.

So every append first takes a transaction-scoped advisory lock that is unique to the
schema (``pg_advisory_xact_lock(key)``, key = a 64-bit hash of the schema name), and only
then, under that lock, does its checks and allocates positions as ``max(position) + 1,
+ 2, ...`` (an index-only lookup). The lock is released by the COMMIT (or ROLLBACK), after
the transaction has become visible to other sessions. Hence appends to one schema are
serialised: positions are allocated and committed in the same order, every event with a
position < p is visible by the time an event at p is, and no event can later commit with
a position <= p. (In READ COMMITTED each statement takes a new snapshot, so the
``max(position)`` read after the lock sees the previous writer's commit.) As a bonus
positions are dense (1, 2, 3, ...: no sequence gaps after rollbacks), though readers must
not rely on density. Readers take no lock and are never blocked.

An advisory lock is used rather than ``LOCK TABLE ... IN EXCLUSIVE MODE`` because it
does not conflict with (auto)vacuum, ``CREATE INDEX CONCURRENTLY`` or other maintenance
on the table; only our writers take it. Anyone writing to ``<schema>.events`` by other
means must take the same lock (see ``append_lock_key()``).

One round trip per append
-------------------------
The lock, the idempotency and version checks, the position allocation, the INSERT and the NOTIFY
run server-side in one statement, the schema's ``append_events`` function (created with the
tables, ``CREATE OR REPLACE``: an upgrade adds it), in the statement's own transaction. A client
that did them one statement at a time paid ~8 round trips per append, 6 of them while holding the
lock, so appends to a schema were limited by the round-trip time of a busy client (a media-engine
appends one metering event per answered call). Where the function cannot be created (a role
without CREATE on a prepared schema) the same steps run as separate statements.

Group commit: the appends of one store instance that are waiting while one is being written
go together in the next transaction (one ``append_events`` call each, pipelined, at most
``GROUP_MAX`` of them), so they pay one commit (one WAL flush, under the lock) instead of one
each. Each keeps its own outcome: one refused (wrong version, duplicate id) writes nothing and
does not fail the others; an error of the transaction itself (connection lost) fails them all, and
none of them is written.

A pooled connection is checked with a round trip only when it was idle for more than
``CHECK_IDLE_S`` (one that has been used just now is not stale); a busy store pays one round trip
per read, not two.

subscribe_all polls; with ``listen_notify=True`` (the default) each append also does a
``pg_notify`` on a per-schema channel and each subscribing store instance keeps one
extra connection LISTENing, so subscribers wake up as soon as an append commits, from any
process. Notifications are only a wake-up hint: correctness never depends on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from callgauge_eventstore._common import (
    AsyncContextStore,
    Notifier,
    StoreClosed,
    CALLS_INDEXES,
    CALLS_TABLE,
    call_values,
    CALL_COUNTS_TABLE,
    call_counts_backfill_sql,
    call_counts_ddl,
    calls_ddl,
    calls_upgrade_ddl,
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
from callgauge_eventstore.port import CallQuery, CallRow, NewEvent, RecordedEvent

log = logging.getLogger(__name__)

_COLUMNS = "position, id, stream, version, type, data, metadata, recorded_at"
# an event's Kafka key (OutboxRelay.key_of in SQL): the metadata's partition_key, else its
# correlation_id, else the stream
_RELAY_KEY = (
    "COALESCE(NULLIF(metadata->>'partition_key', ''), NULLIF(metadata->>'correlation_id', ''), stream)"
)
GROUP_MAX = 256  # appends written in one transaction at most
CHECK_IDLE_S = 5.0  # a pooled connection idle longer than this is checked (one round trip) before use
_APPEND_SIGNATURE = "append_events(bigint, text, bigint, uuid[], text[], bytea[], text[], text)"
_CALLS_PLAN = "SET LOCAL enable_sort = off"  # a calls page is an index walk, never a sort (read_calls)


def _append_function(schema: sql.Identifier) -> sql.Composable:
    """The server-side append (see the module's doc): returns one row (outcome, position, actual
    version, an id recorded in another stream, that stream, how many ids were recorded already).
    Outcomes: ok, repeat (every id recorded in this stream: nothing written), other_stream,
    partial (some ids recorded), wrong_version (nothing written).

    ``SET enable_seqscan = off``: PL/pgSQL caches a generic plan per session, and one made while
    the table was empty scans it (``Seq Scan`` for ``id = ANY(p_ids)``, seen with auto_explain);
    it stays in use as the table grows, so each append read the whole table: a 300,000-call run
    on PostgreSQL fell to ~130 media-engine appends/s (34,141 sequential scans, 4.2 billion rows
    read). Every lookup here has its index (id, (stream, version), position), so the plans are
    index scans at any size."""
    return sql.SQL(
        """CREATE OR REPLACE FUNCTION {s}.append_events(
            p_lock BIGINT, p_stream TEXT, p_expected BIGINT, p_ids UUID[], p_types TEXT[], p_data BYTEA[],
            p_meta TEXT[], p_channel TEXT)
        RETURNS TABLE (outcome TEXT, pos BIGINT, actual BIGINT, dup_id UUID, dup_stream TEXT, found INTEGER)
        LANGUAGE plpgsql VOLATILE SET enable_seqscan = off AS $fn$
        DECLARE
            v_found INTEGER; v_max BIGINT; v_other UUID; v_other_stream TEXT; v_actual BIGINT;
            v_head BIGINT; v_now TIMESTAMPTZ; v_n INTEGER := cardinality(p_ids);
        BEGIN
            -- the gap-safety lock, held to the end of the calling statement's transaction
            PERFORM pg_advisory_xact_lock(p_lock);
            SELECT count(*), max(e.position) INTO v_found, v_max FROM {s}.events e WHERE e.id = ANY(p_ids);
            IF v_found > 0 THEN
                SELECT e.id, e.stream INTO v_other, v_other_stream FROM {s}.events e
                    WHERE e.id = ANY(p_ids) AND e.stream <> p_stream LIMIT 1;
                IF v_other IS NOT NULL THEN
                    RETURN QUERY SELECT 'other_stream'::TEXT, NULL::BIGINT, NULL::BIGINT, v_other, v_other_stream,
                        v_found;
                ELSIF v_found <> v_n THEN
                    RETURN QUERY SELECT 'partial'::TEXT, NULL::BIGINT, NULL::BIGINT, NULL::UUID, NULL::TEXT, v_found;
                ELSE
                    RETURN QUERY SELECT 'repeat'::TEXT, v_max, NULL::BIGINT, NULL::UUID, NULL::TEXT, v_found;
                END IF;
                RETURN;
            END IF;
            SELECT max(e.version) INTO v_actual FROM {s}.events e WHERE e.stream = p_stream;
            IF (p_expected = -1 AND v_actual IS NOT NULL) OR (p_expected >= 0 AND v_actual IS DISTINCT FROM p_expected)
            THEN
                RETURN QUERY SELECT 'wrong_version'::TEXT, NULL::BIGINT, v_actual, NULL::UUID, NULL::TEXT, 0;
                RETURN;
            END IF;
            SELECT coalesce(max(e.position), 0), clock_timestamp() INTO v_head, v_now FROM {s}.events e;
            INSERT INTO {s}.events (position, id, stream, version, type, data, metadata, recorded_at)
                SELECT v_head + i, p_ids[i], p_stream, coalesce(v_actual, -1) + i, p_types[i], p_data[i],
                       p_meta[i]::JSONB, v_now
                FROM generate_subscripts(p_ids, 1) AS i;
            IF p_channel IS NOT NULL THEN
                PERFORM pg_notify(p_channel, (v_head + v_n)::TEXT);
            END IF;
            RETURN QUERY SELECT 'ok'::TEXT, v_head + v_n, v_actual, NULL::UUID, NULL::TEXT, 0;
        END
        $fn$"""
    ).format(s=schema)


def append_lock_key(schema: str) -> int:
    """The signed 64-bit key of the advisory lock that serialises appends to ``schema``."""
    digest = hashlib.blake2b(f"callgauge_eventstore:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _row_to_event(row: tuple[Any, ...]) -> RecordedEvent:
    position, id_, stream, version, type_, data, metadata, recorded_at = row
    return RecordedEvent(
        id=id_ if isinstance(id_, uuid.UUID) else uuid.UUID(str(id_)),
        type=type_,
        data=bytes(data),
        metadata=dict(metadata or {}),
        stream=stream,
        version=version,
        position=position,
        recorded_at=recorded_at.astimezone(UTC),
    )


class PostgresEventStore(AsyncContextStore):
    """EventStore in one PostgreSQL schema.

    ``conninfo``: a libpq URL or DSN (``postgresql://user@host:5432/db``).
    ``schema``: the namespace; [a-z0-9_-] (quoted where needed), created with its tables if missing.
    ``min_size``/``max_size``: the connection pool bounds.
    ``listen_notify``: send NOTIFY on append and LISTEN while subscribed (wake-up only).
    ``open_timeout``: seconds ``open()`` waits for the first connection.

    Open explicitly with ``await store.open()`` (or ``async with store:``), or let the
    first operation open it. ``close()`` closes the pool and the listener.
    """

    def __init__(
        self,
        conninfo: str,
        schema: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        listen_notify: bool = True,
        open_timeout: float = 30.0,
    ) -> None:
        self._conninfo = conninfo
        self._schema = check_namespace(schema)
        self._min_size, self._max_size = min_size, max_size
        self._listen_notify = listen_notify
        self._open_timeout = open_timeout
        self._lock_key = append_lock_key(self._schema)
        self._channel = f"callgauge_es_{self._schema}"[:63]
        self._pool: AsyncConnectionPool | None = None
        self._open_lock: asyncio.Lock | None = None
        self._closed = False
        self._notifier = Notifier()
        self._listener: asyncio.Task[None] | None = None
        self._append_fn = False  # the server-side append exists (open() finds or creates it)
        self._queue: list[tuple[tuple[Any, ...], asyncio.Future[tuple[Any, ...]]]] = []  # appends waiting
        self._writer: asyncio.Task[None] | None = None
        self._last_used: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

        s = sql.Identifier(self._schema)
        self._q_ids = sql.SQL("SELECT id, stream, position FROM {}.events WHERE id = ANY(%s)").format(s)
        self._q_stream_version = sql.SQL("SELECT max(version) FROM {}.events WHERE stream = %s").format(s)
        self._q_head = sql.SQL("SELECT coalesce(max(position), 0), clock_timestamp() FROM {}.events").format(
            s
        )
        self._q_insert = sql.SQL(
            "INSERT INTO {}.events (position, id, stream, version, type, data, metadata, recorded_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        ).format(s)
        self._q_read_stream = sql.SQL(
            "SELECT "
            + _COLUMNS
            + " FROM {}.events WHERE stream = %s AND version >= %s ORDER BY version LIMIT %s"
        ).format(s)
        self._q_read_all = sql.SQL(
            "SELECT " + _COLUMNS + " FROM {}.events WHERE position > %s ORDER BY position LIMIT %s"
        ).format(s)
        self._q_last = sql.SQL("SELECT coalesce(max(position), 0) FROM {}.events").format(s)
        self._q_relay_keys_after = sql.SQL(
            "SELECT position, " + _RELAY_KEY + " FROM {}.events WHERE position > %s "
            "ORDER BY position LIMIT %s"
        ).format(s)
        self._q_relay_keys = sql.SQL(
            "SELECT DISTINCT " + _RELAY_KEY + " FROM {}.events WHERE position > %s AND position <= %s"
        ).format(s)
        self._q_get_cp = sql.SQL("SELECT position FROM {}.checkpoints WHERE name = %s").format(s)
        self._q_set_cp = sql.SQL(
            "INSERT INTO {}.checkpoints (name, position) VALUES (%s, %s) "
            "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position"
        ).format(s)
        self._ddl = [
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s),
            sql.SQL(
                """CREATE TABLE IF NOT EXISTS {}.events (
                    position    BIGINT      PRIMARY KEY CHECK (position > 0),
                    id          UUID        NOT NULL UNIQUE,
                    stream      TEXT        NOT NULL,
                    version     BIGINT      NOT NULL CHECK (version >= 0),
                    type        TEXT        NOT NULL,
                    data        BYTEA       NOT NULL,
                    metadata    JSONB       NOT NULL DEFAULT '{{}}',
                    recorded_at TIMESTAMPTZ NOT NULL,
                    UNIQUE (stream, version)
                )"""
            ).format(s),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.checkpoints (name TEXT PRIMARY KEY, position BIGINT NOT NULL)"
            ).format(s),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.projection_rows (projection TEXT NOT NULL, key TEXT NOT NULL, "
                "value BYTEA NOT NULL, PRIMARY KEY (projection, key))"
            ).format(s),
        ]
        self._fn_ddl = _append_function(s)
        self._q_append = sql.SQL(
            "SELECT outcome, pos, actual, dup_id, dup_stream, found FROM {}.append_events("
            "%b, %b, %b, %b::uuid[], %b::text[], %b::bytea[], %b::text[], %b)"
        ).format(s)
        calls = f'"{self._schema}".{CALLS_TABLE}'
        self._calls_table = calls
        calls_statements = [sql.SQL(statement) for statement in calls_ddl("BYTEA", calls)]  # type: ignore[arg-type]
        self._ddl.extend(calls_statements)
        # a store made before has the calls table and an older index set: its indexes and the upgrade
        self._calls_upgrade = calls_statements[1:] + [
            sql.SQL(statement) for statement in calls_upgrade_ddl(f'"{self._schema}".')]  # type: ignore[arg-type]
        self._calls_index = f'"{self._schema}".{CALLS_INDEXES["idx"]}'
        counts = f'"{self._schema}".{CALL_COUNTS_TABLE}'
        self._counts_table = counts
        self._ddl.append(sql.SQL(call_counts_ddl(counts)))  # type: ignore[arg-type]
        # a store made before the counts: the table, and its calls counted once
        self._counts_upgrade = [sql.SQL(call_counts_ddl(counts)),  # type: ignore[arg-type]
                                sql.SQL(call_counts_backfill_sql(counts, calls))]  # type: ignore[arg-type]
        # a batch of calls in one statement: the rows added (a call already there is not) and,
        # from what was added, each (run, outcome) count
        insert = (f"INSERT INTO {calls} (run_id, call_id, idx, outcome, sip_code, setup_key, mos_key, data) "
                  "SELECT * FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::text[], %b::integer[], "
                  "%b::float8[], %b::float8[], %b::bytea[]) ON CONFLICT (run_id, call_id) DO NOTHING")
        self._q_calls_add = sql.SQL(  # type: ignore[arg-type]
            f"WITH added AS ({insert} RETURNING run_id, outcome) "
            f"INSERT INTO {counts} AS c (run_id, outcome, n) "
            "SELECT run_id, outcome, COUNT(*) FROM added GROUP BY run_id, outcome "
            "ON CONFLICT (run_id, outcome) DO UPDATE SET n = c.n + excluded.n")
        self._q_calls_add_uncounted = sql.SQL(insert)  # type: ignore[arg-type]
        self._counted = True  # False: a store made before whose counts table could not be made
        self._q_proj_rows = sql.SQL("SELECT key, value FROM {}.projection_rows WHERE projection = %s").format(s)
        self._q_proj_clear = sql.SQL("DELETE FROM {}.projection_rows WHERE projection = %s").format(s)
        self._q_proj_delete = sql.SQL("DELETE FROM {}.projection_rows WHERE projection = %s AND key = %s").format(s)
        self._q_proj_upsert = sql.SQL(
            "INSERT INTO {}.projection_rows (projection, key, value) VALUES (%s, %s, %s) "
            "ON CONFLICT (projection, key) DO UPDATE SET value = EXCLUDED.value"
        ).format(s)

    @property
    def schema(self) -> str:
        return self._schema

    def __repr__(self) -> str:
        return f"PostgresEventStore(schema={self._schema!r})"

    # -- plumbing -------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the pool and create the schema and tables if missing (idempotent)."""
        if self._closed:
            raise StoreClosed(f"{self!r} is closed")
        if self._pool is not None:
            return
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self._pool is not None:
                return
            pool = AsyncConnectionPool(
                self._conninfo,
                min_size=self._min_size,
                max_size=self._max_size,
                kwargs={"autocommit": True},
                open=False,
                check=self._check_if_idle,
                name=f"callgauge-eventstore-{self._schema}",
                timeout=self._open_timeout,
            )
            try:
                await pool.open(wait=True, timeout=self._open_timeout)
                async with pool.connection() as conn:
                    # Skip the DDL when the tables exist: CREATE SCHEMA IF NOT EXISTS needs the
                    # CREATE privilege on the database even when the schema is already there.
                    cur = await conn.execute(
                        "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL"
                        " AND to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL,"
                        " to_regprocedure(%s) IS NOT NULL, to_regclass(%s) IS NOT NULL,"
                        " to_regclass(%s) IS NOT NULL",
                        (f'"{self._schema}".events', f'"{self._schema}".checkpoints',
                         f'"{self._schema}".projection_rows', self._calls_table,
                         f'"{self._schema}".{_APPEND_SIGNATURE}', self._calls_index, self._counts_table),
                    )
                    row = await cur.fetchone()
                    tables, self._append_fn, calls_indexed, counted = row  # type: ignore[misc]
                    if not tables:
                        async with conn.transaction():
                            # Concurrent CREATE ... IF NOT EXISTS can still collide: serialise them.
                            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                            for statement in self._ddl:
                                await conn.execute(statement)
                    elif not calls_indexed:  # the calls indexes of a store made before (calls_ddl)
                        try:
                            async with conn.transaction():
                                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                                for statement in self._calls_upgrade:
                                    await conn.execute(statement)
                        except psycopg.errors.InsufficientPrivilege as e:
                            log.warning("event store %s: cannot replace the calls projection's indexes (%s); "
                                        "the pages still walk the old ones", self._schema, e)
                    if tables and not counted:
                        try:
                            async with conn.transaction():
                                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                                found = await (await conn.execute("SELECT to_regclass(%s)",
                                                                  (self._counts_table,))).fetchone()
                                if found[0] is None:  # type: ignore[index]
                                    for statement in self._counts_upgrade:
                                        await conn.execute(statement)
                        except psycopg.errors.InsufficientPrivilege as e:
                            self._counted = False
                            log.warning("event store %s: cannot make the calls counts table (%s); a calls "
                                        "page's total counts the run's calls each time", self._schema, e)
                    if not self._append_fn:
                        try:
                            async with conn.transaction():
                                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                                await conn.execute(self._fn_ddl)
                            self._append_fn = True
                        except psycopg.errors.InsufficientPrivilege as e:
                            log.warning("event store %s: cannot create append_events (%s); appends take one "
                                        "round trip per statement", self._schema, e)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool

    async def _check_if_idle(self, conn: psycopg.AsyncConnection) -> None:
        """The pool's check on getconn: a round trip only for a connection idle for CHECK_IDLE_S."""
        now = time.monotonic()
        last = self._last_used.get(conn)
        self._last_used[conn] = now
        if last is None or now - last > CHECK_IDLE_S:
            await AsyncConnectionPool.check_connection(conn)

    async def _get_pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            await self.open()
        if self._closed or self._pool is None:
            raise StoreClosed(f"{self!r} is closed")
        return self._pool

    async def _fetchall(self, query: sql.Composable, params: Sequence[Any],
                        binary: bool = False) -> list[tuple[Any, ...]]:
        """Rows of a query; `binary`: results in PostgreSQL's binary format (event payloads are read
        as they are stored instead of decoded from hex)."""
        pool = await self._get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(query, params, binary=binary)
            return await cur.fetchall()

    async def close(self) -> None:
        """Stop the listener and close the pool (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._notifier.notify()
        writer, self._writer = self._writer, None
        if writer is not None and not writer.done():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(writer), 10)
            if not writer.done():
                writer.cancel()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

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
        pool = await self._get_pool()
        if self._append_fn:
            return await self._append_in_one(pool, stream, expected, events)
        async with pool.connection() as conn, conn.transaction():
            # The gap-safety lock: taken before anything is read or allocated, held to COMMIT.
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            cur = await conn.execute(self._q_ids, ([ev.id for ev in events],))
            found = [(r[0], r[1], r[2]) for r in await cur.fetchall()]
            repeat = idempotent_position(stream, events, found)
            if repeat is not None:
                return repeat
            cur = await conn.execute(self._q_stream_version, (stream,))
            actual = (await cur.fetchone())[0]  # type: ignore[index]
            check_version(stream, expected, actual)
            cur = await conn.execute(self._q_head)
            head, now = await cur.fetchone()  # type: ignore[misc]
            first = 0 if actual is None else actual + 1
            rows = [
                (
                    head + 1 + n,
                    ev.id,
                    stream,
                    first + n,
                    ev.type,
                    bytes(ev.data),
                    Jsonb(dict(ev.metadata)),
                    now,
                )
                for n, ev in enumerate(events)
            ]
            async with conn.cursor() as c:
                await c.executemany(self._q_insert, rows)
            last = head + len(events)
            if self._listen_notify:
                await conn.execute("SELECT pg_notify(%s, %s)", (self._channel, str(last)))
        self._notifier.notify()
        return last

    async def _append_in_one(self, pool: AsyncConnectionPool, stream: str, expected: int,
                             events: list[NewEvent]) -> int:
        """append_to_stream through the server-side function, group-committed with the appends
        waiting beside it (see the module's doc)."""
        params = (self._lock_key, stream, expected, [ev.id for ev in events], [ev.type for ev in events],
                  [bytes(ev.data) for ev in events], [dump_metadata(ev.metadata) for ev in events],
                  self._channel if self._listen_notify else None)
        done: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        self._queue.append((params, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups(pool), name=f"callgauge-es-append-{self._schema}")
        outcome, position, actual, dup_id, dup_stream, found = await done
        if outcome == "ok":
            return position
        if outcome == "repeat":
            return position
        if outcome == "wrong_version":
            check_version(stream, expected, actual)  # raises WrongExpectedVersion
        if outcome == "other_stream":
            idempotent_position(stream, events, [(dup_id, dup_stream, 0)])  # raises DuplicateEventId
        # partial: the same rule with `found` of the ids recorded in this stream
        idempotent_position(stream, events, [(events[i].id, stream, 0) for i in range(found)])
        raise AssertionError(f"append_events answered {outcome!r}")  # pragma: no cover

    async def _write_groups(self, pool: AsyncConnectionPool) -> None:
        """The one writer of this instance: while appends wait, write up to GROUP_MAX of them in one
        transaction and hand each its row (or the transaction's error)."""
        while self._queue:
            group, self._queue = self._queue[:GROUP_MAX], self._queue[GROUP_MAX:]
            group = [(params, done) for params, done in group if not done.cancelled()]  # callers gone: not written
            if not group:
                continue
            try:
                async with pool.connection() as conn:
                    async with conn.transaction(), conn.pipeline():
                        cursors = [await conn.execute(self._q_append, params) for params, _ in group]
                    rows = [await cur.fetchone() for cur in cursors]
            except asyncio.CancelledError:  # the store is closing: whatever waits is not written
                for _, done in group + self._queue:
                    done.cancel()
                self._queue.clear()
                raise
            except Exception as exc:  # the transaction failed: none of the group is written
                for _, done in group:
                    if not done.done():
                        done.set_exception(exc)
                continue
            if any(row[0] == "ok" for row in rows):  # type: ignore[index]
                self._notifier.notify()
            for (_, done), row in zip(group, rows, strict=True):
                if not done.done():
                    done.set_result(row)  # type: ignore[arg-type]

    async def set_checkpoint(self, name: str, position: int) -> None:
        pool = await self._get_pool()
        async with pool.connection() as conn:
            await conn.execute(self._q_set_cp, (name, int(position)))

    async def read_projection(self, name: str) -> tuple[dict[str, bytes], int]:
        pool = await self._get_pool()
        async with pool.connection() as conn, conn.transaction():
            # REPEATABLE READ: the rows and their checkpoint from one snapshot.
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            rows = await (await conn.execute(self._q_proj_rows, (name,))).fetchall()
            cp = await (await conn.execute(self._q_get_cp, (f"projection:{name}",))).fetchone()
        return {k: bytes(v) for k, v in rows}, cp[0] if cp else 0

    async def commit_projection(
        self, name: str, position: int, upserts: Mapping[str, bytes], deletes: Sequence[str] = (),
        replace: bool = False,
    ) -> None:
        pool = await self._get_pool()
        async with pool.connection() as conn, conn.transaction():
            async with conn.cursor() as cur:
                if replace:
                    await cur.execute(self._q_proj_clear, (name,))
                if deletes:
                    await cur.executemany(self._q_proj_delete, [(name, k) for k in deletes])
                if upserts:
                    await cur.executemany(self._q_proj_upsert,
                                          [(name, str(k), bytes(v)) for k, v in upserts.items()])
                await cur.execute(self._q_set_cp, (f"projection:{name}", int(position)))

    async def commit_calls(self, name: str, position: int, rows: Sequence[CallRow]) -> None:
        pool = await self._get_pool()
        async with pool.connection() as conn, conn.transaction():
            async with conn.cursor() as cur:
                if rows:
                    columns = list(zip(*(call_values(r) for r in first_of_each_call(rows))))
                    await cur.execute(self._q_calls_add if self._counted else self._q_calls_add_uncounted,
                                      [list(c) for c in columns])
                await cur.execute(self._q_set_cp, (name, int(position)))

    async def read_calls(self, query: CallQuery) -> list[tuple[tuple[float, int, str], bytes]]:
        """A page, planned with ``enable_sort = off`` (SET LOCAL: this statement's transaction only).

        Every page has an index walk that yields its order (see calls_ddl), but the planner takes
        it only when it believes the run is big: with the run's row count underestimated (a run
        that grew since the table was last analysed: 89 rows estimated for 300,000) a custom plan
        was a bitmap scan of all the run's calls and a sort, 258 ms at 300,000 calls instead of
        0.2 ms; a generic plan (psycopg prepares a query run five times) estimates the average run
        instead, as far below a big run's size when the other runs are small. With sorting
        disabled only the walks are left, whatever the estimate. A filtered page then reads about
        LIMIT / (share of the run's calls that match) calls, at worst the run's calls once in
        index order, never more. One round trip (pipelined)."""
        statement, params = calls_query_sql(query, self._calls_table, "%s")
        pool = await self._get_pool()
        async with pool.connection() as conn:
            async with conn.transaction(), conn.pipeline():
                await conn.execute(_CALLS_PLAN)
                cur = await conn.execute(sql.SQL(statement), params)  # type: ignore[arg-type]
            rows = await cur.fetchall()
        return [((key, idx, call_id), bytes(data)) for key, idx, call_id, data in rows]

    async def count_calls(self, query: CallQuery) -> int:
        statement, params = ((self._counted and counted_query_sql(query, self._counts_table, "%s"))
                             or calls_query_sql(query, self._calls_table, "%s", count=True))
        return (await self._fetchall(sql.SQL(statement), params))[0][0]  # type: ignore[arg-type]

    # -- reads ----------------------------------------------------------------------------

    async def read_stream(
        self, stream: str, from_version: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        rows = await self._fetchall(
            self._q_read_stream,
            (stream, max(int(from_version), 0), None if limit is None else max(int(limit), 0)),
            binary=True,
        )
        return [_row_to_event(r) for r in rows]

    async def stream_version(self, stream: str) -> int | None:
        rows = await self._fetchall(self._q_stream_version, (stream,))
        return rows[0][0]

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        if limit <= 0:
            raise ValueError("limit must be > 0")
        rows = await self._fetchall(self._q_read_all, (int(after_position), int(limit)), binary=True)
        return [_row_to_event(r) for r in rows]

    async def last_position(self) -> int:
        rows = await self._fetchall(self._q_last, ())
        return rows[0][0]

    async def get_checkpoint(self, name: str) -> int:
        rows = await self._fetchall(self._q_get_cp, (name,))
        return rows[0][0] if rows else 0

    async def relay_keys(self, after_position: int, up_to: int) -> set[str]:
        """The Kafka keys the outbox relay gives the events in (after_position, up_to]: the metadata's
        partition_key, else its correlation_id, else the stream (one SQL pass, no event decoded)."""
        rows = await self._fetchall(self._q_relay_keys, (int(after_position), int(up_to)))
        return {r[0] for r in rows}

    async def relay_keys_after(self, after_position: int, limit: int) -> list[tuple[int, str]]:
        """(position, relay key) of the next `limit` events after after_position: the relay's lane
        scans with it without reading or decoding the events."""
        rows = await self._fetchall(self._q_relay_keys_after, (int(after_position), int(limit)))
        return [(int(r[0]), r[1]) for r in rows]

    def news(self) -> asyncio.Event:
        """An event set at the next commit made through this instance (take it before reading, so a
        commit between the read and the wait is not missed): the outbox relay waits on it instead of
        polling."""
        return self._notifier.waiter()

    async def subscribe_all(
        self, after_position: int = 0, poll_interval: float = 0.05
    ) -> AsyncIterator[RecordedEvent]:
        """Catch up from after_position, then follow new events; never ends by itself.

        Polls every poll_interval, and wakes up early on appends from any process when
        listen_notify is on. Cancel-safe.
        """
        await self._get_pool()
        if self._listen_notify and self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name=f"callgauge-es-listen-{self._schema}")
        async with contextlib.aclosing(
            poll_all(self.read_all, self._notifier, after_position, poll_interval)
        ) as events:
            async for ev in events:
                yield ev

    async def _listen(self) -> None:
        """Keep one connection LISTENing on the schema's channel; poke local subscribers."""
        backoff = 0.5
        while not self._closed:
            try:
                conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                try:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    backoff = 0.5
                    self._notifier.notify()  # anything committed while we were not listening
                    async for _ in conn.notifies():
                        self._notifier.notify()
                finally:
                    await conn.close()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the subscription keeps polling meanwhile
                if self._closed:
                    return
                log.warning(
                    "event store %s: LISTEN connection failed (%s); retrying in %.1fs",
                    self._schema,
                    e,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
