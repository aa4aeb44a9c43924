"""The media-engine side of billing: on BalanceExhausted the account's live calls are hung up,
no further call of its runs is placed, and the run's RunMediaFinished says why; the runs service
turns that into FAILED "balance exhausted"."""

from __future__ import annotations

import asyncio

from callgauge_bus.codec import Delivered, envelope_for
from callgauge_media.handlers.metering import BillingGuard
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import billing_pb2, media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_runs.domain import run as run_model


class SlowPlacer:
    """Holds each call until it is hung up."""

    def __init__(self) -> None:
        self.hung_up: list[str] = []
        self.placed: list[str] = []
        self._ends: dict[str, asyncio.Event] = {}

    def hangup(self, call_id: str, reason: str) -> bool:
        self.hung_up.append(call_id)
        self._ends[call_id].set()
        return True

    async def place(self, call_id: str, action) -> m_pb2.CallMeasurement:
        self.placed.append(call_id)
        self._ends[call_id] = asyncio.Event()
        await self._ends[call_id].wait()
        return m_pb2.CallMeasurement(call_id=call_id, outcome=m_pb2.SUCCESS, duration_ms=1234)


def delivered(msg) -> Delivered:
    return Delivered(envelope_for(msg, "wallet-acc", 0, "r", "", "billing"), msg)


async def test_exhaustion_hangs_up_the_accounts_live_calls_and_places_no_more() -> None:
    placer = SlowPlacer()
    guard = BillingGuard(store=None, notify=lambda: None, engine_id="e1", hangup=placer.hangup)  # type: ignore[arg-type]
    guard.run_started(runs_pb2.RunRequested(run_id="r1", account_id="acc", mode="live"))
    guard.run_started(runs_pb2.RunRequested(run_id="r2", account_id="other", mode="live"))
    guard.run_started(runs_pb2.RunRequested(run_id="r3", account_id="acc", mode="test"))
    p = guard.placer_for(placer)
    calls = [asyncio.create_task(p.place(f"{r}:0.0.0", spec_pb2.CallAction())) for r in ("r1", "r2", "r3")]
    async with asyncio.timeout(10):  # the three calls are up (in the placer) before the balance runs out
        while len(placer.placed) < 3:
            await asyncio.sleep(0)

    await guard.on_billing_event(delivered(billing_pb2.BalanceExhausted(account_id="acc", run_id="r1", mode="live")))

    assert placer.hung_up == ["r1:0.0.0"]  # not the other account's, not the test-mode run's
    assert (await calls[0]).duration_ms == 1234  # a hung-up call still reports its measurement
    later = await p.place("r1:0.0.1", spec_pb2.CallAction(dial_destination="sip:x@127.0.0.1"))
    assert later.outcome != m_pb2.SUCCESS and "balance exhausted" in later.detail
    assert "r1:0.0.1" not in placer.placed

    sent = []

    async def emit(msg) -> None:
        sent.append(msg)

    await guard.emit_for(emit)(media_pb2.RunMediaFinished(run_id="r1"))
    await guard.emit_for(emit)(media_pb2.RunMediaFinished(run_id="r2"))
    assert [m.ended_by for m in sent] == ["balance_exhausted", ""]
    for t in calls[1:]:
        t.cancel()
    await asyncio.gather(*calls[1:], return_exceptions=True)


def test_a_run_ended_by_exhaustion_fails_with_balance_exhausted() -> None:
    run = run_model.evolve_run(None, runs_pb2.RunRequested(run_id="r1", account_id="acc", mode="live"))
    run = run_model.evolve_run(run, runs_pb2.RunStarted(run_id="r1"))
    summary = m_pb2.RunSummary(calls_attempted=1, calls_answered=1, asr=1.0)
    [e] = run_model.decide_media_event(run, media_pb2.RunMediaFinished(run_id="r1", summary=summary,
                                                                  ended_by="balance_exhausted"))
    assert isinstance(e, runs_pb2.RunFailed) and e.result_description == "balance exhausted"


class Appended:
    """The guard's event store: what it appended, per stream."""

    def __init__(self) -> None:
        self.streams: dict[str, list] = {}

    async def append_to_stream(self, stream, expected, events) -> None:
        self.streams.setdefault(stream, []).extend(events)


async def test_calls_of_the_sipp_driver_are_metered_through_the_runs_placer(monkeypatch) -> None:
    from callgauge_bus.codec import decode_payload

    store = Appended()
    guard = BillingGuard(store=store, notify=lambda: None, engine_id="e1", interval_s=0.05)  # type: ignore[arg-type]
    guard.run_started(runs_pb2.RunRequested(run_id="r1", account_id="acc", mode="live"))
    p = guard.placer_for(None)  # a SIPp-only run: no pool behind the placer
    # The guard reads the loop's clock when told; the test sets it (the tells do not await anything).
    loop = asyncio.get_running_loop()
    with monkeypatch.context() as clock:
        clock.setattr(loop, "time", lambda: 1000.0)
        p.tell("r1:0.0.7", "answered", ())
        p.tell("r1:0.0.7", "answered", ())  # once only
        clock.setattr(loop, "time", lambda: 1000.25)  # exact in binary: 250 ms
        p.tell("r1:0.0.7", "progress", ())
        p.tell("r1:0.0.7", "ended", ())
        p.tell("r1:0.0.7", "progress", ())  # after its end: nothing
    await guard.drain()
    sent = [decode_payload(e.type, e.data) for e in store.streams["media-meter-r1"]]
    assert [type(m).__name__ for m in sent] == ["CallAnswered", "CallProgress"]
    assert sent[1].up_ms == 250 and sent[1].call_id == "r1:0.0.7" and "r1:0.0.7" not in guard.up


async def test_metering_events_wait_for_a_full_store_instead_of_being_dropped(tmp_path) -> None:
    """A CallAnswered/CallProgress the store cannot take (SQLite full) is retried with backoff, not
    dropped after a few tries: once there is room again every call's CallAnswered and its newest tick
    are appended, in order, the retries counted; ticks waiting behind another are coalesced."""
    from prometheus_client import REGISTRY

    from callgauge_bus.codec import new_event
    from callgauge_eventstore import StoreUnavailable, StreamState
    from callgauge_eventstore.sqlite import SqliteEventStore

    store = SqliteEventStore(str(tmp_path / "media.db"))
    await store.open()
    await store._run(lambda c: c.execute(  # a disk with 4 pages left, then filled up
        f"PRAGMA max_page_count = {c.execute('PRAGMA page_count').fetchone()[0] + 4}").fetchone())
    for size in (3000, 300, 30, 1):  # to the last byte
        for _ in range(200):
            try:
                await store.append_to_stream("filler", StreamState.ANY, [
                    new_event(media_pb2.CallProgress(run_id="x" * size), correlation_id="x", source="test")])
            except StoreUnavailable:
                break
        else:
            raise AssertionError("the store never filled up")
    retries_before = REGISTRY.get_sample_value("callgauge_media_metering_emit_retries_total",
                                               {"type": "CallAnswered"}) or 0
    lost_before = REGISTRY.get_sample_value("callgauge_media_metering_events_lost_total",
                                            {"type": "CallProgress"}) or 0
    guard = BillingGuard(store=store, notify=lambda: None, engine_id="e1", interval_s=0.0)
    guard.on_call("r1:0.0.0", "answered", ())
    for _ in range(3):
        await asyncio.sleep(0.05)
        guard.on_call("r1:0.0.0", "progress", ())

    def retries() -> float:
        return REGISTRY.get_sample_value("callgauge_media_metering_emit_retries_total", {"type": "CallAnswered"}) or 0

    async with asyncio.timeout(30):  # more tries than the 5 the engine used to give up after
        while retries() - retries_before < 6:
            await asyncio.sleep(0.05)
    assert await store.stream_version("media-meter-r1") is None  # nothing could be written

    await store._run(lambda c: c.execute("PRAGMA max_page_count = 1000000").fetchone())  # room again
    await guard.drain(timeout=30)
    events = await store.read_stream("media-meter-r1")
    types = [e.type.rsplit(".", 1)[-1] for e in events]
    assert types[0] == "CallAnswered" and set(types[1:]) == {"CallProgress"} and len(types) <= 3, types
    ups = [media_pb2.CallProgress.FromString(e.data).up_ms for e in events[1:]]
    assert ups == sorted(ups)  # in order; the last one is the newest tick
    assert (REGISTRY.get_sample_value("callgauge_media_metering_events_lost_total",
                                      {"type": "CallProgress"}) or 0) == lost_before
    await store.close()


async def test_a_runs_metering_is_appended_a_batch_at_a_time_in_order_per_call() -> None:
    """A thousand calls answered at once cost a few appends, not a thousand: the run's flusher
    appends what is queued in one write. Each call's CallAnswered comes before its ticks, and a tick
    still queued is replaced by the newer one in its place; an append that failed is retried with
    the same event ids, so one that did commit is not metered twice."""
    from callgauge_bus.codec import decode_payload

    class Flaky(Appended):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[list] = []  # each append's events

        async def append_to_stream(self, stream, expected, events) -> None:
            self.calls.append(list(events))
            if len(self.calls) == 1:
                await asyncio.sleep(0.01)  # the first append is slow and fails: ticks queue behind it
                raise OSError("disk full")
            await super().append_to_stream(stream, expected, events)

    store = Flaky()
    guard = BillingGuard(store=store, notify=lambda: None, engine_id="e1", interval_s=0.0)  # type: ignore[arg-type]
    calls = [f"r1:0.0.{i}" for i in range(1000)]
    for c in calls:
        guard.on_call(c, "answered", ())
    await asyncio.sleep(0)  # the flusher takes the 1000 answers as one batch
    for tick in range(3):  # behind the failing append: one queued tick a call, the newest
        for c in calls:
            guard.on_call(c, "progress", ())
    await guard.drain()
    assert len(store.calls) == 3  # the answers (failed, then retried), then the ticks
    assert [e.id for e in store.calls[0]] == [e.id for e in store.calls[1]]  # the retry: the same ids
    sent = [decode_payload(e.type, e.data) for e in store.streams["media-meter-r1"]]
    assert [type(m).__name__ for m in sent] == ["CallAnswered"] * 1000 + ["CallProgress"] * 1000
    assert [m.call_id for m in sent] == calls + calls
