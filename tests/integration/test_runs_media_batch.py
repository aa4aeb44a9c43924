"""The runs service records a fetch's calls of a run in one write, with its real event store: the
CallAnswered and CallProgress between them (heard for the run's lease, deciding nothing) do not
split the run of calls into a write per call."""

from __future__ import annotations

import uuid

from callgauge_bus.codec import Delivered
from callgauge_proto.callgauge.events.v1 import envelope_pb2, media_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_runs.handlers.app import run_stream


def _delivered(msg) -> Delivered:
    return Delivered(envelope_pb2.EventEnvelope(event_id=str(uuid.uuid4()), type=msg.DESCRIPTOR.full_name), msg)


async def test_a_fetchs_calls_are_recorded_in_one_write_whatever_lies_between_them(runs_app, start_a_run):
    app = runs_app
    rid = await start_a_run(app)
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
