"""OpenTelemetry: a tracer provider per service and W3C trace-context helpers for the wires
we carry it over (HTTP headers, gRPC metadata, Kafka headers, event metadata)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

_configured = False
_exporting = False  # the installed provider exports its spans somewhere


def setup_tracing(service: str, otlp_endpoint: str = "", exporter: SpanExporter | None = None) -> TracerProvider:
    """Install a tracer provider once per process. Spans are exported to `exporter` when given
    (tests), else over OTLP/HTTP when an endpoint is set (e.g. http://collector:4318/v1/traces).
    Batching follows the standard OTEL_BSP_* environment variables."""
    global _configured, _exporting
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if exporter is None and otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=otlp_endpoint)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    if not _configured:
        trace.set_tracer_provider(provider)
        _configured = True
        _exporting = exporter is not None
    return provider


def exporting() -> bool:
    """Whether the provider setup_tracing installed exports spans: a span made per event for no
    exporter costs CPU and goes nowhere (trace ids still travel in the events' traceparent)."""
    return _exporting


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def current_traceparent() -> str:
    """The W3C traceparent of the current span ("" outside one): what the tracecontext propagator
    injects, written directly (every appended event carries one: the propagator's carrier round trip
    cost more than the rest of making the event)."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return ""
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"


def context_from_traceparent(traceparent: str | None) -> otel_context.Context:
    if not traceparent:
        return otel_context.Context()
    return propagate.extract({"traceparent": traceparent})


def context_from_pairs(pairs: Iterable[tuple[str, bytes | str]] | Mapping[str, str] | None) -> otel_context.Context:
    if not pairs:
        return otel_context.Context()
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    carrier = {k.lower(): (v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in items}
    return propagate.extract(carrier)
