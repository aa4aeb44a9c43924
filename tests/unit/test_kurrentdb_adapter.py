"""The KurrentDB adapter's pure parts, and its append/read logic over a small fake client.

The real server runs only in the contract suite (CALLGAUGE_TEST_KURRENTDB_URL).
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

pytest.importorskip("kurrentdbclient")

from callgauge_eventstore import (  # noqa: E402
    DuplicateEventId,
    EventStoreError,
    NewEvent,
    StreamState,
    WrongExpectedVersion,
)
from callgauge_eventstore._common import StoreClosed  # noqa: E402
from callgauge_eventstore.kurrentdb import (  # noqa: E402
    KurrentDBEventStore,
    checkpoint_stream_name,
    current_version_for,
    decode_metadata,
    encode_metadata,
    in_namespace,
    namespace_filter,
    stream_name,
    to_recorded,
    unprefixed,
    wrong_expected_version,
)
from kurrentdbclient import NewEvent as KNewEvent  # noqa: E402
from kurrentdbclient import StreamState as KStreamState  # noqa: E402
from kurrentdbclient.common import construct_filter_include_regex  # noqa: E402
from kurrentdbclient.events import RecordedEvent as KRecordedEvent  # noqa: E402
from kurrentdbclient.exceptions import NotFoundError, WrongCurrentVersionError  # noqa: E402

# -- names and the filter ------------------------------------------------------------------


def test_stream_names_are_prefixed_by_the_namespace() -> None:
    assert stream_name("runs", "run-42") == "runs-run-42"
    assert stream_name("media-engine", "call-1") == "media-engine-call-1"
    assert unprefixed("runs", "runs-run-42") == "run-42"
    assert unprefixed("media-engine", stream_name("media-engine", "a-b")) == "a-b"
    with pytest.raises(EventStoreError):
        unprefixed("runs", "billing-run-42")
    assert checkpoint_stream_name("runs", "relay") == "runs-$checkpoint-relay"


def test_the_filter_selects_the_namespace_streams_and_not_its_checkpoints() -> None:
    regex = construct_filter_include_regex([namespace_filter("runs")])  # as the client sends it
    assert regex == r"^runs-(?!\$checkpoint-)[\s\S]*$"
    matches = re.compile(regex).match
    assert matches("runs-run-42") and matches("runs-x") and matches("runs-a\nb")
    for other in ("billing-run-42", "runsx-1", "runs", "xruns-1", "$$runs-run-42", "$et-runs-x"):
        assert not matches(other), other
    assert not matches(checkpoint_stream_name("runs", "relay"))
    assert in_namespace("runs", "runs-run-42") and not in_namespace("runs", "runs-$checkpoint-relay")
    assert not in_namespace("billing", "runs-run-42")
    with pytest.raises(EventStoreError):
        namespace_filter("Runs.*")  # only validated namespaces reach a regular expression


# -- metadata --------------------------------------------------------------------------------


def test_metadata_is_compact_sorted_json_and_round_trips() -> None:
    meta = {"traceparent": "00-ab-cd-01", "correlation_id": "c", "unicode": "呼叫 ☎", "": "", "q": '"\n'}
    raw = encode_metadata(meta)
    assert isinstance(raw, bytes)
    assert raw.startswith(b'{"":"","correlation_id":"c"')  # sorted keys, no spaces
    assert "呼叫".encode() in raw  # UTF-8, not \\u escapes
    assert decode_metadata(raw) == meta
    assert encode_metadata({}) == b"{}" and decode_metadata(b"{}") == {}


def test_foreign_metadata_decodes_to_something_safe() -> None:
    assert decode_metadata(b"") == {}
    assert decode_metadata(b"not json") == {}
    assert decode_metadata(b"\xff\xfe") == {}
    assert decode_metadata(b"[1, 2]") == {}
    assert decode_metadata(b'{"n": 1, "s": "x"}') == {"n": "1", "s": "x"}


# -- versions and errors ---------------------------------------------------------------------


def test_expected_versions_map_to_the_client_stream_states() -> None:
    assert current_version_for(StreamState.NO_STREAM) is KStreamState.NO_STREAM
    assert current_version_for(StreamState.ANY) is KStreamState.ANY
    assert current_version_for(-1) is KStreamState.NO_STREAM and current_version_for(-2) is KStreamState.ANY
    assert current_version_for(0) == 0 and current_version_for(7) == 7
    with pytest.raises(ValueError):
        current_version_for(-3)


def test_wrong_current_version_maps_to_wrong_expected_version() -> None:
    e = WrongCurrentVersionError(
        "Stream position of last event is 1 not 0",
        stream_name="runs-s-1",
        actual_version=1,
        expected_version=0,
    )
    mapped = wrong_expected_version(e, "s-1", 0)
    assert isinstance(mapped, WrongExpectedVersion) and isinstance(mapped, EventStoreError)
    assert (mapped.stream, mapped.expected, mapped.actual) == ("s-1", 0, 1)  # OUR stream name
    assert mapped.__cause__ is e

    missing = WrongCurrentVersionError(
        "Stream 'runs-s-2' does not exist",
        stream_name="runs-s-2",
        actual_version=KStreamState.NO_STREAM,
        expected_version=3,
    )
    gone = wrong_expected_version(missing, "s-2", 3)
    assert (gone.actual, str(gone)) == (None, "stream 's-2': expected version 3, found no stream")
    # the client's int form of NO_STREAM (-1), as parsed from an RPC error, is NO_STREAM too
    as_int = WrongCurrentVersionError("x", stream_name="runs-s", actual_version=-1, expected_version=-1)
    got = wrong_expected_version(as_int, "s", StreamState.NO_STREAM)
    assert (got.expected, got.actual) == (StreamState.NO_STREAM, None)


def test_recorded_events_convert_with_our_stream_name_and_commit_position() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    k = _krecorded("runs-run-1", 3, 1234567, b'{"a":"b"}', when=when)
    got = to_recorded("runs", k)
    assert (got.stream, got.version, got.position, got.recorded_at) == ("run-1", 3, 1234567, when)
    assert got.metadata == {"a": "b"} and got.id == k.id and type(got.data) is bytes


# -- construction ------------------------------------------------------------------------------


async def test_construction_connects_nothing_and_close_is_idempotent() -> None:
    store = KurrentDBEventStore("kurrentdb://127.0.0.1:1?tls=false", "runs")
    assert store._client is None
    await store.close()
    await store.close()
    with pytest.raises(StoreClosed):
        await store.stream_version("s")


# -- the adapter logic over a fake client --------------------------------------------------------


def _krecorded(
    stream: str,
    version: int,
    position: int,
    metadata: bytes = b"{}",
    *,
    when: datetime | None = None,
    **kw: Any,
) -> KRecordedEvent:
    return KRecordedEvent(
        type=kw.get("type", "t"),
        data=kw.get("data", b"d"),
        metadata=metadata,
        content_type="application/octet-stream",
        id=kw.get("id", uuid.uuid4()),
        stream_name=stream,
        stream_position=version,
        commit_position=position,
        prepare_position=position,
        recorded_at=when or datetime.now(UTC),
    )


class _Response:
    def __init__(self, events: list[KRecordedEvent]) -> None:
        self._events = events

    async def __aenter__(self) -> _Response:
        return self

    async def __aexit__(self, *a: object) -> None:
        return None

    def __aiter__(self) -> Any:
        async def gen() -> Any:
            for e in self._events:
                yield e

        return gen()


class FakeClient:
    """Just enough of KurrentDB: sparse commit positions, inclusive read_all, idempotent repeats
    only at the same expected version (as the server does)."""

    def __init__(self) -> None:
        self.log: list[KRecordedEvent] = []
        self.appends = 0
        self._next = 100

    def _stream(self, name: str) -> list[KRecordedEvent]:
        return [e for e in self.log if e.stream_name == name]

    async def get_stream(
        self,
        name: str,
        *,
        stream_position: int | None = None,
        backwards: bool = False,
        limit: int = sys.maxsize,
    ) -> tuple[KRecordedEvent, ...]:
        events = self._stream(name)
        if not events:
            raise NotFoundError(name)
        events = [e for e in events if e.stream_position >= (stream_position or 0)]
        return tuple((events[::-1] if backwards else events)[:limit])

    async def get_current_version(self, name: str) -> int | KStreamState:
        events = self._stream(name)
        return events[-1].stream_position if events else KStreamState.NO_STREAM

    async def append_to_stream(self, name: str, *, current_version: Any, events: Any) -> int:
        self.appends += 1
        existing = self._stream(name)
        actual = existing[-1].stream_position if existing else None
        ok = (
            current_version is KStreamState.ANY
            or (current_version is KStreamState.NO_STREAM and actual is None)
            or (isinstance(current_version, int) and current_version == actual)
        )
        if not ok:
            raise WrongCurrentVersionError(
                "wrong",
                stream_name=name,
                actual_version=KStreamState.NO_STREAM if actual is None else actual,
                expected_version=current_version,
            )
        first = 0 if actual is None else actual + 1
        for n, ev in enumerate(events):
            self._next += 37  # not dense
            self.log.append(
                _krecorded(name, first + n, self._next, ev.metadata, id=ev.id, type=ev.type, data=ev.data)
            )
        return self._next

    async def read_all(
        self, *, commit_position: int | None, filter_include: Any, filter_by_stream_name: bool, limit: int
    ) -> _Response:
        assert filter_by_stream_name
        regex = re.compile(construct_filter_include_regex(filter_include))
        start = commit_position or 0
        events = [e for e in self.log if e.commit_position >= start and regex.match(e.stream_name)]
        return _Response(events[:limit])

    async def get_commit_position(self, *, filter_include: Any, filter_by_stream_name: bool) -> int:
        regex = re.compile(construct_filter_include_regex(filter_include))
        events = [e for e in self.log if regex.match(e.stream_name)]
        return events[-1].commit_position if events else 0


@pytest.fixture
def fake() -> tuple[KurrentDBEventStore, FakeClient]:
    store = KurrentDBEventStore("kurrentdb://127.0.0.1:1?tls=false", "runs")
    client = FakeClient()
    store._client = client  # type: ignore[assignment]
    return store, client


def _ev(n: int, **meta: str) -> NewEvent:
    return NewEvent(type="callgauge.events.v1.T", data=f"p{n}".encode(), metadata=meta)


async def test_append_read_and_versions_over_the_fake(fake: tuple[KurrentDBEventStore, FakeClient]) -> None:
    store, client = fake
    assert await store.stream_version("s") is None
    assert await store.read_stream("s") == []
    p1 = await store.append_to_stream("s", StreamState.NO_STREAM, [_ev(0, trace="x"), _ev(1)])
    assert client.log[0].stream_name == "runs-s" and json.loads(client.log[0].metadata) == {"trace": "x"}
    assert client.log[0].content_type == "application/octet-stream"
    p2 = await store.append_to_stream("s", 1, [_ev(2)])
    assert p2 > p1 and await store.stream_version("s") == 2
    got = await store.read_stream("s")
    assert [(e.stream, e.version, e.data) for e in got] == [("s", i, f"p{i}".encode()) for i in range(3)]
    assert got[0].metadata == {"trace": "x"}
    assert [e.version for e in await store.read_stream("s", from_version=1, limit=1)] == [1]
    assert await store.read_stream("s", limit=0) == []

    with pytest.raises(WrongExpectedVersion) as e:
        await store.append_to_stream("s", 0, [_ev(9)])
    assert (e.value.stream, e.value.expected, e.value.actual) == ("s", 0, 2)
    with pytest.raises(WrongExpectedVersion) as e:
        await store.append_to_stream("missing", 4, [_ev(9)])
    assert (e.value.stream, e.value.expected, e.value.actual) == ("missing", 4, None)


async def test_idempotent_repeats_hold_our_rule_not_just_kurrentdbs(
    fake: tuple[KurrentDBEventStore, FakeClient],
) -> None:
    store, client = fake
    batch = [_ev(0), _ev(1), _ev(2)]
    p = await store.append_to_stream("s", StreamState.NO_STREAM, batch)
    appends = client.appends
    for expected in (StreamState.NO_STREAM, 0, 2, StreamState.ANY):  # any expected version
        assert await store.append_to_stream("s", expected, batch) == p
    assert client.appends == appends  # nothing sent
    assert await store.append_to_stream("s", 0, batch[:1]) == client.log[0].commit_position
    with pytest.raises(DuplicateEventId):  # some recorded, some new
        await store.append_to_stream("s", 2, [batch[2], _ev(3)])
    assert len(client.log) == 3


async def test_a_conflict_whose_events_are_recorded_is_a_success(
    fake: tuple[KurrentDBEventStore, FakeClient],
) -> None:
    store, client = fake
    batch = [_ev(0)]
    calls = 0
    real = store._idempotent_repeat

    async def racing(name: str, stream: str, events: Any) -> int | None:
        # the first check sees nothing; meanwhile "our earlier attempt" commits the batch
        nonlocal calls
        calls += 1
        if calls == 1:
            first = KNewEvent(type="t", data=b"p0", metadata=b"{}", id=batch[0].id)
            await client.append_to_stream(name, current_version=KStreamState.ANY, events=[first])
            return None
        return await real(name, stream, events)

    store._idempotent_repeat = racing  # type: ignore[method-assign]
    assert await store.append_to_stream("s", StreamState.NO_STREAM, batch) == client.log[0].commit_position
    assert len(client.log) == 1


async def test_read_all_is_exclusive_filtered_and_paged(fake: tuple[KurrentDBEventStore, FakeClient]) -> None:
    store, client = fake
    assert await store.last_position() == 0 and await store.read_all() == []
    await store.append_to_stream("a", StreamState.NO_STREAM, [_ev(0), _ev(1)])
    await client.append_to_stream("billing-x", current_version=KStreamState.ANY, events=[_ev(7)])
    await client.append_to_stream(
        checkpoint_stream_name("runs", "relay"), current_version=KStreamState.ANY, events=[_ev(8)]
    )
    await store.append_to_stream("b", StreamState.NO_STREAM, [_ev(2), _ev(3), _ev(4)])
    everything = await store.read_all()
    assert [(e.stream, e.version) for e in everything] == [("a", 0), ("a", 1), ("b", 0), ("b", 1), ("b", 2)]
    positions = [e.position for e in everything]
    assert positions == sorted(set(positions)) and positions != list(range(1, 6))  # ordered, not dense
    assert await store.last_position() == positions[-1]
    assert await store.read_all(after_position=positions[1]) == everything[2:]
    assert await store.read_all(after_position=positions[1], limit=2) == everything[2:4]
    assert await store.read_all(after_position=positions[-1]) == []
    pages, cursor = [], 0
    while page := await store.read_all(after_position=cursor, limit=2):
        pages.append(page)
        cursor = page[-1].position
    assert [len(p) for p in pages] == [2, 2, 1]
    with pytest.raises(ValueError):
        await store.read_all(limit=0)


async def test_checkpoints_last_event_wins(fake: tuple[KurrentDBEventStore, FakeClient]) -> None:
    store, client = fake
    assert await store.get_checkpoint("relay") == 0
    await store.set_checkpoint("relay", 42)
    await store.set_checkpoint("relay", 43)
    await store.set_checkpoint("projector", 7)
    assert (await store.get_checkpoint("relay"), await store.get_checkpoint("projector")) == (43, 7)
    assert {e.stream_name for e in client.log} == {"runs-$checkpoint-relay", "runs-$checkpoint-projector"}
    assert await store.read_all() == []  # checkpoints are not events of the namespace
