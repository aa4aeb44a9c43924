"""The media-engine: consumes run events and carries the runs out (placing their calls through its
CallPlacer and load drivers), and publishes the measurement events through an outbox (local event
store + relay). Built and wired by :mod:`callgauge_media.bootstrap`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from google.protobuf.message import Message
from prometheus_client import Counter, Gauge

from callgauge_bus.codec import Delivered, envelope_for, new_event
from callgauge_bus.dead_letters import DeadLetters
from callgauge_bus.kafka import Consumer, Producer, ensure_topics
from callgauge_eventstore import EventStore, StreamState, WrongExpectedVersion
from callgauge_relay.relay import OutboxRelay
from callgauge_platform.aio import cancel_and_wait
from callgauge_platform.destinations import DialPolicy, SipHost, sip_target, sip_uri_problem
from callgauge_platform.health import HealthServer
from callgauge_platform.logs import get_logger
from callgauge_proto.callgauge.events.v1 import billing_pb2, media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.adapters.media_reader import KafkaMediaReader
from callgauge_media.domain.fairness import FairShare
from callgauge_media.domain.ports import CallPlacer, LoadDriver
from callgauge_media.domain.run_start import RunStart
from callgauge_media.handlers.metering import BillingGuard
from callgauge_media.handlers.runner import PjsuaLoad, execute_run, execute_shard
from callgauge_media.handlers.shards import coordinate_run, shardable
from callgauge_media.handlers.sip_run import CredentialSource
from callgauge_media.settings import MediaSettings

SERVICE = "media-engine"
EMIT_BATCH_MAX = 1000  # events in one append of the group commit
# what on_run_event acts on: the runs topic's calls (a CallRecorded each) are passed over unread
RUN_EVENTS = (runs_pb2.RunRequested.DESCRIPTOR.full_name, runs_pb2.RunStopRequested.DESCRIPTOR.full_name)
log = get_logger(SERVICE)
ACTIVE_RUNS = Gauge("callgauge_media_active_runs", "runs being carried out by this engine")
EMIT_RETRIES = Counter("callgauge_media_emit_retries_total",
                       "appends of a media event to the engine's outbox that failed and were retried")


@dataclass
class MediaEngine:
    """Measurement events go through the engine's own outbox: appended to a local event store
    (stream `media-run-<run id>`), published to callgauge.media.v1 by the outbox relay. So a
    broker that restarts empty gets them again, and the stream doubles as a durable record of
    the runs this engine accepted: a RunRequested redelivered after a restart, or re-published
    after a broker loss, is not carried out twice."""

    settings: MediaSettings
    placer: CallPlacer
    store: EventStore
    producer: Producer
    relay: OutboxRelay
    engine_id: str
    pool: object | None = None
    consumer: Consumer | None = None
    health: HealthServer | None = None
    runs: dict[str, asyncio.Task] = field(default_factory=dict)
    guard: BillingGuard | None = None  # metering events and hang-up on BalanceExhausted
    billing_consumer: Consumer | None = None
    credentials: CredentialSource | None = None  # passwords of the runs' credential pools
    dial: DialPolicy | None = None  # the operator's SIP destination policy (None: unchecked)
    fair: FairShare | None = None  # the pool's call slots shared fairly between accounts (None: first come)
    # the load drivers by name (a load action's `driver`), chosen in bootstrap
    drivers: Mapping[str, LoadDriver] = field(default_factory=lambda: {"pjsua": PjsuaLoad()})
    # scale-out (engine/shards.py): load shards offered to the group through callgauge.media-work.v1
    work_store: EventStore | None = None
    work_relay: OutboxRelay | None = None
    work_consumer: Consumer | None = None
    shards: dict[str, asyncio.Task] = field(default_factory=dict)
    _versions: dict[str, int] = field(default_factory=dict)
    _lease_task: asyncio.Task | None = None
    _emit_queues: dict[str, list] = field(default_factory=dict)  # stream -> [(msg, key, store, future)]
    _emit_writers: dict[str, asyncio.Task] = field(default_factory=dict)  # stream -> its writer (group commit)

    async def start(self) -> None:
        for name, driver in self.drivers.items():
            if removed := driver.prepare():
                log.warning("load_driver_leftovers_removed", driver=name, removed=removed)
        await ensure_topics(self.settings.kafka_bootstrap,
                            [self.settings.topic(a) for a in ("runs", "billing", "media", "media-work")])
        if self.pool is not None:
            await self.pool.start()
        await self.producer.start()
        await self.relay.start()
        if self.work_relay is not None:
            await self.work_relay.start()
            work_group = self.settings.group("callgauge-media-work")
            self.work_consumer = Consumer(self.settings.kafka_bootstrap, [self.settings.topic("media-work")],
                                          work_group, self.on_work_event,
                                          dead_letters=DeadLetters(self.store, work_group))
            await self.work_consumer.start()
        group = self.settings.group("callgauge-media")
        self.consumer = Consumer(self.settings.kafka_bootstrap, [self.settings.topic("runs")], group,
                                 self.on_run_event, dead_letters=DeadLetters(self.store, group),
                                 fetch_max_wait_ms=self.settings.media_run_fetch_wait_ms, types=RUN_EVENTS)
        await self.consumer.start()
        if self.guard is not None:  # every replica hears BalanceExhausted: a group of its own, from now on
            billing_group = self.settings.group(f"callgauge-media-billing-{slug(self.engine_id)}")
            self.billing_consumer = Consumer(
                self.settings.kafka_bootstrap, [self.settings.topic("billing")], billing_group,
                self.guard.on_billing_event, from_beginning=False,
                dead_letters=DeadLetters(self.store, billing_group),
                types=[billing_pb2.BalanceExhausted.DESCRIPTOR.full_name])
            await self.billing_consumer.start()
        self._lease_task = asyncio.create_task(self._renew_leases(), name="run-leases")
        if self.health is not None:
            await self.health.start()

    async def stop(self, drain_timeout: float | None = None) -> None:
        """Stop taking runs, let the ones in flight finish (bounded by CALLGAUGE_MEDIA_DRAIN_TIMEOUT_S),
        publish what they reported, then close everything."""
        if drain_timeout is None:
            drain_timeout = self.settings.media_drain_timeout_s
        if self.consumer is not None:
            await self.consumer.stop()
        if self.work_consumer is not None:
            await self.work_consumer.stop()
        tasks = [*self.runs.values(), *self.shards.values()]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=drain_timeout)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await cancel_and_wait(self._lease_task)
        if self.billing_consumer is not None:
            await self.billing_consumer.stop()
        if self.guard is not None:
            await self.guard.drain(timeout=min(10.0, max(1.0, drain_timeout)))
        await self.relay.stop()
        if self.work_relay is not None:
            await self.work_relay.stop()
        await self.producer.stop()
        if self.pool is not None:
            await self.pool.stop()
        if self.credentials is not None and hasattr(self.credentials, "close"):
            await self.credentials.close()
        if self.health is not None:
            await self.health.stop()
        await self.store.close()
        if self.work_store is not None:
            await self.work_store.close()

    async def _renew_leases(self) -> None:
        """Every media_lease_renew_s, a RunLeaseRenewed for each run (or shard of one) this engine
        carries out, sent straight to the media topic: the runs service ends a run whose engine
        went silent for run_lease_s FAILED "media engine lost" (docs/reliability.md)."""
        topic = self.settings.topic("media")
        lease_s = int(self.settings.run_lease_s)
        while True:
            await asyncio.sleep(self.settings.media_lease_renew_s)
            run_ids = {*self.runs, *(stream.removeprefix("media-shard-").rsplit("-", 1)[0] for stream in self.shards)}
            for run_id in run_ids:
                msg = media_pb2.RunLeaseRenewed(run_id=run_id, engine_id=self.engine_id, lease_s=lease_s)
                env = envelope_for(msg, f"media-run-{run_id}", 0, run_id, "", SERVICE)
                try:
                    await self.producer.send(topic, run_id, env.SerializeToString(),
                                             [("event_id", env.event_id.encode()), ("type", env.type.encode())])
                except Exception as exc:  # noqa: BLE001 - the next renewal may get through
                    log.warning("lease_not_renewed", run_id=run_id, error=repr(exc))

    async def ready(self) -> tuple[bool, str]:
        if self.consumer is None or not self.consumer.ready.is_set():
            return False, "run-event consumer not assigned yet"
        return True, "ready"

    async def emit(self, msg: Message, *, stream: str = "", store: EventStore | None = None,
                   partition_key: str = "") -> None:
        # One append at a time per stream: concurrent calls (and the per-second stats) of a run emit
        # together, and each append expects the version the previous one left. Group commit: what
        # was emitted on the stream while an append was under way is written by the stream's
        # writer task in ONE append (one transaction), in the order it was emitted; each
        # caller returns once its own event is committed. A driver that reports many calls at once
        # (the SIPp driver's per-call log) emits them concurrently and so costs a few transactions,
        # not one per call (measured: ~500 CallMeasured/s with one append per call on SQLite).
        stream = stream or f"media-run-{msg.run_id}"
        done = asyncio.get_running_loop().create_future()
        self._emit_queues.setdefault(stream, []).append((msg, partition_key, store or self.store, done))
        writer = self._emit_writers.get(stream)
        if writer is None or writer.done():
            self._emit_writers[stream] = asyncio.create_task(self._write(stream), name=f"emit:{stream}")
        # cancelling the caller cancels `done`: an event not taken yet is then never written
        await done

    async def _write(self, stream: str) -> None:
        """The stream's one writer: appends what is queued, in order, at most EMIT_BATCH_MAX events
        of one store per append, until the queue is empty. One task, not a lock that every emit
        waits on: a thousand waiters on an asyncio.Lock cost more CPU than the appends."""
        while True:
            live = [item for item in self._emit_queues.get(stream, ()) if not item[3].done()]
            if not live:
                self._emit_queues.pop(stream, None)
                if self._emit_writers.get(stream) is asyncio.current_task():
                    self._emit_writers.pop(stream, None)
                return
            store = live[0][2]
            batch = [item for item in live if item[2] is store][:EMIT_BATCH_MAX]
            taken = {id(item) for item in batch}
            self._emit_queues[stream] = [item for item in live if id(item) not in taken]
            try:
                await self._emit(stream, [(m, k) for m, k, _, _ in batch], store)
            except asyncio.CancelledError:
                for *_, fut in batch:
                    fut.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - every caller whose event it carried hears it
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                        fut.exception()  # retrieved: a caller may be gone
                continue
            for *_, fut in batch:
                if not fut.done():
                    fut.set_result(None)

    async def _emit(self, stream: str, msgs: list[tuple[Message, str]], store: EventStore) -> None:
        run_id = msgs[0][0].run_id
        version = self._versions.get(stream, int(StreamState.NO_STREAM))
        events = []
        for msg, partition_key in msgs:
            event = new_event(msg, correlation_id=msg.run_id, source=SERVICE)
            if partition_key:
                event = replace(event, metadata={**event.metadata, "partition_key": partition_key})
            events.append(event)
        # Never dropped: events that cannot be appended (disk full, store busy) are retried until
        # they are, with backoff up to 5 s, each failure logged and counted; the run waits meanwhile
        # (its later events queue behind them on the stream lock, so the stream keeps its order).
        # Only a stop past its drain cancels it; the run then ends by its lapsed lease
        # (docs/reliability.md).
        attempt = 0
        while True:
            try:
                await store.append_to_stream(stream, version, events)
                break
            except WrongExpectedVersion:
                raise
            except Exception as exc:  # the relay publishes whatever committed
                attempt += 1
                EMIT_RETRIES.inc()
                (log.error if attempt % 10 == 0 else log.warning)(
                    "emit_retry", run_id=run_id, type=msgs[0][0].DESCRIPTOR.name, events=len(events),
                    attempt=attempt, error=repr(exc))
                await asyncio.sleep(min(0.1 * 2**min(attempt, 6), 5))
        self._versions[stream] = version + len(events)
        (self.work_relay if store is self.work_store and self.work_relay is not None else self.relay).notify()

    async def on_run_event(self, delivered: Delivered) -> None:
        msg = delivered.payload
        if isinstance(msg, runs_pb2.RunStopRequested):
            # Keyed by run id, so it reaches the replica that took the run's RunRequested.
            if msg.run_id in self.runs and self.guard is not None:
                self.guard.stop_run(msg.run_id)
            return
        if not isinstance(msg, runs_pb2.RunRequested):
            return
        if msg.run_id in self.runs:
            return  # a redelivery of a run we are carrying out now
        if await self.store.stream_version(f"media-run-{msg.run_id}") is not None:
            log.info("run_already_accepted", run_id=msg.run_id)
            return  # carried out (or begun) before: never twice
        task = asyncio.create_task(self._carry_out(msg), name=f"run:{msg.run_id}")
        self.runs[msg.run_id] = task

    def _shard_count(self, req: runs_pb2.RunRequested) -> int:
        if self.work_relay is None or self.settings.media_load_shards == 1 or not shardable(req.spec):
            return 1
        return self.settings.media_load_shards  # 0: one per partition, resolved in _coordinate

    async def on_work_event(self, delivered: Delivered) -> None:
        msg = delivered.payload
        if not isinstance(msg, media_pb2.LoadShardAssigned) or not msg.shards:
            return
        stream = f"media-shard-{msg.run_id}-{msg.shard}"
        if stream in self.shards:
            return
        if await self.store.stream_version(stream) is not None:
            log.info("shard_already_taken", run_id=msg.run_id, shard=msg.shard)
            return  # begun before: never twice
        self.shards[stream] = asyncio.create_task(self._run_shard(msg, stream), name=f"shard:{stream}")

    async def _run_shard(self, assign: media_pb2.LoadShardAssigned, stream: str) -> None:
        ACTIVE_RUNS.inc()
        log.info("shard_started", run_id=assign.run_id, shard=assign.shard, shards=assign.shards,
                 owner=assign.owner_engine_id)
        placer = self.placer
        if self.fair is not None:
            placer = self.fair.placer_for(placer, assign.request.account_id)

        async def emit(m: Message) -> None:
            await self.emit(m, stream=stream)

        if self.guard is not None:
            self.guard.run_started(assign.request)
            placer, emit = self.guard.placer_for(placer), self.guard.emit_for(emit)
        try:
            summary = await execute_shard(assign, placer, emit, self.engine_id, self.credentials,
                                          drivers=self.drivers)
            log.info("shard_finished", run_id=assign.run_id, shard=assign.shard, attempted=summary.calls_attempted)
        finally:
            ACTIVE_RUNS.dec()
            if self.guard is not None and assign.run_id not in self.runs:
                self.guard.run_ended(assign.run_id)
            self._versions.pop(stream, None)
            self.shards.pop(stream, None)

    async def _coordinate(self, req: runs_pb2.RunRequested, shards: int, emit) -> m_pb2.RunSummary:
        topic = self.settings.topic("media-work")
        partitions = await self.producer.partitions_for(topic)
        shards = shards or partitions

        async def emit_work(m: Message, key: str) -> None:
            await self.emit(m, stream=f"media-work-{req.run_id}", store=self.work_store, partition_key=key)

        try:
            async with KafkaMediaReader(self.settings.kafka_bootstrap, self.settings.topic("media")) as reader:
                return await coordinate_run(req, engine_id=self.engine_id, shards=shards, partitions=partitions,
                                            emit=emit, emit_work=emit_work, reader=reader)
        finally:
            self._versions.pop(f"media-work-{req.run_id}", None)

    async def _carry_out(self, req: runs_pb2.RunRequested) -> None:
        ACTIVE_RUNS.inc()
        log.info("run_started", run_id=req.run_id, test=req.test_name)
        start = RunStart()  # RUNNING once a call holds a slot under the fair share, not while it waits
        placer, emit = start.placer(self.placer), self.emit
        if self.fair is not None:
            placer = self.fair.placer_for(placer, req.account_id)
        if self.guard is not None:
            self.guard.run_started(req)
            placer, emit = self.guard.placer_for(placer), self.guard.emit_for(emit)
        try:
            refusal = await dial_refusal(self.dial, req)
            if refusal:  # checked at StartRun too; a name may resolve elsewhere now, or the policy changed
                log.warning("run_refused_destination", run_id=req.run_id, reason=refusal)
                await emit(media_pb2.RunAccepted(run_id=req.run_id, engine_id=self.engine_id))
                await emit(media_pb2.RunMediaFinished(run_id=req.run_id, engine_id=self.engine_id,
                                                      summary=m_pb2.RunSummary(),
                                                      error=f"destination not allowed: {refusal}"))
                return
            shards = self._shard_count(req)
            if shards != 1:
                summary = await self._coordinate(req, shards, emit)
            else:
                summary = await execute_run(req, placer, emit, self.engine_id, self.credentials, start=start,
                                            drivers=self.drivers)
            log.info("run_finished", run_id=req.run_id, attempted=summary.calls_attempted,
                     answered=summary.calls_answered)
        finally:
            ACTIVE_RUNS.dec()
            if self.guard is not None:
                self.guard.run_ended(req.run_id)
            self._versions.pop(f"media-run-{req.run_id}", None)
            self.runs.pop(req.run_id, None)


async def dial_refusal(dial: DialPolicy | None, req: runs_pb2.RunRequested) -> str | None:
    """Why the run may not dial what it names (every address its names resolve to now), or None."""
    if dial is None:
        return None
    hosts: list[SipHost] = []
    for step in req.spec.steps:
        for action in step.actions:
            kind = action.WhichOneof("kind")
            if kind not in ("call", "load"):
                continue
            dest = getattr(action, kind).dial_destination.strip()
            problem = sip_uri_problem(dest)
            if problem:
                return f"{dest!r}: {problem}"
            uri = dest if re.match(r"^<?sips?:", dest, re.IGNORECASE) else ("sip:" + dest if "@" in dest else "")
            target = sip_target(uri)
            if target is not None:
                hosts.append(target)
    hosts += [SipHost(t.host, t.port or 5060) for t in req.targets]
    return await dial.first_refusal(hosts)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:50] or "engine"
