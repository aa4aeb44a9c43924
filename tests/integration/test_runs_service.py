"""The runs service with its real store (SQLite, and PostgreSQL when it answers) and the real
broker: commands over gRPC, RunRequested on callgauge.runs.v1, media events moving the run."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from callgauge_bus.codec import Delivered, envelope_for
from callgauge_bus.kafka import Consumer, Producer
from callgauge_platform.settings import Settings
from callgauge_platform.stack import free_port
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2_grpc as pb_grpc
from callgauge_runs.adapters.billing import UnmeteredBilling
from callgauge_runs.bootstrap import bootstrap


def pg_url() -> str | None:
    import psycopg

    try:
        psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", connect_timeout=2).close()
        return "postgresql://postgres@127.0.0.1:5432/test"
    except psycopg.Error:
        return None


@pytest.fixture(params=["sqlite", "postgres"])
async def runs(request, tmp_path, broker, topic_prefix):
    if request.param == "postgres":
        url = pg_url()
        if url is None:
            pytest.skip("PostgreSQL at 127.0.0.1:5432 not reachable")
        eventstore_url = url
    else:
        eventstore_url = f"sqlite:///{tmp_path}/"
    settings = Settings(
        data_dir=tmp_path, eventstore_url=eventstore_url, kafka_bootstrap=broker.bootstrap,
        kafka_topic_prefix=topic_prefix, runs_grpc=f"127.0.0.1:{free_port()}", runs_http_port=free_port(),
    )
    store, schema = None, f"runs_{uuid.uuid4().hex[:8]}"
    if request.param == "postgres":
        from callgauge_eventstore.factory import open_event_store

        store = open_event_store(eventstore_url, schema)
    svc = bootstrap(settings, store=store, billing=UnmeteredBilling())
    await svc.start()
    channel = grpc.aio.insecure_channel(settings.runs_grpc)
    yield settings, pb_grpc.RunsServiceStub(channel)
    await channel.close()
    await svc.stop()
    if request.param == "postgres":
        import psycopg

        with psycopg.connect(eventstore_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


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


async def test_a_run_goes_from_requested_to_completed_on_media_events(runs, topic_prefix):
    settings, stub = runs
    project = await stub.CreateProject(pb.CreateProjectRequest(account_id="acc", name="P"))
    test = await stub.CreateTest(pb.CreateTestRequest(account_id="acc", project_id=project.id, name="T", spec=spec()))
    run = await stub.StartRun(pb.StartRunRequest(account_id="acc", project_id=project.id, test_id=test.id))
    assert pb.RunStatus.Name(run.status) == "PENDING" and run.planned_calls == 2

    # The relay put RunRequested on callgauge.runs.v1, as the media-engine sees it.
    seen: list[Delivered] = []

    async def on_run_event(d: Delivered) -> None:
        seen.append(d)

    consumer = Consumer(settings.kafka_bootstrap, [settings.topic("runs")], f"g{uuid.uuid4().hex}", on_run_event)
    await consumer.start()
    try:
        async with asyncio.timeout(20):
            while not any(isinstance(d.payload, runs_pb2.RunRequested) for d in seen):
                await asyncio.sleep(0.05)
    finally:
        await consumer.stop()
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

    assert done.passed and [c.call_id for c in done.calls] == ["c0", "c1"]
    assert done.started_at.seconds and done.stopped_at.seconds
    listing = await stub.ListRuns(pb.ListRunsRequest(account_id="acc", project_id=project.id))
    assert [r.id for r in listing.runs] == [run.id] and pb.RunStatus.Name(listing.runs[0].status) == "COMPLETED"


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
