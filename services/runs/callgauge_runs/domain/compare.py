"""Comparing two runs metric by metric (Meter's jobs compare, CallMeter's run comparison). Pure.

A metric regresses when the run is worse than the base by MORE than the metric's tolerance,
in the metric's own unit (absolute, not relative): e.g. with the default 0.1 for mos_mean,
4.3 -> 4.25 is no regression, 4.3 -> 4.1 is one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_runs.domain.errors import Conflict, ValidationCollector
from callgauge_runs.domain.run import Run

# metric (RunSummary field) -> (which way is better, default tolerance)
METRICS: dict[str, tuple[str, float]] = {
    "asr": ("higher", 0.0),
    "mos_mean": ("higher", 0.1),
    "mos_min": ("higher", 0.2),
    "setup_p50_ms": ("lower", 50.0),
    "setup_p95_ms": ("lower", 100.0),
    "jitter_ms_mean": ("lower", 5.0),
    "jitter_ms_max": ("lower", 10.0),
    "loss_pct_max": ("lower", 0.5),
    "acd_ms": ("higher", 1000.0),
    "calls_failed": ("lower", 0.0),
}


@dataclass(frozen=True)
class MetricDelta:
    metric: str
    base: float | None     # None: not measured in that run
    value: float | None
    delta: float | None
    tolerance: float
    better: str
    regression: bool


def _value(s: m_pb2.RunSummary, metric: str) -> float | None:
    field = s.DESCRIPTOR.fields_by_name[metric]
    if field.has_presence and not s.HasField(metric):
        return None
    return float(getattr(s, metric))


def validate_tolerances(tolerances: dict[str, float], v: ValidationCollector) -> None:
    for k, t in tolerances.items():
        if k not in METRICS:
            v.add(["tolerances", k], f"unknown metric {k!r}; one of {', '.join(METRICS)}")
        elif math.isnan(t) or not 0 <= t <= 1e9:
            v.add(["tolerances", k], "a tolerance is a number >= 0 in the metric's unit")


def compare(base: m_pb2.RunSummary, run: m_pb2.RunSummary,
            tolerances: dict[str, float] | None = None) -> list[MetricDelta]:
    """Per metric: both values, the delta (run - base) and whether it is a regression."""
    tolerances = tolerances or {}
    out = []
    for metric, (better, default_tol) in METRICS.items():
        b, r = _value(base, metric), _value(run, metric)
        tol = float(tolerances.get(metric, default_tol))
        if b is None or r is None:  # not measured on one side: no delta, no regression claimed
            out.append(MetricDelta(metric, b, r, None, tol, better, False))
            continue
        delta = r - b
        regression = (b - r > tol) if better == "higher" else (r - b > tol)
        out.append(MetricDelta(metric, b, r, round(delta, 6), tol, better, regression))
    return out


def check_request(base_run_id: str, run_id: str, tolerances: dict[str, float]) -> None:
    """Invalid (every problem at once) unless both runs are named and the tolerances are known
    metrics with sensible values."""
    v = ValidationCollector()
    validate_tolerances(tolerances, v)
    if not base_run_id:
        v.add(["baseRunId"], "the run to compare against", "missing")
    if not run_id:
        v.add(["runId"], "the run to compare", "missing")
    v.raise_if_any()


def compare_runs(base: Run, run: Run, tolerances: dict[str, float] | None = None) -> list[MetricDelta]:
    """`compare` of two finished runs' summaries; Conflict when either has not finished."""
    for r in (base, run):
        if not r.finished:
            raise Conflict(f"run {r.id} is {r.status}; compare finished runs")
    return compare(base.summary or m_pb2.RunSummary(), run.summary or m_pb2.RunSummary(), tolerances)
