"""The Wallet aggregate as a decider (pure: no I/O, no clock).

One wallet per (account, mode). Money is integer minor units with an ISO 4217 currency.
- balance: the sum of the ledger events (credits minus charges); never below zero.
- holds: per run, the money reserved before it started (its maximum cost); what a run is
  charged counts against its own hold first.
- available = balance - what is still held; a run starts only when its maximum cost fits.
Test-mode wallets price everything at zero: usage is recorded, nothing is charged.

Billing modes (the operator's setting, passed to the deciders as `metered`):
- prepaid (metered=True): the above; a run that does not fit is refused (402), the charge that
  empties the wallet emits BalanceExhausted (the media-engine hangs up), auto top-up tops it up.
- unmetered (metered=False, the default of `callgauge up`): usage is recorded exactly as in
  prepaid (every UsageCharged with its quantity), priced at zero; nothing is held, nothing is
  refused, the balance never runs out and no auto top-up is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import NamedTuple

import immutables
from google.protobuf.message import Message

from callgauge_proto.callgauge.events.v1 import billing_pb2

from callgauge_billing.domain.errors import Conflict, InsufficientBalance, Invalid, ValidationCollector

DEFAULT_CURRENCY = "EUR"
# ISO 4217 subset the service accepts (code -> minor-unit exponent).
CURRENCIES: Mapping[str, int] = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2,
    "CAD": 2, "AUD": 2, "NZD": 2, "JPY": 0, "INR": 2, "BRL": 2, "ZAR": 2, "SGD": 2, "HKD": 2,
}
MAX_BALANCE_MINOR = 10**13  # far below int64; keeps sums of many credits representable
MODES = ("live", "test")
BILLING_MODES = ("unmetered", "prepaid")
KINDS = ("call_seconds", "registration", "probe_run")


# ---------------------------------------------------------------- state


@dataclass(frozen=True)
class Hold:
    run_id: str
    amount: int
    charged: int = 0
    project_id: str = ""
    test_id: str = ""

    @property
    def remaining(self) -> int:
        return max(self.amount - self.charged, 0)


class Metered(NamedTuple):
    """What a metered unit key (a call's seconds, a one-off charge) was billed so far."""

    total: int  # units billed so far
    final: bool = False  # the call's final measurement is billed: interim reports of it change nothing
    uncollected_minor: int = 0  # what of its charges the balance could not cover


@dataclass(frozen=True)
class AutoTopUp:
    enabled: bool = False
    threshold: int = 0
    amount: int = 0


@dataclass(frozen=True)
class Wallet:
    account_id: str
    currency: str
    mode: str = "live"
    balance_minor: int = 0
    holds: Mapping[str, Hold] = field(default_factory=dict)  # open reservations by run id
    runs: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # run id -> (project, test), kept
    # run id -> metered unit key -> Metered (units billed so far), as persistent maps (immutables.Map, a HAMT):
    # a charge makes a new map in O(log n) sharing the rest, so a 300,000-call run costs the same per
    # call as a 10-call one (copying a dict per charge made metering quadratic in the run's calls)
    units: immutables.Map = field(default_factory=immutables.Map)
    top_ups: frozenset[str] = frozenset()  # top-up ids credited (idempotency)
    auto_top_up: AutoTopUp = AutoTopUp()
    auto_declined: bool = False  # a declined auto top-up is not retried before the next credit/setting
    exhausted: bool = False
    exhausted_runs: frozenset[str] = frozenset()  # runs told to stop since the balance hit zero
    closed: bool = False  # the account was deleted: nothing is charged, reserved or credited any more

    @property
    def reserved_minor(self) -> int:
        return sum(h.remaining for h in self.holds.values())

    @property
    def available_minor(self) -> int:
        return self.balance_minor - self.reserved_minor


# ---------------------------------------------------------------- commands


@dataclass(frozen=True)
class TopUp:
    amount_minor: int
    currency: str
    top_up_id: str
    reason: str = "top_up"


@dataclass(frozen=True)
class Reserve:
    run_id: str
    amount_minor: int
    project_id: str = ""
    test_id: str = ""
    min_balance_minor: int = 0


@dataclass(frozen=True)
class Release:
    run_id: str
    outcome: str = "RELEASED"


@dataclass(frozen=True)
class Meter:
    """Bill `kind` units. For call seconds, `total` is the units billed so far for the call as the
    media-engine reports it: an interim report (CallProgress) charges only the growth; the `final`
    one (the call's CallMeasured) sets the call's billed total, correcting the interim charges both
    ways (the engine's clock of a call that is up runs behind or ahead of the measured talk time).
    For one-off charges `total` is the quantity and `key` makes it idempotent."""

    run_id: str
    key: str  # call id, or the charge id of a one-off charge
    kind: str
    total: int
    unit_price_minor: int
    source_event_id: str = ""
    final: bool = False


@dataclass(frozen=True)
class SetAutoTopUp:
    enabled: bool
    threshold_minor: int
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class AutoTopUpResult:
    attempt_id: str
    amount_minor: int
    ok: bool
    reason: str = ""


# ---------------------------------------------------------------- evolve


def evolve(state: Wallet | None, event: Message, at: datetime | None = None) -> Wallet | None:
    if isinstance(event, billing_pb2.WalletOpened):
        return Wallet(event.account_id, event.currency, event.mode or "live")
    if state is None:
        return None
    if isinstance(event, billing_pb2.WalletCredited):
        top_ups = state.top_ups | {event.top_up_id} if event.top_up_id else state.top_ups
        return replace(state, balance_minor=state.balance_minor + event.amount_minor, top_ups=top_ups,
                       exhausted=False, exhausted_runs=frozenset(), auto_declined=False)
    if isinstance(event, billing_pb2.FundsReserved):
        holds = {**state.holds, event.run_id: Hold(event.run_id, event.amount_minor, 0, event.project_id,
                                                   event.test_id)}
        runs = {**state.runs, event.run_id: (event.project_id, event.test_id)}
        return replace(state, holds=holds, runs=runs)
    if isinstance(event, billing_pb2.ReservationSettled):
        holds = dict(state.holds)
        holds.pop(event.run_id, None)
        return replace(state, holds=holds)
    if isinstance(event, billing_pb2.UsageCharged):
        return _charge_many(state, [event])
    if isinstance(event, billing_pb2.BalanceExhausted):
        return replace(state, exhausted=True, exhausted_runs=state.exhausted_runs | {event.run_id})
    if isinstance(event, billing_pb2.AutoTopUpConfigured):
        return replace(state, auto_top_up=AutoTopUp(event.enabled, event.threshold_minor, event.amount_minor),
                       auto_declined=False)
    if isinstance(event, billing_pb2.AutoTopUpDeclined):
        return replace(state, auto_declined=True)
    if isinstance(event, billing_pb2.WalletClosed):
        return replace(state, closed=True, holds={})
    return state


_NO_UNITS: immutables.Map = immutables.Map()


def fold(events: list[Message], state: Wallet | None = None) -> Wallet | None:
    """evolve() over `events`; a run of consecutive UsageCharged (a batch of metered calls) is
    folded at once, with one copy of the wallet's maps instead of one per event."""
    i, n = 0, len(events)
    while i < n:
        if state is not None and isinstance(events[i], billing_pb2.UsageCharged):
            j = i + 1
            while j < n and isinstance(events[j], billing_pb2.UsageCharged):
                j += 1
            state = _charge_many(state, events[i:j])  # type: ignore[arg-type]
            i = j
        else:
            state = evolve(state, events[i])
            i += 1
    return state


def _charge_many(state: Wallet, charges: list[billing_pb2.UsageCharged]) -> Wallet:
    """The wallet with `charges` applied in order, in one pass: each unit's total, final and
    uncollected, the runs' holds' charged, the balance (evolve() applies one this way)."""
    units = state.units.mutate()  # type: ignore[attr-defined]
    per_run: dict[str, immutables.MapMutation] = {}
    charged: dict[str, int] = {}
    total = 0
    for event in charges:
        run_units = per_run.get(event.run_id)
        if run_units is None:
            run_units = per_run[event.run_id] = units.get(event.run_id, _NO_UNITS).mutate()
        key = _unit_key(event.kind, event.call_id)
        before = run_units.get(key)
        run_units[key] = Metered(
            event.total_quantity, event.final or (before is not None and before.final),
            (before.uncollected_minor if before is not None else 0) + event.uncollected_minor)
        charged[event.run_id] = charged.get(event.run_id, 0) + event.amount_minor
        total += event.amount_minor
    for run_id, run_units in per_run.items():
        units[run_id] = run_units.finish()
    holds = dict(state.holds)
    for run_id, amount in charged.items():
        h = holds.get(run_id)
        if h is not None:
            holds[run_id] = replace(h, charged=h.charged + amount)
    return replace(state, balance_minor=state.balance_minor - total, units=units.finish(), holds=holds)


def _unit_key(kind: str, key: str) -> str:
    return f"{kind}:{key}"


# ---------------------------------------------------------------- decide


def decide_open(state: Wallet | None, account_id: str, mode: str, currency: str,
                welcome_credit_minor: int) -> list[Message]:
    """The events that open a wallet on its first use: WalletOpened and, if configured, a welcome
    credit (so a new account can run its first test)."""
    if state is not None:
        return []
    events: list[Message] = [billing_pb2.WalletOpened(account_id=account_id, currency=currency, mode=mode)]
    if welcome_credit_minor > 0:
        events.append(billing_pb2.WalletCredited(
            account_id=account_id, amount_minor=welcome_credit_minor, currency=currency, reason="welcome",
            top_up_id="welcome", balance_after_minor=welcome_credit_minor, mode=mode))
    return events


def validate_money(v: ValidationCollector, loc: str, amount: int, currency: str, wallet_currency: str,
                   max_amount: int, allow_zero: bool = False) -> None:
    if amount < 0 or (amount == 0 and not allow_zero):
        v.add([loc], "must be a positive amount in minor units (e.g. cents)")
    elif amount > max_amount:
        v.add([loc], f"at most {max_amount} minor units at a time")
    if currency and currency not in CURRENCIES:
        v.add(["currency"], f"unknown currency {currency!r}; one of {', '.join(sorted(CURRENCIES))}")
    elif currency and currency != wallet_currency:
        v.add(["currency"], f"this wallet is in {wallet_currency}; {currency} amounts cannot be added to it")


def _refuse_closed(state: Wallet) -> None:
    if state.closed:
        raise Conflict(f"the account {state.account_id} was deleted: its wallet is closed")


def decide_close(state: Wallet, source_event_id: str = "") -> list[Message]:
    """The account was deleted: settle every open reservation (nothing more will be charged to it),
    then close the wallet. Closing a closed wallet changes nothing."""
    if state.closed:
        return []
    events: list[Message] = [billing_pb2.ReservationSettled(
        account_id=state.account_id, run_id=h.run_id, reserved_minor=h.amount, charged_minor=h.charged,
        released_minor=h.remaining, currency=state.currency, run_outcome="ACCOUNT_DELETED", mode=state.mode)
        for h in state.holds.values()]
    events.append(billing_pb2.WalletClosed(account_id=state.account_id, mode=state.mode,
                                           balance_minor=state.balance_minor, currency=state.currency,
                                           source_event_id=source_event_id))
    return events


def decide_top_up(state: Wallet, cmd: TopUp, max_amount: int) -> list[Message]:
    _refuse_closed(state)
    v = ValidationCollector()
    validate_money(v, "amount_minor", cmd.amount_minor, cmd.currency or state.currency, state.currency, max_amount)
    if state.balance_minor + max(cmd.amount_minor, 0) > MAX_BALANCE_MINOR:
        v.add(["amount_minor"], f"the balance would exceed {MAX_BALANCE_MINOR} minor units")
    v.raise_if_any()
    if cmd.top_up_id and cmd.top_up_id in state.top_ups:
        return []  # already credited: an idempotent repeat
    return [billing_pb2.WalletCredited(
        account_id=state.account_id, amount_minor=cmd.amount_minor, currency=state.currency, reason=cmd.reason,
        top_up_id=cmd.top_up_id, balance_after_minor=state.balance_minor + cmd.amount_minor, mode=state.mode)]


def decide_reserve(state: Wallet, cmd: Reserve, metered: bool = True) -> list[Message]:
    _refuse_closed(state)
    if cmd.run_id in state.runs:
        if cmd.run_id in state.holds and state.holds[cmd.run_id].amount == cmd.amount_minor:
            return []  # the same reservation again
        raise Conflict(f"run {cmd.run_id} already has a reservation")
    if cmd.amount_minor < 0:
        raise Invalid.one(["amount_minor"], "a reservation cannot be negative")
    amount = 0 if state.mode == "test" or not metered else cmd.amount_minor
    if state.mode != "test" and metered:
        needed = max(amount, cmd.min_balance_minor)
        if state.available_minor < needed or state.available_minor <= 0:
            raise InsufficientBalance(needed=max(needed, 1), available=state.available_minor, currency=state.currency)
    return [billing_pb2.FundsReserved(
        account_id=state.account_id, run_id=cmd.run_id, amount_minor=amount, currency=state.currency,
        project_id=cmd.project_id, test_id=cmd.test_id, available_after_minor=state.available_minor - amount,
        mode=state.mode)]


def decide_release(state: Wallet, cmd: Release) -> list[Message]:
    h = state.holds.get(cmd.run_id)
    if h is None:
        return []  # never reserved here, or settled already
    return [billing_pb2.ReservationSettled(
        account_id=state.account_id, run_id=cmd.run_id, reserved_minor=h.amount, charged_minor=h.charged,
        released_minor=h.remaining, currency=state.currency, run_outcome=cmd.outcome, mode=state.mode)]


def decide_meter(state: Wallet, cmd: Meter, metered: bool = True) -> list[Message]:
    """Charge the growth of a metered quantity. Never overdraws: what the balance cannot cover is
    recorded as uncollected, and the charge that empties the wallet emits BalanceExhausted (again for
    each other run that charges an empty wallet). Unmetered (metered=False): the usage is recorded
    at price zero, so nothing is taken and the balance never runs out. A closed wallet (deleted
    account) is charged nothing."""
    if state.closed:
        return []
    if cmd.kind not in KINDS:
        raise Invalid.one(["kind"], f"unknown kind {cmd.kind!r}; one of {', '.join(KINDS)}")
    if cmd.total < 0 or cmd.unit_price_minor < 0:
        raise Invalid.one(["quantity"], "must not be negative")
    key = _unit_key(cmd.kind, cmd.key)
    entry = state.units.get(cmd.run_id, _NO_UNITS).get(key)
    before = entry.total if entry is not None else 0
    final = cmd.final and cmd.kind == "call_seconds"
    if cmd.kind != "call_seconds" and entry is not None:
        return []  # a one-off charge seen before
    if entry is not None and entry.final:
        return []  # the call's final measurement is billed: a repeat or a late interim report
    growth = cmd.total - before if cmd.kind == "call_seconds" else cmd.total
    if growth <= 0 and not (final and entry is not None):
        return []  # nothing new; a final measurement of a call never charged has nothing to correct
    price = 0 if state.mode == "test" or not metered else cmd.unit_price_minor
    due = growth * price
    if due >= 0:
        taken = min(due, max(state.balance_minor, 0))
        uncollected = due - taken
    else:  # the interim reports charged more than the call's measured total: give the excess back,
        # what the balance could not cover first (it was never taken)
        uncollected = -min(-due, entry.uncollected_minor if entry is not None else 0)
        taken = due - uncollected
    project_id, test_id = state.runs.get(cmd.run_id, ("", ""))
    events: list[Message] = [billing_pb2.UsageCharged(
        account_id=state.account_id, run_id=cmd.run_id, call_id=cmd.key, kind=cmd.kind, quantity=growth,
        total_quantity=cmd.total, unit_price_minor=price, amount_minor=taken, uncollected_minor=uncollected,
        currency=state.currency, balance_after_minor=state.balance_minor - taken, project_id=project_id,
        test_id=test_id, mode=state.mode, source_event_id=cmd.source_event_id, final=final)]
    if due > 0 and state.balance_minor - taken <= 0 and cmd.run_id not in state.exhausted_runs:
        # once per run until the next credit: a run that began after the wallet emptied is stopped too
        events.append(billing_pb2.BalanceExhausted(account_id=state.account_id, run_id=cmd.run_id,
                                                   currency=state.currency, uncollected_minor=uncollected,
                                                   mode=state.mode))
    return events


def decide_set_auto_top_up(state: Wallet, cmd: SetAutoTopUp, max_amount: int) -> list[Message]:
    _refuse_closed(state)
    v = ValidationCollector()
    currency = cmd.currency or state.currency
    if cmd.enabled:
        validate_money(v, "amount_minor", cmd.amount_minor, currency, state.currency, max_amount)
        if cmd.threshold_minor <= 0:
            v.add(["threshold_minor"], "must be a positive amount in minor units")
        elif cmd.threshold_minor > MAX_BALANCE_MINOR:
            v.add(["threshold_minor"], f"at most {MAX_BALANCE_MINOR} minor units")
    else:
        validate_money(v, "amount_minor", cmd.amount_minor, currency, state.currency, max_amount, allow_zero=True)
        if cmd.threshold_minor < 0:
            v.add(["threshold_minor"], "must not be negative")
    v.raise_if_any()
    return [billing_pb2.AutoTopUpConfigured(
        account_id=state.account_id, enabled=cmd.enabled, threshold_minor=cmd.threshold_minor,
        amount_minor=cmd.amount_minor, currency=state.currency, mode=state.mode)]


def needs_auto_top_up(state: Wallet, metered: bool = True) -> bool:
    a = state.auto_top_up
    return (metered and state.mode == "live" and not state.closed and a.enabled and a.amount > 0
            and not state.auto_declined and state.balance_minor < a.threshold)


def decide_auto_top_up_result(state: Wallet, cmd: AutoTopUpResult) -> list[Message]:
    if cmd.attempt_id in state.top_ups:
        return []
    if cmd.ok:
        return decide_top_up(state, TopUp(cmd.amount_minor, state.currency, cmd.attempt_id, "auto_top_up"),
                             MAX_BALANCE_MINOR)
    if state.auto_declined:
        return []
    return [billing_pb2.AutoTopUpDeclined(account_id=state.account_id, amount_minor=cmd.amount_minor,
                                          currency=state.currency, reason=cmd.reason, attempt_id=cmd.attempt_id,
                                          mode=state.mode)]
