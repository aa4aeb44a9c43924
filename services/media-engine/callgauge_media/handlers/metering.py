"""What the media-engine does for billing.

- Metering: `CallAnswered` when a call is answered and `CallProgress` about every
  `interval_s` while it is up (driven by the worker pool's answered/progress reports, and for
  SIPp-driven load by the driver's reports through the run's placer, `tell`), so billing
  charges per second while calls last; each call's final `CallMeasured` bills its last second.
  They go through the engine's outbox like every media event, on a stream per call
  (`media-call-<call_id>`), keyed by the run id on Kafka.
- Exhaustion: on billing's `BalanceExhausted` every replica (each its own consumer group) hangs up
  the account's live calls at once, places none of that run's remaining calls, and marks the run's
  `RunMediaFinished` with `ended_by = "balance_exhausted"`.
"""

from __future__ import annotations

import asyncio
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
    _pending: dict[str, list[Message]] = field(default_factory=dict)  # call id -> metering events to append
    _flushing: set[str] = field(default_factory=set)  # call ids with a flusher task
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
        """Queue a metering event of a call; one flusher per call appends its queue in order."""
        queue = self._pending.setdefault(call_id, [])
        if len(queue) > 1 and isinstance(msg, media_pb2.CallProgress) and isinstance(queue[-1], media_pb2.CallProgress):
            # a newer tick supersedes one waiting behind the one being appended (billing charges a call's
            # seconds so far, the largest total wins): a call's backlog stays short however long the
            # store is out (queue[0] is never replaced: its append may be under way)
            queue[-1] = msg
            METERING_COALESCED.inc()
        else:
            queue.append(msg)
        if call_id not in self._flushing:
            self._flushing.add(call_id)
            task = asyncio.get_running_loop().create_task(self._flush(call_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, call_id: str) -> None:
        """Append the call's queued metering events, oldest first. Never gives up: an append that
        fails (disk full, store busy) is retried with backoff up to 5 s, each retry counted in
        callgauge_media_metering_emit_retries_total and logged; only an engine stop past its drain
        ends the wait (then counted in callgauge_media_metering_events_lost_total; the call's
        CallMeasured still carries its whole duration)."""
        queue = self._pending.get(call_id, [])
        attempt = 0
        try:
            while queue:
                msg = queue[0]
                try:
                    await self.store.append_to_stream(f"media-call-{call_id}", StreamState.ANY,
                                                      [new_event(msg, correlation_id=msg.run_id, source=SOURCE)])
                except Exception as exc:  # noqa: BLE001 - retried until the store takes it
                    attempt += 1
                    METERING_RETRIES.labels(msg.DESCRIPTOR.name).inc()
                    (log.error if attempt % 10 == 0 else log.warning)(
                        "metering_emit_retry", call_id=call_id, type=msg.DESCRIPTOR.name, attempt=attempt,
                        error=repr(exc))
                    await asyncio.sleep(min(0.05 * 2**min(attempt, 7), 5.0))
                    continue
                queue.pop(0)
                attempt = 0
                self.notify()
        except asyncio.CancelledError:
            for msg in queue:
                METERING_LOST.labels(msg.DESCRIPTOR.name).inc()
                log.error("metering_event_lost", call_id=call_id, type=msg.DESCRIPTOR.name,
                          reason="engine stopped before the store took it")
            raise
        finally:
            self._flushing.discard(call_id)
            if not queue:
                self._pending.pop(call_id, None)

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
