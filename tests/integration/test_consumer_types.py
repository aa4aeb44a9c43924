"""A consumer that acts on a few event types of a busy topic passes over the rest unread, with the
real broker: by the record's `type` header, or by its envelope when a record has no header. A
batch handler then gets the events it acts on as one run, not split by the others."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from callgauge_bus.codec import Delivered, envelope_for
from callgauge_bus.kafka import Consumer, Producer, ensure_topics
from callgauge_proto.callgauge.events.v1 import media_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

MEASURED = media_pb2.CallMeasured.DESCRIPTOR.full_name


def _not_wanted(topic: str) -> float:
    return REGISTRY.get_sample_value("callgauge_bus_consumed_total", {"topic": topic, "result": "not_wanted"}) or 0


async def test_a_consumer_passes_over_the_types_it_does_not_act_on(broker, topic_prefix):
    topic = f"{topic_prefix}media"
    await ensure_topics(broker.bootstrap, [topic], partitions=1)
    producer = Producer(broker.bootstrap)
    await producer.start()
    try:
        records = []
        for i in range(50):
            call_id = f"run-1:0.0.{i}"
            for j, msg in enumerate((media_pb2.CallAnswered(run_id="run-1", call_id=call_id),
                                     media_pb2.CallMeasured(run_id="run-1", call=m_pb2.CallMeasurement(call_id=call_id)))):
                env = envelope_for(msg, "media", 2 * i + j, "run-1", "", "test")
                # every fifth CallAnswered without a header: the envelope's type decides
                headers = [] if i % 5 == 0 and j == 0 else [("type", env.type.encode())]
                records.append((topic, "run-1", env.SerializeToString(), headers))
        await producer.send_many(records)
    finally:
        await producer.stop()

    batches: list[list[str]] = []
    one_by_one: list[str] = []

    async def on_batch(batch: list[Delivered]) -> None:
        batches.append([d.envelope.type for d in batch])

    async def on_event(d: Delivered) -> None:
        one_by_one.append(d.envelope.type)

    before = _not_wanted(topic)
    c = Consumer(broker.bootstrap, [topic], f"{topic_prefix}g", on_event, batch_handler=on_batch, types=[MEASURED])
    await c.start()
    try:
        async with asyncio.timeout(60):
            while sum(map(len, batches)) < 50:
                await asyncio.sleep(0.05)
    finally:
        await c.stop()
    assert all(t == MEASURED for b in batches for t in b) and sum(map(len, batches)) == 50
    assert len(batches) <= 2  # one fetch holds them all (at most split once by the fetch's edge)
    assert one_by_one == []
    assert _not_wanted(topic) - before == 50
