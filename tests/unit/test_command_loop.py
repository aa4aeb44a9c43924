"""The one command-handling loop (issue #19 item 1): callgauge_eventstore.aggregate.decide_and_append,
over the real SQLite adapter. A writer that appends between the loop's load and its append makes
the append fail with WrongExpectedVersion; the loop loads and decides again on the new state."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from callgauge_eventstore import NewEvent, StreamState, WrongExpectedVersion
from callgauge_eventstore.aggregate import decide_and_append, derived_id, load
from callgauge_eventstore.factory import open_event_store

STREAM = "counter-1"


def evolve(state, payload, _at):
    return (state or 0) + payload["n"]


def decode(_type, data):
    return json.loads(data)


def add(n: int, event_id: uuid.UUID | None = None) -> NewEvent:
    data = json.dumps({"n": n}).encode()
    return NewEvent(type="Added", data=data) if event_id is None else NewEvent(type="Added", data=data, id=event_id)


@pytest.fixture
async def store(tmp_path):
    s = open_event_store(f"sqlite:///{tmp_path}/", "loop")
    yield s
    await s.close()


class SecondWriterAfterFirstLoad:
    """The real store, with a second real writer appending to the stream right after the loop's
    first load: the interleaving of two replicas, made deterministic."""

    def __init__(self, real, event: NewEvent) -> None:
        self.real, self.event, self.loads = real, event, 0

    async def read_stream(self, stream, from_version=0):
        out = await self.real.read_stream(stream, from_version=from_version)
        self.loads += 1
        if self.loads == 1:
            await self.real.append_to_stream(stream, StreamState.ANY, [self.event])
        return out

    def __getattr__(self, name):
        return getattr(self.real, name)


async def test_a_write_in_between_is_decided_again_on_the_new_state(store):
    await store.append_to_stream(STREAM, StreamState.NO_STREAM, [add(5)])
    seen = []

    def decide(state):
        seen.append(state)
        return [add(1)]

    racing = SecondWriterAfterFirstLoad(store, add(10))
    state, version, events, position = await decide_and_append(racing, STREAM, evolve, decode, decide, backoff_s=0)
    assert seen == [5, 15]  # the first decision lost the race; the second saw the other write
    assert (state, version, len(events)) == (15, 1, 1) and position is not None
    assert await load(store, STREAM, evolve, decode) == (16, 2)


async def test_concurrent_writers_on_one_stream_all_land(store):
    await asyncio.wait_for(asyncio.gather(*(
        decide_and_append(store, STREAM, evolve, decode, lambda s: [add(1)], backoff_s=0) for _ in range(8))), 60)
    assert await load(store, STREAM, evolve, decode) == (8, 7)


async def test_it_gives_up_after_its_attempts_and_a_domain_error_ends_it_at_once(store):
    class AlwaysRaced(SecondWriterAfterFirstLoad):
        async def read_stream(self, stream, from_version=0):
            out = await self.real.read_stream(stream, from_version=from_version)
            await self.real.append_to_stream(stream, StreamState.ANY, [add(1)])
            return out

    decisions = []
    with pytest.raises(WrongExpectedVersion):
        await decide_and_append(AlwaysRaced(store, add(1)), STREAM, evolve, decode,
                                lambda s: decisions.append(s) or [add(100)], attempts=3, backoff_s=0)
    assert len(decisions) == 3
    assert await load(store, STREAM, evolve, decode) == (3, 2)  # only the other writer's events

    def refuse(_state):
        raise ValueError("the domain says no")

    with pytest.raises(ValueError):
        await decide_and_append(store, STREAM, evolve, decode, refuse)
    assert await store.stream_version(STREAM) == 2  # nothing written


async def test_nothing_decided_appends_nothing_and_derived_ids_make_a_repeat_a_no_op(store):
    assert (await decide_and_append(store, STREAM, evolve, decode, lambda s: []))[3] is None
    assert await store.stream_version(STREAM) is None
    assert derived_id("cmd-1", 0) == derived_id("cmd-1", 0) != derived_id("cmd-1", 1)
    for _ in range(2):  # the same command twice: the repeat appends the same id, a no-op
        await store.append_to_stream(STREAM, StreamState.ANY, [add(7, derived_id("cmd-1", 0))])
    assert await load(store, STREAM, evolve, decode) == (7, 0)
