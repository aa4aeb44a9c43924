"""The KurrentDB / EventStoreDB event store adapter (``kurrentdbclient``, asyncio client).

Install with the ``kurrentdb`` extra (``pip install -e '.[kurrentdb]'``). Nothing connects
at import or construction: the gRPC client is made on the first operation and closed by
``close()``. Each store instance has its own client (its own channel).

Naming
------
Several services share one server, so every stream name is prefixed with the namespace:
our stream ``run-42`` of namespace ``runs`` is the KurrentDB stream ``runs-run-42``
(see ``stream_name()``). ``read_all``/``last_position``/``subscribe_all`` see only the
streams of this namespace, through a server-side regular expression on stream names
(``namespace_filter()``). Caveat: namespaces may contain ``-``, so a namespace followed by
``-`` must not be the beginning of another namespace's name (``media`` would see the
streams of ``media-engine``); the service namespaces (``runs``, ``billing``,
``media-engine``) satisfy this.

Checkpoints are the stream ``{namespace}-$checkpoint-{name}``: each ``set_checkpoint``
appends an event ``{"position": n}`` (JSON) and the last event wins. The namespace filter
excludes these streams, so checkpoints never appear in ``read_all``. Old checkpoint events
are kept; set ``$maxCount`` in that stream's metadata if their number matters.

Events: ``type`` and ``data`` as given (content type ``application/octet-stream``: our data
is serialized protobuf), ``metadata`` as compact JSON bytes (``encode_metadata()``), ``id``
as the KurrentDB event id.

Positions
---------
``RecordedEvent.position`` is KurrentDB's commit position. It increases in commit order and
each event has its own, but the positions are NOT dense (not 1, 2, 3, ...: they are byte
offsets in the transaction log, with large jumps and including other namespaces' events).
``after_position`` arguments must be 0 or a position this store returned (KurrentDB can only
start reading at an existing commit position).

Idempotency
-----------
KurrentDB itself is idempotent by event id only for a repeat with the same expected version
(or, with ``ANY``, while the ids are in the server's id cache); a repeat with another expected
version fails with a version conflict, and a batch mixing recorded and new ids can record
duplicates. To hold the port's rule, ``append_to_stream`` first reads the ids of the target
stream (one read per append, proportional to the stream's length: our streams are per
aggregate and short): all ids already there -> success without writing, returning the
highest of their positions; some -> DuplicateEventId. A version conflict from the server is
re-checked the same way (a retried append whose first attempt did commit). Difference from
the SQL adapters: KurrentDB has no index of event ids across streams, so an id already
recorded in ANOTHER stream is not detected (it is recorded again).

Subscriptions are KurrentDB catch-up subscriptions (pushed by the server, filtered by the
same regular expression), so ``poll_interval`` is not used.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from datetime import UTC, datetime
from kurrentdbclient import AsyncKurrentDBClient
from kurrentdbclient import NewEvent as KNewEvent
from kurrentdbclient import StreamState as KStreamState
from kurrentdbclient.connection_spec import ConnectionSpec
from kurrentdbclient.events import RecordedEvent as KRecordedEvent
from kurrentdbclient.exceptions import NotFoundError, StreamIsDeletedError, WrongCurrentVersionError

from callgauge_eventstore._common import (
    AsyncContextStore,
    StoreClosed,
    check_append_args,
    check_namespace,
    dump_metadata,
    idempotent_position,
)
from callgauge_eventstore.port import (
    EventStoreError,
    NewEvent,
    RecordedEvent,
    StreamState,
    WrongExpectedVersion,
)

CHECKPOINT_INFIX = "$checkpoint-"
CHECKPOINT_EVENT_TYPE = "callgauge.eventstore.Checkpoint"
DATA_CONTENT_TYPE = "application/octet-stream"
_EPOCH = datetime.fromtimestamp(0, UTC)


# -- the pure parts (unit-tested without a server) -------------------------------------------


def stream_name(namespace: str, stream: str) -> str:
    """The KurrentDB stream holding our ``stream`` of ``namespace``."""
    return f"{namespace}-{stream}"


def checkpoint_stream_name(namespace: str, name: str) -> str:
    return f"{namespace}-{CHECKPOINT_INFIX}{name}"


def unprefixed(namespace: str, kurrent_stream: str) -> str:
    """Our stream name from a KurrentDB stream name of ``namespace``."""
    prefix = f"{namespace}-"
    if not kurrent_stream.startswith(prefix):
        raise EventStoreError(f"stream {kurrent_stream!r} is not in namespace {namespace!r}")
    return kurrent_stream[len(prefix) :]


def namespace_filter(namespace: str) -> str:
    """The stream-name regular expression (``filter_include``) for the streams of ``namespace``.

    kurrentdbclient anchors it as ``^(...)$``; the checkpoint streams are excluded. Valid in
    .NET (the server) and Python regular expression syntax.
    """
    check_namespace(namespace)  # [a-z0-9_-] only: nothing in it needs escaping
    return namespace + r"-(?!\$checkpoint-)[\s\S]*"


def in_namespace(namespace: str, kurrent_stream: str) -> bool:
    """The same test as namespace_filter(), in Python (a defence against a lax server filter)."""
    return re.fullmatch(namespace_filter(namespace), kurrent_stream) is not None


def encode_metadata(metadata: Mapping[str, str]) -> bytes:
    return dump_metadata(metadata).encode("utf-8")


def decode_metadata(raw: bytes) -> dict[str, str]:
    """Our metadata from KurrentDB custom metadata; {} for empty or foreign (non-JSON-object) bytes."""
    if not raw:
        return {}
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


def current_version_for(expected: int) -> int | KStreamState:
    """Our expected version (int or StreamState) as kurrentdbclient's ``current_version``."""
    if expected == StreamState.NO_STREAM:
        return KStreamState.NO_STREAM
    if expected == StreamState.ANY:
        return KStreamState.ANY
    if expected < 0:
        raise ValueError(f"bad expected version {expected}")
    return int(expected)


def wrong_expected_version(e: WrongCurrentVersionError, stream: str, expected: int) -> WrongExpectedVersion:
    """Map kurrentdbclient's WrongCurrentVersionError to ours (with OUR stream name and expected value).

    ``actual`` is None when the stream does not exist; it is also None when the server did not
    say (``e.actual_version`` is None): callers that need it must look it up.
    """
    actual = e.actual_version
    if actual is None or isinstance(actual, KStreamState):  # NO_STREAM, or not said
        found: int | None = None
    else:
        found = int(actual)
    err = WrongExpectedVersion(stream, int(expected), found)
    err.__cause__ = e
    return err


def to_recorded(namespace: str, e: KRecordedEvent) -> RecordedEvent:
    return RecordedEvent(
        id=e.id if isinstance(e.id, uuid.UUID) else uuid.UUID(str(e.id)),
        type=e.type,
        data=bytes(e.data),
        metadata=decode_metadata(e.metadata),
        stream=unprefixed(namespace, e.stream_name),
        version=int(e.stream_position),
        position=int(e.commit_position),
        recorded_at=e.recorded_at.astimezone(UTC) if e.recorded_at is not None else _EPOCH,
    )


# -- the adapter -----------------------------------------------------------------------------------


class KurrentDBEventStore(AsyncContextStore):
    """EventStore on a KurrentDB / EventStoreDB server, for one namespace.

    ``uri``: a kurrentdbclient connection string (``kurrentdb://host:2113?tls=false``,
    ``esdb://…``, ``kurrentdb+discover://…``); parsed (not connected) at construction.
    ``namespace``: the stream-name prefix ([a-z0-9_-]).
    """

    def __init__(self, uri: str, namespace: str) -> None:
        self._namespace = check_namespace(namespace)
        try:
            ConnectionSpec(uri)  # validates the URI; connects nothing
        except ValueError as e:
            why = str(e).replace(uri, "<the URL>")  # never echo the URI: it may hold a password
            raise EventStoreError(f"bad KurrentDB connection string: {why}") from None
        self._uri = uri
        self._filter = namespace_filter(namespace)
        self._client: AsyncKurrentDBClient | None = None
        self._closed = False

    @property
    def namespace(self) -> str:
        return self._namespace

    def __repr__(self) -> str:
        return f"KurrentDBEventStore(namespace={self._namespace!r})"

    # -- plumbing -------------------------------------------------------------------------

    def _get_client(self) -> AsyncKurrentDBClient:
        if self._closed:
            raise StoreClosed(f"{self!r} is closed")
        if self._client is None:
            self._client = AsyncKurrentDBClient(uri=self._uri)
        return self._client

    async def open(self) -> None:
        """Connect (idempotent); otherwise the first operation connects."""
        await self._get_client().connect()

    async def close(self) -> None:
        """Close the client (idempotent)."""
        if self._closed:
            return
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    async def _read_stream_raw(
        self, name: str, from_version: int = 0, limit: int | None = None
    ) -> tuple[KRecordedEvent, ...]:
        try:
            return await self._get_client().get_stream(
                name,
                stream_position=max(int(from_version), 0),
                limit=sys.maxsize if limit is None else int(limit),
            )
        except (NotFoundError, StreamIsDeletedError):
            return ()

    # -- writes ---------------------------------------------------------------------------

    async def append_to_stream(self, stream: str, current_version: int, events: Sequence[NewEvent]) -> int:
        """Append atomically; return the commit position of the last event (see the module
        docstring for the idempotency rule and its difference from the SQL adapters)."""
        expected = check_append_args(stream, current_version, events)
        if not events:
            return await self.last_position()
        events = list(events)
        name = stream_name(self._namespace, stream)

        repeat = await self._idempotent_repeat(name, stream, events)
        if repeat is not None:
            return repeat
        new = [
            KNewEvent(
                type=ev.type,
                data=bytes(ev.data),
                metadata=encode_metadata(ev.metadata),
                content_type=DATA_CONTENT_TYPE,
                id=ev.id,
            )
            for ev in events
        ]
        try:
            return await self._get_client().append_to_stream(
                name, current_version=current_version_for(expected), events=new
            )
        except WrongCurrentVersionError as e:
            # a retried append whose first attempt committed is a success
            repeat = await self._idempotent_repeat(name, stream, events)
            if repeat is not None:
                return repeat
            err = wrong_expected_version(e, stream, expected)
            if e.actual_version is None:
                err = WrongExpectedVersion(stream, expected, await self.stream_version(stream))
            raise err from e
        except StreamIsDeletedError as e:
            raise EventStoreError(f"stream {stream!r} was deleted in KurrentDB") from e

    async def _idempotent_repeat(self, name: str, stream: str, events: Sequence[NewEvent]) -> int | None:
        ids = {ev.id for ev in events}
        found = [
            (e.id, stream, int(e.commit_position)) for e in await self._read_stream_raw(name) if e.id in ids
        ]
        return idempotent_position(stream, events, found)

    async def set_checkpoint(self, name: str, position: int) -> None:
        data = json.dumps({"position": int(position)}).encode()
        await self._get_client().append_to_stream(
            checkpoint_stream_name(self._namespace, name),
            current_version=KStreamState.ANY,
            events=[KNewEvent(type=CHECKPOINT_EVENT_TYPE, data=data, content_type="application/json")],
        )

    # -- reads ----------------------------------------------------------------------------

    async def read_stream(
        self, stream: str, from_version: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        if limit is not None and limit <= 0:
            return []
        raw = await self._read_stream_raw(stream_name(self._namespace, stream), from_version, limit)
        return [to_recorded(self._namespace, e) for e in raw]

    async def stream_version(self, stream: str) -> int | None:
        try:
            version = await self._get_client().get_current_version(stream_name(self._namespace, stream))
        except StreamIsDeletedError:
            return None
        return None if isinstance(version, KStreamState) else int(version)

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        if limit <= 0:
            raise ValueError("limit must be > 0")
        after = int(after_position)
        client = self._get_client()
        # Reading forwards from a commit position includes the event AT it: ask for one more.
        async with await client.read_all(
            commit_position=after if after > 0 else None,
            filter_include=(self._filter,),
            filter_by_stream_name=True,
            limit=limit + 1 if after > 0 else limit,
        ) as response:
            raw = [e async for e in response]
        out = [
            to_recorded(self._namespace, e)
            for e in raw
            if e.commit_position > after and in_namespace(self._namespace, e.stream_name)
        ]
        return out[:limit]

    async def last_position(self) -> int:
        return int(
            await self._get_client().get_commit_position(
                filter_include=(self._filter,), filter_by_stream_name=True
            )
        )

    async def get_checkpoint(self, name: str) -> int:
        raw = await self._read_stream_raw_last(checkpoint_stream_name(self._namespace, name))
        if raw is None:
            return 0
        try:
            return int(json.loads(raw.data)["position"])
        except (ValueError, KeyError, TypeError) as e:
            raise EventStoreError(f"checkpoint {name!r}: unreadable checkpoint event") from e

    async def _read_stream_raw_last(self, name: str) -> KRecordedEvent | None:
        try:
            events = await self._get_client().get_stream(name, backwards=True, limit=1)
        except (NotFoundError, StreamIsDeletedError):
            return None
        return events[0] if events else None

    # -- read models ------------------------------------------------------------------------

    async def read_projection(self, name: str) -> tuple[dict[str, bytes], int]:
        raise NotImplementedError(
            "read models live in SQLite or PostgreSQL; the KurrentDB adapter keeps events only"
        )

    async def commit_projection(
        self,
        name: str,
        position: int,
        upserts: Mapping[str, bytes],
        deletes: Sequence[str] = (),
        replace: bool = False,
    ) -> None:
        raise NotImplementedError(
            "read models live in SQLite or PostgreSQL; the KurrentDB adapter keeps events only"
        )

    async def commit_calls(self, name: str, position: int, rows: Sequence[Any]) -> None:
        raise NotImplementedError(
            "read models live in SQLite or PostgreSQL; the KurrentDB adapter keeps events only"
        )

    async def read_calls(self, query: Any) -> list[Any]:
        raise NotImplementedError(
            "read models live in SQLite or PostgreSQL; the KurrentDB adapter keeps events only"
        )

    async def count_calls(self, query: Any) -> int:
        raise NotImplementedError(
            "read models live in SQLite or PostgreSQL; the KurrentDB adapter keeps events only"
        )

    async def subscribe_all(
        self, after_position: int = 0, poll_interval: float = 0.05
    ) -> AsyncIterator[RecordedEvent]:
        """Catch up from after_position, then follow new events; never ends by itself.

        A KurrentDB catch-up subscription (server push; ``poll_interval`` is not used),
        filtered to this namespace. Cancel-safe: cancelling stops the subscription.
        """
        if poll_interval <= 0:
            raise ValueError("poll_interval must be > 0")
        after = int(after_position)
        subscription = await self._get_client().subscribe_to_all(
            commit_position=after if after > 0 else None,  # exclusive of the event at it
            filter_include=(self._filter,),
            filter_by_stream_name=True,
        )
        async with subscription:
            async for e in subscription:
                if e.is_checkpoint or e.is_caught_up or e.is_fell_behind:
                    continue
                if e.commit_position <= after or not in_namespace(self._namespace, e.stream_name):
                    continue
                after = e.commit_position
                yield to_recorded(self._namespace, e)
