"""The runs service records a fetch's calls of a run in one write, with its real event store: the
CallAnswered and CallProgress between them (heard for the run's lease, deciding nothing) do not
split the run of calls into a write per call."""

from __future__ import annotations

import uuid

import pytest

from callgauge_bus.codec import Delivered
from callgauge_eventstore.factory import open_event_store
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import envelope_pb2, media_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_runs.domain import project as project_model, run as run_model, test as test_model
from callgauge_runs.handlers.app import RunsApp, new_id, run_stream


def _delivered(msg) -> Delivered:
    return Delivered(envelope_pb2.EventEnvelope(event_id=str(uuid.uuid4()), type=msg.DESCRIPTOR.full_name), msg)


@pytest.fixture
async def app(tmp_path):
    store = open_event_store(f"sqlite:///{tmp_path}/", "runs")
    a = RunsApp(store)
    await a.start()
    yield a
    await a.stop()
    await store.close()


async def test_a_fetchs_calls_are_recorded_in_one_write_whatever_lies_between_them(app):
    pid, tid, rid = new_id(), new_id(), new_id()
    await app.create_project(project_model.CreateProject(project_id=pid, account_id="acct", name="P"))
    spec = spec_pb2.TestSpec()
    spec.steps.add().actions.add().call.dial_destination = "sip:echo@127.0.0.1:5070"
    await app.create_test(test_model.CreateTest(test_id=tid, project_id=pid, account_id="acct", name="t", spec=spec))
    await app.start_run(run_model.StartRun(run_id=rid, project_id=pid, test_id=tid, account_id="acct"))
    await app.on_media_event(_delivered(media_pb2.RunMediaStarted(run_id=rid, engine_id="e1")))

    batch = []
    for i in range(20):
        call_id = f"{rid}:0.0.{i}"
        batch += [_delivered(media_pb2.CallAnswered(run_id=rid, engine_id="e1", call_id=call_id)),
                  _delivered(media_pb2.CallProgress(run_id=rid, engine_id="e1", call_id=call_id, up_ms=1000)),
                  _delivered(media_pb2.CallMeasured(run_id=rid, engine_id="e1", call=m_pb2.CallMeasurement(
                      call_id=call_id, index=i, outcome=m_pb2.SUCCESS, sip_code=200, duration_ms=1000)))]
    writes: list[str] = []
    append = app.store.append_to_stream

    async def counted(stream, expected, events):
        writes.append(stream)
        return await append(stream, expected, events)

    app.store.append_to_stream = counted  # type: ignore[method-assign]
    await app.on_media_batch(batch)
    assert writes == [run_stream(rid)]  # the 20 calls in one append
    events = await app.store.read_stream(run_stream(rid))
    assert sum(e.type.endswith("CallRecorded") for e in events) == 20
