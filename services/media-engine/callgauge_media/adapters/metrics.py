"""The engine's call metrics (Prometheus): every call placed, whichever driver placed it."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

ACTIVE_CALLS = Gauge("callgauge_media_active_calls", "calls being placed or held by this engine")
CALLS = Counter("callgauge_media_calls_total", "calls ended, by outcome", ["outcome"])
MOS = Histogram("callgauge_media_call_mos", "MOS of answered calls (E-model, G.107)",
                buckets=(1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 3.8, 4.0, 4.2, 4.3, 4.4, 4.5))
SETUP_TIME = Histogram("callgauge_media_call_setup_seconds", "INVITE sent -> 200 OK, answered calls",
                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


def observe_call(m: m_pb2.CallMeasurement) -> None:
    CALLS.labels(m_pb2.CallOutcome.Name(m.outcome)).inc()
    if m.outcome == m_pb2.SUCCESS:
        if m.HasField("mos"):
            MOS.observe(m.mos)
        if m.HasField("setup_time_ms"):
            SETUP_TIME.observe(m.setup_time_ms / 1000)
