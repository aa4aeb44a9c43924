"""aiokafka producer and consumer with the project's rules:

- the producer waits for acks="all" and is NOT idempotent (Tansu refuses the idempotent
  producer); duplicates that a retry may cause are removed by consumers, by event id;
- the consumer commits offsets only after the handler has finished with a record
  (at-least-once), skips records it cannot decode (logged, counted, never a crash), and
  drops redeliveries of an event id it has already handled;
- a record whose handler still fails after its retries is parked in the service's store
  (dead_letters.py) and retried from there with backoff; it is committed past only once parked,
  and later records of its key queue behind it. A consumer without dead letters logs and counts it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner, murmur2
from opentelemetry import context as otel_context
from opentelemetry import trace
from prometheus_client import Counter, Gauge

from callgauge_bus.codec import BadRecord, Delivered, decode_record
from callgauge_bus.dead_letters import DeadLetters
from callgauge_platform.aio import cancel_and_wait
from callgauge_platform.logs import get_logger
from callgauge_platform.telemetry import context_from_traceparent, exporting

log = get_logger(__name__)

CONSUMED = Counter("callgauge_bus_consumed_total", "records consumed", ["topic", "result"])
PRODUCED = Counter("callgauge_bus_produced_total", "records produced", ["topic"])
CONSUMER_LAG = Gauge("callgauge_bus_consumer_lag", "records not yet consumed: highwater - position",
                     ["group", "topic", "partition"])

# records appended to the producer's batches between two turns of the event loop (send_many), and
# records decoded between two turns (the consumer): each slice is a few ms of synchronous work
SEND_SLICE = 64
DECODE_SLICE = 128
COMMIT_WAIT_S = 5.0  # a commit still not acknowledged after this: the topics are checked
Handler = Callable[[Delivered], Awaitable[None]]
BatchHandler = Callable[[list[Delivered]], Awaitable[None]]


async def ensure_topics(bootstrap: str, topics: Sequence[str], partitions: int = 3, timeout: float = 30) -> None:
    """Create the topics that do not exist yet (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(name=t, num_partitions=partitions, replication_factor=1) for t in missing]
                )
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


class KeyHashPartitioner:
    """aiokafka's default partitioner (Kafka's murmur2 of the key, as every Kafka client computes it,
    so a key lands where other producers put it) with each key's hash kept: the relays send runs of
    records under the same few keys (run ids), and the pure-Python murmur2 was a few per cent of a
    relay's CPU. The kept hashes are bounded (cleared when `size` keys are kept)."""

    def __init__(self, size: int = 65_536) -> None:
        self._hashes: dict[bytes, int] = {}
        self._size = size
        self._default = DefaultPartitioner()

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return self._default(key, all_partitions, available)
        h = self._hashes.get(key)
        if h is None:
            if len(self._hashes) >= self._size:
                self._hashes.clear()
            h = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[h % len(all_partitions)]


class Producer:
    def __init__(self, bootstrap: str, client_id: str = "callgauge") -> None:
        self._bootstrap, self._client_id = bootstrap, client_id
        self._producer: AIOKafkaProducer | None = None

    @property
    def bootstrap(self) -> str:
        return self._bootstrap

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=False,
            linger_ms=5,
            # a relay's burst (up to 500 events) goes out as one batch per partition, not ~20 of
            # aiokafka's default 16 KiB: the broker's cost is per batch (Tansu: ~0.5 ms of CPU for a
            # batch of one record, ~1 us a record in big ones), 0.19 -> 0.07 CPU s per 1,000 calls
            max_batch_size=512 * 1024,
            request_timeout_ms=15000,
            partitioner=KeyHashPartitioner(),
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def partitions_for(self, topic: str) -> int:
        """How many partitions ``topic`` has (from the broker's metadata)."""
        assert self._producer is not None, "Producer.start() first"
        return len(await self._producer.partitions_for(topic))

    async def send(self, topic: str, key: str, value: bytes, headers: Sequence[tuple[str, bytes]] = ()) -> None:
        """Send and wait for the broker's acknowledgement (raises KafkaError when it does not come)."""
        assert self._producer is not None, "Producer.start() first"
        await self._producer.send_and_wait(topic, value=value, key=key.encode(), headers=list(headers))
        PRODUCED.labels(topic).inc()

    async def send_many(self, records: Iterable[tuple[str, str, bytes, Sequence[tuple[str, bytes]]]]) -> list:
        """Send a batch; returns when every record is acknowledged, in order per partition, with
        the broker's acknowledgement of each (aiokafka RecordMetadata: partition, offset).

        `records` may be a lazy iterable: it is drawn in slices of SEND_SLICE, and between slices
        the event loop runs what is waiting (a request, a heartbeat). Appending to aiokafka's batch
        does not suspend, so 500 records in one go held a service's loop for tens of ms."""
        assert self._producer is not None, "Producer.start() first"
        topics: list[str] = []
        futures = []
        for i, (topic, key, value, headers) in enumerate(records):
            if i and i % SEND_SLICE == 0:
                await asyncio.sleep(0)
            futures.append(await self._producer.send(topic, value=value, key=key.encode(), headers=list(headers)))
            topics.append(topic)
        acks = []
        for topic, fut in zip(topics, futures, strict=True):
            acks.append(await fut)
            PRODUCED.labels(topic).inc()
        return acks


class Consumer:
    """One consumer-group member calling `handler` for each decoded event, in partition order."""

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        group_id: str,
        handler: Handler,
        *,
        from_beginning: bool = True,
        dedupe_size: int = 100_000,
        max_attempts: int = 5,
        session_timeout_ms: int = 6000,
        rebalance_timeout_ms: int = 500,
        batch_handler: BatchHandler | None = None,
        max_records: int = 500,
        dead_letters: DeadLetters | None = None,
        fetch_max_wait_ms: int = 500,
        on_arrival: Callable[[Delivered], None] | None = None,
        types: Collection[str] | None = None,
    ) -> None:
        """`fetch_max_wait_ms`: how long the broker holds a fetch that finds nothing new. Tansu
        answers it only when that time is up, even if records arrive meanwhile (measured: 500 ms
        gave a p50 of 156 ms from produce to consume, 20 ms gave 7 ms), so it is the latency of an
        idle consumer; a shorter one costs broker CPU while idle (5 consumers at 20 ms: ~13 % of a
        core, at 500 ms: ~2.4 %). Latency-critical consumers (the engine's run requests) pass a
        short one.

        `types`: the event types (full protobuf names) the handlers act on; a record of any other type
        is passed over before it is decoded (by its `type` header; counted as `not_wanted`), so a
        consumer that needs a few events of a busy topic (a run's start among its calls) pays
        nothing for the rest, and a batch handler's runs of events are not split by them.

        `batch_handler`: called with every new event of a fetch at once (in order per
        partition) instead of `handler` one at a time; a batch that keeps failing is handed to
        `handler` event by event, so one bad event does not hold up the others."""
        self._bootstrap, self._topics, self._group = bootstrap, list(topics), group_id
        self._handler = handler
        self._types = frozenset(types) if types else None
        self._batch_handler = batch_handler
        self._max_records = max_records
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._from_beginning = from_beginning
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._dedupe_size = dedupe_size
        self._max_attempts = max_attempts
        # Tansu holds a JoinGroup for about the rebalance timeout and forgets a departed member
        # only after its session timeout: both short, so a (re)started member is assigned quickly.
        # Members rejoin from aiokafka's background coordinator, so a short rebalance timeout does
        # not depend on how long a handler runs.
        self._session_timeout_ms, self._rebalance_timeout_ms = session_timeout_ms, rebalance_timeout_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None
        self._lag_labels: set[tuple[str, str, str]] = set()
        self.ready = asyncio.Event()
        self._dead = dead_letters
        self._blocked: set[str] = set()  # keys with parked records: later ones queue behind them
        self._dead_lock = asyncio.Lock()
        self._retry_task: asyncio.Task | None = None
        self.dead_letter_retry_s = (2.0, 60.0)  # first and longest delay between retry passes
        # Called (synchronously, no I/O) for every new record as it is fetched, before it is handled
        # or parked behind its key: what a record says about liveness (an engine's lease) counts even
        # while its handling waits on the store.
        self._on_arrival = on_arrival
        self.last_poll = time.monotonic()  # when a fetch last returned: a consumer stuck on a handler or a park is not

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=self._bootstrap,
            group_id=self._group,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if self._from_beginning else "latest",
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=min(300, self._session_timeout_ms // 3),
            rebalance_timeout_ms=self._rebalance_timeout_ms,
            max_poll_interval_ms=300000,
            fetch_max_wait_ms=self._fetch_max_wait_ms,
        )
        await self._consumer.start()
        if self._dead is not None:
            try:
                self._blocked = {p.key for p in await self._dead.pending() if p.key}
            except Exception as exc:  # store down: the retry task loads them when it can
                log.warning("dead_letters_not_loaded", group=self._group, error=repr(exc))
            self._retry_task = asyncio.create_task(self._retry_dead_letters(), name=f"dead-letters:{self._group}")
        self._task = asyncio.create_task(self._run(), name=f"consumer:{self._group}")

    async def stop(self) -> None:
        await cancel_and_wait(self._retry_task)
        self._retry_task = None
        await cancel_and_wait(self._task)
        self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    def _remember(self, event_id: str) -> bool:
        """True the first time an event id is seen."""
        if event_id in self._seen:
            self._seen.move_to_end(event_id)
            return False
        self._seen[event_id] = None
        if len(self._seen) > self._dedupe_size:
            self._seen.popitem(last=False)
        return True

    def _wanted(self, topic: str, headers) -> bool:
        """False (counted) for a record whose `type` header names a type this consumer does not act on."""
        if self._types is None:
            return True
        for name, value in headers or ():
            if name == "type":
                if value.decode(errors="replace") in self._types:
                    return True
                CONSUMED.labels(topic, "not_wanted").inc()
                return False
        return True  # no header (an older producer): the envelope's type decides

    def _decode(self, topic: str, value: bytes | None) -> Delivered | None:
        """The event of a record; None (counted) for a bad record, an unknown type, a duplicate, or
        a type this consumer does not act on."""
        try:
            delivered = decode_record(value)
        except BadRecord as exc:
            CONSUMED.labels(topic, "bad_record").inc()
            log.warning("bad_record_skipped", topic=topic, error=str(exc))
            return None
        if self._types is not None and delivered.envelope.type not in self._types:
            CONSUMED.labels(topic, "not_wanted").inc()
            return None
        if delivered.payload is None:
            CONSUMED.labels(topic, "unknown_type").inc()
            return None
        if delivered.event_id in self._seen:
            CONSUMED.labels(topic, "duplicate").inc()
            return None
        return delivered

    async def _handle_batch(self, batch: list[tuple[str, Delivered, str]]) -> None:
        assert self._batch_handler is not None
        fresh: list[tuple[str, Delivered, str]] = []
        for topic, d, key in batch:  # the same event twice in one fetch: once
            if self._dead is not None and key and key in self._blocked:
                await self._handle_delivered(topic, d, key)  # parked behind its key's parked records
            elif self._remember(d.event_id):
                fresh.append((topic, d, key))
            else:
                CONSUMED.labels(topic, "duplicate").inc()
        if not fresh:
            return
        tracer = trace.get_tracer("callgauge.bus")
        for attempt in range(1, 3):
            try:
                # one consumer span per event, each a child of its producer's context (so every
                # event's trace shows its consumption), inside one batch span linked to them all;
                # the per-event spans only where spans are exported (they cost more than the event's
                # handling in a big batch, and go nowhere otherwise)
                traced = exporting()
                parents = [context_from_traceparent(d.envelope.traceparent) for _, d, _ in fresh] if traced else []
                links = [trace.Link(trace.get_current_span(c).get_span_context()) for c in parents]
                with tracer.start_as_current_span(f"consume batch of {len(fresh)}", kind=trace.SpanKind.CONSUMER,
                                                  links=[lk for lk in links if lk.context.is_valid]):
                    spans = [tracer.start_span(f"consume {d.envelope.type.rsplit('.', 1)[-1]}",
                                               context=c if lk.context.is_valid else None,
                                               kind=trace.SpanKind.CONSUMER)
                             for (_, d, _), c, lk in zip(fresh, parents, links)]
                    try:
                        await self._batch_handler([d for _, d, _ in fresh])
                    finally:
                        for span in spans:
                            span.end()
                for topic, _, _ in fresh:
                    CONSUMED.labels(topic, "ok").inc()
                return
            except asyncio.CancelledError:
                for _, d, _ in fresh:
                    self._seen.pop(d.event_id, None)
                raise
            except Exception:
                log.exception("batch_handler_failed", size=len(fresh), attempt=attempt)
                await asyncio.sleep(0.2 * attempt)
        for topic, d, key in fresh:  # one by one: the events that can be handled are
            self._seen.pop(d.event_id, None)
            await self._handle_delivered(topic, d, key)

    def _arrived(self, delivered: Delivered) -> None:
        if self._on_arrival is not None:
            try:
                self._on_arrival(delivered)
            except Exception:  # noqa: BLE001 - a hint, never a reason to stop consuming
                log.exception("on_arrival_failed", type=delivered.envelope.type)

    async def _handle(self, topic: str, value: bytes | None, key: bytes | None = None, headers=()) -> None:
        if not self._wanted(topic, headers):
            return
        delivered = self._decode(topic, value)
        if delivered is not None:
            self._arrived(delivered)
            await self._handle_delivered(topic, delivered, key.decode(errors="replace") if key else "")

    async def _handle_delivered(self, topic: str, delivered: Delivered, key: str = "") -> None:
        if self._dead is not None and key:
            async with self._dead_lock:
                if key in self._blocked:  # an earlier record of this key is parked: keep the order
                    await self._park(topic, key, delivered.envelope.SerializeToString(),
                                     "parked behind an earlier record of its key", 0)
                    return
        error = await self._try(topic, delivered, self._max_attempts)
        if error is None:
            return
        if self._dead is None:
            CONSUMED.labels(topic, "gave_up").inc()
            log.error("handler_gave_up", topic=topic, type=delivered.envelope.type, event_id=delivered.event_id)
            return
        async with self._dead_lock:
            await self._park(topic, key, delivered.envelope.SerializeToString(), error, self._max_attempts)

    async def _try(self, topic: str, delivered: Delivered, attempts: int) -> str | None:
        """Call the handler up to `attempts` times with backoff; None when it succeeded, else the
        last error."""
        parent = context_from_traceparent(delivered.envelope.traceparent)
        tracer = trace.get_tracer("callgauge.bus")
        error = ""
        for attempt in range(1, attempts + 1):
            token = otel_context.attach(parent)
            try:
                with tracer.start_as_current_span(
                    f"consume {delivered.envelope.type.rsplit('.', 1)[-1]}", kind=trace.SpanKind.CONSUMER
                ):
                    await self._handler(delivered)
                self._remember(delivered.event_id)
                CONSUMED.labels(topic, "ok").inc()
                return None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = repr(exc)
                log.exception("handler_failed", topic=topic, type=delivered.envelope.type,
                              event_id=delivered.event_id, attempt=attempt)
                if attempt < attempts:
                    await asyncio.sleep(min(0.2 * 2**attempt, 5))
            finally:
                otel_context.detach(token)
        return error

    async def _park(self, topic: str, key: str, value: bytes, error: str, attempts: int) -> None:
        """Park a record durably; until that works, retry (nothing is committed past it meanwhile)."""
        assert self._dead is not None
        delay = 1.0
        while True:
            try:
                parked = await self._dead.park(topic, key, value, error, attempts)
                break
            except Exception as exc:
                log.error("dead_letter_not_parked", group=self._group, topic=topic, key=key, error=repr(exc),
                          retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        if key:
            self._blocked.add(key)
        CONSUMED.labels(topic, "dead_lettered").inc()
        log.error("dead_lettered", group=self._group, topic=topic, key=key, parked=parked.id, error=error)

    async def retry_dead_letters(self) -> int:
        """One pass over the parked records, oldest first, one try each; a key's records stop at its
        first failure (order kept). Returns how many are still parked."""
        assert self._dead is not None
        async with self._dead_lock:
            pending = await self._dead.pending()
            done, stuck = [], set()
            for p in pending:
                if p.key and p.key in stuck:
                    continue
                try:
                    delivered = decode_record(p.value)
                except BadRecord:
                    done.append(p.id)
                    continue
                if delivered.payload is None or delivered.event_id in self._seen:
                    done.append(p.id)
                    continue
                error = await self._try(p.topic, delivered, 1)
                if error is None:
                    done.append(p.id)
                    log.info("dead_letter_handled", group=self._group, parked=p.id, key=p.key)
                else:
                    stuck.add(p.key)
                    await self._dead.retried(p, error)
            if done:
                await self._dead.resolve(done)
            left = [p for p in pending if p.id not in set(done)]
            self._blocked = {p.key for p in left if p.key}
            return len(left)

    async def _retry_dead_letters(self) -> None:
        first, longest = self.dead_letter_retry_s
        delay = first
        while True:
            await asyncio.sleep(delay)
            try:
                left = await self.retry_dead_letters()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is still down: try again later
                log.warning("dead_letter_retry_failed", group=self._group, error=repr(exc))
                left = 1
            delay = first if left == 0 else min(delay * 2, longest)

    async def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Consumer lag per assigned partition, from the last fetch's highwater and our position."""
        labels: set[tuple[str, str, str]] = set()
        try:
            for tp in consumer.assignment():
                highwater = consumer.highwater(tp)
                if highwater is None:  # nothing fetched from this partition yet
                    continue
                async with asyncio.timeout(1):
                    position = await consumer.position(tp)
                key = (self._group, tp.topic, str(tp.partition))
                CONSUMER_LAG.labels(*key).set(max(0, highwater - position))
                labels.add(key)
        except (KafkaError, AssertionError, TimeoutError):
            return  # a rebalance is under way: keep the last figures until the next round
        for key in self._lag_labels - labels:  # partitions no longer ours
            CONSUMER_LAG.remove(*key)
        self._lag_labels = labels

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        """Commit what was handled. aiokafka retries a commit for a topic the broker does not know
        without end (an embedded broker restarted empty, and the topic's producer has not published
        since): after COMMIT_WAIT_S the consumer recreates its topics (ensure_topics) and goes on;
        what it handled is committed with the next batch, and a record handled twice is dropped
        by event id."""
        try:
            async with asyncio.timeout(COMMIT_WAIT_S):
                await consumer.commit()
        except TimeoutError:
            log.warning("consumer_commit_stuck", group=self._group, topics=self._topics,
                        action="recreating the topics the broker does not know")
            await ensure_topics(self._bootstrap, self._topics, timeout=10)

    async def _run(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=500, max_records=self._max_records)
                self.last_poll = time.monotonic()
                self.ready.set()
                if self._batch_handler is not None:
                    decoded = []
                    for i, (tp, rec) in enumerate((tp, rec) for tp, records in batches.items() for rec in records):
                        if i and i % DECODE_SLICE == 0:
                            await asyncio.sleep(0)  # a fetch of 500 records: let waiting requests in
                        if self._wanted(tp.topic, rec.headers) and (d := self._decode(tp.topic, rec.value)) is not None:
                            decoded.append((tp.topic, d, rec.key.decode(errors="replace") if rec.key else ""))
                    for _, d, _ in decoded:
                        self._arrived(d)
                    if decoded:
                        await self._handle_batch(decoded)
                else:
                    for tp, records in batches.items():
                        for rec in records:
                            await self._handle(tp.topic, rec.value, rec.key, rec.headers)
                if batches:
                    await self._commit(consumer)
                await self._update_lag(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker gone or restarted: aiokafka reconnects and rejoins
                log.warning("consumer_error", error=repr(exc))
                await asyncio.sleep(1)
