"""What the routes, middleware and report pages depend on, as FastAPI dependencies. Nothing here
builds anything: callgauge_gateway.bootstrap puts one `Gateway` on `app.state.gateway` when the
application starts, and every route reads its stubs, stores and settings from it (`Runs`,
`Accounts`, … in a route's signature), never from module state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from callgauge_gateway.settings import GatewaySettings
from callgauge_proto.callgauge.accounts.v1 import accounts_service_pb2_grpc as accounts_grpc
from callgauge_proto.callgauge.billing.v1 import billing_service_pb2_grpc as billing_grpc
from callgauge_proto.callgauge.runs.v1 import monitor_service_pb2_grpc as monitor_grpc
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2_grpc as runs_grpc


@dataclass
class Gateway:
    """The gateway's wired parts (bootstrap makes it): the settings, the gRPC clients of the
    services (callgauge_gateway.adapters.services), the rate limiter, the idempotency store and the
    report sessions."""

    settings: GatewaySettings
    services: Any  # adapters.services.ServiceClients
    limiter: Any  # entrypoints.ratelimit.RateLimiter
    idempotency: Any  # adapters.idempotency_store.SqliteStore | RedisStore
    report_sessions: Any  # adapters.report_sessions.ReportSessions


def gateway_of(request: Request) -> Gateway:
    """The Gateway of the application this request reached (the report pages are a mounted
    sub-application: theirs is the parent's)."""
    gateway = getattr(request.app.state, "gateway", None)
    if gateway is None:
        raise RuntimeError("the gateway is not started: its parts are wired by callgauge_gateway.bootstrap")
    return gateway


def _settings(request: Request) -> GatewaySettings:
    return gateway_of(request).settings


def _runs(request: Request) -> runs_grpc.RunsServiceStub:
    return gateway_of(request).services.runs


def _monitor(request: Request) -> monitor_grpc.MonitorServiceStub:
    return gateway_of(request).services.monitor


def _billing(request: Request) -> billing_grpc.BillingServiceStub:
    return gateway_of(request).services.billing


def _accounts(request: Request) -> accounts_grpc.AccountsServiceStub:
    return gateway_of(request).services.accounts


GatewayDep = Annotated[Gateway, Depends(gateway_of)]
SettingsDep = Annotated[GatewaySettings, Depends(_settings)]
Runs = Annotated[runs_grpc.RunsServiceStub, Depends(_runs)]
Monitor = Annotated[monitor_grpc.MonitorServiceStub, Depends(_monitor)]
Billing = Annotated[billing_grpc.BillingServiceStub, Depends(_billing)]
Accounts = Annotated[accounts_grpc.AccountsServiceStub, Depends(_accounts)]
