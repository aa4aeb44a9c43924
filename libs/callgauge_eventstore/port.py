"""The EventStore port, modelled on kurrentdbclient.

Streams hold events at versions 0, 1, 2, ...; the global log orders every event of
every stream by a commit position (1, 2, 3, ... in commit order, so a reader that
has seen position p never later meets an event with a position <= p).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from uuid6 import uuid7


class StreamState(enum.IntEnum):
    """Special expected versions for append_to_stream."""

    NO_STREAM = -1  # the stream must not exist yet
    ANY = -2  # no check


@dataclass(frozen=True, slots=True)
class NewEvent:
    type: str  # the payload's full protobuf name, e.g. callgauge.events.v1.RunRequested
    data: bytes  # the serialized payload
    metadata: Mapping[str, str] = field(default_factory=dict)  # correlation_id, causation_id, traceparent, ...
    id: uuid.UUID = field(default_factory=uuid7)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    id: uuid.UUID
    type: str
    data: bytes
    metadata: Mapping[str, str]
    stream: str
    version: int  # 0-based position in its stream
    position: int  # global commit position, >= 1
    recorded_at: datetime  # UTC


class EventStoreError(Exception):
    pass


class StoreUnavailable(EventStoreError):
    """The store cannot take the request now (disk full, I/O error, server down); a retry later may
    succeed. Services answer it with gRPC UNAVAILABLE (HTTP 503), never INTERNAL."""


class WrongExpectedVersion(EventStoreError):
    def __init__(self, stream: str, expected: int, actual: int | None) -> None:
        self.stream, self.expected, self.actual = stream, expected, actual
        shown = "no stream" if actual is None else f"version {actual}"
        super().__init__(f"stream {stream!r}: expected version {expected}, found {shown}")


class DuplicateEventId(EventStoreError):
    """An event id that is already recorded, appended in a way that is not an idempotent repeat."""


UNMEASURED = 1e18  # the sort key of a call without that measurement: it sorts as the largest


@dataclass(frozen=True, slots=True)
class CallRow:
    """One call of a run in the calls projection: the columns a page is filtered and sorted on,
    and the measurement itself (serialized). `setup_ms`/`mos` are None when not measured."""
    run_id: str
    call_id: str
    index: int
    outcome: str
    sip_code: int
    setup_ms: float | None
    mos: float | None
    data: bytes


CALL_SORTS = ("index", "setup_ms", "mos")


@dataclass(frozen=True, slots=True)
class CallQuery:
    """A page of a run's calls. `sort`: one of CALL_SORTS, "-" in front for descending; `after`:
    the (sort key, index, call id) of the previous page's last call (keyset: a page never moves
    when calls are added)."""
    run_id: str
    outcomes: tuple[str, ...] = ()
    sip_codes: tuple[int, ...] = ()
    mos_min: float | None = None
    mos_max: float | None = None
    sort: str = "index"
    after: tuple[float, int, str] | None = None
    limit: int = 100


@runtime_checkable
class EventStore(Protocol):
    async def append_to_stream(
        self, stream: str, current_version: int, events: Sequence[NewEvent]
    ) -> int:
        """Append atomically; return the commit position of the last event.

        current_version is the version of the stream's last event, or StreamState.NO_STREAM /
        StreamState.ANY. Raises WrongExpectedVersion on a mismatch. Re-appending events whose
        ids are all already recorded in this stream succeeds without writing (idempotent) and
        returns the position of the last of them.
        """

    async def read_stream(self, stream: str, from_version: int = 0, limit: int | None = None) -> list[RecordedEvent]:
        """Events of one stream from from_version on, in version order; [] for an unknown stream."""

    async def stream_version(self, stream: str) -> int | None:
        """The version of the stream's last event, or None when the stream does not exist."""

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        """Events with a commit position > after_position, in commit order."""

    async def last_position(self) -> int:
        """The highest commit position recorded (0 for an empty store)."""

    def subscribe_all(self, after_position: int = 0, poll_interval: float = 0.05) -> AsyncIterator[RecordedEvent]:
        """Catch up from after_position, then follow new events as they commit; never ends by itself."""

    async def get_checkpoint(self, name: str) -> int:
        """A tracking record: the position a named reader has processed (0 when none)."""

    async def set_checkpoint(self, name: str, position: int) -> None: ...

    async def read_projection(self, name: str) -> tuple[dict[str, bytes], int]:
        """A read model's rows (key -> value) and the position it reflects (0 when none)."""

    async def commit_projection(
        self, name: str, position: int, upserts: Mapping[str, bytes], deletes: Sequence[str] = (),
        replace: bool = False,
    ) -> None:
        """Change a read model's rows and move its tracking record to `position` in ONE transaction,
        so after a crash the rows and the checkpoint always agree. `replace` drops every other row
        first (a rebuild)."""

    async def commit_calls(self, name: str, position: int, rows: Sequence[CallRow]) -> None:
        """Add calls to the calls projection (a call already there, by (run id, call id), is kept
        as it is) and move the tracking record `name` to `position`, in ONE transaction: a failed
        batch changes nothing."""

    async def read_calls(self, query: CallQuery) -> list[tuple[tuple[float, int, str], bytes]]:
        """One page: (keyset key, serialized measurement) per call, in the query's order."""

    async def count_calls(self, query: CallQuery) -> int:
        """How many calls of the run match the query's filters (its cursor and limit ignored)."""

    async def close(self) -> None: ...
