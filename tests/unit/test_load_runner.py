"""The runner's load loop with a fake placer: the capacity cap drops what cannot start before the
window closes, and a halted run (stopped, balance exhausted) schedules no more attempts."""

import asyncio

from callgauge_media.handlers.runner import execute_run
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2


class FakePlacer:
    def __init__(self, capacity=0, hold_s=0.0, halt_after=None):
        self.capacity, self.hold_s, self.halt_after, self.placed, self.up, self.peak = capacity, hold_s, halt_after, 0, 0, 0

    def halted(self, run_id):
        return self.halt_after is not None and self.placed >= self.halt_after

    async def place(self, call_id, action):
        self.placed += 1
        self.up += 1
        self.peak = max(self.peak, self.up)
        try:
            await asyncio.sleep(self.hold_s)
        finally:
            self.up -= 1
        return m_pb2.CallMeasurement(outcome=m_pb2.SUCCESS, sip_code=200, duration_ms=action.duration_ms, mos=4.4)


def _run(load):
    events = []

    async def emit(m):
        events.append(m)

    req = runs_pb2.RunRequested(run_id="r", spec=spec_pb2.TestSpec(steps=[spec_pb2.Step(actions=[
        spec_pb2.Action(load=load)])]))
    return events, req, emit


def test_attempts_beyond_the_engines_capacity_are_dropped_when_the_window_closes():
    placer = FakePlacer(capacity=2, hold_s=1.5)  # calls outlast the 0.1 s window by far
    events, req, emit = _run(spec_pb2.LoadAction(dial_destination="sip:a@127.0.0.1", cps=100, max_total_calls=10))
    s = asyncio.run(execute_run(req, placer, emit, "e"))
    assert (s.calls_planned, s.calls_attempted, placer.peak) == (10, 2, 2)
    assert sum(1 for e in events if isinstance(e, media_pb2.CallMeasured)) == 2


def test_a_halted_run_schedules_no_more_attempts():
    placer = FakePlacer(halt_after=3)
    events, req, emit = _run(spec_pb2.LoadAction(dial_destination="sip:a@127.0.0.1", cps=50, max_total_calls=50))
    s = asyncio.run(execute_run(req, placer, emit, "e"))
    assert s.calls_attempted == 3 and s.calls_planned == 50
