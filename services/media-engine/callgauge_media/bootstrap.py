"""The composition root of the media-engine: a consumer of run events, the pjsua2 worker pool,
and a producer of measurement events."""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass, field

from google.protobuf.message import Message
from prometheus_client import Gauge

from callgauge_bus.codec import Delivered, envelope_for
from callgauge_bus.kafka import Consumer, Producer, ensure_topics
from callgauge_platform.health import HealthServer
from callgauge_platform.logs import get_logger
from callgauge_platform.settings import Settings
from callgauge_proto.callgauge.events.v1 import runs_pb2

from callgauge_media.engine.runner import CallPlacer, execute_run

SERVICE = "media-engine"
log = get_logger(SERVICE)
ACTIVE_RUNS = Gauge("callgauge_media_active_runs", "runs being carried out by this engine")


@dataclass
class MediaEngine:
    settings: Settings
    placer: CallPlacer
    producer: Producer
    engine_id: str
    pool: object | None = None
    consumer: Consumer | None = None
    health: HealthServer | None = None
    runs: dict[str, asyncio.Task] = field(default_factory=dict)
    _versions: dict[str, int] = field(default_factory=dict)

    async def start(self) -> None:
        await ensure_topics(self.settings.kafka_bootstrap, [self.settings.topic(a) for a in ("runs", "billing", "media")])
        if self.pool is not None:
            await self.pool.start()
        await self.producer.start()
        self.consumer = Consumer(self.settings.kafka_bootstrap, [self.settings.topic("runs")], self.settings.group("callgauge-media"),
                                 self.on_run_event)
        await self.consumer.start()
        if self.health is not None:
            await self.health.start()

    async def stop(self, drain_timeout: float = 30.0) -> None:
        """Stop taking runs, let the ones in flight finish (bounded), then close everything."""
        if self.consumer is not None:
            await self.consumer.stop()
        if self.runs:
            _done, pending = await asyncio.wait(list(self.runs.values()), timeout=drain_timeout)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.producer.stop()
        if self.pool is not None:
            await self.pool.stop()
        if self.health is not None:
            await self.health.stop()

    async def ready(self) -> tuple[bool, str]:
        if self.consumer is None or not self.consumer.ready.is_set():
            return False, "run-event consumer not assigned yet"
        return True, "ready"

    async def emit(self, msg: Message) -> None:
        run_id = msg.run_id
        stream = f"media-run-{run_id}"
        version = self._versions.get(stream, -1) + 1
        self._versions[stream] = version
        env = envelope_for(msg, stream, version, correlation_id=run_id, causation_id="", source=SERVICE)
        headers = [("event_id", env.event_id.encode()), ("type", env.type.encode())]
        if env.traceparent:
            headers.append(("traceparent", env.traceparent.encode()))
        for attempt in range(10):
            try:
                await self.producer.send(self.settings.topic("media"), run_id, env.SerializeToString(), headers)
                return
            except Exception as exc:  # broker hiccup: retry the same envelope (consumers dedupe)
                log.warning("emit_retry", run_id=run_id, attempt=attempt, error=repr(exc))
                await asyncio.sleep(min(0.2 * 2**attempt, 5))
                try:  # an embedded broker that restarted empty has no topics: recreate them
                    await ensure_topics(self.settings.kafka_bootstrap, [self.settings.topic("media")], timeout=5)
                except Exception as topic_exc:
                    log.warning("emit_ensure_topics_failed", error=repr(topic_exc))
        log.error("emit_failed", run_id=run_id, type=env.type)

    async def on_run_event(self, delivered: Delivered) -> None:
        msg = delivered.payload
        if not isinstance(msg, runs_pb2.RunRequested):
            return
        if msg.run_id in self.runs:
            return  # a redelivery of a run we are already carrying out
        task = asyncio.create_task(self._carry_out(msg), name=f"run:{msg.run_id}")
        self.runs[msg.run_id] = task

    async def _carry_out(self, req: runs_pb2.RunRequested) -> None:
        ACTIVE_RUNS.inc()
        log.info("run_started", run_id=req.run_id, test=req.test_name)
        try:
            summary = await execute_run(req, self.placer, self.emit, self.engine_id)
            log.info("run_finished", run_id=req.run_id, attempted=summary.calls_attempted,
                     answered=summary.calls_answered)
        finally:
            ACTIVE_RUNS.dec()
            self._versions.pop(f"media-run-{req.run_id}", None)
            # A later redelivery of the same RunRequested is dropped by the consumer's event-id dedupe.
            self.runs.pop(req.run_id, None)


def bootstrap(settings: Settings | None = None) -> MediaEngine:
    from callgauge_media.engine.pool import WorkerPool

    settings = settings or Settings()
    engine_id = settings.media_engine_id or f"{socket.gethostname()}-{os.getpid()}"
    pool = WorkerPool(workers=settings.media_workers, rtp_port_base=settings.media_rtp_port_base)
    engine = MediaEngine(settings, pool, Producer(settings.kafka_bootstrap, client_id=SERVICE),
                         engine_id, pool=pool)
    engine.health = HealthServer(settings.bind_host, settings.media_http_port, engine.ready)
    return engine
