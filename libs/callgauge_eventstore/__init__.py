"""Callgauge event store: the port, its adapters and the outbox relay."""

from callgauge_eventstore.factory import AdapterNotBuilt, open_event_store
from callgauge_eventstore.port import (
    CALL_SORTS,
    CallQuery,
    CallRow,
    DuplicateEventId,
    EventStore,
    EventStoreError,
    NewEvent,
    RecordedEvent,
    StoreUnavailable,
    StreamState,
    WrongExpectedVersion,
)

__all__ = [
    "CALL_SORTS",
    "CallQuery",
    "CallRow",
    "AdapterNotBuilt",
    "DuplicateEventId",
    "EventStore",
    "EventStoreError",
    "NewEvent",
    "RecordedEvent",
    "StoreUnavailable",
    "StreamState",
    "WrongExpectedVersion",
    "open_event_store",
]
