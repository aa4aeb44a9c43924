"""Dead letters with the real broker and a real SQLite store: a record whose handler keeps failing
is parked durably (not skipped), later records of its key queue behind it while other keys go on,
and a retry pass handles them in order once the handler can; a consumer started anew finds them."""

from __future__ import annotations

import asyncio

from callgauge_bus.codec import Delivered, envelope_for
from callgauge_bus.dead_letters import DeadLetters
from callgauge_bus.kafka import Consumer, Producer, ensure_topics
from callgauge_eventstore.sqlite import SqliteEventStore
from callgauge_proto.callgauge.events.v1 import media_pb2


async def test_a_failing_record_is_parked_its_key_waits_and_a_retry_handles_them_in_order(
        tmp_path, broker, topic_prefix):
    topic = f"{topic_prefix}media"
    await ensure_topics(broker.bootstrap, [topic], partitions=1)
    store = SqliteEventStore(tmp_path / "dl.db")
    await store.open()
    handled: list[str] = []
    broken = {"x"}

    async def handler(d: Delivered) -> None:
        if d.payload.engine_id in broken:
            raise OSError(28, "No space left on device")
        handled.append(d.payload.engine_id)

    def consumer() -> Consumer:
        c = Consumer(broker.bootstrap, [topic], f"{topic_prefix}g", handler, max_attempts=2,
                     dead_letters=DeadLetters(store, f"{topic_prefix}g"))
        c.dead_letter_retry_s = (3600.0, 3600.0)  # passes are run by hand below
        return c

    producer = Producer(broker.bootstrap)
    await producer.start()
    for run_id, name in (("run-1", "x"), ("run-1", "y"), ("run-2", "z")):
        env = envelope_for(media_pb2.RunMediaStarted(run_id=run_id, engine_id=name), "s", 0, run_id, "", "test")
        await producer.send(topic, run_id, env.SerializeToString())
    await producer.stop()

    c = consumer()
    await c.start()
    try:
        async with asyncio.timeout(60):
            while handled != ["z"] or len(await DeadLetters(store, f"{topic_prefix}g").pending()) < 2:
                await asyncio.sleep(0.1)
        parked = await DeadLetters(store, f"{topic_prefix}g").pending()
        assert [p.key for p in parked] == ["run-1", "run-1"]  # y waits behind x; z went on
        assert "No space left" in parked[0].error and "behind an earlier record" in parked[1].error
        assert await c.retry_dead_letters() == 2  # still broken: both stay, in order
    finally:
        await c.stop()

    broken.clear()
    c = consumer()  # a restart: the parked records are in the store, the offsets past them
    await c.start()
    try:
        assert await c.retry_dead_letters() == 0
    finally:
        await c.stop()
    assert handled == ["z", "x", "y"]
    assert await DeadLetters(store, f"{topic_prefix}g").pending() == []
    await store.close()
