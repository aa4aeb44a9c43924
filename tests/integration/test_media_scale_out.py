"""Two media-engine replicas in one consumer group share one load run (engine/shards.py): the
owner splits it into shards on callgauge.media-work.v1, both replicas place calls, and the run
ends once, with one RunMediaFinished over every call. Real Tansu, real pjsua2 workers, SIPp uas."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from callgauge_bus.codec import decode_record, envelope_for
from callgauge_bus.kafka import Producer
from callgauge_app.settings import PlatformSettings
from callgauge_platform.stack import free_port
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

pytest.importorskip("pjsua2", reason="pjsua2-python (extra 'media') is not installed")

HOST = "127.0.0.1"
BOUND_S = 90.0


def _settings(broker, prefix: str, tmp_path: Path, name: str, rtp_base: int) -> PlatformSettings:
    return PlatformSettings(data_dir=tmp_path / name, kafka_bootstrap=broker.bootstrap, kafka_topic_prefix=prefix,
                    media_engine_id=name, media_workers=1, media_rtp_port_base=rtp_base,
                    media_http_port=free_port(HOST, __import__("socket").SOCK_STREAM), media_load_shards=0,
                    bind_host=HOST, dial_allow_cidrs="127.0.0.0/8")


async def _wait_for_split_assignment(engines, partitions: int = 3) -> None:
    """Both replicas hold partitions of the work topic (the group has rebalanced)."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        sets = [e.work_consumer._consumer.assignment() if e.work_consumer and e.work_consumer._consumer else set()
                for e in engines]
        if all(sets) and len(set().union(*sets)) == partitions and sum(len(s) for s in sets) == partitions:
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"the work topic's partitions were not split between the replicas: {sets}")
        await asyncio.sleep(0.2)


async def test_two_replicas_share_one_load_run_and_it_finishes_once(broker, topic_prefix, tmp_path, sipp_uas):
    from callgauge_media.bootstrap import bootstrap

    base = 48000 + (os.getpid() % 10) * 100
    a = bootstrap(_settings(broker, topic_prefix, tmp_path, "replica-a", base))
    b = bootstrap(_settings(broker, topic_prefix, tmp_path, "replica-b", base + 300))
    engines = [a, b]
    try:
        await asyncio.wait_for(asyncio.gather(a.start(), b.start()), 60)
        await _wait_for_split_assignment(engines)
        run_id = f"run-{uuid.uuid4().hex[:12]}"
        load = spec_pb2.LoadAction(dial_destination=sipp_uas, cps=4.5, hold_s=2, duration_ms=600)
        req = runs_pb2.RunRequested(run_id=run_id, test_name="scale-out",
                                    spec=spec_pb2.TestSpec(steps=[spec_pb2.Step(actions=[spec_pb2.Action(load=load)])]))
        producer = Producer(broker.bootstrap)
        await producer.start()
        try:
            env = envelope_for(req, f"run-{run_id}", 0, run_id, "", "runs")
            await producer.send(a.settings.topic("runs"), run_id, env.SerializeToString())
        finally:
            await producer.stop()

        events = await _read_run(broker.bootstrap, a.settings.topic("media"), run_id)
    finally:
        await asyncio.gather(*(e.stop(drain_timeout=20) for e in engines), return_exceptions=True)

    calls = [e for e in events if isinstance(e, media_pb2.CallMeasured)]
    finished = [e for e in events if isinstance(e, media_pb2.RunMediaFinished)]
    shards = [e for e in events if isinstance(e, media_pb2.LoadShardFinished)]
    seconds = [e for e in events if isinstance(e, media_pb2.RunSecondStats)]
    assert len(finished) == 1, finished
    done = finished[0]
    assert not done.error, done.error
    assert {c.engine_id for c in calls} == {"replica-a", "replica-b"}, "both replicas placed calls"
    assert len({c.call.call_id for c in calls}) == 9  # 4.5/s for 2 s
    assert all(c.call.outcome == m_pb2.SUCCESS for c in calls), [c.call.detail for c in calls]
    s = done.summary
    assert (s.calls_attempted, s.calls_answered, s.calls_planned) == (9, 9, 9)
    assert set(s.engines) == {"replica-a", "replica-b"} and sum(s.engines.values()) == 9
    assert sorted(x.shard for x in shards) == [0, 1, 2] and all(x.shards == 3 for x in shards)
    assert {x.engine_id for x in seconds} == {"replica-a", "replica-b"}
    assert sum(x.attempts for x in seconds) == 9


async def _read_run(bootstrap: str, topic: str, run_id: str) -> list:
    """The run's media events, until its RunMediaFinished (+1 s to see that no second one comes)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    events, seen = [], set()
    loop = asyncio.get_running_loop()
    deadline, stop_at = loop.time() + BOUND_S, None
    try:
        while loop.time() < (stop_at or deadline):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for rec in records:
                    d = decode_record(rec.value)
                    if d.event_id in seen or getattr(d.payload, "run_id", None) != run_id:
                        continue
                    seen.add(d.event_id)
                    events.append(d.payload)
                    if isinstance(d.payload, media_pb2.RunMediaFinished) and stop_at is None:
                        stop_at = loop.time() + 1.0
        if stop_at is None:
            pytest.fail(f"no RunMediaFinished within {BOUND_S} s; saw {[type(e).__name__ for e in events]}")
    finally:
        await consumer.stop()
    return events
