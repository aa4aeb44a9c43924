"""A page of a run's calls is an index walk that stops after its LIMIT, whatever the
planner believes about the run's size, in a custom plan and in a generic one.

The table's statistics lag a growing run: analysed while the run was small (or not yet there), they
put it at tens of rows, and the custom plan of the first page was a bitmap scan of ALL the run's
calls and a sort (auto_explain in a 30,000-call run; 258 ms at 300,000 calls instead of 0.2 ms). A
generic plan (psycopg prepares a statement run five times) estimates the average run instead.
Given a run grown far past what the statistics say, among many small runs, when each kind of page
is read through the store (first, next, every sort, filters), then EXPLAIN ANALYZE of exactly what
the adapter sent (its statements before the page, in its transaction) shows no Sort, and the scans
read a bounded number of rows, in both plan modes.

On SQLite (no statistics: fixed plans) the pages walked their index already, but a MOS filter with
another sort took the MOS index for the range and sorted it (a temporary B-tree: 20 to 400 ms at
300,000 calls); EXPLAIN QUERY PLAN of each page shows its sort's index and no temporary B-tree."""

from __future__ import annotations

import json
import re
from typing import Any

import psycopg
import pytest
from psycopg import sql

from callgauge_eventstore._common import CALLS_INDEXES, OLD_CALLS_INDEX, calls_query_sql
from callgauge_eventstore.port import CallQuery, CallRow

BIG = "7" * 32  # the growing run; the small runs' ids are md5 hex, in random order on disk
BIG_CALLS = 60_000
SMALL_RUNS, SMALL_CALLS = 1_000, 20
LIMIT = 101

# (query, most rows its scans may read): unfiltered pages stop after LIMIT (+ the row that tells the
# walk it is past the limit); a filter keeping a share s of the calls reads about LIMIT / s
PAGES: list[tuple[CallQuery, int]] = [
    (CallQuery(BIG, limit=LIMIT), 2 * LIMIT),
    (CallQuery(BIG, after=(30_000, 30_000, "call-030000"), limit=LIMIT), 2 * LIMIT),
    (CallQuery(BIG, sort="-index", limit=LIMIT), 2 * LIMIT),
    (CallQuery(BIG, sort="-index", after=(30_000, 30_000, "call-030000"), limit=LIMIT), 2 * LIMIT),
    (CallQuery(BIG, sort="setup_ms", limit=LIMIT), 2 * LIMIT),
    (CallQuery(BIG, sort="-setup_ms", after=(150.0, 20_000, "call-020000"), limit=LIMIT), 2 * LIMIT),
    (CallQuery(BIG, sort="mos", limit=LIMIT), 2 * LIMIT),
    (CallQuery(BIG, sort="-mos", limit=LIMIT), 2 * LIMIT),
    (CallQuery(BIG, sort="mos", mos_min=4.0, limit=LIMIT), 2 * LIMIT),
    # a fifth of the calls has MOS >= 4: ~500 read for the index sort, not the ~12,000 in the range
    (CallQuery(BIG, mos_min=4.0, limit=LIMIT), 5 * LIMIT * 2),
    # first in descending setup time: the 1,200 unanswered calls (no setup time, no MOS), then ~1/3 match
    (CallQuery(BIG, sort="-setup_ms", mos_max=3.5, limit=LIMIT), BIG_CALLS // 50 + 5 * LIMIT * 2),
    # one call in 50 failed
    (CallQuery(BIG, outcomes=("FAILED",), limit=LIMIT), 50 * LIMIT * 2),
    (CallQuery(BIG, sip_codes=(503,), sort="-index", limit=LIMIT), 50 * LIMIT * 2),
]


def _nodes(plan: dict[str, Any]):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _rows_read(plan: dict[str, Any]) -> int:
    """Rows the plan's scans produced or threw away (per loop times loops)."""
    return sum((n.get("Actual Rows", 0) + n.get("Rows Removed by Filter", 0)
                + n.get("Rows Removed by Index Recheck", 0)) * n.get("Actual Loops", 1)
               for n in _nodes(plan) if "Scan" in n["Node Type"])


async def _fill(conn: psycopg.AsyncConnection, table: sql.Composable) -> None:
    """Many small runs, analysed; then the big run, which the statistics do not know."""
    await conn.execute(sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = false)").format(table))
    row = ("{run}, 'call-' || lpad(g::text, 6, '0'), g, CASE WHEN g %% 50 = 0 THEN 'FAILED' ELSE 'SUCCESS' END, "
           "CASE WHEN g %% 50 = 0 THEN 503 ELSE 200 END, "
           "CASE WHEN g %% 50 = 0 THEN 1e18 ELSE 50 + (g::bigint * 7919 %% 2000) / 10.0 END, "
           "CASE WHEN g %% 50 = 0 OR g %% 10 = 3 THEN 1e18 ELSE 3.0 + (g::bigint * 104729 %% 1400) / 1000.0 END, "
           "decode(repeat('ab', 150), 'hex')")
    await conn.execute(sql.SQL(
        "INSERT INTO {t} SELECT " + row.format(run="md5('small' || r)") + " FROM generate_series(1, %s) r, "
        "generate_series(0, %s) g ORDER BY md5(r || '.' || g)").format(t=table), (SMALL_RUNS, SMALL_CALLS - 1))
    await conn.execute(sql.SQL("ANALYZE {}").format(table))
    await conn.execute(sql.SQL(
        "INSERT INTO {t} SELECT " + row.format(run="%s") + " FROM generate_series(0, %s) g").format(t=table),
        (BIG, BIG_CALLS - 1))


@pytest.mark.postgres
async def test_every_calls_page_on_postgres_walks_an_index_and_stops_after_its_limit(store_backends, monkeypatch):
    backend = store_backends("postgres")
    store = backend.new_store("calls")
    await store.open()
    table = sql.Identifier(backend.namespace("calls"), "run_calls")

    sent: list[tuple[Any, Any]] = []  # what the adapter's connections were asked to execute
    execute = psycopg.AsyncConnection.execute

    async def recording(self, query, params=None, *args, **kwargs):
        sent.append((query, params))
        return await execute(self, query, params, *args, **kwargs)

    async with await psycopg.AsyncConnection.connect(backend.url, autocommit=True) as conn:
        await _fill(conn, table)
        estimate = await (await conn.execute(sql.SQL(
            "EXPLAIN (FORMAT JSON) SELECT * FROM {} WHERE run_id = %s").format(table), (BIG,))).fetchone()
        assert estimate[0][0]["Plan"]["Plan Rows"] < 1_000, "the statistics were meant not to know the big run"

        failures = []
        for query, most in PAGES:
            sent.clear()
            monkeypatch.setattr(psycopg.AsyncConnection, "execute", recording)
            try:
                rows = await store.read_calls(query)
            finally:
                monkeypatch.setattr(psycopg.AsyncConnection, "execute", execute)
            assert len(rows) == LIMIT, query
            *before, (page, params) = sent
            text = page.as_string(conn) if isinstance(page, sql.Composable) else page
            # the statements the adapter ran before the page in its transaction (planner settings),
            # as it ran them: a plan is made under the settings of its moment
            prelude = [b.as_string(conn) if isinstance(b, sql.Composable) else b for b, _ in before]
            n = 0

            def dollar(_m: re.Match) -> str:
                nonlocal n
                n += 1
                return f"${n}"

            for mode in ("force_custom_plan", "force_generic_plan"):
                async with conn.transaction():
                    for statement in prelude:
                        await conn.execute(statement)
                    await conn.execute(f"SET LOCAL plan_cache_mode = {mode}")
                    n = 0
                    await conn.execute(sql.SQL("PREPARE calls_page AS " + re.sub("%s", dollar, text)))
                    try:
                        args = sql.SQL(", ").join(sql.Literal(p) for p in params)
                        plan = (await (await conn.execute(sql.SQL(
                            "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE calls_page({})").format(args))).fetchone())[0]
                    finally:
                        await conn.execute("DEALLOCATE calls_page")
                root = plan[0]["Plan"]
                kinds = [node["Node Type"] for node in _nodes(root)]
                read = _rows_read(root)
                if any("Sort" in k for k in kinds) or read > most:
                    failures.append(f"{mode} {query.sort} outcomes={query.outcomes} sip={query.sip_codes} "
                                    f"mos={query.mos_min},{query.mos_max} after={query.after}: {' > '.join(kinds)}, "
                                    f"{read} rows read (at most {most}); {text}")
    assert not failures, "\n".join(failures)


INDEX_OF_SORT = {"index": CALLS_INDEXES["idx"], "setup_ms": CALLS_INDEXES["setup_key"], "mos": CALLS_INDEXES["mos_key"]}


async def test_every_calls_page_on_sqlite_walks_its_sorts_index_without_a_temporary_btree(store_backends):
    backend = store_backends("sqlite")
    store = backend.new_store("calls")
    rows = [CallRow(run_id=run, call_id=f"call-{g:06d}", index=g, outcome="FAILED" if g % 50 == 0 else "SUCCESS",
                    sip_code=503 if g % 50 == 0 else 200, setup_ms=None if g % 50 == 0 else 50 + g * 7919 % 2000 / 10,
                    mos=None if g % 50 == 0 or g % 10 == 3 else 3.0 + g * 104729 % 1400 / 1000, data=b"x" * 150)
            for run, n in ((BIG, BIG_CALLS), ("other", 2_000)) for g in range(n)]
    await store.commit_calls("calls", 1, rows)
    failures = []
    for query, _ in PAGES:
        statement, params = calls_query_sql(query)  # what SqliteEventStore.read_calls runs
        # on the adapter's own connection (its worker thread): its plans are the ones it makes
        plan = await store._run(lambda conn, s=statement, p=params: [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + s, p)])
        index = INDEX_OF_SORT[query.sort.lstrip("-")]
        if any("TEMP B-TREE" in step for step in plan) or not any(f"USING INDEX {index} " in step for step in plan):
            failures.append(f"{query.sort} outcomes={query.outcomes} sip={query.sip_codes} "
                            f"mos={query.mos_min},{query.mos_max} after={query.after}: {' / '.join(plan)}")
        assert len(await store.read_calls(query)) == LIMIT
    assert not failures, "\n".join(failures)


async def _indexes(backend, store) -> set[str]:
    if backend.name == "sqlite":
        rows = await store._run(lambda conn: conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'run_calls' AND sql IS NOT NULL"
        ).fetchall())
        return {r[0] for r in rows}
    async with await psycopg.AsyncConnection.connect(backend.url, autocommit=True) as conn:
        rows = await (await conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = "
                                         "'run_calls' AND indexname NOT LIKE '%%pkey'",
                                         (backend.namespace("calls"),))).fetchall()
        return {r[0] for r in rows}


async def test_a_store_made_with_the_old_calls_index_gets_the_new_one_when_opened(store_backend):
    """Stores made before had (run_id, idx, idx, call_id) for the index sort (SQLite sorts each run of
    equal idx when walking it); opening one replaces it, and the calls are all still there."""
    store = store_backend.new_store("calls")
    rows = [CallRow(run_id="r", call_id=f"c{i}", index=i, outcome="SUCCESS", sip_code=200, setup_ms=1.0, mos=4.0,
                    data=b"x") for i in range(50)]
    await store.commit_calls("calls", 1, rows)
    old = f"CREATE INDEX {OLD_CALLS_INDEX} ON {{}}run_calls (run_id, idx, idx, call_id)"
    new = CALLS_INDEXES["idx"]
    if store_backend.name == "sqlite":
        await store._run(lambda conn: (conn.execute(f"DROP INDEX {new}"), conn.execute(old.format(""))))
    else:
        schema = f'"{store_backend.namespace("calls")}".'
        async with await psycopg.AsyncConnection.connect(store_backend.url, autocommit=True) as conn:
            await conn.execute(f"DROP INDEX {schema}{new}")
            await conn.execute(old.format(schema))
    assert await _indexes(store_backend, store) == {OLD_CALLS_INDEX, *CALLS_INDEXES.values()} - {new}
    await store.close()

    again = store_backend.new_store("calls")
    await again.open()
    assert await _indexes(store_backend, again) == set(CALLS_INDEXES.values())
    page = await again.read_calls(CallQuery("r", after=(9, 9, "c9"), limit=5))
    assert [key for key, _ in page] == [(i, i, f"c{i}") for i in range(10, 15)]
