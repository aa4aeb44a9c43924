"""Helpers shared by the event store adapters (validation, idempotency rule, subscriptions)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

from callgauge_eventstore.port import (
    UNMEASURED,
    CallQuery,
    CallRow,
    DuplicateEventId,
    EventStoreError,
    NewEvent,
    RecordedEvent,
    StreamState,
    WrongExpectedVersion,
)

# A namespace is a PostgreSQL schema name or a SQLite file stem (e.g. "runs", "billing",
# "media-engine"): lower case so it never needs case-sensitive quoting, at most 63 bytes.
NAMESPACE_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,62}$")


class StoreClosed(EventStoreError):
    """The store was closed; it cannot be used any more."""


def check_namespace(namespace: str) -> str:
    if not isinstance(namespace, str) or not NAMESPACE_RE.fullmatch(namespace) or namespace.startswith("pg_"):
        raise EventStoreError(
            f"invalid event store namespace {namespace!r}: use 1-63 characters of [a-z0-9_-], "
            "starting with a letter or '_', not starting with 'pg_'"
        )
    return namespace


def check_append_args(stream: str, current_version: int, events: Sequence[NewEvent]) -> int:
    if not isinstance(stream, str) or not stream:
        raise ValueError("stream must be a non-empty string")
    expected = int(current_version)
    if expected < StreamState.ANY:
        raise ValueError(
            "current_version must be >= 0, StreamState.NO_STREAM (-1) or StreamState.ANY (-2), "
            f"got {expected}"
        )
    seen: set[uuid.UUID] = set()
    for ev in events:
        if not isinstance(ev, NewEvent):
            raise TypeError(f"expected NewEvent, got {type(ev).__name__}")
        if not isinstance(ev.data, (bytes, bytearray, memoryview)):
            raise TypeError(f"event {ev.id}: data must be bytes, got {type(ev.data).__name__}")
        for k, v in ev.metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"event {ev.id}: metadata must map str to str, got {k!r}: {v!r}")
        if ev.id in seen:
            raise DuplicateEventId(f"event id {ev.id} appears twice in one append to stream {stream!r}")
        seen.add(ev.id)
    return expected


def check_version(stream: str, expected: int, actual: int | None) -> None:
    """Raise WrongExpectedVersion unless `actual` (None = no stream) satisfies `expected`."""
    if expected == StreamState.ANY:
        return
    if expected == StreamState.NO_STREAM:
        if actual is not None:
            raise WrongExpectedVersion(stream, expected, actual)
        return
    if actual != expected:
        raise WrongExpectedVersion(stream, expected, actual)


def idempotent_position(
    stream: str, events: Sequence[NewEvent], found: Sequence[tuple[uuid.UUID, str, int]]
) -> int | None:
    """Apply the idempotency rule, given the (id, stream, position) rows already recorded
    for the ids being appended.

    - none recorded: None (a normal append follows, with its version check);
    - all recorded, all in `stream`: the highest of their positions (no write, no version check);
    - otherwise (some but not all, or any in another stream): DuplicateEventId.
    """
    if not found:
        return None
    others = [(i, s) for i, s, _ in found if s != stream]
    if others:
        i, s = others[0]
        raise DuplicateEventId(f"event id {i} is already recorded in stream {s!r}, not in {stream!r}")
    if len(found) != len(events):
        missing = len(events) - len(found)
        raise DuplicateEventId(
            f"stream {stream!r}: {len(found)} of the {len(events)} event ids are already recorded and "
            f"{missing} are new; an idempotent repeat must repeat only recorded events"
        )
    return max(p for _, _, p in found)


def dump_metadata(metadata: Mapping[str, str]) -> str:
    return json.dumps(dict(metadata), separators=(",", ":"), ensure_ascii=False, sort_keys=True)


class AsyncContextStore:
    """`async with store:` opens it and closes it (every adapter has open() and close())."""

    async def __aenter__(self):
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Notifier:
    """Wakes local subscribers early when something new may have been committed."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def waiter(self) -> asyncio.Event:
        # Take the waiter BEFORE reading, so a notify between the read and the wait is not lost.
        if self._event is None:
            self._event = asyncio.Event()
        return self._event

    def notify(self) -> None:
        ev, self._event = self._event, None
        if ev is not None:
            ev.set()


async def wait_for_news(waiter: asyncio.Event, timeout: float) -> None:
    # asyncio.timeout, not asyncio.wait_for: on Python 3.11 wait_for swallows a cancellation that
    # arrives while the waiter is being set (gh-86296), and the subscriber then never ends.
    try:
        async with asyncio.timeout(timeout):
            await waiter.wait()
    except TimeoutError:
        pass


async def poll_all(
    read_all: Callable[[int, int], Awaitable[list[RecordedEvent]]],
    notifier: Notifier,
    after_position: int,
    poll_interval: float,
    batch_size: int = 500,
) -> AsyncIterator[RecordedEvent]:
    """Catch up from after_position, then poll (woken early by the notifier). Never ends.

    Correct only over a gap-safe read_all (an event never commits with a position lower
    than one a reader has already seen): both adapters guarantee it.
    Cancel-safe: no state lives outside this generator; cancelling it just stops it.
    """
    if poll_interval <= 0:
        raise ValueError("poll_interval must be > 0")
    position = int(after_position)
    while True:
        waiter = notifier.waiter()
        batch = await read_all(position, batch_size)
        for ev in batch:
            position = ev.position
            yield ev
        if len(batch) < batch_size:
            await wait_for_news(waiter, poll_interval)


# -- the calls projection (SQL adapters) -----------------------------------------------------

CALLS_TABLE = "run_calls"
_SORT_COLUMN = {"index": "idx", "setup_ms": "setup_key", "mos": "mos_key"}


def _order_columns(col: str) -> tuple[str, ...]:
    """A sort's ORDER BY (and keyset) columns, column for column those of its index after run_id:
    (idx, call_id) for the index sort, (key, idx, call_id) for the others."""
    return ("idx", "call_id") if col == "idx" else (col, "idx", "call_id")


CALLS_INDEXES = {"idx": "run_calls_index", "setup_key": "run_calls_setup_key", "mos_key": "run_calls_mos_key"}
# The index sort's index of stores made before: (run_id, idx, idx, call_id), idx twice. PostgreSQL
# walks it for ORDER BY idx, call_id (it drops the repeated column), SQLite does not: it walks it and
# sorts each run of equal idx (a temporary B-tree). Replaced by run_calls_index (calls_upgrade_ddl).
OLD_CALLS_INDEX = "run_calls_idx"


def calls_ddl(blob: str, table: str = CALLS_TABLE) -> list[str]:
    """The calls projection: one row per (run, call), and one index per sort order.

    Each index is (run_id, <the sort's ORDER BY columns>), so a page in either direction is a walk of
    it that stops after LIMIT rows (a backward walk for a descending sort), not a read and sort of
    every call of the run. No other index: the projection takes ~1,000 inserts/s during a run and
    each index is one more insert per call. The primary key (run_id, call_id) makes a recorded call
    idempotent. The filters (outcome, SIP code, MOS range) have no index of their own: a filtered
    page walks its sort's index, skipping the calls that do not match (a MOS range on the MOS sort is
    a range of its index)."""
    return [
        f"CREATE TABLE IF NOT EXISTS {table} (run_id TEXT NOT NULL, call_id TEXT NOT NULL, idx BIGINT NOT NULL, "
        f"outcome TEXT NOT NULL, sip_code INTEGER NOT NULL, setup_key DOUBLE PRECISION NOT NULL, "
        f"mos_key DOUBLE PRECISION NOT NULL, data {blob} NOT NULL, PRIMARY KEY (run_id, call_id))",
        *(f"CREATE INDEX IF NOT EXISTS {name} ON {table} (run_id, {', '.join(_order_columns(col))})"
          for col, name in CALLS_INDEXES.items()),
    ]


CALL_COUNTS_TABLE = "run_call_counts"


def call_counts_ddl(table: str = CALL_COUNTS_TABLE) -> str:
    """How many calls each run has in the projection, per outcome: written in the transaction that
    adds the calls (by the rows actually added, so a repeated call counts once), read by a page's
    total instead of a COUNT of the run's calls (30-150 ms at 300,000 calls, on every page)."""
    return (f"CREATE TABLE IF NOT EXISTS {table} (run_id TEXT NOT NULL, outcome TEXT NOT NULL, "
            f"n BIGINT NOT NULL, PRIMARY KEY (run_id, outcome))")


def call_counts_backfill_sql(counts: str = CALL_COUNTS_TABLE, calls: str = CALLS_TABLE) -> str:
    """The counts of a store made before the counts table (run once, as the table is made)."""
    return (f"INSERT INTO {counts} (run_id, outcome, n) SELECT run_id, outcome, COUNT(*) FROM {calls} "
            f"GROUP BY run_id, outcome")


def call_counts_add_sql(table: str = CALL_COUNTS_TABLE, mark: str = "?") -> str:
    return (f"INSERT INTO {table} (run_id, outcome, n) VALUES ({mark}, {mark}, {mark}) "
            f"ON CONFLICT (run_id, outcome) DO UPDATE SET n = {table}.n + excluded.n")


def first_of_each_call(rows: Sequence[CallRow]) -> list[CallRow]:
    """The rows of a batch, a call repeated within it kept at its first row (as the store keeps a
    call already there)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for r in rows:
        key = (r.run_id, r.call_id)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def counted_query_sql(q: CallQuery, table: str = CALL_COUNTS_TABLE,
                      mark: str = "?") -> tuple[str, list] | None:
    """The total of a page from the counts table when its filters are outcomes at most (the
    unfiltered first page above all); None when it filters on what the counts do not keep."""
    if q.sip_codes or q.mos_min is not None or q.mos_max is not None:
        return None
    where, params = [f"run_id = {mark}"], [q.run_id]
    if q.outcomes:
        where.append(f"outcome IN ({', '.join([mark] * len(q.outcomes))})")
        params.extend(q.outcomes)
    return f"SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM {table} WHERE " + " AND ".join(where), params


def calls_upgrade_ddl(schema: str = "") -> list[str]:
    """After calls_ddl on a store made before: drop the index the index sort used then (`schema`:
    the PostgreSQL schema, quoted, with its dot)."""
    return [f"DROP INDEX IF EXISTS {schema}{OLD_CALLS_INDEX}"]


def call_values(row: CallRow) -> tuple:
    return (row.run_id, row.call_id, int(row.index), row.outcome, int(row.sip_code),
            UNMEASURED if row.setup_ms is None else float(row.setup_ms),
            UNMEASURED if row.mos is None else float(row.mos), bytes(row.data))


def calls_insert_sql(table: str = CALLS_TABLE, mark: str = "?") -> str:
    return (f"INSERT INTO {table} (run_id, call_id, idx, outcome, sip_code, setup_key, mos_key, data) "
            f"VALUES ({', '.join([mark] * 8)}) ON CONFLICT (run_id, call_id) DO NOTHING")


def calls_query_sql(q: CallQuery, table: str = CALLS_TABLE, mark: str = "?",
                    count: bool = False) -> tuple[str, list]:
    """The SQL of a page (or of its count) and its parameters; `mark` is the adapter's placeholder.

    The ORDER BY and the keyset condition are the sort's index columns after run_id, in its order, so
    the page is a walk of that index (see calls_ddl). A page's MOS bounds are written `+mos_key`
    unless the sort is by MOS: a unary plus keeps a planner from taking the MOS index for the range
    and then sorting every call in it by the page's sort (SQLite did, for a MOS filter with another
    sort: 20 to 400 ms at 300,000 calls, by the share of calls in the range); on the MOS sort they
    are a range of the walk's own index."""
    desc = q.sort.startswith("-")
    col = _SORT_COLUMN[q.sort.lstrip("-")]
    mos = "mos_key" if col == "mos_key" or count else "+mos_key"  # a count has no order to keep
    where, params = ["run_id = " + mark], [q.run_id]
    if q.outcomes:
        where.append(f"outcome IN ({', '.join([mark] * len(q.outcomes))})")
        params.extend(q.outcomes)
    if q.sip_codes:
        where.append(f"sip_code IN ({', '.join([mark] * len(q.sip_codes))})")
        params.extend(int(c) for c in q.sip_codes)
    if q.mos_min is not None or q.mos_max is not None:
        where.append(f"{mos} < {mark}")
        params.append(UNMEASURED)
    if q.mos_min is not None:
        where.append(f"{mos} >= {mark}")
        params.append(float(q.mos_min))
    if q.mos_max is not None:
        where.append(f"{mos} <= {mark}")
        params.append(float(q.mos_max))
    if count:
        return f"SELECT COUNT(*) FROM {table} WHERE " + " AND ".join(where), params
    columns = _order_columns(col)
    if q.after is not None:
        key, idx, call_id = q.after
        where.append(f"({', '.join(columns)}) {'<' if desc else '>'} ({', '.join([mark] * len(columns))})")
        params.extend([int(idx), str(call_id)] if col == "idx" else [float(key), int(idx), str(call_id)])
    order = " DESC" if desc else ""
    sql = (f"SELECT {col}, idx, call_id, data FROM {table} WHERE " + " AND ".join(where)
           + " ORDER BY " + ", ".join(c + order for c in columns) + f" LIMIT {int(q.limit)}")
    return sql, params
