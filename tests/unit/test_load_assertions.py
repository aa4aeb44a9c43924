"""Assertions on the run-level load metrics (acd_s, mos_p5, setup_p99_ms, post_dial_delay_p95_ms)."""

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_runs.domain import spec as specs
from callgauge_runs.domain.errors import ValidationCollector
from callgauge_runs.domain.verdict import Tally, decide


def _spec(*assertions):
    return spec_pb2.TestSpec(assertions=[spec_pb2.Assertion(metric=m, op=o, value=v) for m, o, v in assertions])


def test_acd_in_seconds_and_mos_p5_are_asserted():
    summary = m_pb2.RunSummary(calls_attempted=10, calls_answered=10, asr=1.0, acd_ms=2500, mos_p5=4.1,
                               setup_p99_ms=80, post_dial_delay_p95_ms=20)
    ok, text = decide(_spec(("acd_s", ">=", 2.5), ("mos_p5", ">=", 4.0), ("setup_p99_ms", "<", 100),
                              ("post_dial_delay_p95_ms", "<=", 20)), summary, Tally(recorded=10))
    assert ok, text
    ok, text = decide(_spec(("acd_s", ">", 3), ("mos_p5", ">=", 4.2)), summary, Tally(recorded=10))
    assert not ok and "acd_s 2.5 (expected > 3)" in text and "mos_p5 4.1" in text


def test_the_new_metrics_pass_validation():
    v = ValidationCollector()
    specs.validate(spec_pb2.TestSpec(
        steps=[spec_pb2.Step(actions=[spec_pb2.Action(call=spec_pb2.CallAction(dial_destination="sip:a@127.0.0.1"))])],
        assertions=[spec_pb2.Assertion(metric=m, op=">=", value=0) for m in
                    ("acd_s", "mos_p5", "setup_p99_ms", "post_dial_delay_p95_ms")]), v, ["spec"])
    v.raise_if_any()
