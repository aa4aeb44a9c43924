"""Loading a decider's state from its stream and appending what it decided, with the stream's
version as the optimistic-concurrency check."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from callgauge_eventstore.port import EventStore, NewEvent, StreamState

S = TypeVar("S")
Decode = Callable[[str, bytes], Any]
Evolve = Callable[[S | None, Any, datetime | None], S | None]


async def load(store: EventStore, stream: str, evolve: Evolve, decode: Decode) -> tuple[S | None, int]:
    """(state, version): the folded state of a stream and the version of its last event
    (StreamState.NO_STREAM when it has none). Events of unknown types are skipped."""
    state: S | None = None
    version = int(StreamState.NO_STREAM)
    for ev in await store.read_stream(stream):
        payload = decode(ev.type, ev.data)
        if payload is not None:
            state = evolve(state, payload, ev.recorded_at)
        version = ev.version
    return state, version


async def save(store: EventStore, stream: str, version: int, events: Sequence[NewEvent]) -> int:
    """Append at the loaded version; WrongExpectedVersion when someone else wrote in between."""
    if not events:
        return await store.last_position()
    return await store.append_to_stream(stream, version, events)
