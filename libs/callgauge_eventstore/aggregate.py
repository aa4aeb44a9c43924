"""Loading a decider's state from its stream and appending what it decided, with the stream's
version as the optimistic-concurrency check; `decide_and_append` is the one command-handling loop
of every service (load, decide, append; on WrongExpectedVersion decide again on the new state)."""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from callgauge_eventstore.port import EventStore, NewEvent, StreamState, WrongExpectedVersion

S = TypeVar("S")

MAX_ATTEMPTS = 50  # loads and decisions of one command before a write conflict is given up
RETRY_BACKOFF_S = 0.002  # times the attempt number
# the namespace of derived event ids (kept from billing, whose repeats must keep matching)
EVENT_ID_NS = uuid.UUID("0b7f3c52-7d1e-4b9a-9c11-2f6a0d9e8b14")
Decode = Callable[[str, bytes], Any]
Evolve = Callable[[S | None, Any, datetime | None], S | None]


class StateCache:
    """Folded states of recently loaded streams (an in-memory snapshot per stream), so that loading
    a long stream again reads only the events appended since: a run that records thousands of calls
    is otherwise re-read and re-folded from its first event for every one of them.

    Only for deciders whose ``evolve`` returns new values and never mutates the state it is given
    (frozen dataclasses): a cached state is shared by every later load. What is cached was folded
    from committed events only, so it is never ahead of the store; events appended by anyone else
    are read on the next load. Bounded: the least recently used streams are forgotten."""

    def __init__(self, max_streams: int = 1024, max_weight: int | None = None,
                 weight: Callable[[object], int] | None = None) -> None:
        """At most ``max_streams`` states and, with ``weight`` (a state's size, e.g. its number of
        calls), at most ``max_weight`` in all (the most recently used state is always kept)."""
        self.max_streams = max_streams
        self.max_weight = max_weight
        self._weight = weight
        # (stream, evolve) -> (state, version, weight, commit position of the stream's last event)
        self._states: OrderedDict[tuple[str, Evolve], tuple[object, int, int, int]] = OrderedDict()
        self.total_weight = 0
        self.hits = 0
        self.misses = 0

    def get(self, stream: str, evolve: Evolve) -> tuple[object, int] | None:
        hit = self._get(stream, evolve)
        return None if hit is None else (hit[0], hit[1])

    def _get(self, stream: str, evolve: Evolve) -> tuple[object, int, int] | None:
        """(state, version, position of the stream's last event folded) or None."""
        hit = self._states.get((stream, evolve))
        if hit is None:
            self.misses += 1
            return None
        self.hits += 1
        self._states.move_to_end((stream, evolve))
        return hit[0], hit[1], hit[3]

    def put(self, stream: str, evolve: Evolve, state: object, version: int, position: int = 0) -> None:
        key = (stream, evolve)
        old = self._states.get(key)
        if old is not None and old[1] > version:
            return  # a concurrent load got further
        w = self._weight(state) if self._weight is not None else 1
        self.total_weight += w - (old[2] if old is not None else 0)
        self._states[key] = (state, version, w, position)
        self._states.move_to_end(key)
        while len(self._states) > 1 and (
                len(self._states) > self.max_streams
                or (self.max_weight is not None and self.total_weight > self.max_weight)):
            _, (_, _, gone, _) = self._states.popitem(last=False)
            self.total_weight -= gone

    def forget(self, stream: str, evolve: Evolve) -> None:
        gone = self._states.pop((stream, evolve), None)
        if gone is not None:
            self.total_weight -= gone[2]

    def __len__(self) -> int:
        return len(self._states)


async def load(store: EventStore, stream: str, evolve: Evolve, decode: Decode,
               cache: StateCache | None = None) -> tuple[S | None, int]:
    """(state, version): the folded state of a stream and the version of its last event
    (StreamState.NO_STREAM when it has none). Events of unknown types are skipped. With a
    ``cache``, only the events after the cached version are read and folded."""
    state, version, _ = await _load(store, stream, evolve, decode, cache)
    return state, version


async def _load(store: EventStore, stream: str, evolve: Evolve, decode: Decode,
                cache: StateCache | None) -> tuple[Any, int, int]:
    """load, and the commit position of the stream's last event (0 when it has none)."""
    state: Any = None
    version, position = int(StreamState.NO_STREAM), 0
    if cache is not None and (hit := cache._get(stream, evolve)) is not None:
        state, version, position = hit
    for ev in await store.read_stream(stream, from_version=version + 1):
        payload = decode(ev.type, ev.data)
        if payload is not None:
            state = evolve(state, payload, ev.recorded_at)
        version, position = ev.version, ev.position
    if cache is not None and version >= 0:
        cache.put(stream, evolve, state, version, position)
    return state, version, position


def derived_id(source: str, i: int | str, namespace: uuid.UUID = EVENT_ID_NS) -> uuid.UUID:
    """The deterministic id of the i-th event decided for `source` (a command, a delivered event):
    a repeat of the same source appends the same ids, which the store takes as a no-op
    (idempotent), and a retry after a conflict does not mint new ones. `i` may name the event
    instead of counting it; `namespace`: a service's own, where its ids were minted in it before."""
    return uuid.uuid5(namespace, f"{source}:{i}")


async def decide_and_append(store: EventStore, stream: str, evolve: Evolve, decode: Decode,
                            decide: Callable[[Any], Sequence[NewEvent]], *,
                            cache: StateCache | None = None, attempts: int = MAX_ATTEMPTS,
                            backoff_s: float = RETRY_BACKOFF_S,
                            fold_appended: bool | Callable[[Any, list[NewEvent]], Any] = False,
                            ) -> tuple[Any, int, list[NewEvent], int | None]:
    """The command-handling loop: load the stream's state, `decide(state)` the new events (give
    them `derived_id`s for idempotent repeats), append them at the loaded version. When another
    writer appended in between (WrongExpectedVersion), load and decide again on the new state, up
    to `attempts` times (then the last WrongExpectedVersion is raised); a domain error raised by
    `decide` ends the loop at once. Returns (state the decision was made on, its version, the
    appended events, the position of the last one or None when nothing was decided).

    ``fold_appended`` (with a ``cache``): the appended events are folded into the cached state at
    once, so the next load (a query's, or the next command's) reads and folds nothing of them; only
    for events whose evolve does not read their recording time (it is not known here: None is
    passed). Only what the append wrote is folded: a repeat of events already in the stream (an
    idempotent append, e.g. a redelivered batch) returns the position of one of them, at most the
    position of the stream's last event the decision was made on, where a write gets a higher one.
    A callable ``fold_appended(state, events)`` folds them itself (e.g. a batch at once, from the
    messages it decided rather than from their bytes) and returns the new state."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(attempts):
        state, version, last_position = await _load(store, stream, evolve, decode, cache)
        events = list(decide(state))
        if not events:
            return state, version, events, None
        try:
            position = await store.append_to_stream(stream, version, events)
        except WrongExpectedVersion:
            if attempt + 1 >= attempts:
                raise
            await asyncio.sleep(backoff_s * (attempt + 1))
            continue
        if fold_appended and cache is not None and position > last_position:
            if callable(fold_appended):
                folded = fold_appended(state, events)
            else:
                folded = state
                for ev in events:
                    payload = decode(ev.type, ev.data)
                    if payload is not None:
                        folded = evolve(folded, payload, None)
            cache.put(stream, evolve, folded, version + len(events), position)
        return state, version, events, position
    raise AssertionError("unreachable")
