"""The outbox relay against a real SQLite store and the real Tansu broker."""

from __future__ import annotations

import asyncio

from callgauge_bus.codec import Delivered, new_event
from callgauge_bus.kafka import Consumer, Producer, ensure_topics
from callgauge_eventstore import StreamState
from callgauge_eventstore.factory import open_event_store
from callgauge_eventstore.relay import OutboxRelay
from callgauge_proto.callgauge.events.v1 import runs_pb2


async def collect(bootstrap: str, topic: str, n: int, group: str, limit_s: float = 30) -> list[Delivered]:
    got: list[Delivered] = []

    async def handler(d: Delivered) -> None:
        got.append(d)

    consumer = Consumer(bootstrap, [topic], group, handler)
    await consumer.start()
    try:
        async with asyncio.timeout(limit_s):
            while len(got) < n:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # anything beyond n would be a duplicate or a stray
    finally:
        await consumer.stop()
    return got


async def test_relay_publishes_every_event_in_order_with_envelope(tmp_path, broker, topic_prefix):
    topic = f"{topic_prefix}callgauge.runs.v1"
    await ensure_topics(broker.bootstrap, [topic], partitions=1)
    store = open_event_store(f"sqlite:///{tmp_path}/", "runs")
    for i in range(3):
        run = f"r{i}"
        await store.append_to_stream(f"run-{run}", StreamState.NO_STREAM, [
            new_event(runs_pb2.RunQueued(run_id=run, planned_calls=i), correlation_id=run, source="runs")])
    producer = Producer(broker.bootstrap)
    await producer.start()
    relay = OutboxRelay(store, producer, topic, "relay:test", "runs")
    await relay.start()
    try:
        got = await collect(broker.bootstrap, topic, 3, f"g-{topic_prefix}")
    finally:
        await relay.stop()
        await producer.stop()
    assert [d.payload.run_id for d in got] == ["r0", "r1", "r2"]
    assert all(d.envelope.stream_id == f"run-{d.payload.run_id}" for d in got)
    assert await store.get_checkpoint("relay:test") == await store.last_position()
    await store.close()


async def test_checkpoint_does_not_move_while_the_broker_is_unreachable(tmp_path):
    store = open_event_store(f"sqlite:///{tmp_path}/", "runs")
    await store.append_to_stream("run-x", StreamState.NO_STREAM,
                                 [new_event(runs_pb2.RunQueued(run_id="x"), correlation_id="x")])

    class DownBroker:
        calls = 0

        async def send_many(self, records):
            DownBroker.calls += 1
            raise ConnectionError("broker unreachable")

    relay = OutboxRelay(store, DownBroker(), "t", "relay:down", "runs")
    await relay.start()
    async with asyncio.timeout(10):
        while DownBroker.calls < 2:
            await asyncio.sleep(0.05)
    await relay.stop(drain_timeout=0.1)
    assert await store.get_checkpoint("relay:down") == 0
    await store.close()


async def test_a_restarted_relay_resumes_after_its_checkpoint(tmp_path, broker, topic_prefix):
    topic = f"{topic_prefix}callgauge.runs.v1"
    await ensure_topics(broker.bootstrap, [topic], partitions=1)
    store = open_event_store(f"sqlite:///{tmp_path}/", "runs")
    producer = Producer(broker.bootstrap)
    await producer.start()

    async def append(run):
        await store.append_to_stream(f"run-{run}", StreamState.NO_STREAM,
                                     [new_event(runs_pb2.RunQueued(run_id=run), correlation_id=run)])

    await append("a")
    first = OutboxRelay(store, producer, topic, "relay:resume", "runs")
    await first.start()
    await first.stop()
    await append("b")
    second = OutboxRelay(store, producer, topic, "relay:resume", "runs")
    await second.start()
    try:
        got = await collect(broker.bootstrap, topic, 2, f"g-{topic_prefix}")
    finally:
        await second.stop()
        await producer.stop()
    assert [d.payload.run_id for d in got] == ["a", "b"]  # b once, a not re-sent
    await store.close()
