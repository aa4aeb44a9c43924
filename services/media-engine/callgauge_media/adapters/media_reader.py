"""The media topic read from the start (:class:`KafkaMediaReader`): the coordinator of a sharded
load run (:mod:`callgauge_media.handlers.shards`) follows its shards' reports through it."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from google.protobuf.message import Message

from callgauge_bus.codec import BadRecord, decode_record


class KafkaMediaReader:
    """A reader of the media topic without a consumer group: every partition, from the end
    offsets at the time it was opened (so it sees everything published afterwards)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap, self._topic = bootstrap, topic
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> KafkaMediaReader:
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False,
                                    request_timeout_ms=10000, metadata_max_age_ms=5000)
        await consumer.start()
        try:
            parts = None
            for _ in range(50):  # bounded: the topic exists (ensure_topics ran), metadata may lag
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(self._topic)
                if parts:
                    break
                await asyncio.sleep(0.1)
            if not parts:
                raise RuntimeError(f"topic {self._topic} has no partitions")
            tps = [TopicPartition(self._topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                consumer.seek(tp, ends[tp])
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def poll(self, timeout_s: float) -> list[Message]:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=5000)
        out = []
        for records in batches.values():
            for rec in records:
                try:
                    delivered = decode_record(rec.value)
                except BadRecord:
                    continue
                if delivered.payload is not None:
                    out.append(delivered.payload)
        return out
