"""Engine leases in the runs service, with its real store and the real broker: a taken run whose
engine keeps renewing its lease stays RUNNING; once the engine goes silent the run ends FAILED
"media engine lost", keeping the calls recorded so far."""

from __future__ import annotations

import asyncio

import pytest

from callgauge_bus.codec import envelope_for
from callgauge_bus.kafka import Producer
from callgauge_app.settings import PlatformSettings
from callgauge_platform.stack import free_port
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2_grpc as pb_grpc
from callgauge_runs.adapters.billing import UnmeteredBilling
from callgauge_runs.bootstrap import bootstrap
from service_clients import acl_stub

LEASE_S = 3.0


@pytest.fixture
async def runs(tmp_path, broker, topic_prefix):
    settings = PlatformSettings(data_dir=tmp_path, eventstore_url=f"sqlite:///{tmp_path}/", kafka_bootstrap=broker.bootstrap,
                        kafka_topic_prefix=topic_prefix, runs_grpc=f"127.0.0.1:{free_port()}",
                        runs_http_port=free_port(), run_lease_s=LEASE_S, dial_allow_cidrs="127.0.0.0/8")
    svc = bootstrap(settings, billing=UnmeteredBilling())
    await svc.start()
    stub = acl_stub(settings, "runs", pb_grpc.RunsServiceStub)
    yield settings, stub
    await stub.close()
    await svc.stop()


async def status_of(stub, project_id, run_id) -> pb.Run:
    return await stub.GetRun(pb.GetRunRequest(account_id="acc", project_id=project_id, run_id=run_id))


async def wait_status(stub, project_id, run_id, status, limit_s=30) -> pb.Run:
    async with asyncio.timeout(limit_s):
        while True:
            run = await status_of(stub, project_id, run_id)
            if pb.RunStatus.Name(run.status) == status:
                return run
            await asyncio.sleep(0.1)


async def test_a_silent_engine_loses_the_run_a_renewing_one_keeps_it(runs):
    settings, stub = runs
    spec = spec_pb2.TestSpec()
    spec.steps.add().actions.add().call.CopyFrom(spec_pb2.CallAction(dial_destination="sip:echo@127.0.0.1:5070",
                                                                      max_total_calls=3))
    project = await stub.CreateProject(pb.CreateProjectRequest(account_id="acc", name="P"))
    test = await stub.CreateTest(pb.CreateTestRequest(account_id="acc", project_id=project.id, name="T", spec=spec))
    run = await stub.StartRun(pb.StartRunRequest(account_id="acc", project_id=project.id, test_id=test.id))
    producer = Producer(settings.kafka_bootstrap)
    await producer.start()

    async def send(msg):
        env = envelope_for(msg, f"media-run-{run.id}", 0, run.id, "", "test-engine")
        await producer.send(settings.topic("media"), run.id, env.SerializeToString())

    try:
        await send(media_pb2.RunMediaStarted(run_id=run.id, engine_id="e1"))
        await wait_status(stub, project.id, run.id, "RUNNING")
        await send(media_pb2.CallMeasured(run_id=run.id, engine_id="e1", call=m_pb2.CallMeasurement(
            call_id="c0", outcome=m_pb2.SUCCESS, sip_code=200, mos=4.4)))
        # renewals for twice the lease: the run stays taken
        loop = asyncio.get_running_loop()
        until = loop.time() + 2 * LEASE_S
        while loop.time() < until:
            await send(media_pb2.RunLeaseRenewed(run_id=run.id, engine_id="e1", lease_s=int(LEASE_S)))
            await asyncio.sleep(0.3)
        still = await status_of(stub, project.id, run.id)
        assert pb.RunStatus.Name(still.status) == "RUNNING" and still.calls_recorded == 1
        # the engine dies: no more words about the run
        failed = await wait_status(stub, project.id, run.id, "FAILED")
    finally:
        await producer.stop()
    assert failed.result_description.startswith("media engine lost: no word from engine e1 for ")
    assert "1 of 3 planned call(s) recorded" in failed.result_description
    assert failed.calls_recorded == 1
    assert failed.summary.calls_attempted == 1


@pytest.fixture
async def runs_svc(tmp_path, broker, topic_prefix):
    settings = PlatformSettings(data_dir=tmp_path, eventstore_url=f"sqlite:///{tmp_path}/", kafka_bootstrap=broker.bootstrap,
                        kafka_topic_prefix=topic_prefix, runs_grpc=f"127.0.0.1:{free_port()}",
                        runs_http_port=free_port(), run_lease_s=LEASE_S, dial_allow_cidrs="127.0.0.0/8")
    svc = bootstrap(settings, billing=UnmeteredBilling())
    svc.consumer.dead_letter_retry_s = (0.5, 2.0)  # parked records retried soon after the store is back
    await svc.start()
    stub = acl_stub(settings, "runs", pb_grpc.RunsServiceStub)
    yield settings, stub, svc
    await stub.close()
    await svc.stop()


async def test_a_full_store_does_not_end_a_run_whose_engine_kept_renewing(runs_svc):
    """The runs service's store is full for longer than the lease while the engine renews it: the
    consumer waits on its store (it cannot record a call nor park it), so it cannot hear the engine;
    it must not take that for the engine's silence. Once the store is back the run goes on and ends
    on the engine's word, every call recorded."""
    from callgauge_bus.codec import new_event
    from callgauge_eventstore import StoreUnavailable, StreamState

    settings, stub, svc = runs_svc
    spec = spec_pb2.TestSpec()
    spec.steps.add().actions.add().call.CopyFrom(spec_pb2.CallAction(dial_destination="sip:echo@127.0.0.1:5070"))
    project = await stub.CreateProject(pb.CreateProjectRequest(account_id="acc", name="P"))
    test = await stub.CreateTest(pb.CreateTestRequest(account_id="acc", project_id=project.id, name="T", spec=spec))
    run = await stub.StartRun(pb.StartRunRequest(account_id="acc", project_id=project.id, test_id=test.id))
    producer = Producer(settings.kafka_bootstrap)
    await producer.start()

    async def send(msg):
        env = envelope_for(msg, f"media-run-{run.id}", 0, run.id, "", "test-engine")
        await producer.send(settings.topic("media"), run.id, env.SerializeToString())

    async def renew_for(seconds: float) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        while loop.time() < until:
            await send(media_pb2.RunLeaseRenewed(run_id=run.id, engine_id="e1", lease_s=int(LEASE_S)))
            await asyncio.sleep(0.3)

    store = svc.store
    try:
        await send(media_pb2.RunMediaStarted(run_id=run.id, engine_id="e1"))
        await wait_status(stub, project.id, run.id, "RUNNING")
        # the disk fills: no page left, then every byte of the last one taken
        await store._run(lambda c: c.execute(
            f"PRAGMA max_page_count = {c.execute('PRAGMA page_count').fetchone()[0] + 2}").fetchone())
        for size in (3000, 300, 30, 1):
            for _ in range(200):
                try:
                    await store.append_to_stream("filler", StreamState.ANY, [
                        new_event(media_pb2.RunLeaseRenewed(run_id="x" * size), correlation_id="x", source="t")])
                except StoreUnavailable:
                    break
        await send(media_pb2.CallMeasured(run_id=run.id, engine_id="e1", call=m_pb2.CallMeasurement(
            call_id="c0", outcome=m_pb2.SUCCESS, sip_code=200, mos=4.4)))
        await renew_for(8 * LEASE_S)  # the store stays full for 8 leases, the engine renewing
        await store._run(lambda c: c.execute("PRAGMA max_page_count = 1073741823").fetchone())  # room again
        await renew_for(3 * LEASE_S)
        still = await status_of(stub, project.id, run.id)
        assert pb.RunStatus.Name(still.status) == "RUNNING", still.result_description
        await send(media_pb2.RunMediaFinished(run_id=run.id, engine_id="e1", summary=m_pb2.RunSummary(
            calls_attempted=1, calls_answered=1, asr=1.0, mos_min=4.4)))
        done = await wait_status(stub, project.id, run.id, "COMPLETED", limit_s=60)
    finally:
        await producer.stop()
    assert done.calls_recorded == 1, done.result_description
