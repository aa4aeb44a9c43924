"""Scale-out helpers (engine/shards.py): shard keys, what may be split, and the owner's
coordination given the events the shards publish (a fake reader stands in for the topic)."""

import asyncio

from callgauge_media.handlers.shards import coordinate_run, partition_of, shard_keys, shardable
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2


def _spec(*actions):
    return spec_pb2.TestSpec(steps=[spec_pb2.Step(actions=list(actions))])


def test_shard_k_lands_on_partition_k_mod_partitions():
    keys = shard_keys("run-1", 5, 3)
    assert [partition_of(k, 3) for k in keys] == [0, 1, 2, 0, 1]
    assert len(set(keys)) == 5 and shard_keys("run-1", 5, 3) == keys


def test_only_pjsua_load_runs_are_split():
    load = spec_pb2.Action(load=spec_pb2.LoadAction(cps=1))
    assert shardable(_spec(load, load))
    assert not shardable(_spec(load, spec_pb2.Action(call=spec_pb2.CallAction(dial_destination="sip:a@b"))))
    assert not shardable(_spec(spec_pb2.Action(load=spec_pb2.LoadAction(driver="sipp"))))
    assert not shardable(spec_pb2.TestSpec())


class FakeReader:
    def __init__(self, batches):
        self.batches = list(batches)

    async def poll(self, timeout_s):
        return self.batches.pop(0) if self.batches else []


def _call(i, engine):
    return media_pb2.CallMeasured(run_id="r", engine_id=engine, call=m_pb2.CallMeasurement(
        call_id=f"r:0.0.{i}", outcome=m_pb2.SUCCESS, sip_code=200, mos=4.3))


def test_the_owner_assigns_shards_and_ends_the_run_once_over_all_calls():
    req = runs_pb2.RunRequested(run_id="r", spec=_spec(spec_pb2.Action(load=spec_pb2.LoadAction(cps=2, hold_s=2))))
    emitted, work = [], []

    async def emit(m):
        emitted.append(m)

    async def emit_work(m, key):
        work.append((m, key))

    fin = [media_pb2.LoadShardFinished(run_id="r", engine_id=e, shard=k, shards=2,
                                       summary=m_pb2.RunSummary(calls_planned=2, peak_concurrency=1))
           for k, e in ((0, "a"), (1, "b"))]
    reader = FakeReader([[_call(0, "a"), _call(1, "b"), _call(1, "b"), media_pb2.CallMeasured(run_id="other")],
                         [], [_call(2, "a"), fin[0], _call(3, "b")], [fin[1], fin[1]]])
    summary = asyncio.run(coordinate_run(req, engine_id="a", shards=2, partitions=3, emit=emit,
                                         emit_work=emit_work, reader=reader, deadline_s=30))
    assert [type(m).__name__ for m in emitted] == ["RunAccepted", "RunMediaStarted", "RunMediaFinished"]
    assert emitted[0].planned_calls == 4
    assert [(m.shard, m.shards, m.owner_engine_id) for m, _ in work] == [(0, 2, "a"), (1, 2, "a")]
    assert [partition_of(k, 3) for _, k in work] == [0, 1] and work[0][0].request == req
    assert (summary.calls_attempted, summary.calls_planned, summary.peak_concurrency) == (4, 4, 2)
    assert dict(summary.engines) == {"a": 2, "b": 2} and not emitted[-1].error


def test_a_shard_that_never_finishes_ends_the_run_with_an_error_at_the_deadline():
    req = runs_pb2.RunRequested(run_id="r", spec=_spec(spec_pb2.Action(load=spec_pb2.LoadAction(cps=1))))
    emitted = []

    async def emit(m):
        emitted.append(m)

    async def emit_work(m, key):
        pass

    reader = FakeReader([[_call(0, "a"), media_pb2.LoadShardFinished(run_id="r", engine_id="a", shard=0, shards=2)]])
    summary = asyncio.run(coordinate_run(req, engine_id="a", shards=2, partitions=2, emit=emit,
                                         emit_work=emit_work, reader=reader, deadline_s=0.3))
    assert "shards [1] of 2 did not finish in time" in emitted[-1].error and summary.calls_attempted == 1
