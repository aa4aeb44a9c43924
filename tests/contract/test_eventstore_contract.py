"""The EventStore contract: one suite, run against every adapter.

- sqlite: always (a file under tmp_path);
- postgres: when the server at CALLGAUGE_TEST_PG_URL (default 127.0.0.1:5432, db ``test``)
  answers; each test gets a fresh schema, dropped afterwards;
- kurrentdb: only when CALLGAUGE_TEST_KURRENTDB_URL is set (e.g.
  ``kurrentdb://127.0.0.1:2113?tls=false``); each test gets a fresh namespace (a stream-name
  prefix), nothing is deleted afterwards. Its positions are commit positions: increasing but not
  dense, so the suite compares positions only by order and equality.

The backends are the `backend` and `store` fixtures of tests/contract/conftest.py.

Every wait is bounded by asyncio.wait_for; nothing asserts on wall-clock durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from callgauge_eventstore import (
    DuplicateEventId,
    EventStore,
    NewEvent,
    RecordedEvent,
    StreamState,
    WrongExpectedVersion,
)

if TYPE_CHECKING:
    from conftest import StoreBackend  # tests/conftest.py

T = TypeVar("T")

TIMEOUT = 10.0  # seconds: the bound on any single wait in this suite


async def bounded(aw: Awaitable[T], timeout: float = TIMEOUT) -> T:
    return await asyncio.wait_for(aw, timeout)


def ev(n: int | str = 0, *, data: bytes | None = None, metadata: dict[str, str] | None = None) -> NewEvent:
    return NewEvent(
        type="callgauge.events.v1.TestHappened",
        data=data if data is not None else f"payload-{n}".encode(),
        metadata=metadata or {},
    )


def new_stream(prefix: str = "s") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def take(sub: AsyncIterator[RecordedEvent], n: int) -> list[RecordedEvent]:
    return [await bounded(anext(sub)) for _ in range(n)]


async def read_everything(store: EventStore, page: int = 1000) -> list[RecordedEvent]:
    out: list[RecordedEvent] = []
    while batch := await bounded(store.read_all(out[-1].position if out else 0, page)):
        out.extend(batch)
    return out


# -- appends and optimistic concurrency ----------------------------------------------------


async def test_append_no_stream_then_expected_version(store: EventStore) -> None:
    s = new_stream()
    assert await store.stream_version(s) is None
    p1 = await store.append_to_stream(s, StreamState.NO_STREAM, [ev(0), ev(1)])
    assert p1 >= 1
    assert await store.stream_version(s) == 1
    p2 = await store.append_to_stream(s, 1, [ev(2)])
    assert p2 > p1
    assert await store.stream_version(s) == 2
    events = await store.read_stream(s)
    assert [e.version for e in events] == [0, 1, 2]
    assert [e.data for e in events] == [b"payload-0", b"payload-1", b"payload-2"]
    assert events[-1].position == p2 and events[1].position == p1
    assert all(e.stream == s and e.type == "callgauge.events.v1.TestHappened" for e in events)


async def test_wrong_expected_version(store: EventStore) -> None:
    s = new_stream()
    with pytest.raises(WrongExpectedVersion) as missing:
        await store.append_to_stream(s, 0, [ev()])
    assert (missing.value.stream, missing.value.expected, missing.value.actual) == (s, 0, None)

    await store.append_to_stream(s, StreamState.NO_STREAM, [ev(0), ev(1)])
    with pytest.raises(WrongExpectedVersion) as exists:
        await store.append_to_stream(s, StreamState.NO_STREAM, [ev()])
    assert (exists.value.expected, exists.value.actual) == (StreamState.NO_STREAM, 1)
    with pytest.raises(WrongExpectedVersion) as stale:
        await store.append_to_stream(s, 0, [ev()])
    assert (stale.value.expected, stale.value.actual) == (0, 1)
    with pytest.raises(WrongExpectedVersion) as ahead:
        await store.append_to_stream(s, 5, [ev()])
    assert (ahead.value.expected, ahead.value.actual) == (5, 1)
    assert await store.stream_version(s) == 1  # nothing written by the failed appends
    assert len(await store.read_stream(s)) == 2


async def test_any_skips_the_check(store: EventStore) -> None:
    s = new_stream()
    await store.append_to_stream(s, StreamState.ANY, [ev(0)])
    await store.append_to_stream(s, StreamState.ANY, [ev(1), ev(2)])
    assert await store.stream_version(s) == 2
    assert [e.version for e in await store.read_stream(s)] == [0, 1, 2]


async def test_concurrent_appends_to_one_stream_exactly_one_wins(backend: StoreBackend) -> None:
    stores = [backend.new_store() for _ in range(2)]
    s = new_stream()
    await stores[0].append_to_stream(s, StreamState.NO_STREAM, [ev(0)])

    async def attempt(i: int) -> int | WrongExpectedVersion:
        try:
            return await stores[i % 2].append_to_stream(s, 0, [ev(f"racer-{i}")])
        except WrongExpectedVersion as e:
            return e

    results = await bounded(asyncio.gather(*(attempt(i) for i in range(6))))
    wins = [r for r in results if isinstance(r, int)]
    losses = [r for r in results if isinstance(r, WrongExpectedVersion)]
    assert len(wins) == 1 and len(losses) == 5
    assert all(e.expected == 0 and e.actual == 1 for e in losses)
    assert await stores[1].stream_version(s) == 1


async def test_concurrent_appends_keep_their_own_outcomes(store: EventStore) -> None:
    """Appends made at once (which a store may write in one transaction, group commit): each one
    that is valid is written whole, at its own positions; one refused (a wrong version, an id
    already recorded) writes nothing and fails no other."""
    taken = new_stream()
    await store.append_to_stream(taken, StreamState.NO_STREAM, [ev("first")])
    recorded = ev("recorded")
    await store.append_to_stream(taken, 0, [recorded])
    good = [new_stream() for _ in range(12)]

    async def append(stream: str, version: int, events: list[NewEvent]) -> int | Exception:
        try:
            return await store.append_to_stream(stream, version, events)
        except (WrongExpectedVersion, DuplicateEventId) as e:
            return e

    results = await bounded(asyncio.gather(
        *(append(s, StreamState.NO_STREAM, [ev(f"{s}-a"), ev(f"{s}-b")]) for s in good[:6]),
        append(taken, 0, [ev("stale")]),  # the stream is at version 1
        append(new_stream(), StreamState.NO_STREAM, [ev("new"), recorded]),  # one id recorded already
        *(append(s, StreamState.NO_STREAM, [ev(f"{s}-a"), ev(f"{s}-b")]) for s in good[6:])))
    assert isinstance(results[6], WrongExpectedVersion) and isinstance(results[7], DuplicateEventId)
    positions = [r for i, r in enumerate(results) if i not in (6, 7)]
    assert all(isinstance(p, int) for p in positions) and len(set(positions)) == len(good)
    for s in good:
        assert [e.version for e in await store.read_stream(s)] == [0, 1]
    assert await store.stream_version(taken) == 1
    everything = await store.read_all(0, 1000)
    assert len(everything) == 2 + 2 * len(good)  # nothing of the refused appends
    assert [e.position for e in everything] == sorted(e.position for e in everything)


async def test_empty_append_is_a_noop_returning_last_position(store: EventStore) -> None:
    assert await store.append_to_stream(new_stream(), StreamState.NO_STREAM, []) == 0
    s = new_stream()
    p = await store.append_to_stream(s, StreamState.NO_STREAM, [ev()])
    assert await store.append_to_stream(new_stream(), 7, []) == p  # no version check either
    assert await store.last_position() == p
    assert await store.stream_version(s) == 0


# -- idempotency by event id ---------------------------------------------------------------


async def test_idempotent_reappend_returns_same_position_and_writes_nothing(store: EventStore) -> None:
    s = new_stream()
    batch = [ev(0), ev(1), ev(2)]
    p = await store.append_to_stream(s, StreamState.NO_STREAM, batch)
    last = await store.last_position()
    # the same events again, even with an expected version that would now conflict
    assert await store.append_to_stream(s, StreamState.NO_STREAM, batch) == p
    assert await store.append_to_stream(s, 0, batch) == p
    assert await store.append_to_stream(s, StreamState.ANY, batch) == p
    assert await store.last_position() == last
    assert await store.stream_version(s) == 2
    assert [e.id for e in await store.read_stream(s)] == [e.id for e in batch]
    # then the stream goes on normally
    assert await store.append_to_stream(s, 2, [ev(3)]) > p


async def test_partial_duplicate_raises(store: EventStore) -> None:
    s = new_stream()
    first = [ev(0), ev(1)]
    await store.append_to_stream(s, StreamState.NO_STREAM, first)
    last = await store.last_position()
    with pytest.raises(DuplicateEventId):
        await store.append_to_stream(s, 1, [first[1], ev(2)])
    with pytest.raises(DuplicateEventId):  # the same id twice in one append
        dup = ev(9)
        await store.append_to_stream(s, 1, [dup, dup])
    assert await store.last_position() == last
    assert await store.stream_version(s) == 1


async def test_id_recorded_in_another_stream_raises(backend: StoreBackend) -> None:
    if backend.name == "kurrentdb":
        pytest.skip(
            "KurrentDB has no index of event ids across streams: an id reused in another stream is recorded"
        )
    store = backend.new_store()
    s = new_stream()
    first = [ev(0), ev(1)]
    await store.append_to_stream(s, StreamState.NO_STREAM, first)
    last = await store.last_position()
    with pytest.raises(DuplicateEventId):
        await store.append_to_stream(new_stream(), StreamState.NO_STREAM, [first[0]])
    assert await store.last_position() == last


# -- reads -----------------------------------------------------------------------------------


async def test_read_stream_order_from_version_and_limit(store: EventStore) -> None:
    s, other = new_stream("a"), new_stream("b")
    await store.append_to_stream(s, StreamState.NO_STREAM, [ev(0), ev(1)])
    await store.append_to_stream(other, StreamState.NO_STREAM, [ev("x")])
    await store.append_to_stream(s, 1, [ev(2), ev(3), ev(4)])
    assert [e.data for e in await store.read_stream(s)] == [f"payload-{i}".encode() for i in range(5)]
    assert [e.version for e in await store.read_stream(s, from_version=3)] == [3, 4]
    assert [e.version for e in await store.read_stream(s, from_version=1, limit=2)] == [1, 2]
    assert await store.read_stream(s, from_version=5) == []
    assert await store.read_stream(new_stream("missing")) == []
    positions = [e.position for e in await store.read_stream(s)]
    assert positions == sorted(positions)


async def test_read_all_in_commit_order_with_paging(store: EventStore) -> None:
    assert await store.last_position() == 0
    assert await store.read_all() == []
    a, b = new_stream("a"), new_stream("b")
    appended: list[tuple[str, NewEvent]] = []
    for stream, version, batch in [
        (a, StreamState.NO_STREAM, [ev("a0"), ev("a1")]),
        (b, StreamState.NO_STREAM, [ev("b0")]),
        (a, 1, [ev("a2")]),
        (b, 0, [ev("b1"), ev("b2"), ev("b3")]),
    ]:
        await store.append_to_stream(stream, version, batch)
        appended.extend((stream, e) for e in batch)

    everything = await store.read_all()
    assert [(e.stream, e.id) for e in everything] == [(s, e.id) for s, e in appended]
    positions = [e.position for e in everything]
    assert positions == sorted(set(positions)) and positions[0] >= 1
    assert await store.last_position() == positions[-1]

    assert await store.read_all(after_position=positions[2]) == everything[3:]
    assert await store.read_all(after_position=positions[-1]) == []
    pages, cursor = [], 0
    while page := await store.read_all(after_position=cursor, limit=3):
        assert len(page) <= 3
        pages.append(page)
        cursor = page[-1].position
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [e for p in pages for e in p] == everything


async def test_metadata_round_trip(store: EventStore) -> None:
    s = new_stream()
    meta = {
        "correlation_id": str(uuid.uuid4()),
        "causation_id": str(uuid.uuid4()),
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "unicode": "appel d'essai — 呼叫 ☎",
        "quotes": '{"not": "json"}\n\t\\',
        "": "empty key",
        "empty": "",
    }
    await store.append_to_stream(s, StreamState.NO_STREAM, [ev(0, metadata=meta), ev(1)])
    got = await store.read_stream(s)
    assert dict(got[0].metadata) == meta
    assert dict(got[1].metadata) == {}
    assert dict((await store.read_all())[0].metadata) == meta


async def test_binary_data_round_trip(store: EventStore) -> None:
    s = new_stream()
    payloads = [bytes(range(256)), b"", b"\x00" * 10, os.urandom(256 * 1024)]
    await store.append_to_stream(s, StreamState.NO_STREAM, [ev(i, data=p) for i, p in enumerate(payloads)])
    got = await store.read_stream(s)
    assert [e.data for e in got] == payloads
    assert all(type(e.data) is bytes for e in got)


async def test_recorded_event_fields(store: EventStore) -> None:
    s = new_stream()
    before = datetime.now(UTC)
    e = ev()
    p = await store.append_to_stream(s, StreamState.NO_STREAM, [e])
    (got,) = await store.read_stream(s)
    assert isinstance(got, RecordedEvent)
    assert (got.id, got.type, got.stream, got.version, got.position) == (e.id, e.type, s, 0, p)
    assert isinstance(got.id, uuid.UUID)
    assert got.recorded_at.utcoffset() == timedelta(0)
    # a sanity bound, not a timing assertion: the clock of the server may differ a little
    assert abs(got.recorded_at - before) < timedelta(minutes=5)


# -- checkpoints -----------------------------------------------------------------------------


async def test_checkpoints(backend: StoreBackend) -> None:
    store = backend.new_store()
    assert await store.get_checkpoint("relay") == 0
    await store.set_checkpoint("relay", 42)
    await store.set_checkpoint("projector", 7)
    assert await store.get_checkpoint("relay") == 42
    await store.set_checkpoint("relay", 43)
    assert await store.get_checkpoint("relay") == 43
    assert await store.get_checkpoint("projector") == 7
    assert await backend.new_store().get_checkpoint("relay") == 43  # durable, shared


# -- subscriptions ---------------------------------------------------------------------------


async def test_subscribe_all_catches_up_then_follows_live(store: EventStore) -> None:
    a, b = new_stream("a"), new_stream("b")
    await store.append_to_stream(a, StreamState.NO_STREAM, [ev("a0"), ev("a1")])
    await store.append_to_stream(b, StreamState.NO_STREAM, [ev("b0")])
    sub = store.subscribe_all(poll_interval=0.02)
    try:
        caught_up = await take(sub, 3)
        assert [e.data for e in caught_up] == [b"payload-a0", b"payload-a1", b"payload-b0"]

        pending = asyncio.ensure_future(anext(sub))
        await asyncio.sleep(0)  # the subscription is now waiting for news
        assert not pending.done()
        p = await store.append_to_stream(a, 1, [ev("a2"), ev("a3")])
        live = [await bounded(pending)] + await take(sub, 1)
        assert [e.data for e in live] == [b"payload-a2", b"payload-a3"]
        assert live[-1].position == p
        assert [e.position for e in caught_up + live] == [e.position for e in await store.read_all()]
    finally:
        await bounded(sub.aclose())


async def test_news_is_set_by_the_next_append_only(store: EventStore) -> None:
    """news(): what the outbox relay waits on instead of polling (an adapter without it is polled)."""
    if not hasattr(store, "news"):
        pytest.skip(f"{type(store).__name__} has no news(): its relay polls")
    s = new_stream()
    news = store.news()
    await asyncio.sleep(0.01)
    assert not news.is_set()
    await store.append_to_stream(s, StreamState.NO_STREAM, [ev(0)])
    assert news.is_set()
    later = store.news()  # a new one: set by the next commit, not by the one before
    assert not later.is_set()
    await store.append_to_stream(s, 0, [ev(1)])
    assert later.is_set()


async def test_relay_keys_are_the_kafka_keys_the_relay_gives_a_range(store: EventStore) -> None:
    """relay_keys(): the keys of the relay's backlog in one SQL pass (its lane for new work)."""
    from callgauge_relay.relay import OutboxRelay

    if not hasattr(store, "relay_keys"):
        pytest.skip(f"{type(store).__name__} has no relay_keys(): its relay has no lane for new work")
    s = new_stream()
    await store.append_to_stream(s, StreamState.NO_STREAM, [
        ev(0, metadata={"partition_key": "pk-1", "correlation_id": "run-1"}), ev(1, metadata={"correlation_id": "run-2"}),
        ev(2, metadata={"correlation_id": "", "partition_key": ""}), ev(3, metadata={"correlation_id": "run-3"})])
    events = await store.read_all(0, 100)
    keys = await store.relay_keys(0, events[2].position)
    assert keys == {OutboxRelay.key_of(e) for e in events[:3]} == {"pk-1", "run-2", s}
    assert await store.relay_keys(events[2].position, events[3].position) == {"run-3"}
    assert await store.relay_keys_after(events[0].position, 2) == [(events[1].position, "run-2"),
                                                                    (events[2].position, s)]


async def test_subscribe_all_from_a_checkpoint(store: EventStore) -> None:
    s = new_stream()
    await store.append_to_stream(s, StreamState.NO_STREAM, [ev(i) for i in range(5)])
    everything = await store.read_all()
    await store.set_checkpoint("reader", everything[2].position)
    sub = store.subscribe_all(after_position=await store.get_checkpoint("reader"), poll_interval=0.02)
    try:
        assert await take(sub, 2) == everything[3:]
    finally:
        await bounded(sub.aclose())


async def test_subscribe_all_sees_appends_from_another_instance(backend: StoreBackend) -> None:
    reader, writer = backend.new_store(), backend.new_store()
    sub = reader.subscribe_all(poll_interval=0.02)
    try:
        pending = asyncio.ensure_future(anext(sub))
        await asyncio.sleep(0.05)
        assert not pending.done()
        p = await writer.append_to_stream(new_stream(), StreamState.NO_STREAM, [ev()])
        assert (await bounded(pending)).position == p
    finally:
        await bounded(sub.aclose())


async def test_subscribe_all_is_cancel_safe(store: EventStore) -> None:
    s = new_stream()
    await store.append_to_stream(s, StreamState.NO_STREAM, [ev(0)])
    got: list[RecordedEvent] = []

    async def follow() -> None:
        async for e in store.subscribe_all(poll_interval=0.02):
            got.append(e)

    task = asyncio.create_task(follow())
    for _ in range(3):  # cancel it while it waits for news, repeatedly
        await bounded(_until(lambda: len(got) >= 1))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await bounded(task)
        got.clear()
        task = asyncio.create_task(follow())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await bounded(task)
    # the store is still fine
    assert await store.append_to_stream(s, 0, [ev(1)]) == (await store.read_all())[-1].position


async def _until(cond: Any, step: float = 0.01) -> None:
    while not cond():
        await asyncio.sleep(step)


# -- concurrent writers and a tailing reader -------------------------------------------------


async def test_concurrent_writers_with_a_tailing_reader(backend: StoreBackend) -> None:
    writers_n, appends_n = 8, 25
    # several instances on the same storage: separate connections (and, for SQLite, two
    # connections to the same file from two worker threads, as two processes would have)
    instances = [backend.new_store() for _ in range(2 if backend.name == "sqlite" else 4)]
    reader = backend.new_store()
    start = await reader.last_position()

    expected_total = sum(1 + (k % 3) for k in range(appends_n)) * writers_n
    seen: list[RecordedEvent] = []

    async def tail() -> None:
        async for e in reader.subscribe_all(after_position=start, poll_interval=0.01):
            seen.append(e)

    async def write(w: int) -> list[uuid.UUID]:
        store = instances[w % len(instances)]
        stream, version, ids = f"writer-{w}-{uuid.uuid4().hex[:6]}", StreamState.NO_STREAM, []
        for k in range(appends_n):
            batch = [ev(f"{w}.{k}.{j}") for j in range(1 + (k % 3))]  # batches of 1..3
            await store.append_to_stream(stream, version, batch)
            version = int(version) + len(batch)
            ids.extend(e.id for e in batch)
            if k % 5 == 0:
                await asyncio.sleep(0)
        return ids

    tailer = asyncio.create_task(tail())
    try:
        written = await bounded(asyncio.gather(*(write(w) for w in range(writers_n))), 60)
        final = await reader.last_position()
        # wait until the reader has reached the head (it may have skipped events on the way)
        await bounded(_until(lambda: bool(seen) and seen[-1].position >= final), 30)
    finally:
        tailer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bounded(tailer)

    all_ids = [i for ids in written for i in ids]
    assert len(all_ids) == expected_total
    assert len(seen) == expected_total
    assert len({e.id for e in seen}) == expected_total, "the reader saw an event twice"
    assert {e.id for e in seen} == set(all_ids), "the reader missed events"
    positions = [e.position for e in seen]
    assert all(p < q for p, q in zip(positions, positions[1:], strict=False)), "positions not increasing"
    assert positions[0] > start
    # each writer's events reached the reader in version order
    by_stream: dict[str, list[int]] = {}
    for e in seen:
        by_stream.setdefault(e.stream, []).append(e.version)
    assert all(vs == list(range(len(vs))) for vs in by_stream.values())
    assert len(by_stream) == writers_n
    # read_all afterwards agrees with what the reader saw live, event for event
    after = [e for e in await read_everything(reader, page=100) if e.position > start]
    assert [(e.position, e.id) for e in after] == [(e.position, e.id) for e in seen]


def _counting(store: EventStore, reads: list[int]) -> type:
    """A class of wrappers of `store` that count the events each read_stream returns in `reads`."""

    class Counting:
        def __getattr__(self, name: str):
            return getattr(store, name)

        async def read_stream(self, stream: str, from_version: int = 0, limit: int | None = None):
            out = await store.read_stream(stream, from_version, limit)
            reads.append(len(out))
            return out

    return Counting


def _sum_evolve(state: int | None, payload: int, at: datetime | None) -> int:
    return (state or 0) + payload


def _int_decode(type_: str, data: bytes) -> int:
    return int(data)


async def test_load_with_a_state_cache_folds_only_what_was_appended_since(store: EventStore) -> None:
    """aggregate.load with a StateCache: the second load reads the events after the cached version
    only (whoever appended them) and ends in the same state and version as a load from scratch."""
    from callgauge_eventstore.aggregate import StateCache, load

    reads: list[int] = []
    Counting = _counting(store, reads)  # noqa: N806 - a class
    evolve, decode = _sum_evolve, _int_decode

    s = new_stream("agg")
    cache = StateCache(max_streams=2)
    assert await bounded(load(Counting(), s, evolve, decode, cache)) == (None, StreamState.NO_STREAM)
    await bounded(store.append_to_stream(s, StreamState.NO_STREAM, [ev(data=b"1"), ev(data=b"2"), ev(data=b"3")]))
    assert await bounded(load(Counting(), s, evolve, decode, cache)) == (6, 2)
    await bounded(store.append_to_stream(s, 2, [ev(data=b"4"), ev(data=b"5")]))  # another writer
    assert await bounded(load(Counting(), s, evolve, decode, cache)) == (15, 4)
    assert reads == [0, 3, 2]
    assert await bounded(load(store, s, evolve, decode)) == (15, 4)  # from scratch: the same
    assert await bounded(load(Counting(), s, evolve, decode, cache)) == (15, 4) and reads[-1] == 0
    for other in (new_stream("agg"), new_stream("agg")):  # bounded: the least recently used goes
        await bounded(store.append_to_stream(other, StreamState.NO_STREAM, [ev(data=b"7")]))
        await bounded(load(store, other, evolve, decode, cache))
    assert len(cache) == 2 and cache.get(s, evolve) is None
    # bounded by weight too: the heaviest states go first, the latest one always stays
    heavy = StateCache(max_streams=10, max_weight=20, weight=lambda state: state)
    await bounded(load(store, s, evolve, decode, heavy))  # weight 15
    assert len(heavy) == 1 and heavy.total_weight == 15
    await bounded(load(store, other, evolve, decode, heavy))  # weight 7: 22 > 20, the oldest goes
    assert len(heavy) == 1 and heavy.total_weight == 7 and heavy.get(s, evolve) is None
    heavy.forget(other, evolve)
    assert len(heavy) == 0 and heavy.total_weight == 0


async def test_decide_and_append_folds_what_it_wrote_and_only_that(store: EventStore) -> None:
    """decide_and_append(fold_appended=True) puts the state after its own append in the cache, so the
    next load reads nothing; a repeat of the same events (an idempotent append: a redelivered batch)
    is not folded again. Either way the cached state is the state a load from scratch gives."""
    from callgauge_eventstore.aggregate import StateCache, decide_and_append, load

    reads: list[int] = []
    Counting = _counting(store, reads)  # noqa: N806 - a class
    evolve, decode = _sum_evolve, _int_decode

    s = new_stream("fold")
    cache = StateCache()
    await bounded(store.append_to_stream(s, StreamState.NO_STREAM, [ev(data=b"1")]))
    batch = [ev(data=b"10"), ev(data=b"20")]
    for _ in range(2):  # the second time: the same events again (same ids), written once
        await bounded(decide_and_append(Counting(), s, evolve, decode, lambda state: batch, cache=cache,
                                        fold_appended=True))
    reads.clear()
    assert await bounded(load(Counting(), s, evolve, decode, cache)) == (31, 2) and reads == [0]
    assert await bounded(load(store, s, evolve, decode)) == (31, 2)
    # without fold_appended the next load reads what was appended
    await bounded(decide_and_append(store, s, evolve, decode, lambda state: [ev(data=b"5")], cache=cache))
    reads.clear()
    assert await bounded(load(Counting(), s, evolve, decode, cache)) == (36, 3) and reads == [1]
    # a fold of its own (the runs service folds a batch of calls at once): called with the state the
    # decision was made on and what was appended, once per write, never for a repeat
    folds: list[int] = []

    def fold_batch(state, events):
        folds.append(len(events))
        return state + sum(int(e.data) for e in events)

    batch = [ev(data=b"100"), ev(data=b"200")]
    for _ in range(2):
        await bounded(decide_and_append(Counting(), s, evolve, decode, lambda state: batch, cache=cache,
                                        fold_appended=fold_batch))
    reads.clear()
    assert folds == [2]
    assert await bounded(load(Counting(), s, evolve, decode, cache)) == (336, 5) and reads == [0]
    assert await bounded(load(store, s, evolve, decode)) == (336, 5)
