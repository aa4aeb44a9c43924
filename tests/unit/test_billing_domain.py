"""The Wallet decider, given events / when a command / then events (or an error)."""

from __future__ import annotations

import pytest

from callgauge_billing.domain import pricing, wallet
from callgauge_billing.domain.errors import InsufficientBalance, Invalid
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import billing_pb2 as ev

MAX = 1_000_000


def given(*events, mode: str = "live") -> wallet.Wallet:
    state = wallet.fold([ev.WalletOpened(account_id="acc", currency="EUR", mode=mode), *events])
    assert state is not None
    return state


def credited(amount: int, top_up_id: str = "t1") -> ev.WalletCredited:
    return ev.WalletCredited(account_id="acc", amount_minor=amount, currency="EUR", reason="top_up",
                             top_up_id=top_up_id)


def reserved(run_id: str, amount: int) -> ev.FundsReserved:
    return ev.FundsReserved(account_id="acc", run_id=run_id, amount_minor=amount, currency="EUR",
                            project_id="p1", test_id="t1")


def charged(run_id: str, call_id: str, total: int, amount: int) -> ev.UsageCharged:
    return ev.UsageCharged(account_id="acc", run_id=run_id, call_id=call_id, kind="call_seconds",
                           quantity=total, total_quantity=total, amount_minor=amount, currency="EUR")


def test_opening_credits_the_welcome_amount_once() -> None:
    events = wallet.decide_open(None, "acc", "live", "EUR", 500)
    assert [type(e).__name__ for e in events] == ["WalletOpened", "WalletCredited"]
    state = wallet.fold(events)
    assert state.balance_minor == 500
    assert wallet.decide_open(state, "acc", "live", "EUR", 500) == []


def test_top_up_credits_and_a_repeated_top_up_id_credits_once() -> None:
    state = given()
    [e] = wallet.decide_top_up(state, wallet.TopUp(2500, "EUR", "t1"), MAX)
    assert isinstance(e, ev.WalletCredited) and e.amount_minor == 2500 and e.balance_after_minor == 2500
    assert wallet.decide_top_up(wallet.evolve(state, e), wallet.TopUp(2500, "EUR", "t1"), MAX) == []


@pytest.mark.parametrize("amount,currency,field", [
    (0, "EUR", "amount_minor"), (-5, "EUR", "amount_minor"), (MAX + 1, "EUR", "amount_minor"),
    (100, "XXX", "currency"), (100, "USD", "currency"),
])
def test_bad_top_ups_are_refused_with_the_field(amount, currency, field) -> None:
    with pytest.raises(Invalid) as info:
        wallet.decide_top_up(given(), wallet.TopUp(amount, currency, "t"), MAX)
    assert [field] in [e.loc for e in info.value.errors]


def test_reserve_holds_the_amount_and_lowers_available() -> None:
    state = given(credited(1000))
    [e] = wallet.decide_reserve(state, wallet.Reserve("r1", 600, "p1", "t1", 1))
    assert isinstance(e, ev.FundsReserved) and e.available_after_minor == 400
    after = wallet.evolve(state, e)
    assert (after.balance_minor, after.reserved_minor, after.available_minor) == (1000, 600, 400)


def test_reserve_beyond_available_is_insufficient_with_needed_and_available() -> None:
    state = given(credited(1000), reserved("r1", 600))
    with pytest.raises(InsufficientBalance) as info:
        wallet.decide_reserve(state, wallet.Reserve("r2", 500))
    assert (info.value.needed, info.value.available) == (500, 400)


def test_minimum_balance_is_needed_to_start_even_for_a_free_run() -> None:
    with pytest.raises(InsufficientBalance):
        wallet.decide_reserve(given(), wallet.Reserve("r1", 0, min_balance_minor=1))


def test_test_mode_reserves_nothing_and_meters_at_zero() -> None:
    state = given(mode="test")
    [r] = wallet.decide_reserve(state, wallet.Reserve("r1", 10_000, min_balance_minor=1))
    assert r.amount_minor == 0
    state = wallet.evolve(state, r)
    [c] = wallet.decide_meter(state, wallet.Meter("r1", "c1", "call_seconds", 10, 3))
    assert (c.amount_minor, c.quantity, c.mode) == (0, 10, "test")
    assert wallet.evolve(state, c).balance_minor == 0


def test_metering_charges_only_the_growth_of_a_call() -> None:
    state = given(credited(1000), reserved("r1", 100), charged("r1", "c1", 4, 8))
    [c] = wallet.decide_meter(state, wallet.Meter("r1", "c1", "call_seconds", 6, 2, "m1"))
    assert (c.quantity, c.total_quantity, c.amount_minor, c.balance_after_minor) == (2, 6, 4, 1000 - 8 - 4)
    assert (c.project_id, c.test_id) == ("p1", "t1")
    assert wallet.decide_meter(state, wallet.Meter("r1", "c1", "call_seconds", 4, 2)) == []  # a repeat
    assert wallet.decide_meter(state, wallet.Meter("r1", "c1", "call_seconds", 3, 2)) == []  # late, smaller


def test_metered_units_are_kept_per_run() -> None:
    """What each call was billed is remembered per run (a charge copies only its run's map); a
    repeat is a no-op in its own run and does not touch another run's calls."""
    state = given(credited(1000), reserved("r1", 100), reserved("r2", 100),
                  charged("r1", "c1", 4, 8), charged("r2", "c9", 1, 2), charged("r1", "c1", 5, 2))
    assert {run: {k: m.total for k, m in units.items()} for run, units in state.units.items()} == {
        "r1": {"call_seconds:c1": 5}, "r2": {"call_seconds:c9": 1}}
    assert wallet.decide_meter(state, wallet.Meter("r1", "c1", "call_seconds", 5, 2)) == []
    [c] = wallet.decide_meter(state, wallet.Meter("r2", "c9", "call_seconds", 3, 2))
    assert (c.quantity, c.amount_minor) == (2, 4)


def meter_all(state: wallet.Wallet, *cmds: wallet.Meter) -> tuple[wallet.Wallet, list]:
    out = []
    for cmd in cmds:
        events = wallet.decide_meter(state, cmd)
        state = wallet.fold(events, state)
        out.extend(events)
    return state, out


def test_the_final_measurement_gives_back_what_the_interim_reports_charged_too_much() -> None:
    """The engine's clock of a call that is up ran ahead of the measured talk time (it saw the
    answer late): the CallProgress said 3 s, the CallMeasured 2 s; the call costs 2 s."""
    state = given(credited(1000), reserved("r1", 100))
    state, events = meter_all(state, wallet.Meter("r1", "c1", "call_seconds", 3, 2, "p1"),
                              wallet.Meter("r1", "c1", "call_seconds", 2, 2, "m1", final=True))
    assert [(e.quantity, e.total_quantity, e.amount_minor, e.final) for e in events] == [(3, 3, 6, False),
                                                                                        (-1, 2, -2, True)]
    assert (state.balance_minor, state.holds["r1"].charged) == (1000 - 4, 4)
    assert state.units["r1"]["call_seconds:c1"] == wallet.Metered(2, True, 0)


def test_after_the_final_measurement_interim_reports_and_repeats_charge_nothing() -> None:
    state = given(credited(1000), reserved("r1", 100))
    state, _ = meter_all(state, wallet.Meter("r1", "c1", "call_seconds", 2, 1, "m1", final=True))
    for late in (wallet.Meter("r1", "c1", "call_seconds", 4, 1, "p2"),  # a tick appended after the end
                 wallet.Meter("r1", "c1", "call_seconds", 2, 1, "m1", final=True),
                 wallet.Meter("r1", "c1", "call_seconds", 1, 1, "m2", final=True)):
        assert wallet.decide_meter(state, late) == []
    assert state.balance_minor == 998


def test_a_final_measurement_equal_to_the_interim_charges_marks_the_call_final_at_zero() -> None:
    state = given(credited(1000), reserved("r1", 100))
    state, events = meter_all(state, wallet.Meter("r1", "c1", "call_seconds", 2, 1, "p1"),
                              wallet.Meter("r1", "c1", "call_seconds", 2, 1, "m1", final=True),
                              wallet.Meter("r1", "c1", "call_seconds", 3, 1, "p2"))
    assert [(e.quantity, e.amount_minor, e.final) for e in events] == [(2, 2, False), (0, 0, True)]
    assert state.balance_minor == 998
    # a call never charged that ends without a billed second: nothing to record
    assert wallet.decide_meter(state, wallet.Meter("r1", "c2", "call_seconds", 0, 1, "m2", final=True)) == []


def test_a_correction_gives_back_the_uncollected_part_first() -> None:
    """Interim charges the balance could not fully cover: the excess given back is what was never
    taken first, so the balance never gains money that was not paid."""
    state = given(credited(3), reserved("r1", 0))
    state, events = meter_all(state, wallet.Meter("r1", "c1", "call_seconds", 5, 1, "p1"),
                              wallet.Meter("r1", "c1", "call_seconds", 2, 1, "m1", final=True))
    charge, _exhausted, fix = events
    assert (charge.amount_minor, charge.uncollected_minor) == (3, 2)
    assert (fix.quantity, fix.amount_minor, fix.uncollected_minor) == (-3, -1, -2)
    assert state.balance_minor == 1  # 2 s cost 2 of the 3 paid
    assert state.units["r1"]["call_seconds:c1"] == wallet.Metered(2, True, 0)


def test_charges_count_against_the_run_hold_and_settlement_releases_the_rest() -> None:
    state = given(credited(1000), reserved("r1", 100), charged("r1", "c1", 30, 30))
    assert (state.balance_minor, state.reserved_minor, state.available_minor) == (970, 70, 900)
    [s] = wallet.decide_release(state, wallet.Release("r1", "COMPLETED"))
    assert (s.reserved_minor, s.charged_minor, s.released_minor) == (100, 30, 70)
    after = wallet.evolve(state, s)
    assert (after.balance_minor, after.reserved_minor) == (970, 0)
    assert wallet.decide_release(after, wallet.Release("r1")) == []


def test_a_charge_never_overdraws_and_exhaustion_is_announced_once() -> None:
    state = given(credited(10), reserved("r1", 0))
    c, x = wallet.decide_meter(state, wallet.Meter("r1", "c1", "call_seconds", 15, 1))
    assert (c.amount_minor, c.uncollected_minor, c.balance_after_minor) == (10, 5, 0)
    assert isinstance(x, ev.BalanceExhausted) and x.run_id == "r1"
    state = wallet.fold([c, x], state)
    assert state.balance_minor == 0 and state.exhausted
    [c2] = wallet.decide_meter(state, wallet.Meter("r1", "c1", "call_seconds", 17, 1))
    assert (c2.amount_minor, c2.uncollected_minor) == (0, 2)
    c3, x3 = wallet.decide_meter(state, wallet.Meter("r2", "c9", "call_seconds", 1, 1))  # another run, later
    assert c3.amount_minor == 0 and isinstance(x3, ev.BalanceExhausted) and x3.run_id == "r2"


def test_a_credit_ends_exhaustion() -> None:
    state = given(credited(10), ev.BalanceExhausted(account_id="acc"), credited(5, "t2"))
    assert not state.exhausted


def test_auto_top_up_below_threshold_and_a_decline_is_not_retried() -> None:
    state = given(credited(100), ev.AutoTopUpConfigured(account_id="acc", enabled=True, threshold_minor=50,
                                                        amount_minor=500))
    assert not wallet.needs_auto_top_up(state)
    state = wallet.evolve(state, charged("r", "c", 60, 60))
    assert wallet.needs_auto_top_up(state)
    [d] = wallet.decide_auto_top_up_result(state, wallet.AutoTopUpResult("a1", 500, False, "card declined"))
    assert isinstance(d, ev.AutoTopUpDeclined) and d.reason == "card declined"
    state = wallet.evolve(state, d)
    assert not wallet.needs_auto_top_up(state)
    [ok] = wallet.decide_auto_top_up_result(state, wallet.AutoTopUpResult("a2", 500, True))
    assert ok.reason == "auto_top_up" and ok.balance_after_minor == 540


def test_auto_top_up_settings_are_validated() -> None:
    with pytest.raises(Invalid):
        wallet.decide_set_auto_top_up(given(), wallet.SetAutoTopUp(True, 0, 500, "EUR"), MAX)
    with pytest.raises(Invalid):
        wallet.decide_set_auto_top_up(given(), wallet.SetAutoTopUp(True, 100, -1, "EUR"), MAX)
    [e] = wallet.decide_set_auto_top_up(given(), wallet.SetAutoTopUp(False, 0, 0, ""), MAX)
    assert not e.enabled


def test_max_cost_of_calls_and_load() -> None:
    spec = spec_pb2.TestSpec()
    spec.steps.add().actions.add().call.CopyFrom(spec_pb2.CallAction(max_total_calls=3, duration_ms=4500))
    load = spec.steps.add().actions.add().load
    load.CopyFrom(spec_pb2.LoadAction(max_total_calls=10, duration_ms=2000, max_concurrency=2, hold_s=5))
    spec.steps.add().actions.add().register.CopyFrom(spec_pb2.RegisterAction(count=4))
    prices = pricing.Prices(call_second_minor=2, registration_minor=3)
    # calls: 3 x (5 + 1) = 18 s; load: min(10 x 3, 2 x (5 + 3)) = 16 s; 4 registrations
    assert pricing.max_units(spec) == (34, 4)
    assert pricing.max_cost(spec, prices) == 34 * 2 + 4 * 3


def test_billed_seconds_count_every_started_second() -> None:
    assert [pricing.billed_seconds(ms) for ms in (0, 1, 999, 1000, 1001, 5020)] == [0, 1, 1, 1, 2, 6]


def test_closing_settles_open_holds_then_the_closed_wallet_charges_reserves_and_credits_nothing() -> None:
    from callgauge_billing.domain.errors import Conflict

    state = given(credited(1000), reserved("r1", 100), charged("r1", "c1", 30, 30))
    settled, closed = wallet.decide_close(state, "src-1")
    assert (settled.run_id, settled.run_outcome, settled.charged_minor, settled.released_minor) == (
        "r1", "ACCOUNT_DELETED", 30, 70)
    assert (closed.account_id, closed.mode, closed.balance_minor, closed.source_event_id) == ("acc", "live", 970,
                                                                                           "src-1")
    after = wallet.fold([settled, closed], state)
    assert after.closed and after.reserved_minor == 0
    assert wallet.decide_close(after, "src-2") == []  # closing again changes nothing
    assert wallet.decide_meter(after, wallet.Meter("r1", "c1", "call_seconds", 60, 1)) == []
    assert wallet.decide_meter(after, wallet.Meter("r2", "p", "probe_run", 1, 5)) == []
    with pytest.raises(Conflict, match="deleted"):
        wallet.decide_reserve(after, wallet.Reserve("r2", 10))
    with pytest.raises(Conflict, match="deleted"):
        wallet.decide_top_up(after, wallet.TopUp(100, "EUR", "t9"), MAX)
    assert not wallet.needs_auto_top_up(wallet.evolve(after, ev.AutoTopUpConfigured(
        account_id="acc", enabled=True, threshold_minor=10_000, amount_minor=500, currency="EUR")))


# ---------------------------------------------------------------- unmetered (the self-hosted default)


def test_unmetered_reserve_starts_a_run_on_an_empty_wallet_and_holds_nothing() -> None:
    state = given()  # balance 0: prepaid refuses this run
    with pytest.raises(InsufficientBalance):
        wallet.decide_reserve(state, wallet.Reserve("r1", 600, "p1", "t1", 1))
    [e] = wallet.decide_reserve(state, wallet.Reserve("r1", 600, "p1", "t1", 1), metered=False)
    assert isinstance(e, ev.FundsReserved) and e.amount_minor == 0
    after = wallet.evolve(state, e)
    assert (after.balance_minor, after.reserved_minor, after.available_minor) == (0, 0, 0)


def test_unmetered_usage_is_recorded_at_price_zero_and_never_exhausts_the_wallet() -> None:
    state = given(credited(1), reserved("r1", 0))
    for total in (5, 60, 3600):  # a day of probes on a one-cent wallet
        events = wallet.decide_meter(state, wallet.Meter("r1", "c1", "call_seconds", total, 1), metered=False)
        assert [type(e).__name__ for e in events] == ["UsageCharged"]  # recorded, no BalanceExhausted
        [u] = events
        assert (u.amount_minor, u.uncollected_minor, u.unit_price_minor, u.total_quantity) == (0, 0, 0, total)
        state = wallet.fold(events, state)
    assert state.balance_minor == 1 and not state.exhausted
    [p] = wallet.decide_meter(state, wallet.Meter("r1", "probe:r1", "probe_run", 1, 5), metered=False)
    assert p.quantity == 1 and p.amount_minor == 0
    # the same usage in prepaid mode takes the cent and stops the run
    prepaid = wallet.decide_meter(given(credited(1), reserved("r1", 0)),
                                  wallet.Meter("r1", "c1", "call_seconds", 5, 1))
    assert [type(e).__name__ for e in prepaid] == ["UsageCharged", "BalanceExhausted"]


def test_unmetered_never_auto_tops_up() -> None:
    state = given(ev.AutoTopUpConfigured(account_id="acc", enabled=True, threshold_minor=500, amount_minor=1000))
    assert wallet.needs_auto_top_up(state)
    assert not wallet.needs_auto_top_up(state, metered=False)


def test_folding_a_batch_of_charges_at_once_equals_evolving_them_one_by_one():
    """fold() takes a run of UsageCharged in one pass: given the same events it must make the same
    wallet as evolve() event by event: balance, holds' charged, each unit's total, final and
    uncollected, across runs, repeats of a call and events of other kinds in between."""
    import random

    rng = random.Random(7)
    events = [ev.WalletOpened(account_id="acc", currency="EUR", mode="live"),
              ev.WalletCredited(account_id="acc", amount_minor=50_000, top_up_id="t1"),
              ev.FundsReserved(account_id="acc", run_id="r1", amount_minor=900),
              ev.FundsReserved(account_id="acc", run_id="r2", amount_minor=900)]
    for i in range(400):
        if i % 97 == 50:
            events.append(ev.WalletCredited(account_id="acc", amount_minor=1_000, top_up_id=f"t{i}"))
            continue
        if i == 300:
            events.append(ev.ReservationSettled(account_id="acc", run_id="r2"))
            continue
        events.append(ev.UsageCharged(
            account_id="acc", run_id=rng.choice(["r1", "r2", "r3"]), call_id=f"c{rng.randrange(60)}",
            kind=rng.choice(["call_seconds", "recording"]), total_quantity=rng.randrange(1, 90),
            amount_minor=rng.randrange(0, 40), uncollected_minor=rng.choice([0, 0, 0, 5]),
            final=rng.random() < 0.3))
    one_by_one = None
    for e in events:
        one_by_one = wallet.evolve(one_by_one, e)
    batched = wallet.fold(events)
    assert batched == one_by_one
    assert set(batched.units.keys()) == {"r1", "r2", "r3"}  # every run was charged
    assert batched.holds["r1"].charged > 0 and "r2" not in batched.holds  # r2 settled on the way
