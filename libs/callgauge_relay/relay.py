"""The outbox relay: tails the store's global log from a stored checkpoint and publishes each
event to Kafka. The checkpoint moves only after the broker acknowledged every record up to it,
so a crash re-publishes (at-least-once) and never skips; consumers dedupe on event id.

Broker loss. The embedded Tansu keeps topics in memory only: when it restarts, everything the
relay had published (and every consumer group's offsets) is gone, while our checkpoint still says
"published". The relay notices it two ways, both per partition of its topic:
- an acknowledgement with an offset below one the broker acknowledged before (offsets of a healthy
  partition only grow): the broker started over;
- every `check_interval` seconds and right after any send error (given the broker's address,
  `bootstrap`, taken from the producer by default), the topic is missing or a partition's end offset
  is below the FIRST offset acknowledged in the relay's latest send to it. Not below the last one:
  a high watermark may lag behind the acknowledgements. Tansu 0.6 answers ListOffsets(latest) with
  the base offset of the partition's last record batch (6,000 records acknowledged at offsets
  0-5999 gave an end offset of 5978), which is no loss, and a lagging watermark on any Kafka is
  none either. A shortfall must also still be there `confirm_delay` seconds later.
The relay then recreates its topic (ensure_topics), sets the stored
checkpoint AND the in-memory position back to 0, and re-publishes the whole store; consumers drop
the events they already handled by event id. The stored checkpoint stays honest: it always means
"acknowledged by the broker we are talking to now", so a relay that crashes during the re-publish
resumes the re-publish instead of skipping the lost events.

New events first. A relay more than `lane_backlog` events behind (a restart after a stop that
left a backlog, a re-publish after a broker loss, a big run's calls) opens a lane for new work: it
takes the Kafka keys of the backlog in one SQL pass (`store.relay_keys`), and each round publishes
the events after the backlog whose key is not among them (a new run's RunRequested, its
RunAccepted, ...) before the next batch of the backlog. Events of a backlog key wait for the main
lane, so every key's events stay in commit order. The checkpoint is still the main lane's
(contiguous): a crash re-publishes what the lane sent ahead, and consumers drop it by event id. The
lane closes when the main lane catches up with it. Both lanes send from the one relay task, one
batch at a time, so a partition's acknowledged offsets still only grow.

Limits: a loss that happens while the relay is not running is not detected (the count starts at
0 on start). Every producer of the platform's topics (runs, billing, media-engine) publishes through
such a relay, so each re-publishes its own events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from opentelemetry import context as otel_context
from opentelemetry import trace
from prometheus_client import Counter, Gauge

from callgauge_bus.codec import envelope_from_recorded
from callgauge_bus.kafka import ensure_topics
from callgauge_eventstore.port import EventStore, RecordedEvent
from callgauge_platform.aio import cancel_and_wait
from callgauge_platform.logs import get_logger
from callgauge_platform.telemetry import context_from_traceparent, exporting

log = get_logger(__name__)

IDLE_POLL_S = 0.5  # with a store that tells of its commits
LANE_BACKLOG = 2000  # events behind the store's head before new work gets a lane of its own
RELAYED = Counter("callgauge_relay_published_total", "events published by the outbox relay", ["topic"])
RELAY_LAG = Gauge("callgauge_relay_lag_events", "store position minus published position", ["relay"])


class Publisher(Protocol):
    async def send_many(self, records) -> list | None:
        """Acknowledgements with .partition and .offset (None: the publisher does not tell)."""


class OutboxRelay:
    def __init__(self, store: EventStore, producer: Publisher, topic: str, name: str, source: str,
                 batch_size: int = 500, poll_interval: float | None = None, *, bootstrap: str | None = None,
                 check_interval: float = 1.5, partitions: int = 3, confirm_delay: float = 1.0,
                 publish_types: dict[str, str] | None = None, lane_backlog: int = LANE_BACKLOG) -> None:
        """`publish_types`: publish only the events of these stored types, each under the type it
        maps to (the payload bytes must be the same message layout); None publishes every event as
        stored. The accounts service relays its AccountDeleted this way and nothing else."""
        self.store, self.producer, self.topic = store, producer, topic
        self.publish_types = publish_types
        self.name, self.source = name, source
        # a store that tells of its commits (news(): SQLite, PostgreSQL) wakes the relay at once; the
        # poll is then only a safety net for commits made by other processes; else it is the latency
        self._news = getattr(store, "news", None)
        if poll_interval is None:
            poll_interval = IDLE_POLL_S if self._news is not None else 0.02
        self.batch_size, self.poll_interval = batch_size, poll_interval
        self.published_position = 0
        # records acknowledged into `topic` since start or since the last detected broker loss
        self.published_in_epoch = 0
        self.broker_losses = 0
        self.confirm_delay = confirm_delay
        # per partition, in this epoch: the highest offset acknowledged, and the lowest offset
        # acknowledged by the latest send that reached the partition (its end offset is not below)
        self._acked_max: dict[int, int] = {}
        self._floor: dict[int, int] = {}
        self.bootstrap = bootstrap if bootstrap is not None else getattr(producer, "bootstrap", None)
        self.check_interval, self.partitions = check_interval, partitions
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._probe: AIOKafkaConsumer | None = None
        # new events first (see the module's doc): the lane's scan position and the backlog's keys,
        # and the positions it published ahead of the main lane
        self.lane_backlog = lane_backlog
        self._relay_keys = getattr(store, "relay_keys", None)
        self._lane: tuple[int, frozenset[str]] | None = None
        self._ahead: set[int] = set()
        self._head = 0  # the store's last position, as last seen
        self.lanes_opened = 0

    async def start(self) -> None:
        self.published_position = await self.store.get_checkpoint(self.name)
        self._head = await self.store.last_position()
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
            await self._close_probe()

    def notify(self) -> None:
        """Wake the relay now (called after an append in the same process)."""
        self._wake.set()

    @staticmethod
    def key_of(ev: RecordedEvent) -> str:
        """An event may name its own Kafka key (metadata "partition_key"); the default is the
        correlation id, else the stream (store.relay_keys computes the same in SQL)."""
        return ev.metadata.get("partition_key") or ev.metadata.get("correlation_id") or ev.stream

    def _record(self, ev: RecordedEvent):
        env = envelope_from_recorded(ev, self.source)
        headers = [("event_id", env.event_id.encode()), ("type", env.type.encode())]
        if env.traceparent:
            headers.append(("traceparent", env.traceparent.encode()))
        return (self.topic, self.key_of(ev), env.SerializeToString(), headers)

    async def _send(self, events: list[RecordedEvent]) -> bool:
        """Send events (those of publish_types, under their published type); False when the broker
        turned out to have started over (handled)."""
        if self.publish_types is not None:
            events = [replace(ev, type=self.publish_types[ev.type]) for ev in events if ev.type in self.publish_types]
        if not events:
            return True
        if exporting():  # one producer span per event, only where spans go somewhere
            self._spans(events)
        acks = await self.producer.send_many(self._record(ev) for ev in events)  # built as sent, in slices
        if self._went_back(acks or ()):
            await self._start_over("the broker acknowledged offsets below ones it had acknowledged before")
            return False
        self.published_in_epoch += len(events)
        RELAYED.labels(self.topic).inc(len(events))
        return True

    async def publish_once(self) -> int:
        """Publish one batch; return how many events of the store it went through (published or skipped)."""
        batch = await self.store.read_all(self.published_position, self.batch_size)
        if not batch:
            RELAY_LAG.labels(self.name).set(0)
            return 0
        send = batch
        if self._ahead:  # the lane published these already
            send = [ev for ev in batch if ev.position not in self._ahead]
            self._ahead.difference_update(ev.position for ev in batch)
        if send and not await self._send(send):
            return 0
        last = batch[-1].position
        await self.store.set_checkpoint(self.name, last)
        self.published_position = last
        if self._lane is not None and last >= self._lane[0]:
            log.info("relay_lane_closed", relay=self.name, position=last)
            self._lane = None
            self._ahead.clear()
        self._head = await self.store.last_position()
        RELAY_LAG.labels(self.name).set(max(0, self._head - last))
        return len(batch)

    async def _maybe_open_lane(self) -> None:
        if self._lane is not None or self._relay_keys is None or self._head - self.published_position <= self.lane_backlog:
            return
        head = self._head
        keys = await self._relay_keys(self.published_position, head)
        self._lane = (head, frozenset(keys))
        self.lanes_opened += 1
        log.info("relay_lane_opened", relay=self.name, backlog=head - self.published_position, keys=len(keys))

    async def publish_lane(self) -> int:
        """One round of the new-work lane: the events after its position whose key has nothing in
        the backlog; returns how many events it looked at."""
        if self._lane is None:
            return 0
        position, keys = self._lane
        scan = getattr(self.store, "relay_keys_after", None)
        if scan is None:
            batch = await self.store.read_all(position, self.batch_size)
            if not batch:
                return 0
            send = [ev for ev in batch if self.key_of(ev) not in keys]
            seen, end = len(batch), batch[-1].position
        else:  # keys only: the events are read when one is to be sent (rarely, in a big run)
            rows = await scan(position, self.batch_size)
            if not rows:
                return 0
            fresh = [p for p, key in rows if key not in keys]
            send = []
            if fresh:
                got = await self.store.read_all(fresh[0] - 1, fresh[-1] - fresh[0] + 1)
                wanted = set(fresh)
                send = [ev for ev in got if ev.position in wanted]
            seen, end = len(rows), rows[-1][0]
        if send:
            if not await self._send(send):
                return 0
            self._ahead.update(ev.position for ev in send)
        if self._lane is not None:
            self._lane = (end, keys)
        return seen

    def _spans(self, batch: list[RecordedEvent]) -> None:
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

    async def _topic_ends(self) -> dict[int, int] | None:
        """The end offset of each partition of the topic, or None when the broker does not know it. The
        probe (a consumer without a group) stays open between checks; a failure drops it so the
        next check connects afresh."""
        assert self.bootstrap is not None
        if self._probe is None:
            probe = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                     request_timeout_ms=5000, metadata_max_age_ms=1000)
            async with asyncio.timeout(10):
                await probe.start()
            self._probe = probe
        try:
            async with asyncio.timeout(5):
                await self._probe._client.force_metadata_update()
            parts = self._probe.partitions_for_topic(self.topic)
            if not parts:
                return None
            async with asyncio.timeout(5):
                ends = await self._probe.end_offsets([TopicPartition(self.topic, p) for p in parts])
            return {tp.partition: end for tp, end in ends.items()}
        except BaseException:
            await self._close_probe()
            raise

    async def _close_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            try:
                await probe.stop()
            except Exception as exc:  # closing a broken connection may fail too
                log.debug("relay_probe_close_failed", error=repr(exc))

    def _went_back(self, acks) -> bool:
        """Take the acknowledgements of one send in; True when a partition's offsets went back."""
        first: dict[int, int] = {}
        for ack in acks:
            p, off = ack.partition, ack.offset
            if off < self._acked_max.get(p, -1):
                return True
            self._acked_max[p] = off
            first.setdefault(p, off)
        self._floor.update(first)
        return False

    def _short(self, ends: dict[int, int] | None) -> list[str]:
        """The partitions whose end offset is below what the broker acknowledged (none: healthy)."""
        if ends is None:
            return ["topic missing"]
        return [f"partition {p}: end {ends.get(p, 0)} < {floor}" for p, floor in self._floor.items()
                if ends.get(p, 0) < floor]

    async def check_broker(self) -> bool:
        """Detect a broker that lost what we published; if so, start over. True when it did."""
        if self.bootstrap is None or not self._floor:
            return False
        short = self._short(await self._topic_ends())
        if not short:
            return False
        log.info("relay_broker_behind", relay=self.name, topic=self.topic, short=short)
        await asyncio.sleep(self.confirm_delay)  # a lagging high watermark catches up; a lost topic does not
        short = self._short(await self._topic_ends())
        if not short:
            return False
        await self._start_over("; ".join(short))
        return True

    async def _start_over(self, why: str) -> None:
        log.warning("relay_broker_lost_data", relay=self.name, topic=self.topic,
                    published=self.published_in_epoch, why=why)
        if self.bootstrap is not None:
            await ensure_topics(self.bootstrap, [self.topic], partitions=self.partitions, timeout=10)
        await self.store.set_checkpoint(self.name, 0)
        self.published_position = 0
        self.published_in_epoch = 0
        self._acked_max.clear()
        self._floor.clear()
        self._lane = None
        self._ahead.clear()
        self.broker_losses += 1

    async def _maybe_check(self, force: bool = False) -> None:
        loop = asyncio.get_running_loop()
        if self.bootstrap is None or (not force and loop.time() < self._next_check):
            return
        self._next_check = loop.time() + self.check_interval
        try:
            await self.check_broker()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # broker still down: the next round tries again
            log.warning("relay_check_failed", relay=self.name, error=repr(exc))

    async def _idle(self, news: asyncio.Event | None) -> None:
        """Wait for a commit to the store, a notify(), or the poll interval."""
        if news is None:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
            # lands as the wake-up completes (gh-86296), and stop() would wait forever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()
            return
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(news.wait())]
        try:
            await asyncio.wait(waits, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _run(self) -> None:
        backoff = 0.2
        self._next_check = asyncio.get_running_loop().time() + self.check_interval
        while True:
            try:
                await self._maybe_check()
                # taken BEFORE reading: a commit (or notify) between the read and the wait wakes it
                self._wake.clear()
                news = self._news() if self._news is not None else None
                await self._maybe_open_lane()
                lane = await self.publish_lane()  # new work first, then a batch of the backlog
                n = await self.publish_once()
                backoff = 0.2
                if n < self.batch_size and lane < self.batch_size:
                    await self._idle(news)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker down, store busy: retry from the same checkpoint
                log.warning("relay_retry", relay=self.name, error=repr(exc), backoff=backoff)
                await asyncio.sleep(backoff)
                await self._maybe_check(force=True)
                backoff = min(backoff * 2, 5.0)
