"""Command and query handlers of the billing service: load the wallet from its stream, decide,
append at the loaded version (retrying on a concurrent write); consume run and media events."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.message import Message
from prometheus_client import Counter
from uuid6 import uuid7

from callgauge_bus.codec import Delivered, decode_payload, new_event
from callgauge_eventstore import DuplicateEventId, EventStore, NewEvent, RecordedEvent, WrongExpectedVersion
from callgauge_eventstore.aggregate import MAX_ATTEMPTS, StateCache, decide_and_append, derived_id, load
from callgauge_platform.logs import get_logger
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import accounts_pb2, billing_pb2, media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_billing.adapters.payments import PaymentProvider, PaymentResult
from callgauge_billing.domain import pricing, wallet
from callgauge_billing.domain.errors import Conflict, InsufficientBalance, Invalid, PaymentDeclined

log = get_logger(__name__)
SOURCE = "billing"

EVENTS = Counter("callgauge_billing_events_appended_total", "events appended to wallet streams", ["type"])
CHARGED = Counter("callgauge_billing_charged_minor_total", "minor units charged", ["kind", "mode"])
CALLS_METERED = Counter("callgauge_billing_call_events_metered_total",
                        "call events metered in batches (one wallet write per wallet and batch)", ["mode"])
RESERVE_REJECTED = Counter("callgauge_billing_reservations_rejected_total", "runs refused for lack of balance")


# What the consumer hands on_batch/on_event: the events that charge, reserve or release. The rest of
# the runs and media topics (a CallRecorded and a CallAnswered for each call) is passed over unread,
# and so does not split a fetch's run of call charges into many small wallet writes.
CONSUMED_TYPES = frozenset(m.DESCRIPTOR.full_name for m in (
    media_pb2.CallProgress, media_pb2.CallMeasured, media_pb2.RegistrationMeasured, runs_pb2.RunRequested,
    runs_pb2.RunCompleted, runs_pb2.RunFailed, runs_pb2.RunCancelled, accounts_pb2.AccountDeleted))


def wallet_stream(account_id: str, mode: str = "live") -> str:
    return f"wallet-{account_id}" if mode == "live" else f"wallet-{account_id}.{mode}"


@dataclass(frozen=True)
class BillingConfig:
    currency: str = wallet.DEFAULT_CURRENCY
    welcome_credit_minor: int = 0
    prices: pricing.Prices = pricing.Prices()
    min_balance_minor: int = 1
    max_top_up_minor: int = 10_000_000
    reservation: str = "max_cost"  # max_cost | minimum
    billing_mode: str = "prepaid"  # prepaid | unmetered (Settings' default, `callgauge up`'s)

    @property
    def metered(self) -> bool:
        return self.billing_mode == "prepaid"


class BillingApp:
    def __init__(self, store: EventStore, config: BillingConfig, payments: PaymentProvider) -> None:
        self.store = store
        self.config = config
        self.payments = payments
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._runs: dict[str, tuple[str, str]] = {}  # run id -> (account, mode), from FundsReserved
        # wallet states by stream with their version: a load reads only the events after it
        self._states = StateCache(max_streams=4096)  # wallets' folded states
        self._indexed_to = 0

    # ------------------------------------------------------------ wallet writes

    async def _load(self, stream: str) -> tuple[wallet.Wallet | None, int]:
        """The wallet's state and version: the cached fold plus whatever was appended since (by this
        or another replica)."""
        return await load(self.store, stream, wallet.evolve, decode_payload, self._states)

    async def execute(self, account_id: str, mode: str, decide: Callable[[wallet.Wallet], list[Message]],
                      correlation: str = "", causation: str = "", id_source: str = "") -> wallet.Wallet:
        """Open the wallet if needed, decide, append at the loaded version; on a concurrent write,
        decide again on the new state. With `id_source`, the decided events get ids derived from it,
        so a repeat of the same source re-appends the same ids (a no-op)."""

        def with_ids(state: wallet.Wallet) -> list[tuple[Message, uuid.UUID | None, str]]:
            return [(e, derived_id(id_source, i) if id_source else None, causation)
                    for i, e in enumerate(decide(state))]

        return await self._execute(account_id, mode, with_ids, correlation)

    async def _execute(self, account_id: str, mode: str,
                       decide: Callable[[wallet.Wallet], list[tuple[Message, uuid.UUID | None, str]]],
                       correlation: str = "") -> wallet.Wallet:
        """execute() with (event, id or None, causation) per decided event: one write may hold the
        events of many sources (a batch of metered calls), each under its own derived ids."""
        if mode not in wallet.MODES:
            raise Invalid.one(["mode"], "live or test")
        if not account_id:
            raise Invalid.one(["account_id"], "required")
        stream = wallet_stream(account_id, mode)
        decision: dict = {}

        def decide_new(state: wallet.Wallet | None) -> list[NewEvent]:
            opening = wallet.decide_open(state, account_id, mode, self.config.currency,
                                         self.config.welcome_credit_minor)
            opened = wallet.fold(opening, state)
            assert opened is not None
            decided_ids = decide(opened)
            decision.update(opened=opened, decided=[e for e, _, _ in decided_ids])
            decision["events"] = opening + decision["decided"]
            return ([new_event(e, correlation or account_id, "", None, SOURCE) for e in opening]
                    + [new_event(e, correlation or account_id, cause, eid, SOURCE) for e, eid, cause in decided_ids])

        async with self._locks[stream]:
            try:  # the shared command loop: on a concurrent write (another replica), decide again
                _, version, _, position = await decide_and_append(
                    self.store, stream, wallet.evolve, decode_payload, decide_new, cache=self._states,
                    attempts=MAX_ATTEMPTS)
            except WrongExpectedVersion:
                raise Conflict(f"wallet {stream}: gave up after {MAX_ATTEMPTS} concurrent writes") from None
            opened, decided, events = decision["opened"], decision["decided"], decision["events"]
            if position is None:
                return opened
            for e in events:
                EVENTS.labels(e.DESCRIPTOR.name).inc()
            after = wallet.fold(decided, opened)
            if await self.store.stream_version(stream) == version + len(events):
                self._states.put(stream, wallet.evolve, after, version + len(events))
            else:  # an idempotent repeat, or someone wrote right after: fold from the store next time
                self._states.forget(stream, wallet.evolve)
            return after  # type: ignore[return-value]

    async def get_wallet(self, account_id: str, mode: str) -> tuple[wallet.Wallet, int]:
        if mode not in wallet.MODES:
            raise Invalid.one(["mode"], "live or test")
        state, version = await self._load(wallet_stream(account_id, mode))
        if state is None:  # not opened yet: what opening it would show
            state = wallet.fold(wallet.decide_open(None, account_id, mode, self.config.currency,
                                                   self.config.welcome_credit_minor))
        return state, max(version, 0)  # type: ignore[return-value]

    async def top_up(self, account_id: str, mode: str, amount: int, currency: str, top_up_id: str) -> wallet.Wallet:
        """A user's top-up: the payment provider is charged first (live wallets; a test wallet's money
        is play money, never charged), and only what it paid is credited."""
        cmd = wallet.TopUp(amount, currency.upper() if currency else "", top_up_id or str(uuid7()))
        state, _ = await self.get_wallet(account_id, mode)
        if wallet.decide_top_up(state, cmd, self.config.max_top_up_minor) and mode == "live":  # valid, not done yet
            try:
                result = await self.payments.charge(account_id, amount, state.currency, cmd.top_up_id)
            except Exception as exc:  # a provider outage is a decline: nothing credited
                log.warning("payment_provider_failed", account_id=account_id, error=repr(exc))
                result = PaymentResult(False, f"payment provider unavailable: {type(exc).__name__}")
            if not result.ok:
                raise PaymentDeclined(result.reason or "the payment was declined")
        return await self.execute(account_id, mode, lambda s: wallet.decide_top_up(s, cmd, self.config.max_top_up_minor))

    async def credit(self, account_id: str, mode: str, amount: int, currency: str, credit_id: str,
                     reason: str) -> wallet.Wallet:
        """An operator's credit: no payment (the gRPC access list lets the operator identity only)."""
        cmd = wallet.TopUp(amount, currency.upper() if currency else "", credit_id or str(uuid7()), "operator_credit")
        log.info("operator_credit", account_id=account_id, mode=mode, amount_minor=amount, credit_id=cmd.top_up_id,
                 note=reason[:200])
        return await self.execute(account_id, mode, lambda s: wallet.decide_top_up(s, cmd, self.config.max_top_up_minor))

    async def set_auto_top_up(self, account_id: str, mode: str, enabled: bool, threshold: int, amount: int,
                              currency: str) -> wallet.Wallet:
        cmd = wallet.SetAutoTopUp(enabled, threshold, amount, currency.upper() if currency else "")
        state = await self.execute(account_id, mode,
                                   lambda s: wallet.decide_set_auto_top_up(s, cmd, self.config.max_top_up_minor))
        return await self._maybe_auto_top_up(account_id, mode, state, f"config:{uuid7()}")

    def reservation_for(self, spec: spec_pb2.TestSpec) -> int:
        if self.config.reservation == "minimum":
            return 0
        return pricing.max_cost(spec, self.config.prices)

    async def reserve(self, account_id: str, mode: str, project_id: str, test_id: str, run_id: str,
                      spec: spec_pb2.TestSpec) -> tuple[wallet.Wallet, int]:
        if not run_id:
            raise Invalid.one(["run_id"], "required")
        amount = self.reservation_for(spec)
        cmd = wallet.Reserve(run_id, amount, project_id, test_id, self.config.min_balance_minor)
        try:
            state = await self.execute(account_id, mode, lambda s: wallet.decide_reserve(s, cmd, self.config.metered),
                                       correlation=run_id)
        except InsufficientBalance:
            RESERVE_REJECTED.inc()
            raise
        self._runs[run_id] = (account_id, mode)
        return state, state.holds[run_id].amount if run_id in state.holds else amount

    async def release(self, account_id: str, mode: str, run_id: str, outcome: str = "RELEASED",
                      causation: str = "") -> wallet.Wallet:
        cmd = wallet.Release(run_id, outcome)
        return await self.execute(account_id, mode, lambda s: wallet.decide_release(s, cmd), correlation=run_id,
                                  causation=causation, id_source=f"release:{run_id}")

    async def charge(self, account_id: str, mode: str, run_id: str, kind: str, quantity: int,
                     charge_id: str) -> wallet.Wallet:
        if kind not in ("registration", "probe_run"):
            raise Invalid.one(["kind"], "registration or probe_run (call seconds are metered from media events)")
        if quantity <= 0 or quantity > 1_000_000:
            raise Invalid.one(["quantity"], "1 to 1000000")
        key = charge_id or str(uuid7())
        return await self._meter(account_id, mode, run_id, key, kind, quantity, f"charge:{key}")

    async def _meter(self, account_id: str, mode: str, run_id: str, key: str, kind: str, total: int,
                     source: str, final: bool = False) -> wallet.Wallet:
        cmd = wallet.Meter(run_id, key, kind, total, self.config.prices.unit_price(kind), source, final)
        state = await self.execute(account_id, mode, lambda s: wallet.decide_meter(s, cmd, self.config.metered),
                                   correlation=run_id,
                                   causation=source, id_source=source)
        return await self._maybe_auto_top_up(account_id, mode, state, source)

    async def _maybe_auto_top_up(self, account_id: str, mode: str, state: wallet.Wallet,
                                 source: str) -> wallet.Wallet:
        if not wallet.needs_auto_top_up(state, self.config.metered):
            return state
        amount = state.auto_top_up.amount
        attempt_id = str(derived_id(f"auto-top-up:{source}", 0))
        try:
            result = await self.payments.charge(account_id, amount, state.currency, attempt_id)
        except Exception as exc:  # a provider outage is a decline, never a lost charge
            log.warning("payment_provider_failed", account_id=account_id, error=repr(exc))
            result = PaymentResult(False, f"payment provider unavailable: {type(exc).__name__}")
        cmd = wallet.AutoTopUpResult(attempt_id, amount, result.ok, result.reason)
        log.info("auto_top_up", account_id=account_id, ok=result.ok, amount_minor=amount)
        return await self.execute(account_id, mode, lambda s: wallet.decide_auto_top_up_result(s, cmd),
                                  causation=source)

    # ------------------------------------------------------------ run index

    async def start(self) -> None:
        await self._index()

    async def _index(self) -> None:
        while True:
            batch = await self.store.read_all(self._indexed_to, 1000)
            if not batch:
                return
            for ev in batch:
                if ev.type == "callgauge.events.v1.FundsReserved":
                    e = billing_pb2.FundsReserved.FromString(ev.data)
                    self._runs[e.run_id] = (e.account_id, e.mode or "live")
                self._indexed_to = ev.position

    async def run_owner(self, run_id: str) -> tuple[str, str] | None:
        if run_id not in self._runs:
            await self._index()  # another replica may have reserved it
        return self._runs.get(run_id)

    # ------------------------------------------------------------ consumers

    def _call_units(self, delivered: Delivered) -> tuple[str, str, int, bool] | None:
        """(run id, call id, call seconds so far, final) of an event that meters a call's seconds;
        None for any other event. An interim report (CallProgress: whole seconds up so far, by the
        engine's clock) that bills nothing is None; the final one (CallMeasured: every started second
        of the measured talk time) is kept even at 0 s, as it corrects what the interim ones charged."""
        msg = delivered.payload
        if isinstance(msg, media_pb2.CallProgress):
            total, call_id, final = int(msg.up_ms // 1000), msg.call_id, False
        elif isinstance(msg, media_pb2.CallMeasured) and msg.call.role != "register":
            answered = msg.call.duration_ms > 0 or msg.call.outcome == m_pb2.SUCCESS
            total = pricing.billed_seconds(msg.call.duration_ms) if answered else 0
            call_id, final = msg.call.call_id, True
        else:
            return None
        if (total <= 0 and not final) or total < 0 or not call_id or not msg.run_id:
            return None
        return msg.run_id, call_id, total, final

    async def on_batch(self, batch: list[Delivered]) -> None:
        """A fetch of run and media events. The call seconds of consecutive call events are charged a
        wallet at a time, in one write per wallet (each charge still its own UsageCharged under ids
        derived from its media event's id: exactly once); any other event is handled in its place."""
        calls: list[tuple[Delivered, tuple[str, str, int, bool]]] = []
        for delivered in batch:
            units = self._call_units(delivered)
            if units is not None:
                calls.append((delivered, units))
                continue
            if calls:
                await self._meter_calls(calls)
                calls = []
            await self.on_event(delivered)
        if calls:
            await self._meter_calls(calls)

    async def _meter_calls(self, calls: list[tuple[Delivered, tuple[str, str, int, bool]]]) -> None:
        by_wallet: dict[tuple[str, str], list[tuple[str, wallet.Meter]]] = {}
        for delivered, (run_id, call_id, total, final) in calls:
            owner = await self.run_owner(run_id)
            if owner is None:
                log.warning("metered_event_for_unknown_run", run_id=run_id, type=delivered.envelope.type)
                continue
            cmd = wallet.Meter(run_id, call_id, "call_seconds", total, self.config.prices.unit_price("call_seconds"),
                               delivered.event_id, final)
            by_wallet.setdefault(owner, []).append((delivered.event_id, cmd))
        for (account_id, mode), cmds in by_wallet.items():

            def decide(state: wallet.Wallet, cmds=cmds) -> list[tuple[Message, uuid.UUID | None, str]]:
                out: list[tuple[Message, uuid.UUID | None, str]] = []
                for source, cmd in cmds:
                    events = wallet.decide_meter(state, cmd, self.config.metered)
                    state = wallet.fold(events, state)  # type: ignore[assignment]
                    out.extend((e, derived_id(source, i), source) for i, e in enumerate(events))
                return out

            try:
                state = await self._execute(account_id, mode, decide, correlation=cmds[0][1].run_id)
            except DuplicateEventId:  # a redelivery overlapping what is charged: one at a time, each idempotent
                for source, cmd in cmds:
                    state = await self._meter(account_id, mode, cmd.run_id, cmd.key, cmd.kind, cmd.total, source,
                                              cmd.final)
            CALLS_METERED.labels(mode).inc(len(cmds))
            await self._maybe_auto_top_up(account_id, mode, state, cmds[-1][0])

    async def close_account(self, account_id: str, source_event_id: str) -> None:
        """The account was deleted: close its wallets (both modes; open holds settled first). Idempotent:
        a redelivery finds them closed, and the events get ids derived from the source event."""
        for mode in wallet.MODES:
            await self.execute(account_id, mode, lambda s: wallet.decide_close(s, source_event_id),
                               causation=source_event_id, id_source=f"close:{source_event_id}:{mode}")
        log.info("account_wallets_closed", account_id=account_id)

    async def on_event(self, delivered: Delivered) -> None:
        msg = delivered.payload
        if isinstance(msg, accounts_pb2.AccountDeleted) and msg.account_id:
            await self.close_account(msg.account_id, delivered.event_id)
            return
        run_id = getattr(msg, "run_id", "")
        if not run_id:
            return
        if isinstance(msg, runs_pb2.RunRequested):
            if "probe_id" in msg.metadata:  # a scheduled probe's run: the per-probe-run price, once per run
                await self._meter(msg.account_id, msg.mode or "live", run_id, run_id, "probe_run", 1,
                                  delivered.event_id)
            return
        if isinstance(msg, runs_pb2.RunCompleted | runs_pb2.RunFailed | runs_pb2.RunCancelled):
            owner = await self.run_owner(run_id)
            if owner is None:
                return  # started before billing existed, or never reserved
            outcome = {runs_pb2.RunCompleted: "COMPLETED", runs_pb2.RunFailed: "FAILED"}.get(type(msg), "CANCELLED")
            await self.release(*owner, run_id, outcome, causation=delivered.event_id)
            return
        if isinstance(msg, media_pb2.RegistrationMeasured):
            # one registration attempt per user agent, whatever its outcome (the role=register
            # CallMeasured of a failed or lost registration is the same attempt: not billed again)
            owner = await self.run_owner(run_id)
            if owner is not None and msg.registration.registration_id:
                await self._meter(*owner, run_id, msg.registration.registration_id, "registration", 1,
                                  delivered.event_id)
            return
        units = self._call_units(delivered)
        if units is None:
            return
        _, call_id, total, final = units
        owner = await self.run_owner(run_id)
        if owner is None:
            log.warning("metered_event_for_unknown_run", run_id=run_id, type=delivered.envelope.type)
            return
        await self._meter(*owner, run_id, call_id, "call_seconds", total, delivered.event_id, final)

    # ------------------------------------------------------------ queries

    async def ledger(self, account_id: str, mode: str) -> list[tuple[RecordedEvent, Message]]:
        out = []
        for ev in await self.store.read_stream(wallet_stream(account_id, mode)):
            payload = decode_payload(ev.type, ev.data)
            if payload is not None:
                out.append((ev, payload))
        return out

    async def usage(self, account_id: str, mode: str, start: datetime | None, end: datetime | None,
                    group_by: str) -> tuple[str, int, list[dict]]:
        if group_by not in ("day", "test", "project"):
            raise Invalid.one(["groupBy"], "day, test or project")
        if start and end and start > end:
            raise Invalid.one(["from"], "must not be after `to`")
        state, _ = await self.get_wallet(account_id, mode)
        groups: dict[str, dict] = {}
        total = 0
        for ev, p in await self.ledger(account_id, mode):
            if not isinstance(p, billing_pb2.UsageCharged):
                continue
            at = ev.recorded_at if ev.recorded_at.tzinfo else ev.recorded_at.replace(tzinfo=UTC)
            if (start and at < start) or (end and at >= end):
                continue
            key = {"day": at.date().isoformat(), "test": p.test_id, "project": p.project_id}[group_by]
            g = groups.setdefault(key, {"key": key, "amount_minor": 0, "call_seconds": 0, "registrations": 0,
                                        "probe_runs": 0, "charges": 0})
            g["amount_minor"] += p.amount_minor
            g["charges"] += 1
            field = {"call_seconds": "call_seconds", "registration": "registrations", "probe_run": "probe_runs"}
            g[field.get(p.kind, "charges")] += p.quantity if p.kind in field else 0
            total += p.amount_minor
        return state.currency, total, sorted(groups.values(), key=lambda g: g["key"])
