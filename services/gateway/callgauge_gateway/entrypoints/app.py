"""The gateway's FastAPI application: HTTP concerns only; all state lives behind gRPC. Built by
callgauge_gateway.bootstrap, the composition root."""

from __future__ import annotations

import os
import re
import time
import uuid

import grpc
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.routing import Mount
from fastapi_offline import FastAPIOffline
from grpc_health.v1 import health_pb2
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from callgauge_gateway.entrypoints import errors, idempotency
from callgauge_gateway.entrypoints.bodylimit import BodyLimitMiddleware
from callgauge_gateway.entrypoints.deps import gateway_of
from callgauge_gateway.entrypoints.envelope import error, request_id_var
from callgauge_gateway.entrypoints.openapi import install_openapi
from callgauge_gateway.entrypoints.reports import create_reports_app
from callgauge_gateway.entrypoints.reports.routes import landing_page
from callgauge_gateway.entrypoints.routes import billing, calls, identity, index, monitor, pools, projects, runs
from callgauge_gateway.entrypoints.routes import run_seconds as run_seconds_routes
from callgauge_gateway.settings import GatewaySettings

_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
HTTP_REQUESTS = Counter("callgauge_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram("callgauge_http_request_seconds", "HTTP request latency", ["method", "route"])


def route_template(scope: dict) -> str:
    """The matched route's template (`/reports/kiosk/{token}`), with the prefix of the mount it is
    in; `unmatched` when no route matched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return "unmatched"
    if isinstance(route, Mount):  # matched a mount but no route inside it
        return f"{path}/{{path}}"
    prefix = scope.get("root_path", "")[len(scope.get("app_root_path", "")):]
    return f"{prefix}{path}"


def create_app(settings: GatewaySettings, lifespan=None) -> FastAPI:
    """The FastAPI application: routes, report pages, OpenAPI, middleware and error handlers. It
    builds no clients or stores: `lifespan` (callgauge_gateway.bootstrap) wires them onto
    app.state.gateway when the application starts."""

    # Swagger UI served from the fastapi-offline wheel, not a CDN: the docs page works offline.
    app = FastAPIOffline(
        static_url="/api/docs/static",
        title="Callgauge API", version="1.0.0",
        description="Real SIP calls, real RTP, voice-quality scores. Authenticate with `Authorization: Bearer cgk_…`.",
        openapi_url="/api/v1/openapi.json", docs_url="/api/docs", redoc_url=None, lifespan=lifespan,
        # FastAPI's own server span records url.path (a kiosk link's token): request_context below
        # makes the one server span, named by the route's template
        telemetry={"tracing": False},
    )
    errors.install(app)
    app.include_router(index.router)
    app.include_router(identity.router)
    app.include_router(projects.router)
    app.mount("/reports", create_reports_app(app))  # HTML run reports (signed in, kiosk)
    app.include_router(billing.router)
    app.include_router(pools.router)
    app.include_router(runs.router)
    app.include_router(calls.router)
    app.include_router(run_seconds_routes.router)
    app.include_router(monitor.router)
    install_openapi(app)
    app.middleware("http")(idempotency.idempotency_middleware)
    # outside idempotency (which reads the body), inside the request context (request id, metrics)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.gateway_max_body_bytes,
                       max_json_depth=settings.gateway_max_json_depth)
    tracer = trace.get_tracer("callgauge.gateway")

    @app.middleware("http")
    async def request_context(request: Request, call_next):
        rid = request.headers.get("x-request-id", "")
        if not _REQUEST_ID.fullmatch(rid):  # honoured when it is a sane token, else one of ours
            rid = str(uuid.uuid4())
        request_id_var.set(rid)
        token = otel_context.attach(propagate.extract(dict(request.headers)))
        route = request.scope.get("route")
        start = time.perf_counter()
        try:
            # named by the route's template once it is known, never by the path: a path holds secrets
            # (a kiosk link's token) that must not reach the trace backend
            with tracer.start_as_current_span(request.method, kind=trace.SpanKind.SERVER) as span:
                try:
                    response = await call_next(request)
                except Exception:  # whatever escaped the handlers: logged, answered in the envelope
                    errors.log.exception("unhandled_error")
                    response = error(500, "Internal error; the request id identifies it in our logs")
                template = route_template(request.scope)
                span.update_name(f"{request.method} {template}")
                span.set_attribute("http.route", template)
                span.set_attribute("http.request.method", request.method)
                span.set_attribute("http.response.status_code", response.status_code)
        finally:
            otel_context.detach(token)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        HTTP_REQUESTS.labels(request.method, path, str(response.status_code)).inc()
        HTTP_LATENCY.labels(request.method, path).observe(time.perf_counter() - start)
        response.headers["X-Request-Id"] = rid
        for name, value in (getattr(request.state, "rate_headers", None) or {}).items():
            response.headers.setdefault(name, value)
        return response

    @app.get("/", include_in_schema=False)
    async def landing(request: Request):
        """A small page for whoever opens the server in a browser: docs, API, runs (after sign-in)."""
        return landing_page(index._version(), f"{str(request.base_url).rstrip('/')}/api/v1")

    @app.get("/healthz", include_in_schema=False)
    async def healthz():
        return PlainTextResponse("ok\n")

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request):
        services = gateway_of(request).services
        for name, stub in (("runs", services.runs_health), ("accounts", services.accounts_health)):
            try:
                resp = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
            except grpc.aio.AioRpcError as exc:
                return PlainTextResponse(f"{name} service: {exc.code().name}\n", status_code=503)
            if resp.status != health_pb2.HealthCheckResponse.SERVING:
                return PlainTextResponse(f"{name} service not serving\n", status_code=503)
        # the start that made this process: `callgauge up` checks it reached the gateway it started
        instance = os.environ.get("CALLGAUGE_INSTANCE_TOKEN", "").strip()
        return PlainTextResponse("ready\n", headers={"X-Callgauge-Instance": instance} if instance else None)

    @app.get("/metrics", include_in_schema=False)
    async def metrics():
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
