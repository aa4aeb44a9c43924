"""The billing service's invariants on its real store (SQLite, and PostgreSQL when it answers) and
the real broker:
- the balance always equals the sum of the wallet's ledger events;
- a media event delivered twice (here: replayed to a restarted billing) charges once;
- N concurrent run starts on a wallet that pays for exactly k: exactly k start, never an overdraft;
- billing SIGKILLed in the middle of a metered call and restarted: the final charge equals the
  call's billed seconds x rate;
- bad input is INVALID_ARGUMENT and records nothing;
- a declined auto top-up is an event and the wallet keeps working down to zero."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid

import grpc
import httpx
import pytest

from callgauge_billing.adapters.payments import DecliningPaymentProvider, LocalPaymentProvider
from callgauge_billing.bootstrap import bootstrap
from callgauge_billing.handlers.app import wallet_stream
from callgauge_bus.codec import decode_payload, envelope_for
from callgauge_bus.kafka import Producer
from callgauge_app.settings import PlatformSettings
from callgauge_platform.stack import Stack, free_port
from callgauge_proto.callgauge.billing.v1 import billing_service_pb2 as pb
from callgauge_proto.callgauge.billing.v1 import billing_service_pb2_grpc as pb_grpc
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import billing_pb2, media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as rpb
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2_grpc as rpb_grpc
from service_clients import acl_stub

def call_spec(duration_ms: int = 5000, calls: int = 1) -> spec_pb2.TestSpec:
    s = spec_pb2.TestSpec()
    s.steps.add().actions.add().call.CopyFrom(spec_pb2.CallAction(
        dial_destination="sip:echo@127.0.0.1:5070", duration_ms=duration_ms, max_total_calls=calls))
    return s


def make_settings(tmp_path, broker, topic_prefix, **kw) -> PlatformSettings:
    return PlatformSettings(data_dir=tmp_path, eventstore_url=f"sqlite:///{tmp_path}/", kafka_bootstrap=broker.bootstrap,
                    kafka_topic_prefix=topic_prefix, billing_grpc=f"127.0.0.1:{free_port()}",
                    billing_http_port=free_port(), runs_grpc=f"127.0.0.1:{free_port()}", runs_http_port=free_port(),
                    dial_allow_cidrs="127.0.0.0/8",  # call_spec dials loopback (denied by default)
                    **{"billing_mode": "prepaid", **kw})


@pytest.fixture
async def billing(store_backend, tmp_path, broker, topic_prefix):
    """The billing service in this process on the test's store: (settings, service, stub). Welcome credit 1000."""
    settings = make_settings(tmp_path, broker, topic_prefix, billing_welcome_credit_minor=1000)
    svc = bootstrap(settings, store=store_backend.new_store("billing"), payments=DecliningPaymentProvider())
    await svc.start()
    stub = acl_stub(settings, "billing", pb_grpc.BillingServiceStub)
    yield settings, svc, stub
    await stub.close()
    await svc.stop()


async def ledger(store, account: str, mode: str = "live") -> list:
    return [decode_payload(e.type, e.data) for e in await store.read_stream(wallet_stream(account, mode))]


def ledger_sum(events) -> int:
    return (sum(e.amount_minor for e in events if isinstance(e, billing_pb2.WalletCredited))
            - sum(e.amount_minor for e in events if isinstance(e, billing_pb2.UsageCharged)))


async def poll(check, what: str, limit_s: float = 20.0):
    """Bounded poll: the value of `check()` once truthy; fails naming `what` after `limit_s`."""
    try:
        async with asyncio.timeout(limit_s):
            while True:
                value = await check()
                if value:
                    return value
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"{what}: not reached within {limit_s} s")


class MediaFeed:
    """Publishes media events as a media-engine's relay would; `send` returns the record bytes so
    a test can deliver the very same record again."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings, self.producer = settings, Producer(settings.kafka_bootstrap)

    async def __aenter__(self) -> MediaFeed:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.producer.stop()

    async def send(self, msg, raw: bytes | None = None) -> bytes:
        raw = raw or envelope_for(msg, f"media-call-{getattr(msg, 'call_id', '')}", 0, msg.run_id, "",
                                  "media-engine").SerializeToString()
        await self.producer.send(self.settings.topic("media"), msg.run_id, raw)
        return raw

    async def send_run_event(self, msg) -> None:
        env = envelope_for(msg, f"run-{msg.run_id}", 1, msg.run_id, "", "runs")
        await self.producer.send(self.settings.topic("runs"), msg.run_id, env.SerializeToString())


async def test_the_balance_is_the_sum_of_the_ledger(billing) -> None:
    _, svc, stub = billing
    acc = f"acc-{uuid.uuid4().hex[:6]}"
    # the fixture's provider declines every payment: the operator credits (no payment)
    await stub.Credit(pb.CreditRequest(account_id=acc, amount_minor=2500, currency="EUR"))
    await stub.Credit(pb.CreditRequest(account_id=acc, amount_minor=300, credit_id="same"))
    await stub.Credit(pb.CreditRequest(account_id=acc, amount_minor=300, credit_id="same"))  # idempotent
    await stub.Reserve(pb.ReserveRequest(account_id=acc, run_id="r1", spec=call_spec(10_000, 2)))
    await stub.Charge(pb.ChargeRequest(account_id=acc, run_id="r1", kind="registration", quantity=3, charge_id="c1"))
    await stub.Charge(pb.ChargeRequest(account_id=acc, run_id="r1", kind="registration", quantity=3, charge_id="c1"))
    await stub.Charge(pb.ChargeRequest(account_id=acc, run_id="r1", kind="probe_run", quantity=1, charge_id="p1"))
    await stub.Release(pb.ReleaseRequest(account_id=acc, run_id="r1"))
    w = await stub.GetWallet(pb.GetWalletRequest(account_id=acc))
    events = await ledger(svc.store, acc)
    assert w.balance_minor == ledger_sum(events) == 1000 + 2500 + 300 - 3 - 5
    assert w.reserved_minor == 0 and w.available_minor == w.balance_minor
    history = await stub.ListUsage(pb.ListUsageRequest(account_id=acc, per_page=100))
    assert history.entries[0].type == "settlement" and history.total == len(events) - 1  # WalletOpened not listed
    usage = await stub.GetUsage(pb.GetUsageRequest(account_id=acc, group_by="day"))
    assert usage.total_minor == 8 and usage.groups[0].registrations == 3 and usage.groups[0].probe_runs == 1


BAD_TOP_UPS = {
    "zero": pb.TopUpRequest(amount_minor=0), "negative": pb.TopUpRequest(amount_minor=-10),
    "absurd": pb.TopUpRequest(amount_minor=10**12), "unknown-currency": pb.TopUpRequest(amount_minor=100, currency="XXX"),
    "other-currency": pb.TopUpRequest(amount_minor=100, currency="USD"),
    "bad-mode": pb.TopUpRequest(amount_minor=100, mode="sandbox"),
}


async def test_bad_input_is_invalid_argument_and_records_nothing(billing) -> None:
    _, svc, stub = billing
    acc = f"acc-{uuid.uuid4().hex[:6]}"
    await stub.GetWallet(pb.GetWalletRequest(account_id=acc))
    before = await svc.store.read_stream(wallet_stream(acc))
    for name, request_ in BAD_TOP_UPS.items():
        request_.account_id = acc
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.TopUp(request_)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert json.loads(dict(err.value.trailing_metadata())["callgauge-field-errors"]), name
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SetAutoTopUp(pb.SetAutoTopUpRequest(account_id=acc, enabled=True, threshold_minor=-1,
                                                       amount_minor=100))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await svc.store.read_stream(wallet_stream(acc)) == before
    assert await svc.store.stream_version(wallet_stream(acc)) is None  # not even opened


async def test_a_media_event_delivered_twice_charges_once(billing, tmp_path, broker, topic_prefix) -> None:
    settings, svc, stub = billing
    acc, run = f"acc-{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    await stub.Reserve(pb.ReserveRequest(account_id=acc, run_id=run, spec=call_spec(30_000)))
    async with MediaFeed(settings) as feed:
        raw = await feed.send(media_pb2.CallProgress(run_id=run, call_id=f"{run}:0.0.0", up_ms=4100))
        await feed.producer.send(settings.topic("media"), run, raw)  # delivered twice in a row

        async def charged():
            w = await stub.GetWallet(pb.GetWalletRequest(account_id=acc))
            return w.balance_minor == 996 and w

        await poll(charged, "4 seconds charged")
        # A relay replay after a restart: the same record, to a billing that forgot what it saw.
        await svc.consumer.stop()
        svc.consumer._seen.clear()
        await svc.consumer.start()
        await feed.producer.send(settings.topic("media"), run, raw)
        measured = m_pb2.CallMeasurement(call_id=f"{run}:0.0.0", outcome=m_pb2.SUCCESS, duration_ms=6200)
        final = await feed.send(media_pb2.CallMeasured(run_id=run, call=measured))
        await feed.producer.send(settings.topic("media"), run, final)

        async def settled():
            w = await stub.GetWallet(pb.GetWalletRequest(account_id=acc))
            return w.balance_minor == 993 and w

        await poll(settled, "7 billed seconds")
        # a failed registration: its role=register CallMeasured is not what bills it (a lost one
        # carries another id, "<ua>.refresh"), its RegistrationMeasured is, once however often it
        # is delivered; a user that registered fine is an attempt too
        await feed.send(media_pb2.CallMeasured(run_id=run, call=m_pb2.CallMeasurement(
            call_id=f"{run}:0.1.0.refresh", role="register", outcome=m_pb2.REGISTRATION_FAILED, sip_code=408)))
        failed = media_pb2.RegistrationMeasured(run_id=run, registration=m_pb2.RegistrationMeasurement(
            registration_id=f"{run}:0.1.0", outcome=m_pb2.REGISTRATION_FAILED, sip_code=408))
        await feed.send(failed)
        await feed.send(failed)  # another record of the same attempt (a new event id)

        async def registered():
            w = await stub.GetWallet(pb.GetWalletRequest(account_id=acc))
            return w.balance_minor == 992 and w

        await poll(registered, "one registration attempt charged")
        await feed.send(media_pb2.RegistrationMeasured(run_id=run, registration=m_pb2.RegistrationMeasurement(
            registration_id=f"{run}:0.1.1", outcome=m_pb2.SUCCESS, sip_code=200)))

        async def registered_ok():
            w = await stub.GetWallet(pb.GetWalletRequest(account_id=acc))
            return w.balance_minor == 991 and w

        await poll(registered_ok, "the successful registration charged")
        await feed.send_run_event(runs_pb2.RunCompleted(run_id=run))

        async def released():
            w = await stub.GetWallet(pb.GetWalletRequest(account_id=acc))
            return w.reserved_minor == 0 and w

        await poll(released, "the hold released")
    events = await ledger(svc.store, acc)
    charges = [e for e in events if isinstance(e, billing_pb2.UsageCharged)]
    assert [(c.kind, c.quantity, c.total_quantity) for c in charges] == [
        ("call_seconds", 4, 4), ("call_seconds", 3, 7), ("registration", 1, 1), ("registration", 1, 1)]
    assert ledger_sum(events) == 991
    [settled_event] = [e for e in events if isinstance(e, billing_pb2.ReservationSettled)]
    assert settled_event.charged_minor == 9 and settled_event.run_outcome == "COMPLETED"


async def test_test_mode_records_usage_and_charges_nothing(billing) -> None:
    settings, svc, stub = billing
    acc, run = f"acc-{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    r = await stub.Reserve(pb.ReserveRequest(account_id=acc, mode="test", run_id=run, spec=call_spec(10**6, 1000)))
    assert r.amount_minor == 0
    async with MediaFeed(settings) as feed:
        await feed.send(media_pb2.CallMeasured(run_id=run, call=m_pb2.CallMeasurement(
            call_id=f"{run}:0.0.0", outcome=m_pb2.SUCCESS, duration_ms=9000)))

        async def recorded():
            return [e for e in await ledger(svc.store, acc, "test") if isinstance(e, billing_pb2.UsageCharged)]

        [c] = await poll(recorded, "test-mode usage recorded")
    assert (c.mode, c.quantity, c.amount_minor) == ("test", 9, 0)
    assert (await stub.GetWallet(pb.GetWalletRequest(account_id=acc, mode="test"))).balance_minor == 1000
    assert (await stub.GetWallet(pb.GetWalletRequest(account_id=acc))).version == 0  # live wallet untouched


async def test_a_declined_auto_top_up_is_an_event_and_the_wallet_runs_down_to_zero(billing) -> None:
    settings, svc, stub = billing
    acc, run = f"acc-{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    await stub.SetAutoTopUp(pb.SetAutoTopUpRequest(account_id=acc, enabled=True, threshold_minor=500,
                                                   amount_minor=2000))
    await stub.Reserve(pb.ReserveRequest(account_id=acc, run_id=run, spec=call_spec(1000)))
    w = await stub.Charge(pb.ChargeRequest(account_id=acc, run_id=run, kind="probe_run", quantity=120, charge_id="a"))
    assert w.balance_minor == 400  # below the threshold: the provider declined
    w = await stub.Charge(pb.ChargeRequest(account_id=acc, run_id=run, kind="probe_run", quantity=100, charge_id="b"))
    assert w.balance_minor == 0 and w.exhausted
    events = await ledger(svc.store, acc)
    declined = [e for e in events if isinstance(e, billing_pb2.AutoTopUpDeclined)]
    assert len(declined) == 1 and declined[0].amount_minor == 2000  # not retried on every charge
    [x] = [e for e in events if isinstance(e, billing_pb2.BalanceExhausted)]
    assert x.uncollected_minor == 100 and ledger_sum(events) == 0


async def test_an_accepted_auto_top_up_credits_the_wallet(tmp_path, broker, topic_prefix) -> None:
    settings = make_settings(tmp_path, broker, topic_prefix, billing_welcome_credit_minor=100)
    svc = bootstrap(settings, payments=LocalPaymentProvider())  # always pays
    await svc.start()
    try:
        async with acl_stub(settings, "billing", pb_grpc.BillingServiceStub) as stub:
            w = await stub.SetAutoTopUp(pb.SetAutoTopUpRequest(account_id="a", enabled=True, threshold_minor=500,
                                                               amount_minor=2000))
            assert w.balance_minor == 2100  # already below the threshold: topped up at once
            history = await stub.ListUsage(pb.ListUsageRequest(account_id="a"))
            assert history.entries[0].kind == "auto_top_up"
    finally:
        await svc.stop()


async def test_n_concurrent_starts_on_a_wallet_that_pays_for_k_start_exactly_k(tmp_path, broker, topic_prefix):
    from callgauge_runs.bootstrap import bootstrap as runs_bootstrap

    n, k, per_run = 8, 3, 6  # one 5 s call holds (5 + 1) s x 1 per second
    settings = make_settings(tmp_path, broker, topic_prefix, billing_welcome_credit_minor=k * per_run)
    billing_svc, runs_svc = bootstrap(settings), runs_bootstrap(settings)
    await billing_svc.start()
    await runs_svc.start()
    try:
        async with acl_stub(settings, "runs", rpb_grpc.RunsServiceStub) as runs, \
                acl_stub(settings, "billing", pb_grpc.BillingServiceStub) as bill:
            p = await runs.CreateProject(rpb.CreateProjectRequest(account_id="acc", name="P"))
            t = await runs.CreateTest(rpb.CreateTestRequest(account_id="acc", project_id=p.id, name="T",
                                                            spec=call_spec(5000)))
            results = await asyncio.gather(*(
                runs.StartRun(rpb.StartRunRequest(account_id="acc", project_id=p.id, test_id=t.id, mode="live"))
                for _ in range(n)), return_exceptions=True)
            started = [r for r in results if isinstance(r, rpb.Run)]
            refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
            assert len(started) == k and len(refused) == n - k, results
            for err in refused:
                assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
                md = dict(err.trailing_metadata())
                assert md["callgauge-error-code"] == "INSUFFICIENT_BALANCE"
                assert json.loads(md["callgauge-error-details"]) == {"needed": per_run, "available": 0,
                                                                      "currency": "EUR"}
            w = await bill.GetWallet(pb.GetWalletRequest(account_id="acc"))
            assert (w.balance_minor, w.reserved_minor, w.available_minor) == (k * per_run, k * per_run, 0)
            listed = await runs.ListRuns(rpb.ListRunsRequest(account_id="acc", project_id=p.id))
            assert listed.total == k
    finally:
        await runs_svc.stop()
        await billing_svc.stop()


def _billing_process(settings: PlatformSettings) -> subprocess.Popen:
    env = Stack(settings).env()
    return subprocess.Popen([sys.executable, "-m", "callgauge_billing"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


async def _ready(settings: PlatformSettings, proc: subprocess.Popen) -> None:
    async def ok():
        assert proc.poll() is None, f"billing exited with {proc.returncode}"
        try:
            async with httpx.AsyncClient() as c:
                return (await c.get(f"http://127.0.0.1:{settings.billing_http_port}/readyz", timeout=1)).status_code == 200
        except httpx.HTTPError:
            return False

    await poll(ok, "billing ready", 60)


async def test_billing_killed_mid_call_and_restarted_charges_exactly_the_billed_seconds(tmp_path, broker,
                                                                                      topic_prefix) -> None:
    settings = make_settings(tmp_path, broker, topic_prefix, billing_welcome_credit_minor=10_000,
                             billing_price_call_second_minor=7)
    run = str(uuid.uuid4())
    call = f"{run}:0.0.0"
    proc = _billing_process(settings)
    try:
        await _ready(settings, proc)
        async with acl_stub(settings, "billing", pb_grpc.BillingServiceStub) as stub:
            await stub.Reserve(pb.ReserveRequest(account_id="acc", run_id=run, spec=call_spec(60_000)))
        async with MediaFeed(settings) as feed:
            for up in (2000, 4000, 6000):
                await feed.send(media_pb2.CallProgress(run_id=run, call_id=call, up_ms=up))

            async def six_seconds():
                async with acl_stub(settings, "billing", pb_grpc.BillingServiceStub) as stub:
                    w = await stub.GetWallet(pb.GetWalletRequest(account_id="acc"))
                    return w.balance_minor == 10_000 - 6 * 7

            await poll(six_seconds, "6 s charged before the kill")
            replay = await feed.send(media_pb2.CallProgress(run_id=run, call_id=call, up_ms=8000))
            os.kill(proc.pid, signal.SIGKILL)  # in the middle of the call, maybe of that very charge
            proc.wait(10)
            for up in (10_000, 12_000):
                await feed.send(media_pb2.CallProgress(run_id=run, call_id=call, up_ms=up))
            await feed.producer.send(settings.topic("media"), run, replay)  # a redelivery on top
            proc = _billing_process(settings)
            await _ready(settings, proc)
            measured = m_pb2.CallMeasurement(call_id=call, outcome=m_pb2.SUCCESS, duration_ms=12_400)
            await feed.send(media_pb2.CallMeasured(run_id=run, call=measured))
            await feed.send_run_event(runs_pb2.RunCompleted(run_id=run))

            billed = 13  # ceil(12.4 s)

            async def settled():
                # the run's end and its calls' final measurements come on two topics, in no fixed
                # order: settled is the hold released and the final measurement charged
                async with acl_stub(settings, "billing", pb_grpc.BillingServiceStub) as stub:
                    w = await stub.GetWallet(pb.GetWalletRequest(account_id="acc"))
                    usage = await stub.ListUsage(pb.ListUsageRequest(account_id="acc", per_page=100))
                charged = sum(e.quantity for e in usage.entries if e.type == "charge" and e.run_id == run)
                return w.reserved_minor == 0 and charged >= billed and w

            w = await poll(settled, "the run settled after the restart", 30)
        assert w.balance_minor == 10_000 - billed * 7
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
    from callgauge_eventstore.factory import open_event_store

    store = open_event_store(settings.eventstore_url_for(), "billing")
    try:
        charges = [e for e in await ledger(store, "acc") if isinstance(e, billing_pb2.UsageCharged)]
    finally:
        await store.close()
    assert sum(c.quantity for c in charges) == billed and charges[-1].total_quantity == billed
    assert sum(c.amount_minor for c in charges) == billed * 7


async def test_a_start_while_billing_is_down_is_unavailable_and_starts_nothing(tmp_path, broker, topic_prefix):
    from callgauge_runs.bootstrap import bootstrap as runs_bootstrap

    settings = make_settings(tmp_path, broker, topic_prefix)  # nothing listens on billing_grpc
    runs_svc = runs_bootstrap(settings)
    await runs_svc.start()
    try:
        async with acl_stub(settings, "runs", rpb_grpc.RunsServiceStub) as runs:
            p = await runs.CreateProject(rpb.CreateProjectRequest(account_id="acc", name="P"))
            t = await runs.CreateTest(rpb.CreateTestRequest(account_id="acc", project_id=p.id, name="T",
                                                            spec=call_spec(5000)))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await runs.StartRun(rpb.StartRunRequest(account_id="acc", project_id=p.id, test_id=t.id))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "billing" in err.value.details()
            assert (await runs.ListRuns(rpb.ListRunsRequest(account_id="acc", project_id=p.id))).total == 0
    finally:
        await runs_svc.stop()


async def test_a_probe_run_is_charged_the_probe_price_once(billing) -> None:
    settings, svc, stub = billing
    acc, run = f"acc-{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    await stub.Reserve(pb.ReserveRequest(account_id=acc, run_id=run, spec=call_spec(1000)))
    requested = runs_pb2.RunRequested(run_id=run, account_id=acc, mode="live", metadata={"probe_id": "p1"})
    async with MediaFeed(settings) as feed:
        await feed.send_run_event(requested)
        await feed.send_run_event(requested)  # a second record of it (another event id)
        await feed.send_run_event(runs_pb2.RunRequested(run_id=str(uuid.uuid4()), account_id=acc))  # not a probe

        async def charged():
            return [e for e in await ledger(svc.store, acc) if isinstance(e, billing_pb2.UsageCharged)]

        [c] = await poll(charged, "the probe run charged")
        await feed.send_run_event(runs_pb2.RunCompleted(run_id=run))

        async def settled():
            return any(isinstance(e, billing_pb2.ReservationSettled) for e in await ledger(svc.store, acc))

        await poll(settled, "the run settled")
    assert (c.kind, c.quantity, c.amount_minor) == ("probe_run", 1, settings.billing_price_probe_run_minor)
    assert len(await charged()) == 1
