"""The runs service with its real store (SQLite, and PostgreSQL when it answers) and the real
broker: commands over gRPC, RunRequested on callgauge.runs.v1, media events moving the run."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from callgauge_bus.codec import envelope_for
from callgauge_bus.kafka import Producer
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb


@pytest.fixture
async def runs(runs_service):
    """(settings, stub) of the runs service on the test's store (tests/integration/conftest.py)."""
    settings, start = runs_service
    return settings, await start()


def spec() -> spec_pb2.TestSpec:
    s = spec_pb2.TestSpec()
    s.steps.add().actions.add().call.CopyFrom(spec_pb2.CallAction(dial_destination="sip:echo@127.0.0.1:5070", max_total_calls=2))
    return s


async def wait_status(stub, project_id, run_id, status, limit_s=20) -> pb.Run:
    async with asyncio.timeout(limit_s):
        while True:
            run = await stub.GetRun(pb.GetRunRequest(account_id="acc", project_id=project_id, run_id=run_id))
            if pb.RunStatus.Name(run.status) == status:
                return run
            await asyncio.sleep(0.05)


async def test_a_run_goes_from_requested_to_completed_on_media_events(runs, topic_prefix, consume_until):
    settings, stub = runs
    project = await stub.CreateProject(pb.CreateProjectRequest(account_id="acc", name="P"))
    test = await stub.CreateTest(pb.CreateTestRequest(account_id="acc", project_id=project.id, name="T", spec=spec()))
    run = await stub.StartRun(pb.StartRunRequest(account_id="acc", project_id=project.id, test_id=test.id))
    assert pb.RunStatus.Name(run.status) == "PENDING" and run.planned_calls == 2

    # The relay put RunRequested on callgauge.runs.v1, as the media-engine sees it.
    seen = await consume_until(settings.kafka_bootstrap, settings.topic("runs"),
                               lambda seen: any(isinstance(d.payload, runs_pb2.RunRequested) for d in seen), 20)
    requested = next(d for d in seen if isinstance(d.payload, runs_pb2.RunRequested))
    assert requested.payload.run_id == run.id and requested.envelope.correlation_id == run.id
    assert requested.payload.spec.steps[0].actions[0].call.max_total_calls == 2

    # A media-engine's reports, with a redelivery and a garbage record among them.
    producer = Producer(settings.kafka_bootstrap)
    await producer.start()
    media = settings.topic("media")

    async def send(msg, times=1):
        env = envelope_for(msg, f"media-run-{run.id}", 0, run.id, "", "test-engine")
        for _ in range(times):
            await producer.send(media, run.id, env.SerializeToString())

    call = m_pb2.CallMeasurement(call_id="c0", outcome=m_pb2.SUCCESS, sip_code=200, rx_packets=100, mos=4.4)
    await send(media_pb2.RunAccepted(run_id=run.id, engine_id="e1", planned_calls=2))
    await wait_status(stub, project.id, run.id, "QUEUED")
    await send(media_pb2.RunMediaStarted(run_id=run.id, engine_id="e1"))
    await wait_status(stub, project.id, run.id, "RUNNING")
    await producer.send(media, run.id, b"\x00garbage")
    await send(media_pb2.CallMeasured(run_id=run.id, engine_id="e1", call=call), times=3)
    await send(media_pb2.CallMeasured(run_id=run.id, engine_id="e1", call=m_pb2.CallMeasurement(
        call_id="c1", outcome=m_pb2.SUCCESS, sip_code=200, rx_packets=90, mos=4.3)))
    summary = m_pb2.RunSummary(calls_attempted=2, calls_answered=2, asr=1.0)
    await send(media_pb2.RunMediaFinished(run_id=run.id, engine_id="e1", summary=summary), times=2)
    done = await wait_status(stub, project.id, run.id, "COMPLETED")
    await producer.stop()

    assert done.passed and done.calls_recorded == 2 and done.recorded.calls_answered == 2
    assert done.ByteSize() < 4096  # the run carries figures, not calls
    page = await all_calls(stub, project.id, run.id, expect=2)
    assert [c.call_id for c in page] == ["c0", "c1"]
    assert done.started_at.seconds and done.stopped_at.seconds
    listing = await stub.ListRuns(pb.ListRunsRequest(account_id="acc", project_id=project.id))
    assert [r.id for r in listing.runs] == [run.id] and pb.RunStatus.Name(listing.runs[0].status) == "COMPLETED"


async def all_calls(stub, project_id, run_id, expect, limit_s=30, **request) -> list[m_pb2.CallMeasurement]:
    """Every call of a run, page by page, once `expect` of them are recorded."""
    async with asyncio.timeout(limit_s):
        while True:
            first = await stub.ListRunCalls(pb.ListRunCallsRequest(
                account_id="acc", project_id=project_id, run_id=run_id, **request))
            if first.total >= expect:
                break
            await asyncio.sleep(0.05)
    calls, page = list(first.calls), first
    while page.next_page_token:
        page = await stub.ListRunCalls(pb.ListRunCallsRequest(
            account_id="acc", project_id=project_id, run_id=run_id, page_token=page.next_page_token, **request))
        calls.extend(page.calls)
    return calls


async def test_calls_are_paged_while_a_run_records_them(runs):
    """3,000 calls sent over Kafka as fast as the producer goes; the pages read while they are
    being recorded never move, and at the end every call appears exactly once."""
    settings, stub = runs
    project = await stub.CreateProject(pb.CreateProjectRequest(account_id="acc", name="P"))
    test = await stub.CreateTest(pb.CreateTestRequest(account_id="acc", project_id=project.id, name="T", spec=spec()))
    run = await stub.StartRun(pb.StartRunRequest(account_id="acc", project_id=project.id, test_id=test.id))
    producer = Producer(settings.kafka_bootstrap)
    await producer.start()
    media, n = settings.topic("media"), 3000

    def record(msg):
        env = envelope_for(msg, f"media-run-{run.id}", 0, run.id, "", "test-engine")
        return media, run.id, env.SerializeToString(), ()

    await producer.send_many([record(media_pb2.RunMediaStarted(run_id=run.id, engine_id="e1"))])
    calls = [m_pb2.CallMeasurement(call_id=f"call-{i:05d}", index=i, outcome=m_pb2.SUCCESS if i % 10 else m_pb2.CALL_FAILED,
                                   sip_code=200 if i % 10 else 503, setup_time_ms=50 + i % 97, mos=3.5 + (i % 9) / 10)
             for i in range(n)]
    sending = asyncio.create_task(producer.send_many(
        [record(media_pb2.CallMeasured(run_id=run.id, engine_id="e1", call=c)) for c in calls]))
    # read the first pages while the calls are still arriving: they are the first calls by index,
    # whatever is recorded later (each page is re-read at the end and must be the same)
    async with asyncio.timeout(60):
        while (await stub.ListRunCalls(pb.ListRunCallsRequest(
                account_id="acc", project_id=project.id, run_id=run.id))).total < 200:
            await asyncio.sleep(0.01)
    early, token = [], ""
    for _ in range(3):
        page = await stub.ListRunCalls(pb.ListRunCallsRequest(account_id="acc", project_id=project.id, run_id=run.id,
                                                             page_size=50, page_token=token))
        early.append([c.call_id for c in page.calls])
        token = page.next_page_token
    await sending
    everything = await all_calls(stub, project.id, run.id, expect=n, page_size=1000)
    await producer.stop()
    assert [c.call_id for c in everything] == [c.call_id for c in calls]  # once each, by index
    token = ""
    for ids in early:
        page = await stub.ListRunCalls(pb.ListRunCallsRequest(account_id="acc", project_id=project.id, run_id=run.id,
                                                             page_size=50, page_token=token))
        assert [c.call_id for c in page.calls] == ids
        token = page.next_page_token
    got = await stub.GetRun(pb.GetRunRequest(account_id="acc", project_id=project.id, run_id=run.id))
    assert got.calls_recorded == n and got.recorded.calls_failed == n // 10
    assert [c.index for c in got.first_failed_calls] == [0, 10, 20]

    failed = await all_calls(stub, project.id, run.id, expect=n // 10, outcomes=["CALL_FAILED"], sip_codes=[503],
                             page_size=70, sort="-index")
    assert [c.index for c in failed] == list(range(n - 10, -1, -10))
    by_mos = await all_calls(stub, project.id, run.id, expect=0, mos_min=4.0, sort="-mos", page_size=333)
    assert len(by_mos) == len([c for c in calls if c.outcome == m_pb2.SUCCESS and c.mos >= 4.0 - 1e-9])
    assert [c.mos for c in by_mos] == sorted((c.mos for c in by_mos), reverse=True)
    by_setup = await all_calls(stub, project.id, run.id, expect=0, sort="setup_ms", page_size=500)
    assert len(by_setup) == n and len({c.call_id for c in by_setup}) == n
    answered = [c.setup_time_ms for c in by_setup if c.outcome == m_pb2.SUCCESS]
    assert answered == sorted(answered) and by_setup[-1].outcome == m_pb2.CALL_FAILED  # unmeasured last

    # bad requests say what is wrong; another account or mode does not see the run
    for bad, field in ((dict(page_size=1001), "page_size"), (dict(sort="duration"), "sort"),
                       (dict(page_token="not-a-token"), "page_token"), (dict(outcomes=["FINE"]), "outcomes"),
                       (dict(page_token=page.next_page_token, sort="-index"), "page_token")):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ListRunCalls(pb.ListRunCallsRequest(account_id="acc", project_id=project.id, run_id=run.id,
                                                           **bad))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
        assert field in str(err.value.trailing_metadata()) + err.value.details(), bad
    for who in (dict(account_id="other"), dict(account_id="acc", mode="test")):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ListRunCalls(pb.ListRunCallsRequest(project_id=project.id, run_id=run.id, **who))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_errors_cross_grpc_as_status_codes(runs):
    _, stub = runs
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetProject(pb.GetProjectRequest(account_id="acc", project_id="missing"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    project = await stub.CreateProject(pb.CreateProjectRequest(account_id="acc", name="P"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetProject(pb.GetProjectRequest(account_id="someone-else", project_id=project.id))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateTest(pb.CreateTestRequest(account_id="acc", project_id=project.id, name="T",
                                                   spec=spec_pb2.TestSpec()))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "callgauge-field-errors" in dict(err.value.trailing_metadata())


async def test_concurrent_commands_on_one_stream_all_succeed(runs):
    """Issue #19 item 1: runs handles its commands with the shared loop, so a command whose append
    meets a concurrent writer of the same stream decides again instead of failing (before, on
    PostgreSQL, where the eight loads interleave: 7 of 8 ABORTED, `expected version 0, found
    version 1`; the SQLite adapter happens to run each command's load and append without a switch)."""
    _, stub = runs
    project = await stub.CreateProject(pb.CreateProjectRequest(account_id="acc", name="P"))
    test = await stub.CreateTest(pb.CreateTestRequest(account_id="acc", project_id=project.id, name="T", spec=spec()))
    names = [f"T{i}" for i in range(8)]
    async with asyncio.timeout(60):
        done = await asyncio.gather(*(stub.UpdateTest(pb.UpdateTestRequest(
            account_id="acc", project_id=project.id, test_id=test.id, name=n)) for n in names),
            return_exceptions=True)
    failed = [d for d in done if isinstance(d, BaseException)]
    assert not failed, [f"{e.code()}: {e.details()}" if isinstance(e, grpc.aio.AioRpcError) else repr(e) for e in failed]
    final = await stub.GetTest(pb.GetTestRequest(account_id="acc", project_id=project.id, test_id=test.id))
    assert final.name in names
