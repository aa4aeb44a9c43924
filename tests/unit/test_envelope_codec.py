import uuid
from datetime import UTC, datetime

import pytest

from callgauge_bus.codec import BadRecord, decode_record, envelope_from_recorded, new_event
from callgauge_eventstore import RecordedEvent
from callgauge_proto.callgauge.events.v1 import envelope_pb2, runs_pb2


def test_stored_event_round_trips_through_the_envelope():
    msg = runs_pb2.RunQueued(run_id="r1", engine_id="e1", planned_calls=3)
    new = new_event(msg, correlation_id="r1", causation_id="c1", source="runs")
    rec = RecordedEvent(id=new.id, type=new.type, data=new.data, metadata=new.metadata, stream="run-r1",
                        version=4, position=17, recorded_at=datetime.now(UTC))
    env = envelope_from_recorded(rec, "runs")
    delivered = decode_record(env.SerializeToString())
    assert delivered.payload == msg
    e = delivered.envelope
    assert (e.event_id, e.type, e.stream_id, e.stream_version) == (str(new.id), "callgauge.events.v1.RunQueued",
                                                                   "run-r1", 4)
    assert (e.correlation_id, e.causation_id, e.schema_version, e.source) == ("r1", "c1", 1, "runs")


@pytest.mark.parametrize("value", [None, b"", b"\xff\xff\xff", envelope_pb2.EventEnvelope(type="x").SerializeToString()])
def test_garbage_is_a_bad_record_not_a_crash(value):
    with pytest.raises(BadRecord):
        decode_record(value)


def test_unknown_type_decodes_with_no_payload():
    env = envelope_pb2.EventEnvelope(event_id=str(uuid.uuid4()), type="callgauge.events.v1.FromTheFuture")
    assert decode_record(env.SerializeToString()).payload is None


def test_a_services_private_events_decode_through_the_codec():
    """Issue #19 item 2: accounts decodes its private events with callgauge_bus.codec (registry_of +
    decode_payload), not its own copy of the decoding."""
    import inspect

    from callgauge_accounts.handlers import app as accounts_app
    from callgauge_bus.codec import decode_payload, registry_of
    from callgauge_proto.callgauge.accounts.v1 import events_pb2 as accounts_ev

    registry = registry_of(accounts_ev)
    used = accounts_ev.ApiKeyUsed(key_id="k1")
    assert decode_payload(used.DESCRIPTOR.full_name, used.SerializeToString(), registry) == used
    assert decode_payload(used.DESCRIPTOR.full_name, used.SerializeToString()) is None  # not a v1 contract event
    assert accounts_app.decode(used.DESCRIPTOR.full_name, used.SerializeToString()) == used
    assert "ParseFromString" not in inspect.getsource(accounts_app)
