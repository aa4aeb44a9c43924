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
import uuid
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
    CALLS_TABLE,
    call_values,
    calls_ddl,
    calls_insert_sql,
    calls_query_sql,
    check_append_args,
    check_namespace,
    check_version,
    idempotent_position,
    poll_all,
)
from callgauge_eventstore.port import CallQuery, CallRow, NewEvent, RecordedEvent

log = logging.getLogger(__name__)

_COLUMNS = "position, id, stream, version, type, data, metadata, recorded_at"


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
            "SELECT position, COALESCE(NULLIF(metadata->>'partition_key', ''), NULLIF(metadata->>'correlation_id', ''), "
            "stream) FROM {}.events WHERE position > %s ORDER BY position LIMIT %s"
        ).format(s)
        self._q_relay_keys = sql.SQL(
            "SELECT DISTINCT COALESCE(NULLIF(metadata->>'partition_key', ''), NULLIF(metadata->>'correlation_id', ''), "
            "stream) FROM {}.events WHERE position > %s AND position <= %s"
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
        calls = f'"{self._schema}".{CALLS_TABLE}'
        self._calls_table = calls
        self._ddl.extend(sql.SQL(statement) for statement in calls_ddl("BYTEA", calls))  # type: ignore[arg-type]
        self._q_calls_insert = sql.SQL(calls_insert_sql(calls, "%s"))  # type: ignore[arg-type]
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
                check=AsyncConnectionPool.check_connection,
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
                        " AND to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
                        (f'"{self._schema}".events', f'"{self._schema}".checkpoints',
                         f'"{self._schema}".projection_rows', self._calls_table),
                    )
                    if not (await cur.fetchone())[0]:  # type: ignore[index]
                        async with conn.transaction():
                            # Concurrent CREATE ... IF NOT EXISTS can still collide: serialise them.
                            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                            for statement in self._ddl:
                                await conn.execute(statement)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool

    async def _get_pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            await self.open()
        if self._closed or self._pool is None:
            raise StoreClosed(f"{self!r} is closed")
        return self._pool

    async def _fetchall(self, query: sql.Composable, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        pool = await self._get_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall()

    async def close(self) -> None:
        """Stop the listener and close the pool (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._notifier.notify()
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
                    await cur.executemany(self._q_calls_insert, [call_values(r) for r in rows])
                await cur.execute(self._q_set_cp, (name, int(position)))

    async def read_calls(self, query: CallQuery) -> list[tuple[tuple[float, int, str], bytes]]:
        statement, params = calls_query_sql(query, self._calls_table, "%s")
        rows = await self._fetchall(sql.SQL(statement), params)  # type: ignore[arg-type]
        return [((key, idx, call_id), bytes(data)) for key, idx, call_id, data in rows]

    async def count_calls(self, query: CallQuery) -> int:
        statement, params = calls_query_sql(query, self._calls_table, "%s", count=True)
        return (await self._fetchall(sql.SQL(statement), params))[0][0]  # type: ignore[arg-type]

    # -- reads ----------------------------------------------------------------------------

    async def read_stream(
        self, stream: str, from_version: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        rows = await self._fetchall(
            self._q_read_stream,
            (stream, max(int(from_version), 0), None if limit is None else max(int(limit), 0)),
        )
        return [_row_to_event(r) for r in rows]

    async def stream_version(self, stream: str) -> int | None:
        rows = await self._fetchall(self._q_stream_version, (stream,))
        return rows[0][0]

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        if limit <= 0:
            raise ValueError("limit must be > 0")
        rows = await self._fetchall(self._q_read_all, (int(after_position), int(limit)))
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
