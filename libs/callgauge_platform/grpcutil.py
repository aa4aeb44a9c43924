"""gRPC asyncio server and client helpers: trace-context propagation, request metrics and logs,
the standard health service, graceful shutdown."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from prometheus_client import Counter, Histogram

from callgauge_platform import service_auth
from callgauge_platform.errors import DomainErrorInterceptor
from callgauge_platform.logs import get_logger
from callgauge_platform.telemetry import context_from_pairs, current_traceparent

log = get_logger(__name__)

GRPC_REQUESTS = Counter("callgauge_grpc_requests_total", "gRPC requests handled", ["method", "code"])
GRPC_LATENCY = Histogram("callgauge_grpc_request_seconds", "gRPC request latency", ["method"])


class ServerTelemetryInterceptor(grpc.aio.ServerInterceptor):
    """Continues the caller's trace, times the call and counts it by status code."""

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        parent = context_from_pairs(handler_call_details.invocation_metadata or ())
        inner = handler.unary_unary
        tracer = trace.get_tracer("callgauge.grpc")

        async def wrapped(request, context: grpc.aio.ServicerContext):
            token = otel_context.attach(parent)
            start = time.perf_counter()
            code = "OK"
            try:
                with tracer.start_as_current_span(method, kind=trace.SpanKind.SERVER) as span:
                    try:
                        return await inner(request, context)
                    finally:
                        c = context.code()
                        if c is not None and c != grpc.StatusCode.OK:
                            code = c.name if hasattr(c, "name") else str(c)
                            span.set_attribute("rpc.grpc.status_code", code)
            except grpc.aio.AbortError:
                raise  # an answered error: its code was taken from the context above
            except Exception:
                code = "INTERNAL"
                raise
            finally:
                GRPC_REQUESTS.labels(method, code).inc()
                GRPC_LATENCY.labels(method).observe(time.perf_counter() - start)
                otel_context.detach(token)

        return grpc.unary_unary_rpc_method_handler(
            wrapped, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
        )


class ClientTraceInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """Puts the current W3C traceparent into the call's metadata."""

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        tp = current_traceparent()
        if tp:
            md = list(client_call_details.metadata or ())
            md.append(("traceparent", tp))
            client_call_details = client_call_details._replace(metadata=md)
        return await continuation(client_call_details, request)


def make_channel(target: str, auth: grpc.aio.ClientInterceptor | None = None) -> grpc.aio.Channel:
    interceptors: list[grpc.aio.ClientInterceptor] = [ClientTraceInterceptor()]
    if auth is not None:
        interceptors.append(auth)
    return grpc.aio.insecure_channel(target, interceptors=interceptors)


def service_channel(settings, service: str, identity: str, target: str | None = None) -> grpc.aio.Channel:
    """A channel to an internal service (accounts | runs | billing; at `target`, else at its address
    in settings) whose every call carries the service token of `identity`. The one way services,
    tools and tests reach each other."""
    target = target or getattr(settings, f"{service}_grpc")  # accounts_grpc, runs_grpc, billing_grpc
    return make_channel(target, service_auth.client_interceptor(settings, identity, service))


class GrpcServer:
    def __init__(self, addr: str, register: Iterable[Callable[[grpc.aio.Server], None]], service_names: list[str],
                 auth: grpc.aio.ServerInterceptor):
        """`auth`: the service-token check (service_auth.server_interceptor); every server has one.
        Every server also maps domain errors to gRPC status in one place (DomainErrorInterceptor,
        innermost, so the telemetry counts the mapped code)."""
        self.server = grpc.aio.server(interceptors=[ServerTelemetryInterceptor(), auth, DomainErrorInterceptor()])
        for reg in register:
            reg(self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._names = service_names
        self.port = self.server.add_insecure_port(addr)
        if self.port == 0:
            raise RuntimeError(f"cannot bind gRPC server to {addr}")

    async def start(self) -> None:
        await self.server.start()
        for name in ["", *self._names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking new calls, let in-flight ones finish for `grace` seconds."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
