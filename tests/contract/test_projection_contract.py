"""Read models (projections) in the event store's database: rows and their tracking record
commit together. Same backends as the event-store contract suite."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from callgauge_eventstore import CallQuery, CallRow

from test_eventstore_contract import bounded

if TYPE_CHECKING:
    from conftest import StoreBackend  # tests/conftest.py


@pytest.fixture
def proj_store(backend: StoreBackend, store):
    if backend.name == "kurrentdb":
        pytest.skip("read models live in SQLite or PostgreSQL; the KurrentDB adapter keeps events only")
    return store


async def test_empty_projection(proj_store):
    assert await bounded(proj_store.read_projection("views")) == ({}, 0)


async def test_rows_and_checkpoint_commit_together(proj_store):
    await bounded(proj_store.commit_projection("views", 3, {"a": b"1", "b": b"2"}))
    await bounded(proj_store.commit_projection("views", 5, {"b": b"22", "c": b"3"}, deletes=["a"]))
    assert await bounded(proj_store.read_projection("views")) == ({"b": b"22", "c": b"3"}, 5)
    # another projection is untouched, and so is the plain checkpoint namespace
    assert await bounded(proj_store.read_projection("other")) == ({}, 0)
    assert await bounded(proj_store.get_checkpoint("views")) == 0


async def test_replace_drops_every_other_row(proj_store):
    await bounded(proj_store.commit_projection("views", 3, {"a": b"1", "b": b"2"}))
    await bounded(proj_store.commit_projection("views", 9, {"z": b"9"}, replace=True))
    assert await bounded(proj_store.read_projection("views")) == ({"z": b"9"}, 9)


async def test_a_failed_commit_changes_neither_rows_nor_checkpoint(proj_store):
    await bounded(proj_store.commit_projection("views", 3, {"a": b"1"}))

    class Boom:
        def __bytes__(self) -> bytes:
            raise RuntimeError("serialisation failed half-way")

    with pytest.raises(RuntimeError):
        await bounded(proj_store.commit_projection("views", 4, {"b": b"2", "c": Boom()}, deletes=["a"]))
    assert await bounded(proj_store.read_projection("views")) == ({"a": b"1"}, 3)


async def test_another_instance_sees_the_committed_projection(backend: StoreBackend, proj_store):
    await bounded(proj_store.commit_projection("views", 7, {"k": b"v"}))
    other = backend.new_store()
    assert await bounded(other.read_projection("views")) == ({"k": b"v"}, 7)


# -- the calls projection: a run's calls, one row per (run, call), paged by keyset -------------

def _call(run: str, i: int, outcome: str = "SUCCESS", code: int = 200, setup: float | None = None,
          mos: float | None = None, call_id: str | None = None) -> CallRow:
    return CallRow(run, call_id or f"c{i:05d}", i, outcome, code, setup, mos, f"{run}/{i}".encode())


async def _all_pages(store, query: CallQuery) -> list[bytes]:
    out, after = [], None
    while True:
        page = await bounded(store.read_calls(replace(query, after=after)))
        out.extend(data for _, data in page)
        if len(page) < query.limit:
            return out
        after = page[-1][0]


async def test_calls_and_their_tracking_record_commit_together(proj_store):
    await bounded(proj_store.commit_calls("calls", 4, [_call("r1", i) for i in range(3)]))
    await bounded(proj_store.commit_calls("calls", 9, [_call("r1", i) for i in range(2, 5)]))  # 2 repeated
    assert await bounded(proj_store.get_checkpoint("calls")) == 9
    assert await bounded(proj_store.count_calls(CallQuery("r1"))) == 5
    assert await _all_pages(proj_store, CallQuery("r1", limit=2)) == [f"r1/{i}".encode() for i in range(5)]
    assert await bounded(proj_store.count_calls(CallQuery("r2"))) == 0


async def test_a_repeated_call_keeps_the_first_row(proj_store):
    await bounded(proj_store.commit_calls("calls", 1, [_call("r1", 1)]))
    again = CallRow("r1", "c00001", 1, "CALL_FAILED", 503, None, None, b"other")
    await bounded(proj_store.commit_calls("calls", 2, [again]))
    assert await _all_pages(proj_store, CallQuery("r1")) == [b"r1/1"]
    assert await bounded(proj_store.count_calls(CallQuery("r1", outcomes=("CALL_FAILED",)))) == 0


async def test_a_failed_calls_batch_changes_nothing(proj_store):
    await bounded(proj_store.commit_calls("calls", 3, [_call("r1", 0)]))
    bad = CallRow("r1", "bad", 2**70, "SUCCESS", 200, None, None, b"x")  # no SQL integer holds it
    with pytest.raises(Exception):  # noqa: B017 - each adapter reports overflow its own way
        await bounded(proj_store.commit_calls("calls", 8, [_call("r1", 1), _call("r1", 2), bad]))
    assert await bounded(proj_store.get_checkpoint("calls")) == 3
    assert await _all_pages(proj_store, CallQuery("r1")) == [b"r1/0"]
    assert await bounded(proj_store.count_calls(CallQuery("r1"))) == 1


async def test_totals_count_each_call_once_per_run_and_outcome(proj_store):
    """A page's total (kept per run and outcome as calls are added, or counted) is what the pages
    hold: a call repeated within a batch or across batches counts once, with the outcome it was
    first recorded with, and runs sharing a batch keep their own totals."""
    outcomes = ("SUCCESS", "CALL_FAILED", "TIMEOUT")
    batch = [_call(run, i, outcomes[i % 3], 200 if i % 3 == 0 else 486)
             for run in ("r1", "r2") for i in range(12)]
    batch.append(_call("r1", 0, "TIMEOUT", 408))  # again, in the same batch, with another outcome
    await bounded(proj_store.commit_calls("calls", 1, batch))
    await bounded(proj_store.commit_calls("calls", 2, batch[5:9] + [_call("r1", 12, "SUCCESS"),
                                                                     _call("r2", 1, "SUCCESS", 200)]))
    for query in (CallQuery("r1"), CallQuery("r2"), CallQuery("r1", outcomes=("SUCCESS",)),
                  CallQuery("r1", outcomes=("CALL_FAILED", "TIMEOUT")),
                  CallQuery("r2", outcomes=("TIMEOUT",)),
                  CallQuery("r1", outcomes=("NONE_SUCH",)), CallQuery("r1", sip_codes=(486,)),
                  CallQuery("r3")):
        paged = await _all_pages(proj_store, replace(query, limit=5))
        assert await bounded(proj_store.count_calls(query)) == len(paged), query
    total = await bounded(proj_store.count_calls(CallQuery("r1")))
    assert total == 13 and type(total) is int  # noqa: E721 - a Decimal equals 13 too, and breaks protobuf
    assert await bounded(proj_store.count_calls(CallQuery("r1", outcomes=("SUCCESS",)))) == 5


async def test_calls_filtered_and_sorted_with_stable_pages(proj_store):
    rows = [_call("r1", i, "SUCCESS", 200, setup=float(100 - i % 7), mos=4.0 + (i % 5) / 10) for i in range(20)]
    rows += [_call("r1", 20 + i, "CALL_FAILED", 486 if i % 2 else 503) for i in range(6)]
    await bounded(proj_store.commit_calls("calls", 1, rows))
    assert await bounded(proj_store.count_calls(CallQuery("r1", outcomes=("CALL_FAILED",)))) == 6
    assert await bounded(proj_store.count_calls(CallQuery("r1", sip_codes=(486,)))) == 3
    assert await bounded(proj_store.count_calls(CallQuery("r1", mos_min=4.15, mos_max=4.35))) == 8
    assert await bounded(proj_store.count_calls(CallQuery("r1", mos_min=0))) == 20  # unmeasured MOS excluded
    # descending by index, 4 at a time: every call once, in order
    assert await _all_pages(proj_store, CallQuery("r1", sort="-index", limit=4)) == [
        f"r1/{i}".encode() for i in reversed(range(26))]
    # by setup time: ties broken by index; calls without a setup time last
    by_setup = await _all_pages(proj_store, CallQuery("r1", sort="setup_ms", limit=3))
    expected = sorted(range(20), key=lambda i: (100 - i % 7, i)) + list(range(20, 26))
    assert by_setup == [f"r1/{i}".encode() for i in expected]
    by_mos = await _all_pages(proj_store, CallQuery("r1", sort="-mos", limit=5, outcomes=("SUCCESS",)))
    assert by_mos == [f"r1/{i}".encode() for i in sorted(range(20), key=lambda i: (-(i % 5), -i))]
    # a page boundary does not move when calls are recorded after it was read
    first = await bounded(proj_store.read_calls(CallQuery("r1", limit=5)))
    await bounded(proj_store.commit_calls("calls", 2, [_call("r1", 26 + i) for i in range(5)]
                                          + [_call("r1", 2, call_id="c00002b")]))
    second = await bounded(proj_store.read_calls(CallQuery("r1", limit=5, after=first[-1][0])))
    assert [d for _, d in second] == [b"r1/5", b"r1/6", b"r1/7", b"r1/8", b"r1/9"]
