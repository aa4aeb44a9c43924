"""The outbox relay against a real SQLite store and the real Tansu broker."""

from __future__ import annotations

import asyncio
import os

from aiokafka import AIOKafkaConsumer, TopicPartition

from callgauge_bus.codec import Delivered, decode_record, new_event
from callgauge_bus.kafka import Producer, ensure_topics
from callgauge_eventstore import StreamState
from callgauge_eventstore.factory import open_event_store
from callgauge_relay.relay import OutboxRelay
from callgauge_proto.callgauge.events.v1 import runs_pb2


async def published_all(relay: OutboxRelay, store, limit_s: float = 30) -> None:
    """Wait until the relay has published up to the store's head."""
    async with asyncio.timeout(limit_s):
        while relay.published_position < await store.last_position():
            await asyncio.sleep(0.02)


async def relay_all(store, bootstrap: str, topic: str, name: str, source: str = "runs", **kw) -> OutboxRelay:
    """An OutboxRelay (with a producer of its own) run until it has published up to the store's
    head, then stopped: the topic's writer is gone."""
    producer = Producer(bootstrap)
    await producer.start()
    relay = OutboxRelay(store, producer, topic, name, source, **kw)
    await relay.start()
    try:
        await published_all(relay, store)
    finally:
        await relay.stop()
        await producer.stop()
    return relay


async def collect(bootstrap: str, topic: str, limit_s: float = 30) -> list[tuple[int, Delivered]]:
    """Every record of the (one-partition) topic, read until the reader's position reaches the
    topic's end offset. Called once the writers are stopped: that end is final, so a duplicate or a
    stray would be among what is returned."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    got: list[tuple[int, Delivered]] = []
    try:
        tp = TopicPartition(topic, 0)
        reader.assign([tp])
        end = (await reader.end_offsets([tp]))[tp]
        await reader.seek_to_beginning(tp)
        async with asyncio.timeout(limit_s):
            while await reader.position(tp) < end:
                for records in (await reader.getmany(tp, timeout_ms=500)).values():
                    got += [(r.offset, decode_record(r.value)) for r in records]
    finally:
        await reader.stop()
    return got


async def test_relay_publishes_every_event_in_order_with_envelope(tmp_path, broker, topic_prefix):
    topic = f"{topic_prefix}callgauge.runs.v1"
    await ensure_topics(broker.bootstrap, [topic], partitions=1)
    store = open_event_store(f"sqlite:///{tmp_path}/", "runs")
    for i in range(3):
        run = f"r{i}"
        await store.append_to_stream(f"run-{run}", StreamState.NO_STREAM, [
            new_event(runs_pb2.RunQueued(run_id=run, planned_calls=i), correlation_id=run, source="runs")])
    await relay_all(store, broker.bootstrap, topic, "relay:test")
    got = [d for _offset, d in await collect(broker.bootstrap, topic)]
    assert [d.payload.run_id for d in got] == ["r0", "r1", "r2"]
    assert all(d.envelope.stream_id == f"run-{d.payload.run_id}" for d in got)
    assert await store.get_checkpoint("relay:test") == await store.last_position()
    await store.close()


async def test_an_append_wakes_the_relay_at_once_without_polling(tmp_path, broker, topic_prefix):
    """The relay waits on the store's news, not on a short poll (#14 item 6a): with a poll of a
    minute, a new event still reaches the broker within a bounded wait of seconds."""
    topic = f"{topic_prefix}callgauge.runs.v1"
    await ensure_topics(broker.bootstrap, [topic], partitions=1)
    store = open_event_store(f"sqlite:///{tmp_path}/", "runs")
    producer = Producer(broker.bootstrap)
    await producer.start()
    relay = OutboxRelay(store, producer, topic, "relay:news", "runs", poll_interval=60.0)
    await relay.start()
    try:
        await asyncio.sleep(0.3)  # idle: the relay is waiting
        for i in range(3):
            p = await store.append_to_stream(f"run-n{i}", StreamState.NO_STREAM, [
                new_event(runs_pb2.RunQueued(run_id=f"n{i}"), correlation_id=f"n{i}", source="runs")])
            async with asyncio.timeout(10):
                while relay.published_position < p:
                    await asyncio.sleep(0.01)
    finally:
        await relay.stop()
        await producer.stop()
    assert await store.get_checkpoint("relay:news") == await store.last_position()
    await store.close()


async def test_new_work_is_not_kept_waiting_behind_a_backlog(tmp_path, broker, topic_prefix):
    """#14 item 6b: a relay that starts with many unpublished events (a restart after a stop that
    left them, a re-publish) publishes a new run's event before it is through the backlog, while an
    event of a backlog key still comes after every earlier event of its key; each event once."""
    topic = f"{topic_prefix}callgauge.runs.v1"
    await ensure_topics(broker.bootstrap, [topic], partitions=1)  # one partition: offsets give the order
    store = open_event_store(f"sqlite:///{tmp_path}/", "runs")
    backlog = 20_000
    for chunk in range(backlog // 1000):
        await store.append_to_stream(f"run-old-{chunk}", StreamState.NO_STREAM, [
            new_event(runs_pb2.RunQueued(run_id="old", planned_calls=chunk * 1000 + i), correlation_id="old",
                      source="runs") for i in range(1000)])
    producer = Producer(broker.bootstrap)
    await producer.start()
    relay = OutboxRelay(store, producer, topic, "relay:lanes", "runs")
    await relay.start()
    try:
        await store.append_to_stream("run-new", StreamState.NO_STREAM, [
            new_event(runs_pb2.RunQueued(run_id="new"), correlation_id="new", source="runs")])
        await store.append_to_stream("run-old-late", StreamState.NO_STREAM, [
            new_event(runs_pb2.RunQueued(run_id="old", planned_calls=backlog), correlation_id="old", source="runs")])
        await published_all(relay, store, limit_s=180)
    finally:
        await relay.stop()
        await producer.stop()
    assert relay.broker_losses == 0
    assert await store.get_checkpoint("relay:lanes") == await store.last_position()
    await store.close()
    got = [(offset, d.payload.run_id, d.payload.planned_calls, d.event_id)
           for offset, d in await collect(broker.bootstrap, topic, limit_s=60)]
    assert len(got) == backlog + 2 and len({g[3] for g in got}) == backlog + 2  # each event once
    new_at = next(o for o, run, _, _ in got if run == "new")
    assert new_at < backlog // 4, f"the new run's event waited behind {new_at} backlog events"
    old = [(o, n) for o, run, n, _ in got if run == "old"]
    assert [n for _, n in sorted(old)] == list(range(backlog + 1))  # the old key's events in commit order
    assert relay.lanes_opened == 1


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

    async def append(run):
        await store.append_to_stream(f"run-{run}", StreamState.NO_STREAM,
                                     [new_event(runs_pb2.RunQueued(run_id=run), correlation_id=run)])

    await append("a")
    await relay_all(store, broker.bootstrap, topic, "relay:resume")
    await append("b")
    await relay_all(store, broker.bootstrap, topic, "relay:resume")  # a second relay, from the checkpoint
    got = [d for _offset, d in await collect(broker.bootstrap, topic)]
    assert [d.payload.run_id for d in got] == ["a", "b"]  # b once, a not re-sent
    await store.close()


async def test_a_full_rate_relay_reports_no_loss_and_publishes_each_event_once(tmp_path, broker, topic_prefix):
    """Events appended as fast as the store takes them for a bounded time (CALLGAUGE_TEST_RELAY_SECONDS,
    60 by default), the relay publishing and checking the broker every 0.3 s. Tansu's end offsets
    stay behind the acknowledged offsets (it answers with the base offset of a partition's last
    batch), which is not a loss: none is reported, and the broker holds each event once (the
    acknowledged offsets of each partition run 0..n-1 and add up to the events of the store)."""
    seconds = float(os.environ.get("CALLGAUGE_TEST_RELAY_SECONDS", "60"))
    topic = f"{topic_prefix}callgauge.media.v1"
    await ensure_topics(broker.bootstrap, [topic], partitions=3)
    store = open_event_store(f"sqlite:///{tmp_path}/", "media-engine")
    producer = Producer(broker.bootstrap)
    await producer.start()
    relay = OutboxRelay(store, producer, topic, "relay:full-rate", "media-engine", check_interval=0.3)
    await relay.start()
    appended = 0
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            run = f"r{appended // 5000}"
            await store.append_to_stream(f"media-run-{run}-{appended}", StreamState.NO_STREAM, [
                new_event(runs_pb2.RunQueued(run_id=run, planned_calls=appended + i), correlation_id=run,
                          source="media-engine") for i in range(100)])
            appended += 100
            relay.notify()
        await published_all(relay, store, limit_s=60)
        assert not await relay.check_broker()  # one more check with everything acknowledged
    finally:
        await relay.stop()
        await producer.stop()
    probe = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
    await probe.start()
    try:
        parts = probe.partitions_for_topic(topic) or set()
        ends = await probe.end_offsets([TopicPartition(topic, p) for p in parts])
    finally:
        await probe.stop()
    await store.close()
    print(f"relayed {appended} events in {seconds:.0f} s ({appended / seconds:.0f}/s); acknowledged up to "
          f"{relay._acked_max}, end offsets {sorted((tp.partition, e) for tp, e in ends.items())}")
    assert relay.broker_losses == 0
    assert relay.published_in_epoch == appended
    assert sum(last + 1 for last in relay._acked_max.values()) == appended


async def test_the_accounts_relay_publishes_account_deleted_and_nothing_else(tmp_path, broker, topic_prefix):
    """The accounts store holds password and key hashes: of it, only AccountDeleted (an account id)
    reaches Kafka, as callgauge.events.v1.AccountDeleted on the accounts topic."""
    from callgauge_accounts.bootstrap import PUBLIC_EVENTS
    from callgauge_accounts.handlers.app import AccountsApp

    topic = f"{topic_prefix}callgauge.accounts.v1"
    await ensure_topics(broker.bootstrap, [topic], partitions=1)
    store = open_event_store(f"sqlite:///{tmp_path}/", "accounts")
    app = AccountsApp(store, "x" * 40)
    await app.start()
    try:
        kept = await app.register("kept@example.com", "correct horse battery staple")
        gone = await app.register("gone@example.com", "correct horse battery staple")
        await app.create_api_key(gone.id, "live", "k", 0)
        await app.delete_account(gone.id)
    finally:
        await app.stop()
    stored = {ev.type for ev in await store.read_all(0, 1000)}
    assert "callgauge.accounts.v1.AccountRegistered" in stored and "callgauge.accounts.v1.ApiKeyRevoked" in stored
    await relay_all(store, broker.bootstrap, topic, "relay:accounts", "accounts", publish_types=PUBLIC_EVENTS)
    got = [d for _offset, d in await collect(broker.bootstrap, topic)]
    assert [(d.envelope.type, d.payload.account_id) for d in got] == [("callgauge.events.v1.AccountDeleted", gone.id)]
    assert kept.id != gone.id and b"argon2" not in got[0].envelope.SerializeToString()
    assert await store.get_checkpoint("relay:accounts") == await store.last_position()
    await store.close()
