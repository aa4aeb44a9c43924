"""Finding 3 (part): the media engine works through a load plan of any size with bounded memory —
the planned calls are generated as their time comes, not listed up front."""

from __future__ import annotations

import tracemalloc

from callgauge_media.domain.load_shape import LoadShape, iter_plan, plan
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2


def test_a_million_call_plan_costs_no_memory_until_it_is_walked():
    load = spec_pb2.LoadAction(cps=1000, hold_s=1000, duration_distribution="exponential", duration_ms=3000)
    tracemalloc.start()
    try:
        shape, n, calls = iter_plan(load, seed=7)
        first = [next(calls) for _ in range(1000)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 1_000_000 == LoadShape.from_action(load).attempt_count()
    assert peak < 2 * 1024 * 1024, f"{peak} bytes traced for a lazily walked plan"
    assert [c.index for c in first] == list(range(1000))


def test_the_lazy_plan_is_the_listed_plan():
    load = spec_pb2.LoadAction(cps=20, ramp_up_s=3, hold_s=2, ramp_down_s=3, duration_distribution="uniform",
                               duration_ms=2000, duration_spread_ms=500)
    _, listed = plan(load, seed=11)
    _, n, calls = iter_plan(load, seed=11)
    assert list(calls) == listed and n == len(listed) == len(LoadShape.from_action(load).attempt_times())
