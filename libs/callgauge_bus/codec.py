"""The event envelope: how a protobuf event becomes a stored event and a Kafka record, and back.

Stored events carry the envelope fields in their metadata; the relay turns a RecordedEvent into
an EventEnvelope; `envelope_for` builds one directly (tests, tools that publish without a store).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.message import DecodeError, Message
from uuid6 import uuid7

from callgauge_eventstore import NewEvent, RecordedEvent
from callgauge_platform.telemetry import current_traceparent
from callgauge_platform.timestamps import timestamp_of
from callgauge_proto.callgauge.events.v1 import accounts_pb2, billing_pb2, envelope_pb2, media_pb2, monitor_pb2, runs_pb2

SCHEMA_VERSION = 1

def registry_of(*modules) -> dict[str, type[Message]]:
    """Every message type of the given generated `_pb2` modules, by full protobuf name."""
    return {d.full_name: getattr(m, d.name) for m in modules for d in m.DESCRIPTOR.message_types_by_name.values()}


# Every event type of the v1 contract, by full protobuf name.
REGISTRY: dict[str, type[Message]] = registry_of(runs_pb2, media_pb2, billing_pb2, monitor_pb2, accounts_pb2)


def type_name(msg: Message) -> str:
    return msg.DESCRIPTOR.full_name


def new_event(
    msg: Message,
    correlation_id: str,
    causation_id: str = "",
    event_id: uuid.UUID | None = None,
    source: str = "",
) -> NewEvent:
    meta = {
        "schema_version": str(SCHEMA_VERSION),
        "correlation_id": correlation_id,
        "causation_id": causation_id,
        "traceparent": current_traceparent(),
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": source,
    }
    return NewEvent(type=type_name(msg), data=msg.SerializeToString(), metadata=meta, id=event_id or uuid7())


def decode_payload(type_: str, data: bytes, registry: dict[str, type[Message]] | None = None) -> Message | None:
    """The payload as its message, or None for a type this build does not know. `registry`: the
    types to know (default: the v1 contract's; a service's private events give their own, made
    with `registry_of`)."""
    cls = (REGISTRY if registry is None else registry).get(type_)
    if cls is None:
        return None
    msg = cls()
    msg.ParseFromString(data)
    return msg


def _occurred_at(iso: str | None) -> datetime:
    """When an event occurred, from its metadata's ISO text (now when it has none that parses)."""
    try:
        return datetime.fromisoformat(iso) if iso else datetime.now(UTC)
    except ValueError:
        return datetime.now(UTC)


def envelope_from_recorded(ev: RecordedEvent, source: str) -> envelope_pb2.EventEnvelope:
    m = ev.metadata
    return envelope_pb2.EventEnvelope(
        event_id=str(ev.id),
        type=ev.type,
        schema_version=int(m.get("schema_version", SCHEMA_VERSION) or SCHEMA_VERSION),
        stream_id=ev.stream,
        stream_version=ev.version,
        occurred_at=timestamp_of(_occurred_at(m.get("occurred_at") or ev.recorded_at.isoformat())),
        correlation_id=m.get("correlation_id", ""),
        causation_id=m.get("causation_id", ""),
        traceparent=m.get("traceparent", ""),
        payload=ev.data,
        source=m.get("source") or source,
    )


def envelope_for(
    msg: Message, stream_id: str, stream_version: int, correlation_id: str, causation_id: str, source: str
) -> envelope_pb2.EventEnvelope:
    return envelope_pb2.EventEnvelope(
        event_id=str(uuid7()),
        type=type_name(msg),
        schema_version=SCHEMA_VERSION,
        stream_id=stream_id,
        stream_version=stream_version,
        occurred_at=timestamp_of(datetime.now(UTC)),
        correlation_id=correlation_id,
        causation_id=causation_id,
        traceparent=current_traceparent(),
        payload=msg.SerializeToString(),
        source=source,
    )


@dataclass(frozen=True, slots=True)
class Delivered:
    envelope: envelope_pb2.EventEnvelope
    payload: Message | None  # None: unknown type (newer producer); consumers skip it

    @property
    def event_id(self) -> str:
        return self.envelope.event_id


class BadRecord(ValueError):
    """A Kafka record that is not a valid EventEnvelope."""


def decode_record(value: bytes | None) -> Delivered:
    if not value:
        raise BadRecord("empty record")
    env = envelope_pb2.EventEnvelope()
    try:
        env.ParseFromString(value)
        payload = decode_payload(env.type, env.payload)
    except DecodeError as exc:
        raise BadRecord(f"not an EventEnvelope: {exc}") from exc
    if not env.event_id or not env.type:
        raise BadRecord("envelope without event_id or type")
    return Delivered(env, payload)
