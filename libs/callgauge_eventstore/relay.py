"""The outbox relay: tails the store's global log from a stored checkpoint and publishes each
event to Kafka. The checkpoint moves only after the broker acknowledged every record up to it,
so a crash re-publishes (at-least-once) and never skips; consumers dedupe on event id."""

from __future__ import annotations

import asyncio
from typing import Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from prometheus_client import Counter, Gauge

from callgauge_bus.codec import envelope_from_recorded
from callgauge_eventstore.port import EventStore, RecordedEvent
from callgauge_platform.aio import cancel_and_wait
from callgauge_platform.logs import get_logger
from callgauge_platform.telemetry import context_from_traceparent

log = get_logger(__name__)

RELAYED = Counter("callgauge_relay_published_total", "events published by the outbox relay", ["topic"])
RELAY_LAG = Gauge("callgauge_relay_lag_events", "store position minus published position", ["relay"])


class Publisher(Protocol):
    async def send_many(self, records) -> None: ...


class OutboxRelay:
    def __init__(self, store: EventStore, producer: Publisher, topic: str, name: str, source: str,
                 batch_size: int = 500, poll_interval: float = 0.02) -> None:
        self.store, self.producer, self.topic = store, producer, topic
        self.name, self.source = name, source
        self.batch_size, self.poll_interval = batch_size, poll_interval
        self.published_position = 0
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        self.published_position = await self.store.get_checkpoint(self.name)
        self._task = asyncio.create_task(self._run(), name=f"relay:{self.name}")

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Publish what is already committed (bounded), then stop."""
        if self._task is None:
            return
        try:
            last = await self.store.last_position()
            deadline = asyncio.get_running_loop().time() + drain_timeout
            while self.published_position < last and asyncio.get_running_loop().time() < deadline:
                self._wake.set()
                await asyncio.sleep(0.05)
        finally:
            await cancel_and_wait(self._task)
            self._task = None

    def notify(self) -> None:
        """Wake the relay now (called after an append in the same process)."""
        self._wake.set()

    def _record(self, ev: RecordedEvent):
        env = envelope_from_recorded(ev, self.source)
        headers = [("event_id", env.event_id.encode()), ("type", env.type.encode())]
        if env.traceparent:
            headers.append(("traceparent", env.traceparent.encode()))
        return (self.topic, env.correlation_id or ev.stream, env.SerializeToString(), headers)

    async def publish_once(self) -> int:
        """Publish one batch; return how many events were published."""
        batch = await self.store.read_all(self.published_position, self.batch_size)
        if not batch:
            RELAY_LAG.labels(self.name).set(0)
            return 0
        tracer = trace.get_tracer("callgauge.relay")
        # One producer span per event, child of the trace that appended it.
        for ev in batch:
            token = otel_context.attach(context_from_traceparent(ev.metadata.get("traceparent")))
            try:
                with tracer.start_as_current_span(f"publish {ev.type.rsplit('.', 1)[-1]}",
                                                  kind=trace.SpanKind.PRODUCER) as span:
                    span.set_attribute("messaging.destination.name", self.topic)
                    span.set_attribute("callgauge.event_id", str(ev.id))
            finally:
                otel_context.detach(token)
        await self.producer.send_many([self._record(ev) for ev in batch])
        last = batch[-1].position
        await self.store.set_checkpoint(self.name, last)
        self.published_position = last
        RELAYED.labels(self.topic).inc(len(batch))
        RELAY_LAG.labels(self.name).set(max(0, await self.store.last_position() - last))
        return len(batch)

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            try:
                n = await self.publish_once()
                backoff = 0.2
                if n < self.batch_size:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                    except TimeoutError:
                        pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker down, store busy: retry from the same checkpoint
                log.warning("relay_retry", relay=self.name, error=repr(exc), backoff=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
