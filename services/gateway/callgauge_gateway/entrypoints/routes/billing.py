"""Billing: the prepaid wallet, top-ups, auto top-up, usage summary and history (Call2Me/CallCov).
Money is integer minor units (cents) with an ISO 4217 currency; the wallet of a test key is the
account's test wallet, which is never charged."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from callgauge_gateway.entrypoints.auth import Principal, authenticate
from callgauge_gateway.entrypoints.deps import Billing
from callgauge_gateway.domain.proto_json import to_json
from callgauge_gateway.entrypoints.envelope import ok, page
from callgauge_gateway.entrypoints.errors import ApiError
from callgauge_proto.callgauge.billing.v1 import billing_service_pb2 as pb
from callgauge_platform.timestamps import timestamp_of

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])
Auth = Annotated[Principal, Depends(authenticate)]
Money = Annotated[StrictInt, Field(gt=0, le=10**12, description="minor units, e.g. cents")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. EUR; the wallet's by default")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TopUpIn(_Strict):
    amount_minor: Money = Field(examples=[2500])
    currency: Currency | None = None


class AutoTopUpIn(_Strict):
    enabled: StrictBool = True
    threshold_minor: Annotated[StrictInt, Field(ge=0, le=10**12)] = Field(examples=[1000])
    amount_minor: Annotated[StrictInt, Field(ge=0, le=10**12)] = Field(examples=[5000])
    currency: Currency | None = None



def _wallet(w: pb.Wallet) -> dict:
    d = to_json(w)
    d.pop("accountId", None)
    return d


@router.get("/wallet", summary="The wallet: balance, held, available, auto top-up")
async def get_wallet(who: Auth, billing: Billing):
    w = await billing.GetWallet(pb.GetWalletRequest(account_id=who.account_id, mode=who.mode))
    return ok(_wallet(w))


@router.post("/top-ups", status_code=201, summary="Add money to the wallet")
async def top_up(body: TopUpIn, who: Auth, billing: Billing):
    w = await billing.TopUp(pb.TopUpRequest(
        account_id=who.account_id, mode=who.mode, amount_minor=body.amount_minor, currency=body.currency or "",
        top_up_id=str(uuid.uuid4())))
    return ok(_wallet(w), 201)


@router.put("/auto-top-up", summary="Top up automatically below a threshold")
async def set_auto_top_up(body: AutoTopUpIn, who: Auth, billing: Billing):
    w = await billing.SetAutoTopUp(pb.SetAutoTopUpRequest(
        account_id=who.account_id, mode=who.mode, enabled=body.enabled, threshold_minor=body.threshold_minor,
        amount_minor=body.amount_minor, currency=body.currency or ""))
    return ok(_wallet(w))


def _parse_time(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, "The request is not valid: see details",
                       [{"loc": ["query", name], "msg": "an ISO-8601 date or time, e.g. 2026-01-31 or "
                         "2026-01-31T12:00:00Z", "type": "datetime_parsing"}]) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


@router.get("/usage", summary="Usage summary between two times, grouped by day, test or project")
async def usage(who: Auth, billing: Billing, from_: Annotated[str | None, Query(alias="from")] = None,
                to: str | None = None, group_by: Annotated[Literal["day", "test", "project"],
                                                           Query(alias="groupBy")] = "day"):
    start, end = _parse_time("from", from_), _parse_time("to", to)
    req = pb.GetUsageRequest(account_id=who.account_id, mode=who.mode, group_by=group_by)
    if start:
        getattr(req, "from").CopyFrom(timestamp_of(start))
    if end:
        req.to.CopyFrom(timestamp_of(end))
    u = await billing.GetUsage(req)
    d = to_json(u)
    d.update({"from": start.isoformat() if start else None, "to": end.isoformat() if end else None,
              "groupBy": group_by})
    return ok(d)


@router.get("/history", summary="The wallet's ledger, newest first")
async def history(who: Auth, billing: Billing, page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
                  per_page: Annotated[int, Query(alias="perPage", ge=1, le=100)] = 25):
    resp = await billing.ListUsage(pb.ListUsageRequest(account_id=who.account_id, mode=who.mode,
                                                                 page=page_no, per_page=per_page))
    return page([to_json(e) for e in resp.entries], page_no, per_page, resp.total)
