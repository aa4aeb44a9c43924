"""The PostgreSQL store's server-side append stays an index lookup as its table grows.

PL/pgSQL caches a generic plan per session; one planned while the events table was empty was a
sequential scan for ``id = ANY(p_ids)``, kept as the table grew: a 300,000-call run fell to ~130
appends/s, every append reading the whole table. Given a session whose plans were made on an empty
table, when the table has grown and the session appends again, then no append scans the table."""

from __future__ import annotations

import uuid

import pytest
from psycopg import sql

from callgauge_eventstore.port import NewEvent
from callgauge_eventstore.postgres import append_lock_key

pytestmark = pytest.mark.postgres


async def test_an_append_in_a_session_planned_on_an_empty_table_does_not_scan_the_grown_table(store_backends):
    import psycopg

    backend = store_backends("postgres")
    store = backend.new_store("plans")
    await store.open()  # creates the schema, its tables and the append function
    schema = backend.namespace("plans")
    events = sql.Identifier(schema, "events")
    call = sql.SQL("SELECT outcome FROM {}.append_events(%s, %s, -1, %s, %s, %s, %s, NULL)").format(
        sql.Identifier(schema))

    async with await psycopg.AsyncConnection.connect(backend.url, autocommit=True) as conn:
        async def run(stream: str, n: int = 1) -> str:
            row = await (await conn.execute(call, (append_lock_key(schema), stream, [uuid.uuid4() for _ in range(n)],
                                                   ["T"] * n, [b"\x00"] * n, ["{}"] * n))).fetchone()
            return row[0]

        # a relay's or an engine's first batches, on a table of a page or two: past PL/pgSQL's five
        # custom plans the generic one (a scan: cheaper than index probes for a many-id batch on a
        # table that small) is the session's plan from now on
        for i in range(12):
            assert await run(f"early-{i}", 20) == "ok"
        await conn.execute(sql.SQL(
            "INSERT INTO {} (position, id, stream, version, type, data, metadata, recorded_at) "
            "SELECT 1000000 + g, gen_random_uuid(), 'bulk-' || g, 0, 'T', '\\x00', '{{}}', now() "
            "FROM generate_series(1, 20000) g").format(events))
        async with conn.transaction():
            assert await run("late") == "ok"
            assert await run("late") == "wrong_version"  # the stream exists now: the version check ran
            scans = await (await conn.execute("SELECT pg_stat_get_xact_numscans(%s::regclass)",
                                              (sql.Identifier(schema, "events").as_string(conn),))).fetchone()
        assert scans[0] == 0, f"{scans[0]} sequential scan(s) of {schema}.events by two appends"
    await store.append_to_stream("after", -1, [NewEvent("T", b"x")])  # the store still appends
