"""BillingService gRPC servicer: requests become commands and queries on BillingApp. Errors are
raised, not answered here: the server's DomainErrorInterceptor (callgauge_platform.errors) maps
them (InsufficientBalance, PaymentDeclined: FAILED_PRECONDITION with their code and details)."""

from __future__ import annotations

from callgauge_platform.timestamps import datetime_of, timestamp_of
from callgauge_proto.callgauge.billing.v1 import billing_service_pb2 as pb
from callgauge_proto.callgauge.billing.v1 import billing_service_pb2_grpc as pb_grpc
from callgauge_proto.callgauge.events.v1 import billing_pb2

from callgauge_billing.domain import wallet
from callgauge_billing.handlers.app import BillingApp

def wallet_pb(w: wallet.Wallet, version: int = 0, billing_mode: str = "") -> pb.Wallet:
    a = w.auto_top_up
    return pb.Wallet(account_id=w.account_id, balance_minor=w.balance_minor, currency=w.currency, version=version,
                     reserved_minor=w.reserved_minor, available_minor=w.available_minor, mode=w.mode,
                     auto_top_up=pb.AutoTopUp(enabled=a.enabled, threshold_minor=a.threshold, amount_minor=a.amount),
                     exhausted=w.exhausted, billing_mode=billing_mode)


def _entry(ev, p) -> pb.LedgerEntry | None:
    e = pb.LedgerEntry(id=str(ev.id), run_id=getattr(p, "run_id", ""), at=timestamp_of(ev.recorded_at))
    if isinstance(p, billing_pb2.WalletCredited):
        e.type, e.amount_minor, e.balance_after_minor = "credit", p.amount_minor, p.balance_after_minor
        e.kind, e.description = p.reason, f"{p.reason.replace('_', ' ')} {p.top_up_id}".strip()
    elif isinstance(p, billing_pb2.UsageCharged):
        e.type, e.amount_minor, e.balance_after_minor = "charge", -p.amount_minor, p.balance_after_minor
        e.kind, e.quantity = p.kind, p.quantity
        e.description = f"{p.quantity} x {p.kind.replace('_', ' ')} at {p.unit_price_minor} ({p.call_id})"
        if p.final and p.quantity <= 0:  # the call's measurement corrects what its interim reports charged
            e.description = (f"{p.call_id} measured {p.total_quantity} {p.kind.replace('_', ' ')}: "
                             + (f"{-p.quantity} given back" if p.quantity else "nothing more to charge"))
    elif isinstance(p, billing_pb2.FundsReserved):
        e.type, e.description = "reservation", f"{p.amount_minor} held for run {p.run_id}"
    elif isinstance(p, billing_pb2.ReservationSettled):
        e.type = "settlement"
        e.description = f"run {p.run_id} {p.run_outcome}: {p.charged_minor} charged, {p.released_minor} released"
    elif isinstance(p, billing_pb2.AutoTopUpDeclined):
        e.type, e.description = "auto_top_up_declined", p.reason
    elif isinstance(p, billing_pb2.BalanceExhausted):
        e.type, e.description = "exhausted", "balance exhausted: live calls hung up"
    elif isinstance(p, billing_pb2.AutoTopUpConfigured):
        e.type = "auto_top_up_configured"
        e.description = (f"auto top-up of {p.amount_minor} below {p.threshold_minor}" if p.enabled
                         else "auto top-up off")
    else:
        return None
    return e


class BillingServicer(pb_grpc.BillingServiceServicer):
    def __init__(self, app: BillingApp) -> None:
        self.app = app

    def _pb(self, w: wallet.Wallet, version: int = 0) -> pb.Wallet:
        return wallet_pb(w, version, self.app.config.billing_mode)

    async def GetWallet(self, request: pb.GetWalletRequest, context) -> pb.Wallet:
        state, version = await self.app.get_wallet(request.account_id, request.mode or "live")
        return self._pb(state, version)

    async def TopUp(self, request: pb.TopUpRequest, context) -> pb.Wallet:
        return self._pb(await self.app.top_up(request.account_id, request.mode or "live", request.amount_minor,
                                               request.currency, request.top_up_id))

    async def Credit(self, request: pb.CreditRequest, context) -> pb.Wallet:
        return self._pb(await self.app.credit(request.account_id, request.mode or "live", request.amount_minor,
                                               request.currency, request.credit_id, request.reason))

    async def SetAutoTopUp(self, request: pb.SetAutoTopUpRequest, context) -> pb.Wallet:
        return self._pb(await self.app.set_auto_top_up(request.account_id, request.mode or "live", request.enabled,
                                                        request.threshold_minor, request.amount_minor,
                                                        request.currency))

    async def Reserve(self, request: pb.ReserveRequest, context) -> pb.Reservation:
        state, amount = await self.app.reserve(request.account_id, request.mode or "live", request.project_id,
                                               request.test_id, request.run_id, request.spec)
        return pb.Reservation(run_id=request.run_id, amount_minor=amount, currency=state.currency,
                              available_after_minor=state.available_minor)

    async def Release(self, request: pb.ReleaseRequest, context) -> pb.Wallet:
        return self._pb(await self.app.release(request.account_id, request.mode or "live", request.run_id))

    async def Charge(self, request: pb.ChargeRequest, context) -> pb.Wallet:
        return self._pb(await self.app.charge(request.account_id, request.mode or "live", request.run_id,
                                               request.kind, request.quantity, request.charge_id))

    async def GetUsage(self, request: pb.GetUsageRequest, context) -> pb.Usage:
        currency, total, groups = await self.app.usage(
            request.account_id, request.mode or "live", datetime_of(request.__getattribute__("from"), request.HasField("from")),
            datetime_of(request.to, request.HasField("to")), request.group_by or "day")
        return pb.Usage(currency=currency, total_minor=total, groups=[pb.UsageGroup(**g) for g in groups],
                        mode=request.mode or "live")

    async def ListUsage(self, request: pb.ListUsageRequest, context) -> pb.ListUsageResponse:
        state, _ = await self.app.get_wallet(request.account_id, request.mode or "live")
        entries = [e for ev, p in await self.app.ledger(request.account_id, request.mode or "live")
                   if (e := _entry(ev, p)) is not None]
        entries.reverse()  # newest first
        page, per_page = max(request.page, 1), min(max(request.per_page or 25, 1), 100)
        return pb.ListUsageResponse(entries=entries[(page - 1) * per_page: page * per_page], total=len(entries),
                                    currency=state.currency)
