"""Per-second statistics of a run (pure): given what happened to calls, the RunSecondStats."""

import pytest

from callgauge_media.domain.second_stats import SecondStats
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2


def test_a_second_counts_attempts_answers_failures_and_active_calls():
    s = SecondStats("r", "e")
    for c in ("a", "b", "c"):
        s.attempt(c)
    s.answered("a")
    s.answered("a")  # told twice: counted once
    s.ended("c", m_pb2.CallMeasurement(outcome=m_pb2.CALL_FAILED, sip_code=486))
    first = s.cut(1_000_000_000)
    assert (first.second, first.active_calls, first.attempts, first.answers, first.failures, first.calls_ended) == (
        0, 2, 3, 1, 1, 1)
    assert first.at.seconds == 1 and (first.run_id, first.engine_id, first.driver) == ("r", "e", "pjsua")
    second = s.cut(2_000_000_000)
    assert (second.second, second.active_calls, second.attempts, second.answers, second.failures) == (1, 2, 0, 0, 0)
    assert s.peak_active == 3


def test_loss_and_jitter_come_from_the_deltas_of_each_calls_samples():
    s = SecondStats("r", "e")
    s.attempt("a")
    s.attempt("b")
    s.progress("a", 50, 0, 1.0)
    s.progress("b", 40, 10, 3.0)
    one = s.cut(0)
    assert (one.rx_packets, one.lost_packets) == (90, 10)
    assert one.loss_pct == pytest.approx(10.0)
    assert (one.jitter_ms_mean, one.jitter_ms_max) == (2.0, 3.0)
    s.progress("a", 100, 0, 2.0)
    # b ends: its final measurement is its last sample
    s.ended("b", m_pb2.CallMeasurement(outcome=m_pb2.SUCCESS, rx_packets=85, rx_lost_packets=15, jitter_ms=4.0))
    two = s.cut(1)
    assert (two.rx_packets, two.lost_packets, two.answers, two.calls_ended) == (95, 5, 1, 1)
    assert two.loss_pct == pytest.approx(5.0)
    assert (two.jitter_ms_mean, two.jitter_ms_max) == (3.0, 4.0)
    three = s.cut(2)
    assert (three.rx_packets, three.loss_pct, three.jitter_ms_max, three.active_calls) == (0, 0.0, 0.0, 1)


def test_events_of_unknown_calls_are_ignored():
    s = SecondStats("r", "e")
    s.answered("x")
    s.progress("x", 10, 1, 1.0)
    s.ended("x", m_pb2.CallMeasurement(outcome=m_pb2.SUCCESS))
    z = s.cut(0)
    assert (z.attempts, z.answers, z.calls_ended, z.rx_packets) == (0, 0, 0, 0)
