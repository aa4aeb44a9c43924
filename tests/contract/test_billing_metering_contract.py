"""Billing's call metering is exact on every event store: a run's call seconds are charged exactly
once, as the calls' final measurements say, whatever the consumer is fed — interim reports that ran
ahead of the measured talk time, the same batch delivered twice, a batch that overlaps one already
charged, a batch whose wallet write failed and is delivered again, and a restart (a new billing on
the same store, with nothing cached). Same backends as the event-store contract suite."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pytest

from callgauge_billing.adapters.payments import DecliningPaymentProvider
from callgauge_billing.domain import pricing
from callgauge_billing.handlers.app import BillingApp, BillingConfig, wallet_stream
from callgauge_bus.codec import Delivered, decode_payload, envelope_for
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import billing_pb2, media_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from test_eventstore_contract import bounded

if TYPE_CHECKING:
    from conftest import StoreBackend as Backend  # tests/conftest.py; the `backend` fixture: tests/contract/conftest.py

ACCOUNT, RUN, PRICE, CREDIT = "acc-1", "run-1", 3, 1_000_000
CALLS = 40


def config() -> BillingConfig:
    return BillingConfig(welcome_credit_minor=CREDIT, prices=pricing.Prices(call_second_minor=PRICE),
                         reservation="minimum", billing_mode="prepaid")


def delivered(msg) -> Delivered:
    return Delivered(envelope_for(msg, f"media-{RUN}", 0, RUN, "", "media-engine"), msg)


def call_id(i: int) -> str:
    return f"{RUN}:0.0.{i}"


def measured(i: int) -> Delivered:
    """Call i's final measurement: answered calls talk 1,000.5-1,000.5+i*137 ms (every started second
    billed); every fifth call timed out unanswered."""
    if i % 5 == 4:
        call = m_pb2.CallMeasurement(call_id=call_id(i), role="caller", outcome=m_pb2.TIMEOUT, sip_code=408)
    else:
        call = m_pb2.CallMeasurement(call_id=call_id(i), role="caller", outcome=m_pb2.SUCCESS, sip_code=200,
                                     duration_ms=1000.5 + i * 137)
    return delivered(media_pb2.CallMeasured(run_id=RUN, engine_id="e1", call=call))


def progress(i: int, up_ms: int) -> Delivered:
    """An interim report by the engine's clock, which may run ahead of the measured talk time (it
    saw the answer late, under load)."""
    return delivered(media_pb2.CallProgress(run_id=RUN, engine_id="e1", call_id=call_id(i), up_ms=up_ms))


def expected_seconds() -> int:
    return sum(math.ceil((1000.5 + i * 137) / 1000 - 1e-9) for i in range(CALLS) if i % 5 != 4)


async def charged(store) -> tuple[int, int]:
    """(money charged, call seconds charged) of the run, from the wallet's ledger."""
    money = seconds = 0
    for ev in await bounded(store.read_stream(wallet_stream(ACCOUNT))):
        p = decode_payload(ev.type, ev.data)
        if isinstance(p, billing_pb2.UsageCharged) and p.run_id == RUN:
            money += p.amount_minor
            seconds += p.quantity
    return money, seconds


async def new_app(b: Backend) -> BillingApp:
    app = BillingApp(b.new_store(), config(), DecliningPaymentProvider())
    await bounded(app.start())
    return app


async def assert_exact(app: BillingApp) -> None:
    money, seconds = await charged(app.store)
    assert seconds == expected_seconds()
    assert money == expected_seconds() * PRICE
    state, _ = await bounded(app.get_wallet(ACCOUNT, "live"))
    assert state.balance_minor == CREDIT - expected_seconds() * PRICE


class FailingAppends:
    """The store of a billing whose next wallet write fails (the connection dropped mid-commit):
    the append raises and nothing of it is recorded."""

    def __init__(self, store) -> None:
        self._store, self.fail = store, 0

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def append_to_stream(self, stream, version, events):
        if self.fail and stream.startswith("wallet-"):
            self.fail -= 1
            raise ConnectionError("connection lost during COMMIT")
        return await self._store.append_to_stream(stream, version, events)


async def test_interim_reports_ahead_of_the_measurement_and_redeliveries_charge_the_measured_seconds(
        backend: Backend) -> None:
    app = await new_app(backend)
    await bounded(app.reserve(ACCOUNT, "live", "p1", "t1", RUN, spec_pb2.TestSpec()))
    # the engine's clock ran 2-3 s ahead for every call: ticks of 1, then 3 s (more than measured)
    first = [progress(i, 1950) for i in range(CALLS)] + [progress(i, 3900) for i in range(0, CALLS, 2)]
    finals = [measured(i) for i in range(CALLS)]
    late = [progress(i, 5850) for i in range(0, CALLS, 3)]  # ticks appended after the calls' ends
    await bounded(app.on_batch(first + finals[:CALLS // 2]))
    await bounded(app.on_batch(first[CALLS // 2:] + finals + late))  # overlaps what is charged
    await assert_exact(app)
    await bounded(app.on_batch(first + finals + late))  # the whole lot again
    await assert_exact(app)

    # a restart: a new billing on the same store (nothing cached), the consumer replays from its offset
    again = await new_app(backend)
    await bounded(again.on_batch(first + finals + late))
    await assert_exact(again)


async def test_a_batch_whose_wallet_write_failed_is_charged_once_when_delivered_again(
        backend: Backend) -> None:
    app = await new_app(backend)
    await bounded(app.reserve(ACCOUNT, "live", "p1", "t1", RUN, spec_pb2.TestSpec()))
    batch = [progress(i, 2900) for i in range(CALLS)] + [measured(i) for i in range(CALLS)]
    failing = FailingAppends(app.store)
    app.store = failing
    failing.fail = 1
    with pytest.raises(ConnectionError):
        await bounded(app.on_batch(batch))
    assert await charged(failing) == (0, 0)  # the failed write left nothing
    await bounded(app.on_batch(batch))  # the consumer did not commit its offset: the batch again
    await assert_exact(app)
    again = await new_app(backend)  # and once more after a restart
    await bounded(again.on_batch(batch))
    await assert_exact(again)
