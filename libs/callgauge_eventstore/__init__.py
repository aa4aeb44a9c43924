"""Callgauge event store: the port and its adapters. The outbox relay that publishes the store's
log to Kafka joins the store and the bus, so it is its own library above both: `callgauge_relay`."""

from callgauge_eventstore.factory import AdapterNotBuilt, open_event_store
from callgauge_eventstore.position import PositionWaiter
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
    "PositionWaiter",
    "RecordedEvent",
    "StoreUnavailable",
    "StreamState",
    "WrongExpectedVersion",
    "open_event_store",
]
