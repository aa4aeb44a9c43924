"""The one helper between Python datetimes and protobuf Timestamps for the services' gRPC answers."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp


def timestamp_of(dt: datetime | None) -> Timestamp | None:
    """`dt` as a protobuf Timestamp; None (the field left unset: not known) for None."""
    if dt is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(dt)
    return ts
