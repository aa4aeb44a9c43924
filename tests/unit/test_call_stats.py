"""The run's call figures: DDSketch quantiles against exact ones, merging, and the persistent
(never mutated) CallStats value the run aggregate folds."""

from __future__ import annotations

import random

import pytest

from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_proto.callgauge.media.v1.measurements_pb2 import RunSummary
from callgauge_runs.domain.callstats import FOLD, CallStats, merged, new_sketch, quantile

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999)


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]  # DDSketch's rank: q * (n - 1)


def sketch_of(values):
    s = new_sketch()
    for v in values:
        s.add(v)
    return s


@pytest.mark.parametrize("dist", ["lognormal", "uniform", "mos"])
def test_quantiles_within_one_percent_of_exact_on_100k_samples(dist):
    rnd = random.Random(14)
    draw = {"lognormal": lambda: rnd.lognormvariate(4, 1.2),   # setup times, ms: long tail
            "uniform": lambda: rnd.uniform(0.5, 3000),
            "mos": lambda: rnd.uniform(1.0, 4.5)}[dist]
    values = [draw() for _ in range(100_000)]
    s = sketch_of(values)
    for q in QUANTILES:
        assert quantile(s, q) == pytest.approx(exact(values, q), rel=0.01), q


def test_quantiles_stay_within_one_percent_after_a_merge():
    rnd = random.Random(7)
    a = [rnd.lognormvariate(3, 1) for _ in range(60_000)]
    b = [rnd.lognormvariate(5, 0.5) for _ in range(40_000)]  # another engine, slower
    sa, sb = sketch_of(a), sketch_of(b)
    both = merged(sa, sb)
    assert both.count == 100_000 and sa.count == 60_000 and sb.count == 40_000  # inputs untouched
    for q in QUANTILES:
        assert quantile(both, q) == pytest.approx(exact(a + b, q), rel=0.01), q


def test_an_empty_sketch_has_no_quantile():
    assert quantile(new_sketch(), 0.5) is None


def call(i: int, setup: float, answered: bool = True) -> m_pb2.CallMeasurement:
    return m_pb2.CallMeasurement(call_id=f"c{i}", index=i, outcome=m_pb2.SUCCESS if answered else m_pb2.TIMEOUT,
                                 sip_code=200 if answered else 408, setup_time_ms=setup, mos=4.3,
                                 duration_ms=1000, jitter_ms=2, loss_pct=0.5)


def test_call_stats_are_persistent_across_folds():
    stats = CallStats()
    kept = []
    for i in range(3 * FOLD + 5):
        stats = stats.add(call(i, 10 + i, answered=i % 10 != 0))
        kept.append(stats)
    # every earlier value still answers for the calls it had (a shared cached state never moves)
    for n in (1, FOLD - 1, FOLD, FOLD + 1, 3 * FOLD + 5):
        s = kept[n - 1].summary()
        assert s.calls_attempted == n
        assert s.calls_failed == len([i for i in range(n) if i % 10 == 0])
    final = kept[-1].summary()
    setups = [10 + i for i in range(3 * FOLD + 5) if i % 10 != 0]
    assert final.setup_p50_ms == pytest.approx(exact(setups, 0.5), rel=0.01)
    assert final.setup_p99_ms == pytest.approx(exact(setups, 0.99), rel=0.01)
    assert final.acd_ms == 1000 and final.jitter_ms_mean == 2 and final.loss_pct_max == 0.5
    assert dict(final.sip_codes) == {200: len(setups), 408: 3 * FOLD + 5 - len(setups)}


def test_no_answered_call_leaves_the_quality_figures_unset():
    s = CallStats().add(call(0, 0, answered=False)).summary()
    assert (s.calls_attempted, s.calls_failed, s.asr) == (1, 1, 0)
    assert s.ListFields() == [(RunSummary.DESCRIPTOR.fields_by_name[n], v) for n, v in (
        ("calls_attempted", 1), ("calls_failed", 1), ("asr", 0.0), ("sip_codes", {408: 1}), ("outcomes", {"TIMEOUT": 1}))]
