"""What the media-engine does for billing.

- Metering: `CallAnswered` when a call is answered and `CallProgress` about every
  `interval_s` while it is up (driven by the worker pool's answered/progress reports, and for
  SIPp-driven load by the driver's reports through the run's placer, `tell`), so billing
  charges per second while calls last; each call's final `CallMeasured` bills its last second.
  They go through the engine's outbox like every media event, on a stream per run
  (`media-meter-<run_id>`, appended a batch at a time), keyed by the run id on Kafka.
- Exhaustion: on billing's `BalanceExhausted` every replica (each its own consumer group) hangs up
  the account's live calls at once, places none of that run's remaining calls, and marks the run's
  `RunMediaFinished` with `ended_by = "balance_exhausted"`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf.message import Message
from prometheus_client import Counter

from callgauge_bus.codec import Delivered, new_event
from callgauge_eventstore import EventStore, StreamState
from callgauge_platform.logs import get_logger
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import billing_pb2, media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.jobs import CallJob
from callgauge_media.domain.measurement import failed_measurement

log = get_logger("media-engine")
SOURCE = "media-engine"
EXHAUSTED_REASON = "balance exhausted"
STOPPED_REASON = "run stopped on request"
HANGUPS = Counter("callgauge_media_balance_hangups_total", "calls hung up because the balance ran out")
METERING_RETRIES = Counter("callgauge_media_metering_emit_retries_total",
                           "appends of a CallAnswered/CallProgress that failed and were retried (never given up on)",
                           ["type"])
METERING_COALESCED = Counter("callgauge_media_metering_ticks_coalesced_total",
                             "CallProgress ticks replaced by a newer one of the same call while the store was out")
METERING_LOST = Counter("callgauge_media_metering_events_lost_total",
                        "CallAnswered/CallProgress still queued when the engine stopped past its drain (the call's "
                        "CallMeasured still bills it)", ["type"])
FLUSH_MAX = 1000  # metering events in one append
_STALE_S = 30.0  # a call without a worker report for this long is over


@dataclass
class _Up:
    run_id: str
    answered_at: float  # loop time
    last_tick: float
    last_seen: float


@dataclass
class BillingGuard:
    store: EventStore
    notify: Callable[[], None]
    engine_id: str
    interval_s: float = 2.0
    hangup: Callable[[str, str], bool] | None = None  # the pool's hangup(call_id, reason)
    up: dict[str, _Up] = field(default_factory=dict)
    runs: dict[str, tuple[str, str]] = field(default_factory=dict)  # run id -> (account, mode)
    in_flight: dict[str, set[str]] = field(default_factory=dict)  # run id -> call ids being placed
    exhausted: set[str] = field(default_factory=set)  # run ids cut short
    stopped: set[str] = field(default_factory=set)  # run ids a user stopped (RunStopRequested)
    _tasks: set[asyncio.Task] = field(default_factory=set)
    # run id -> metering events to append, in order, keyed (type, call id): a newer tick replaces a queued one
    _pending: dict[str, dict[tuple[str, str], Message]] = field(default_factory=dict)
    _flushing: set[str] = field(default_factory=set)  # run ids with a flusher task
    _swept: float = 0.0

    # ---------------------------------------------------------------- metering

    def on_call(self, call_id: str, kind: str, data: tuple) -> None:
        """The pool's call listener (on the event loop), and what the SIPp driver reports of its
        calls (``tell`` of the run's placer): ``answered``, ``progress``, ``ended``."""
        run_id = call_id.rpartition(":")[0]
        if not run_id:
            return
        now = asyncio.get_running_loop().time()
        if kind == "ended":
            self.up.pop(call_id, None)  # its CallMeasured carries the final duration
        elif kind == "answered" and call_id not in self.up:
            self.up[call_id] = _Up(run_id, now, now, now)
            ts = media_pb2.CallAnswered(run_id=run_id, engine_id=self.engine_id, call_id=call_id)
            ts.answered_at.GetCurrentTime()
            self._emit(call_id, ts)
        elif kind == "progress" and call_id in self.up:
            u = self.up[call_id]
            u.last_seen = now
            if now - u.last_tick >= self.interval_s - 0.05:
                u.last_tick = now
                self._emit(call_id, media_pb2.CallProgress(run_id=run_id, engine_id=self.engine_id, call_id=call_id,
                                                           up_ms=int((now - u.answered_at) * 1000)))
        if now - self._swept >= 1.0:  # at most once a second: thousands of calls may be up
            self._swept = now
            for cid in [c for c, u in self.up.items() if now - u.last_seen > _STALE_S]:
                self.up.pop(cid, None)

    def _emit(self, call_id: str, msg: Message) -> None:
        """Queue a metering event of a call on its run's queue; one flusher per run appends what is
        queued, oldest first, in one append (a whole load's answers cost one store write per flush, not
        one per call)."""
        run_id = msg.run_id  # type: ignore[attr-defined]
        queue = self._pending.setdefault(run_id, {})
        key = (msg.DESCRIPTOR.name, call_id)
        # a newer tick supersedes one still queued (billing charges a call's seconds so far, the
        # largest total wins): it keeps the queued one's place, so the call's CallAnswered stays
        # before it, and a call's backlog stays one tick however long the store is out
        if key in queue and isinstance(msg, media_pb2.CallProgress):
            METERING_COALESCED.inc()
        queue[key] = msg
        if run_id not in self._flushing:
            self._flushing.add(run_id)
            task = asyncio.get_running_loop().create_task(self._flush(run_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, run_id: str) -> None:
        """Append the run's queued metering events, oldest first, up to FLUSH_MAX an append, on the
        run's stream `media-meter-<run id>`. Never gives up: an append that fails (disk full, store
        busy) is retried with the same event ids (a retry of an append that did commit is a no-op)
        and backoff up to 5 s, each retry counted in callgauge_media_metering_emit_retries_total and
        logged; only an engine stop past its drain ends the wait (then counted in
        callgauge_media_metering_events_lost_total; each call's CallMeasured still carries its whole
        duration)."""
        queue = self._pending.get(run_id, {})
        batch: list[Message] = []
        try:
            while queue:
                keys = list(itertools.islice(queue, FLUSH_MAX))
                batch = [queue.pop(k) for k in keys]
                events = [new_event(msg, correlation_id=run_id, source=SOURCE) for msg in batch]
                attempt = 0
                while True:
                    try:
                        await self.store.append_to_stream(f"media-meter-{run_id}", StreamState.ANY, events)
                        break
                    except Exception as exc:  # noqa: BLE001 - retried until the store takes it
                        attempt += 1
                        for name in {m.DESCRIPTOR.name for m in batch}:
                            METERING_RETRIES.labels(name).inc()
                        (log.error if attempt % 10 == 0 else log.warning)(
                            "metering_emit_retry", run_id=run_id, events=len(batch), attempt=attempt,
                            error=repr(exc))
                        await asyncio.sleep(min(0.05 * 2**min(attempt, 7), 5.0))
                batch = []
                self.notify()
        except asyncio.CancelledError:
            for msg in [*batch, *queue.values()]:
                METERING_LOST.labels(msg.DESCRIPTOR.name).inc()
            if batch or queue:
                log.error("metering_events_lost", run_id=run_id, count=len(batch) + len(queue),
                          reason="engine stopped before the store took them")
            raise
        finally:
            self._flushing.discard(run_id)
            if not queue:
                self._pending.pop(run_id, None)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for the queued metering events (bounded: a store that stays full must not hold a
        stop forever); what is still queued after `timeout` is counted lost."""
        if self._tasks:
            tasks = list(self._tasks)
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for t in pending:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # ---------------------------------------------------------------- runs

    def run_started(self, req: runs_pb2.RunRequested) -> None:
        self.runs[req.run_id] = (req.account_id, req.mode or "live")
        self.in_flight.setdefault(req.run_id, set())

    def run_ended(self, run_id: str) -> None:
        self.runs.pop(run_id, None)
        self.in_flight.pop(run_id, None)
        self.exhausted.discard(run_id)
        self.stopped.discard(run_id)

    def stop_run(self, run_id: str, reason: str = STOPPED_REASON) -> int:
        """A user stopped the run: place no more of its calls, hang up those in flight. The run
        then ends as usual (RunMediaFinished), and the runs service records it CANCELLED."""
        self.stopped.add(run_id)
        n = 0
        for call_id in list(self.in_flight.get(run_id, ())):
            if self.hangup is not None and self.hangup(call_id, reason):
                n += 1
        log.info("run_stopped_hangup", run_id=run_id, calls=n)
        return n

    def placer_for(self, placer):
        return _GuardedPlacer(placer, self)

    def emit_for(self, emit):
        """The run's emit, with `ended_by` set on its RunMediaFinished when billing cut it short."""

        async def guarded(msg: Message) -> None:
            if isinstance(msg, media_pb2.RunMediaFinished) and msg.run_id in self.exhausted:
                msg.ended_by = "balance_exhausted"
            await emit(msg)

        return guarded

    # ---------------------------------------------------------------- exhaustion

    async def on_billing_event(self, delivered: Delivered) -> None:
        msg = delivered.payload
        if not isinstance(msg, billing_pb2.BalanceExhausted) or (msg.mode or "live") != "live":
            return
        victims = [r for r, owner in self.runs.items() if owner == (msg.account_id, "live")]
        for run_id in victims:
            self.exhausted.add(run_id)
            calls = list(self.in_flight.get(run_id, ()))
            for call_id in calls:
                if self.hangup is not None and self.hangup(call_id, EXHAUSTED_REASON):
                    HANGUPS.inc()
            log.info("balance_exhausted_hangup", account_id=msg.account_id, run_id=run_id, calls=len(calls))


class _GuardedPlacer:
    """The pool as one run sees it: a call of an exhausted run is not placed, and the calls in
    flight are known so they can be hung up."""

    def __init__(self, placer, guard: BillingGuard) -> None:
        self._placer, self._guard = placer, guard

    def __getattr__(self, name: str):  # add_listener, remove_listener, ...
        return getattr(self._placer, name)

    def tell(self, call_id: str, kind: str, data: tuple = ()) -> None:
        """What happens to a call the SIPp driver placed (``answered``, ``progress`` about once a
        second while it is up, ``ended``): metered like the pool's calls."""
        self._guard.on_call(call_id, kind, data)

    def halted(self, run_id: str) -> bool:
        """The run was stopped or its balance ran out: a load action schedules no more attempts."""
        return run_id in self._guard.exhausted or run_id in self._guard.stopped

    async def place(self, call_id: str, action: spec_pb2.CallAction) -> m_pb2.CallMeasurement:
        run_id = call_id.rpartition(":")[0]
        if run_id in self._guard.exhausted:
            return failed_measurement(CallJob.from_action(call_id, action), f"not placed: {EXHAUSTED_REASON}")
        if run_id in self._guard.stopped:
            return failed_measurement(CallJob.from_action(call_id, action), f"not placed: {STOPPED_REASON}")
        calls = self._guard.in_flight.setdefault(run_id, set())
        calls.add(call_id)
        try:
            return await self._placer.place(call_id, action)
        finally:
            calls.discard(call_id)

    async def run_call(self, job: CallJob) -> m_pb2.CallMeasurement:
        """A resolved job (call through a registrar, DTMF), guarded like :meth:`place`."""
        run_id = job.call_id.rpartition(":")[0]
        if run_id in self._guard.exhausted:
            return failed_measurement(job, f"not placed: {EXHAUSTED_REASON}")
        if run_id in self._guard.stopped:
            return failed_measurement(job, f"not placed: {STOPPED_REASON}")
        calls = self._guard.in_flight.setdefault(run_id, set())
        calls.add(job.call_id)
        try:
            return await self._placer.run_call(job)
        finally:
            calls.discard(job.call_id)
