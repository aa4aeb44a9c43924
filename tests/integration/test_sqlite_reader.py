"""The SQLite event store reads on a connection of its own: a read (a run's stream, the log, a page
of calls) answers from the last commit while the writer's thread is busy, instead of queueing
behind it; and it sees every append that has returned."""

from __future__ import annotations

import asyncio
import threading

from callgauge_bus.codec import new_event
from callgauge_eventstore import CallQuery, StreamState
from callgauge_eventstore.sqlite import SqliteEventStore
from callgauge_proto.callgauge.events.v1 import media_pb2


async def _a_store_with_a_run(tmp_path):
    store = SqliteEventStore(tmp_path / "runs.db")
    await store.open()
    ev = new_event(media_pb2.RunAccepted(run_id="r1", engine_id="e1"), correlation_id="r1")
    await store.append_to_stream("run-r1", StreamState.NO_STREAM, [ev])
    return store, ev


async def _hold(submit) -> tuple[asyncio.Future, threading.Event]:
    """A job on one of the store's threads, held there until the returned event is set."""
    held, release = threading.Event(), threading.Event()

    def busy(conn) -> None:
        held.set()
        release.wait(60)

    job = asyncio.ensure_future(submit(busy))
    await asyncio.get_running_loop().run_in_executor(None, held.wait, 60)
    return job, release


async def test_reads_answer_while_the_writer_is_busy_and_see_what_was_appended(tmp_path) -> None:
    store, ev = await _a_store_with_a_run(tmp_path)
    try:
        writer, release = await _hold(store._run)  # the writer's thread, held until the reads are done
        try:
            async with asyncio.timeout(30):  # a read queued behind the writer would wait for `release`
                [got] = await store.read_stream("run-r1")
                assert got.id == ev.id and not writer.done()
                assert [e.id for e in await store.read_all(0)] == [ev.id]
                assert await store.read_calls(CallQuery(run_id="r1")) == []
                assert await store.count_calls(CallQuery(run_id="r1")) == 0
                assert (await store.read_projection("views")) == ({}, 0)
        finally:
            release.set()
            await writer
        for i in range(20):  # each append is read back at once from the other connection
            more = new_event(media_pb2.RunLeaseRenewed(run_id="r1", engine_id="e1"), correlation_id="r1")
            await store.append_to_stream("run-r1", i, [more])  # expected: the version before it
            assert (await store.read_stream("run-r1"))[-1].id == more.id
    finally:
        await store.close()
    assert store._rconns == {} and store._readers == {}


async def test_a_request_read_does_not_queue_behind_the_log_readers(tmp_path) -> None:
    """The relay's and projectors' reads of the log (500 events at a time during a big run) have a
    connection and thread of their own: while one is in progress, a run's stream and a page of calls
    still answer."""
    store, ev = await _a_store_with_a_run(tmp_path)
    try:
        log_read, release = await _hold(lambda fn: store._read(fn, "log"))
        try:
            async with asyncio.timeout(30):
                [got] = await store.read_stream("run-r1")
                assert got.id == ev.id and not log_read.done()
                assert await store.read_calls(CallQuery(run_id="r1")) == []
                assert await store.stream_version("run-r1") == 0
        finally:
            release.set()
            await log_read
        assert [e.id for e in await store.read_all(0)] == [ev.id]
    finally:
        await store.close()
