"""A calls page's total comes from counts kept per (run, outcome) as calls are added. A store made
before those counts existed has calls and no counts table: opening it makes the table and counts
its calls once, so the totals of its runs stay right, and calls added after it count on top."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from callgauge_eventstore import CallQuery, CallRow
from callgauge_eventstore._common import CALL_COUNTS_TABLE

if TYPE_CHECKING:
    from conftest import StoreBackend  # tests/conftest.py


def _call(run: str, i: int, outcome: str) -> CallRow:
    return CallRow(run, f"c{i:05d}", i, outcome, 200, None, None, b"x")


def _drop_counts(backend: StoreBackend, tmp_path) -> None:
    """What a store made before the counts looks like: the counts table is not there."""
    if backend.name == "sqlite":
        with sqlite3.connect(tmp_path / f"{backend.namespace()}.db") as conn:
            conn.execute(f"DROP TABLE {CALL_COUNTS_TABLE}")
    else:
        with psycopg.connect(backend.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP TABLE {}.{}").format(sql.Identifier(backend.namespace()),
                                                            sql.Identifier(CALL_COUNTS_TABLE)))


async def test_a_store_made_before_the_counts_counts_its_calls_once(store_backend: StoreBackend, tmp_path):
    store = store_backend.new_store()
    await store.commit_calls("calls", 1,
                             [_call("r1", i, "SUCCESS" if i % 4 else "CALL_FAILED") for i in range(40)]
                             + [_call("r2", i, "SUCCESS") for i in range(7)])
    await store.close()
    await asyncio.to_thread(_drop_counts, store_backend, tmp_path)

    store = store_backend.new_store()
    assert await store.count_calls(CallQuery("r1")) == 40
    assert await store.count_calls(CallQuery("r1", outcomes=("CALL_FAILED",))) == 10
    assert await store.count_calls(CallQuery("r2")) == 7
    more = [_call("r1", i, "SUCCESS") for i in range(38, 45)]  # 2 of them already there
    await store.commit_calls("calls", 2, more)
    assert await store.count_calls(CallQuery("r1")) == 45
    await store.close()

    store = store_backend.new_store()  # opened again: counted once, not again
    assert await store.count_calls(CallQuery("r1")) == 45
    assert await store.count_calls(CallQuery("r1", outcomes=("SUCCESS",))) == 35
