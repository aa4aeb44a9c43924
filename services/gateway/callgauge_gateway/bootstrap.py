"""The gateway's composition root: reads nothing but the settings it is given and wires every part
the routes use — the gRPC clients of accounts, runs and billing, the rate limiter and its store,
the idempotency store, the report sessions — into one `Gateway` (entrypoints.deps) on
app.state.gateway while the application runs. Routes receive them as FastAPI dependencies; no
module holds a client, a store or the settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from callgauge_gateway.adapters.idempotency_store import open_store
from callgauge_gateway.adapters.rate_limit_store import open_limit_storage
from callgauge_gateway.adapters.report_sessions import ReportSessions
from callgauge_gateway.adapters.services import open_service_clients
from callgauge_gateway.entrypoints.app import create_app
from callgauge_gateway.entrypoints.deps import Gateway
from callgauge_gateway.entrypoints.ratelimit import RateLimiter
from callgauge_gateway.settings import GatewaySettings

SERVICE = "gateway"


@asynccontextmanager
async def open_gateway(settings: GatewaySettings) -> AsyncIterator[Gateway]:
    """Every part opened (the gRPC channels inside the running loop), and closed again on exit."""
    services = open_service_clients(settings)
    gateway = Gateway(settings=settings, services=services,
                      limiter=RateLimiter(settings, open_limit_storage(settings)),
                      idempotency=open_store(settings), report_sessions=ReportSessions(settings))
    try:
        yield gateway
    finally:
        await gateway.report_sessions.close()
        await gateway.idempotency.close()
        await services.close()


def bootstrap(settings: GatewaySettings | None = None) -> FastAPI:
    """The gateway's ASGI application, wired from `settings` (default: the environment's)."""
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_gateway(settings) as gateway:
            app.state.gateway = gateway
            try:
                yield
            finally:
                del app.state.gateway

    return create_app(settings, lifespan)
