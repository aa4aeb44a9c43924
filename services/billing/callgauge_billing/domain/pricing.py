"""The price list and a run's maximum cost (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2

DEFAULT_CALL_MS = 5_000  # the runs service's default talk time of a call action


@dataclass(frozen=True)
class Prices:
    call_second_minor: int = 1
    registration_minor: int = 1
    probe_run_minor: int = 5

    def unit_price(self, kind: str) -> int:
        return {"call_seconds": self.call_second_minor, "registration": self.registration_minor,
                "probe_run": self.probe_run_minor}.get(kind, 0)


def billed_seconds(ms: float) -> int:
    """Per-second billing: every started second of an answered call counts."""
    return max(0, math.ceil(ms / 1000.0 - 1e-9))


def _load_max_seconds(a: spec_pb2.LoadAction) -> int:
    per_call_ms = (a.duration_ms or DEFAULT_CALL_MS)
    if a.duration_distribution == "uniform":
        per_call_ms += a.duration_spread_ms
    elif a.duration_distribution == "exponential":
        per_call_ms *= 5  # a cap on the tail; the meter still charges what is used
    per_call = billed_seconds(per_call_ms) + 1
    window_s = a.ramp_up_s + a.hold_s + a.ramp_down_s
    bounds = []
    calls = a.max_total_calls or (math.ceil(a.cps * window_s) if a.cps > 0 and window_s else 0)
    if calls:
        bounds.append(calls * per_call)
    if a.max_concurrency and window_s:
        bounds.append(a.max_concurrency * (window_s + per_call))
    return min(bounds) if bounds else per_call


def max_units(spec: spec_pb2.TestSpec) -> tuple[int, int]:
    """(call seconds, registration attempts) a run of `spec` can use at most. Each call counts its
    talk time plus one second for the rounding of answer and hang-up."""
    seconds = registrations = 0
    for step in spec.steps:
        for action in step.actions:
            kind = action.WhichOneof("kind")
            if kind == "call":
                c = action.call
                seconds += (c.max_total_calls or 1) * (billed_seconds(c.duration_ms or DEFAULT_CALL_MS) + 1)
            elif kind == "load":
                seconds += _load_max_seconds(action.load)
            elif kind == "register":
                registrations += max(action.register.count, 1)
            elif kind == "wait_for_calls":
                w = action.wait_for_calls
                if w.max_total_calls:
                    seconds += w.max_total_calls * (billed_seconds(w.duration_ms or DEFAULT_CALL_MS) + 1)
    return seconds, registrations


def max_cost(spec: spec_pb2.TestSpec, prices: Prices) -> int:
    seconds, registrations = max_units(spec)
    return seconds * prices.call_second_minor + registrations * prices.registration_minor
