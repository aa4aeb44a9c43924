"""MediaEngine.emit: concurrent emits of one stream are written in few appends (group commit), in
the order they were emitted, each caller returning once its own event is committed (issue #14:
one append per call held the SIPp driver's CallMeasured to ~500/s on SQLite)."""

from __future__ import annotations

import asyncio

import pytest

from callgauge_eventstore import WrongExpectedVersion
from callgauge_eventstore.sqlite import SqliteEventStore
from callgauge_media.handlers.media_engine import MediaEngine
from callgauge_proto.callgauge.events.v1 import media_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2


class _Relay:
    def __init__(self) -> None:
        self.notified = 0

    def notify(self) -> None:
        self.notified += 1


class _CountingStore(SqliteEventStore):
    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.appends: list[int] = []
        self.fail_at: int | None = None  # the n-th append call (1-based) raises

    async def append_to_stream(self, stream, expected, events):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == self.fail_at:
            raise WrongExpectedVersion(stream, expected, -2)
        self.appends.append(len(events))
        return await super().append_to_stream(stream, expected, events)


def _engine(store) -> MediaEngine:
    return MediaEngine(settings=None, placer=None, store=store, producer=None, relay=_Relay(),  # type: ignore[arg-type]
                       engine_id="e1")


def _call(i: int) -> media_pb2.CallMeasured:
    return media_pb2.CallMeasured(run_id="r1", engine_id="e1", call=m_pb2.CallMeasurement(call_id=f"c{i}"))


@pytest.mark.asyncio
async def test_concurrent_emits_are_group_committed_in_order(tmp_path) -> None:
    store = _CountingStore(tmp_path / "m.db", namespace="media-engine")
    engine = _engine(store)
    await asyncio.gather(*(engine.emit(_call(i)) for i in range(2500)))
    await engine.emit(_call(2500))  # alone: one append of one
    events = await store.read_stream("media-run-r1")
    ids = [media_pb2.CallMeasured.FromString(e.data).call.call_id for e in events]
    assert ids == [f"c{i}" for i in range(2501)]  # every call once, in emit order
    assert sum(store.appends) == 2501
    assert len(store.appends) <= 5, store.appends  # not one per call
    assert max(store.appends) <= 1000  # bounded batches
    await asyncio.sleep(0)
    assert not engine._emit_queues and not engine._emit_writers
    await store.close()


@pytest.mark.asyncio
async def test_a_failed_append_fails_every_caller_it_carried_and_writes_nothing(tmp_path) -> None:
    store = _CountingStore(tmp_path / "m.db", namespace="media-engine")
    engine = _engine(store)
    await engine.emit(_call(0))
    store.fail_at = 2  # the 49 concurrent emits go in one append (the 2nd)
    results = await asyncio.gather(*(engine.emit(_call(i)) for i in range(1, 50)), return_exceptions=True)
    failed = [r for r in results if isinstance(r, Exception)]
    assert len(failed) > 1, "every caller whose event was in the failed append must hear of it"
    assert all(isinstance(r, WrongExpectedVersion) for r in failed)
    events = await store.read_stream("media-run-r1")
    written = [media_pb2.CallMeasured.FromString(e.data).call.call_id for e in events]
    assert len(written) == 1 + len(results) - len(failed)  # what failed is not half-written
    assert len(set(written)) == len(written)
    await store.close()
