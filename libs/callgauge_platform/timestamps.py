"""The one helper between Python datetimes, protobuf Timestamps and ISO-8601 text, for every
service's events and answers (no module keeps its own `_ts`)."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp


def timestamp_of(dt: datetime | None) -> Timestamp | None:
    """`dt` as a protobuf Timestamp (a naive datetime is taken as UTC); None (the field left
    unset: not known) for None."""
    if dt is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(dt)
    return ts


def datetime_of(ts: Timestamp, present: bool = True) -> datetime | None:
    """`ts` as an aware UTC datetime; None when the field is not set (`present`: the message's
    HasField for it)."""
    return ts.ToDatetime(tzinfo=UTC) if present else None


def iso_of(dt: datetime | None) -> str | None:
    """`dt` as ISO-8601 UTC text with a Z (2026-12-06T03:58:24.123456Z); None for None."""
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z") if dt else None


def iso_field(msg, field: str) -> str | None:
    """A message's Timestamp field `field` as the protobuf JSON text (RFC 3339, Z); None when the
    field is not set (not known, never the epoch)."""
    return getattr(msg, field).ToJsonString() if msg.HasField(field) else None


def parse_iso(text: str | None) -> datetime | None:
    """ISO-8601 text (a trailing Z allowed) as a datetime; None for empty or unreadable text."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
