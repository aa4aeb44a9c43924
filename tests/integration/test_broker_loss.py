"""Broker loss: Tansu killed and restarted empty mid-run; the relay notices and re-publishes from the
store, and the consumer (same group, same process) ends up with every stored event."""

from __future__ import annotations

import asyncio
import subprocess

from callgauge_bus.codec import Delivered, new_event
from callgauge_bus.kafka import Consumer, Producer, ensure_topics
from callgauge_eventstore import StreamState
from callgauge_eventstore.factory import open_event_store
from callgauge_relay.relay import OutboxRelay
from callgauge_proto.callgauge.events.v1 import runs_pb2

from callgauge_platform.broker import tansu_command
from callgauge_platform.stack import free_port


class Broker:
    """A Tansu of our own, so killing it does not disturb the session's broker."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    async def start(self) -> None:
        self.proc = subprocess.Popen(tansu_command("127.0.0.1", self.port), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        async with asyncio.timeout(30):
            while True:
                try:
                    _, w = await asyncio.open_connection("127.0.0.1", self.port)
                    w.close()
                    return
                except OSError:
                    assert self.proc.poll() is None, f"tansu exited with {self.proc.returncode}"
                    await asyncio.sleep(0.05)


async def _stored_ids(store) -> set[str]:
    return {str(ev.id) for ev in await store.read_all(0, 10_000)}


async def test_relay_republishes_after_the_broker_comes_back_empty(tmp_path):
    broker = Broker()
    await broker.start()
    topic = "loss.callgauge.runs.v1"
    store = open_event_store(f"sqlite:///{tmp_path}/", "runs")
    seen: set[str] = set()

    async def handler(d: Delivered) -> None:
        seen.add(d.event_id)

    async def append(run: str) -> None:
        await store.append_to_stream(f"run-{run}", StreamState.NO_STREAM,
                                     [new_event(runs_pb2.RunQueued(run_id=run), correlation_id=run)])

    producer = Producer(broker.bootstrap)
    relay = OutboxRelay(store, producer, topic, "relay:loss", "runs", check_interval=0.5, partitions=1)
    consumer = Consumer(broker.bootstrap, [topic], "g-loss", handler)
    try:
        await ensure_topics(broker.bootstrap, [topic], partitions=1)
        await producer.start()
        await relay.start()
        await consumer.start()
        async with asyncio.timeout(60):
            for i in range(3):
                await append(f"a{i}")
            relay.notify()
            while len(seen) < 3:
                await asyncio.sleep(0.05)

            broker.proc.kill()  # SIGKILL: topics, offsets and groups are gone
            await asyncio.to_thread(broker.proc.wait, 5)
            for i in range(3):
                await append(f"b{i}")
            await asyncio.sleep(1)
            await broker.start()  # same port, empty

            want = await _stored_ids(store)
            while seen != want:
                await asyncio.sleep(0.1)
        assert relay.broker_losses >= 1
        assert await store.get_checkpoint("relay:loss") == await store.last_position()
    finally:
        await consumer.stop()
        await relay.stop(drain_timeout=0.5)
        await producer.stop()
        await store.close()
        if broker.proc is not None and broker.proc.poll() is None:
            broker.proc.send_signal(9)
            broker.proc.wait(5)
