"""The load shaper: given a LoadAction, the attempt times and talk times (pure)."""

import math

import pytest

from callgauge_media.domain.load_shape import LoadShape, durations_ms, plan, seed_for
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2


def test_hold_only_spaces_attempts_evenly_inside_the_window():
    shape = LoadShape(cps=4, hold_s=2)
    assert shape.attempt_times() == [i / 4 for i in range(8)]


def test_ramp_up_hold_ramp_down_follows_the_trapezoid():
    shape = LoadShape(cps=10, ramp_up_s=2, hold_s=3, ramp_down_s=2)
    times = shape.attempt_times()
    assert shape.expected_calls() == 10 + 30 + 10
    assert len(times) == 50
    assert times == sorted(times) and times[0] == 0 and times[-1] < shape.window_s
    # ramp up: the integral is cps t^2 / (2 up) -> 10 attempts in the first 2 s, accelerating
    assert sum(t < 2 for t in times) == 10
    assert math.isclose(times[1], math.sqrt(2 * 2 * 1 / 10))
    assert times[2] - times[1] < times[1] - times[0]
    # hold: 10 per second
    assert sum(2 <= t < 5 for t in times) == 30
    assert times[11] - times[10] == pytest.approx(0.1)
    # ramp down: slowing
    assert sum(t >= 5 for t in times) == 10
    assert times[-1] - times[-2] > times[41] - times[40]


def test_the_rate_at_each_phase():
    shape = LoadShape(cps=10, ramp_up_s=2, hold_s=3, ramp_down_s=2)
    assert [shape.rate_at(t) for t in (-1, 0, 1, 2, 4.9, 6, 7, 8)] == [0, 0, 5, 10, 10, 5, 0, 0]


def test_max_total_calls_caps_the_plan():
    assert len(LoadShape(cps=100, hold_s=10, max_total_calls=7).attempt_times()) == 7


def test_defaults_without_phases_give_max_total_calls_at_the_rate():
    shape = LoadShape.from_action(spec_pb2.LoadAction(cps=5, max_total_calls=10))
    assert shape.window_s == 2 and shape.attempt_times() == [i / 5 for i in range(10)]
    one = LoadShape.from_action(spec_pb2.LoadAction())
    assert (one.cps, one.attempt_times()) == (1.0, [0.0])


def test_fractional_expected_calls_round_up_when_the_attempt_starts_inside_the_window():
    assert len(LoadShape(cps=2, hold_s=1.25).attempt_times()) == 3  # 0, 0.5, 1.0


def test_fixed_uniform_and_exponential_durations_are_seeded():
    fixed = durations_ms(spec_pb2.LoadAction(duration_ms=1500), 3, seed=1)
    assert fixed == [1500, 1500, 1500]
    u = spec_pb2.LoadAction(duration_ms=2000, duration_distribution="uniform", duration_spread_ms=500)
    a, b = durations_ms(u, 200, seed=7), durations_ms(u, 200, seed=7)
    assert a == b and min(a) >= 1500 and max(a) <= 2500 and len(set(a)) > 50
    assert durations_ms(u, 200, seed=8) != a
    e = durations_ms(spec_pb2.LoadAction(duration_ms=1000, duration_distribution="exponential"), 2000, seed=3)
    assert 900 < sum(e) / len(e) < 1100 and min(e) >= 0
    # P(X > mean) = 1/e for an exponential distribution
    assert 0.3 < sum(x > 1000 for x in e) / len(e) < 0.43


def test_unknown_distribution_is_refused():
    with pytest.raises(ValueError, match="one of fixed, uniform, exponential"):
        durations_ms(spec_pb2.LoadAction(duration_distribution="normal"), 1, seed=0)


def test_a_plan_is_reproducible_per_run_and_action():
    a = spec_pb2.LoadAction(cps=3, hold_s=2, duration_ms=800, duration_distribution="exponential")
    s1, p1 = plan(a, seed_for("run-1", 0, 0))
    _, p2 = plan(a, seed_for("run-1", 0, 0))
    _, p3 = plan(a, seed_for("run-1", 0, 1))
    assert p1 == p2 and [c.duration_ms for c in p1] != [c.duration_ms for c in p3]
    assert [c.index for c in p1] == list(range(6)) and s1.cps == 3
