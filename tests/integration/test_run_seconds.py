"""The runs service keeps the media engines' per-second statistics of a run (a projection per run
in its real event store) and answers them scoped by account and mode; a redelivered statistic
changes nothing."""

from __future__ import annotations

import uuid

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from callgauge_bus.codec import Delivered
from callgauge_proto.callgauge.events.v1 import envelope_pb2, media_pb2
from callgauge_runs.domain.errors import NotFound


def _delivered(msg) -> Delivered:
    return Delivered(envelope_pb2.EventEnvelope(event_id=str(uuid.uuid4()), type=msg.DESCRIPTOR.full_name), msg)


def _second(run_id: str, engine: str, second: int, active: int) -> media_pb2.RunSecondStats:
    at = Timestamp(seconds=1_800_000_000 + second)
    return media_pb2.RunSecondStats(run_id=run_id, engine_id=engine, second=second, at=at, active_calls=active,
                                    attempts=1, jitter_ms_mean=1.5)


async def test_seconds_are_kept_per_run_and_scoped(runs_app, start_a_run):
    app = runs_app
    rid = await start_a_run(app)
    other = await start_a_run(app)
    for msg in (_second(rid, "e1", 1, 3), _second(rid, "e1", 0, 2), _second(rid, "e2", 0, 1),
                _second(other, "e1", 0, 9)):
        await app.on_media_event(_delivered(msg))
    await app.on_media_event(_delivered(_second(rid, "e1", 0, 2)))  # redelivered: same row
    seconds = await app.run_seconds("acct", "live", rid)
    assert [(s.engine_id, s.second, s.active_calls) for s in seconds] == [("e1", 0, 2), ("e2", 0, 1), ("e1", 1, 3)]
    assert [s.active_calls for s in await app.run_seconds("acct", "live", other)] == [9]
    with pytest.raises(NotFound):
        await app.run_seconds("someone-else", "live", rid)
    with pytest.raises(NotFound):
        await app.run_seconds("acct", "test", rid)
    # a statistic for a run this service does not know is dropped, not kept
    await app.on_media_event(_delivered(_second(str(uuid.uuid4()), "e1", 0, 1)))
