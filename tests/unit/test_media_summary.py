import pytest

from callgauge_media.domain.summary import percentile, summarize
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2


def test_percentile_nearest_rank():
    assert percentile([], 95) == 0.0
    assert percentile([5.0], 95) == 5.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0


def test_summary_counts_only_answered_calls_for_quality():
    calls = [
        m_pb2.CallMeasurement(outcome=m_pb2.SUCCESS, sip_code=200, mos=4.4, setup_time_ms=10, duration_ms=1000,
                              jitter_ms=2, loss_pct=0, rx_packets=50, tx_packets=50),
        m_pb2.CallMeasurement(outcome=m_pb2.SUCCESS, sip_code=200, mos=4.0, setup_time_ms=30, duration_ms=3000,
                              jitter_ms=4, loss_pct=1, rx_packets=100, tx_packets=100),
        m_pb2.CallMeasurement(outcome=m_pb2.TIMEOUT, sip_code=408),
    ]
    s = summarize(calls)
    assert (s.calls_attempted, s.calls_answered, s.calls_failed) == (3, 2, 1)
    assert abs(s.asr - 2 / 3) < 1e-9
    assert (s.mos_min, s.mos_mean, s.acd_ms) == (4.0, 4.2, 2000)
    assert (s.setup_p50_ms, s.setup_p95_ms, s.loss_pct_max, s.jitter_ms_max) == (10, 30, 1, 4)
    assert (s.rx_packets, s.tx_packets) == (150, 150)
    assert dict(s.sip_codes) == {200: 2, 408: 1}
    assert dict(s.outcomes) == {"SUCCESS": 2, "TIMEOUT": 1}


def test_summary_mos_p5_setup_percentiles_and_load_fields():
    calls = [m_pb2.CallMeasurement(call_id=f"r:0.0.{i}", outcome=m_pb2.SUCCESS, sip_code=200, mos=4.0 + i / 100,
                                   setup_time_ms=float(i + 1), post_dial_delay_ms=float(i), duration_ms=2000)
             for i in range(40)]
    calls.append(m_pb2.CallMeasurement(call_id="r:0.0.40", outcome=m_pb2.CALL_FAILED, sip_code=503))
    s = summarize(calls, calls_planned=50, peak_concurrency=7, driver="pjsua",
                  engine_of={c.call_id: ("a" if i % 2 else "b") for i, c in enumerate(calls)})
    assert s.mos_p5 == pytest.approx(4.01)  # nearest rank: ceil(0.05 * 40) = 2nd lowest
    assert (s.setup_p50_ms, s.setup_p95_ms, s.setup_p99_ms, s.post_dial_delay_p95_ms) == (20, 38, 40, 37)
    assert (s.calls_planned, s.peak_concurrency, s.driver) == (50, 7, "pjsua")
    assert dict(s.engines) == {"a": 20, "b": 21}
    assert dict(s.sip_codes) == {200: 40, 503: 1} and s.acd_ms == 2000


def test_merge_counts_adds_a_sipp_summary_to_the_measured_calls():
    from callgauge_media.domain.summary import merge_counts

    base = summarize([m_pb2.CallMeasurement(outcome=m_pb2.SUCCESS, sip_code=200, mos=4.4, setup_time_ms=5)],
                     calls_planned=1, peak_concurrency=1, driver="pjsua")
    sipp = m_pb2.RunSummary(calls_attempted=9, calls_answered=8, calls_failed=1, calls_planned=10, peak_concurrency=4,
                            driver="sipp", setup_p50_ms=3, sip_codes={200: 8, 486: 1},
                            outcomes={"SUCCESS": 8, "CALL_FAILED": 1})
    s = merge_counts(base, sipp)
    assert (s.calls_attempted, s.calls_answered, s.calls_failed, s.calls_planned) == (10, 9, 1, 11)
    assert s.asr == pytest.approx(0.9) and s.peak_concurrency == 4 and s.driver == "pjsua+sipp"
    assert dict(s.sip_codes) == {200: 9, 486: 1} and dict(s.outcomes) == {"SUCCESS": 9, "CALL_FAILED": 1}
    assert s.mos_mean == pytest.approx(4.4) and s.setup_p50_ms == 5  # quality from the measured side
    only = merge_counts(summarize([]), sipp)
    assert only.setup_p50_ms == 3 and only.calls_attempted == 9 and only.driver == "sipp"


def test_a_big_runs_figures_are_kept_at_bounded_memory_within_half_a_percent():
    """Given 30,000 answered calls (more than EXACT_UP_TO), when their figures are added one by one,
    then no figure keeps its values (a sketch does) and the percentiles are within 0.5 % of the
    exact nearest-rank ones; counts, min, max and means stay exact."""
    import random

    from callgauge_media.domain.summary import EXACT_UP_TO, CallFigures

    rnd = random.Random(7)
    setups = [rnd.lognormvariate(3, 0.6) for _ in range(30_000)]
    figures = CallFigures()
    for i, setup in enumerate(setups):
        figures.add(m_pb2.CallMeasurement(call_id=f"r:0.0.{i}", outcome=m_pb2.SUCCESS, sip_code=200, mos=4.37,
                                          setup_time_ms=setup, duration_ms=1000), "e1")
    assert len(setups) > EXACT_UP_TO
    assert all(len(q.values) == 0 for q in figures.q.values())  # nothing grows with the run
    s = figures.summary(calls_planned=30_000)
    for p, got in ((50, s.setup_p50_ms), (95, s.setup_p95_ms), (99, s.setup_p99_ms)):
        exact = percentile(setups, p)
        assert abs(got - exact) <= 0.005 * exact, (p, got, exact)
    assert (s.calls_attempted, s.calls_answered, s.mos_min, dict(s.engines)) == (30_000, 30_000, 4.37, {"e1": 30_000})
    assert s.mos_mean == pytest.approx(4.37)


def test_small_runs_keep_exact_nearest_rank_percentiles():
    from callgauge_media.domain.summary import CallFigures

    figures = CallFigures()
    for i in range(100):
        figures.add(m_pb2.CallMeasurement(outcome=m_pb2.SUCCESS, setup_time_ms=float(i + 1)))
    assert figures.summary().setup_p95_ms == 95.0
