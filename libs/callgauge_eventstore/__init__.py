"""Callgauge event store: the port, its adapters and the outbox relay."""

from callgauge_eventstore.port import (
    DuplicateEventId,
    EventStore,
    EventStoreError,
    NewEvent,
    RecordedEvent,
    StreamState,
    WrongExpectedVersion,
)

__all__ = [
    "DuplicateEventId",
    "EventStore",
    "EventStoreError",
    "NewEvent",
    "RecordedEvent",
    "StreamState",
    "WrongExpectedVersion",
]
