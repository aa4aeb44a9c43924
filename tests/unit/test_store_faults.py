"""Honest errors under store faults: a full SQLite file reports "database or disk is full" as
StoreUnavailable (not the "cannot rollback" of a second ROLLBACK), leaves no half-written append,
and a service's StoreUnavailable reaches a REST client as 503 STORE_UNAVAILABLE with the cause."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from callgauge_eventstore import NewEvent, StoreUnavailable, StreamState
from callgauge_eventstore.sqlite import SqliteEventStore
from callgauge_gateway.entrypoints.errors import api_error_from_grpc
from callgauge_platform.errors import ERROR_CODE_KEY, STORE_UNAVAILABLE, store_unavailable


def _event(size: int) -> NewEvent:
    return NewEvent(id=uuid.uuid4(), type="Filler", data=b"x" * size, metadata={})


def test_a_full_sqlite_file_is_store_unavailable_with_the_real_cause(tmp_path) -> None:
    async def go() -> None:
        store = SqliteEventStore(str(tmp_path / "s.db"))
        await store.open()
        await store.append_to_stream("s", StreamState.NO_STREAM, [_event(10)])
        # a disk with 4 pages left (the pragma runs on the store's own connection thread)
        await store._run(lambda c: c.execute(
            f"PRAGMA max_page_count = {c.execute('PRAGMA page_count').fetchone()[0] + 4}").fetchone())
        version, failure = 0, None
        for _ in range(50):
            try:
                await store.append_to_stream("s", version, [_event(3000)])
                version += 1
            except StoreUnavailable as exc:
                failure = exc
                break
        assert failure is not None, "the store never filled up"
        assert "database or disk is full" in str(failure)
        assert "cannot rollback" not in str(failure)
        assert store_unavailable(failure) == str(failure)
        # the failed append left nothing behind and the store keeps working for reads
        events = await store.read_stream("s")
        assert len(events) == version + 1
        await store.close()

    asyncio.run(go())


def _rpc_error(code: grpc.StatusCode, details: str, trailing=()) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details)


def test_store_unavailable_from_a_service_is_a_503_naming_the_cause() -> None:
    exc = _rpc_error(grpc.StatusCode.UNAVAILABLE, "the service's event store cannot write: its disk is full",
                     ((ERROR_CODE_KEY, STORE_UNAVAILABLE),))
    err = api_error_from_grpc(exc)
    assert err.status == 503 and err.code == "STORE_UNAVAILABLE"
    assert "disk is full" in err.message and err.headers["Retry-After"]


@pytest.mark.parametrize("exc, expected", [
    (OSError(28, "No space left on device"), True),
    (ConnectionRefusedError(111, "refused"), True),
    (ValueError("bad input"), False),
])
def test_store_unavailable_classifies_causes(exc, expected) -> None:
    assert (store_unavailable(exc) is not None) is expected
