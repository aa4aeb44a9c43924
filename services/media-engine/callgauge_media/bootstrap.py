"""The composition root of the media-engine: a consumer of run events, the pjsua2 worker pool,
and an outbox (local event store + relay) for the measurement events."""

from __future__ import annotations

import asyncio
import os
import re
import socket
from dataclasses import dataclass, field

from google.protobuf.message import Message
from prometheus_client import Gauge

from callgauge_bus.codec import Delivered, new_event
from callgauge_bus.kafka import Consumer, Producer, ensure_topics
from callgauge_eventstore import EventStore, StreamState, WrongExpectedVersion
from callgauge_eventstore.factory import open_event_store
from callgauge_eventstore.relay import OutboxRelay
from callgauge_platform.health import HealthServer
from callgauge_platform.logs import get_logger
from callgauge_platform.settings import Settings
from callgauge_proto.callgauge.events.v1 import runs_pb2

from callgauge_media.engine.metering import BillingGuard
from callgauge_media.engine.runner import CallPlacer, execute_run
from callgauge_media.credentials import GrpcRunCredentials
from callgauge_media.engine.sip_run import CredentialSource

SERVICE = "media-engine"
log = get_logger(SERVICE)
ACTIVE_RUNS = Gauge("callgauge_media_active_runs", "runs being carried out by this engine")


@dataclass
class MediaEngine:
    """Measurement events go through the engine's own outbox: appended to a local event store
    (stream `media-run-<run id>`), published to callgauge.media.v1 by the outbox relay. So a
    broker that restarts empty gets them again, and the stream doubles as a durable record of
    the runs this engine accepted: a RunRequested redelivered after a restart, or re-published
    after a broker loss, is not carried out twice."""

    settings: Settings
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
    _versions: dict[str, int] = field(default_factory=dict)
    _emit_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def start(self) -> None:
        await ensure_topics(self.settings.kafka_bootstrap, [self.settings.topic(a) for a in ("runs", "billing", "media")])
        if self.pool is not None:
            await self.pool.start()
        await self.producer.start()
        await self.relay.start()
        self.consumer = Consumer(self.settings.kafka_bootstrap, [self.settings.topic("runs")],
                                 self.settings.group("callgauge-media"), self.on_run_event)
        await self.consumer.start()
        if self.guard is not None:  # every replica hears BalanceExhausted: a group of its own, from now on
            self.billing_consumer = Consumer(
                self.settings.kafka_bootstrap, [self.settings.topic("billing")],
                self.settings.group(f"callgauge-media-billing-{_slug(self.engine_id)}"),
                self.guard.on_billing_event, from_beginning=False)
            await self.billing_consumer.start()
        if self.health is not None:
            await self.health.start()

    async def stop(self, drain_timeout: float = 30.0) -> None:
        """Stop taking runs, let the ones in flight finish (bounded), publish what they reported,
        then close everything."""
        if self.consumer is not None:
            await self.consumer.stop()
        if self.runs:
            _done, pending = await asyncio.wait(list(self.runs.values()), timeout=drain_timeout)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self.billing_consumer is not None:
            await self.billing_consumer.stop()
        if self.guard is not None:
            await self.guard.drain()
        await self.relay.stop()
        await self.producer.stop()
        if self.pool is not None:
            await self.pool.stop()
        if self.credentials is not None and hasattr(self.credentials, "close"):
            await self.credentials.close()
        if self.health is not None:
            await self.health.stop()
        await self.store.close()

    async def ready(self) -> tuple[bool, str]:
        if self.consumer is None or not self.consumer.ready.is_set():
            return False, "run-event consumer not assigned yet"
        return True, "ready"

    async def emit(self, msg: Message) -> None:
        # One append at a time per run: concurrent calls (and the per-second stats) of a run emit
        # together, and each append expects the version the previous one left.
        stream = f"media-run-{msg.run_id}"
        async with self._emit_locks.setdefault(stream, asyncio.Lock()):
            await self._emit(stream, msg)

    async def _emit(self, stream: str, msg: Message) -> None:
        run_id = msg.run_id
        version = self._versions.get(stream, int(StreamState.NO_STREAM))
        for attempt in range(10):
            try:
                await self.store.append_to_stream(stream, version, [
                    new_event(msg, correlation_id=run_id, source=SERVICE)])
                break
            except WrongExpectedVersion:
                raise
            except Exception as exc:  # store busy: retry (the relay publishes whatever committed)
                log.warning("emit_retry", run_id=run_id, attempt=attempt, error=repr(exc))
                await asyncio.sleep(min(0.1 * 2**attempt, 2))
        else:
            log.error("emit_failed", run_id=run_id, type=msg.DESCRIPTOR.full_name)
            return
        self._versions[stream] = version + 1
        self.relay.notify()

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

    async def _carry_out(self, req: runs_pb2.RunRequested) -> None:
        ACTIVE_RUNS.inc()
        log.info("run_started", run_id=req.run_id, test=req.test_name)
        placer, emit = self.placer, self.emit
        if self.guard is not None:
            self.guard.run_started(req)
            placer, emit = self.guard.placer_for(placer), self.guard.emit_for(emit)
        try:
            summary = await execute_run(req, placer, emit, self.engine_id, self.credentials)
            log.info("run_finished", run_id=req.run_id, attempted=summary.calls_attempted,
                     answered=summary.calls_answered)
        finally:
            ACTIVE_RUNS.dec()
            if self.guard is not None:
                self.guard.run_ended(req.run_id)
            self._versions.pop(f"media-run-{req.run_id}", None)
            self._emit_locks.pop(f"media-run-{req.run_id}", None)
            self.runs.pop(req.run_id, None)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:50] or "engine"


def bootstrap(settings: Settings | None = None) -> MediaEngine:
    from callgauge_media.engine.pool import WorkerPool

    settings = settings or Settings()
    engine_id = settings.media_engine_id or f"{socket.gethostname()}-{os.getpid()}"
    pool = WorkerPool(workers=settings.media_workers, rtp_port_base=settings.media_rtp_port_base)
    # One outbox per engine identity: replicas that share a data dir or database need distinct
    # CALLGAUGE_MEDIA_ENGINE_ID values.
    namespace = f"media-{_slug(settings.media_engine_id)}" if settings.media_engine_id else SERVICE
    store = open_event_store(settings.eventstore_url_for(), namespace)
    producer = Producer(settings.kafka_bootstrap, client_id=SERVICE)
    relay = OutboxRelay(store, producer, settings.topic("media"), name="relay:media", source=SERVICE)
    engine = MediaEngine(settings, pool, store, producer, relay, engine_id, pool=pool)
    engine.guard = BillingGuard(store, relay.notify, engine_id, settings.media_progress_interval_s, pool.hangup)
    pool.add_listener(engine.guard.on_call)
    engine.credentials = GrpcRunCredentials(settings.runs_grpc)
    engine.health = HealthServer(settings.bind_host, settings.media_http_port, engine.ready)
    return engine
