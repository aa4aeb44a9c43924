"""A run's verdict (pure: no I/O).

A run passes only if every call ended as expected and every assertion held:

* a call ends as expected when it was answered (SUCCESS), or, when its action lists ``expect``
  entries, when its outcome (and SIP code, where the entry gives one) matches one of them (a test
  of a busy line expects ``CALL_FAILED 486``);
* an explicit assertion does not turn that off: a test that only asserts ``mos_min >= 4`` still
  fails when a call got 486. A test opts into tolerance explicitly, with an ``asr`` assertion
  (``asr >= 0.95``): failed calls are then judged by it alone;
* an assertion on a figure nobody measured (no MOS when no call was answered) does not hold: it is
  "not measured", and the run fails with that reason.

The verdict is written against counters, not a list of calls: the run keeps a :class:`Tally` (how
many calls ended otherwise than expected, and a bounded sample of them to name in the verdict),
updated once per recorded call, and the engine's :class:`RunSummary` for the figures.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

SAMPLE_SIZE = 5      # unexpected calls kept to name in the verdict
NAMED_IN_VERDICT = 3

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}


@dataclass(frozen=True)
class Tally:
    """What the verdict needs to know about a run's calls, kept as they are recorded."""

    recorded: int = 0
    unexpected: int = 0
    sample: tuple[m_pb2.CallMeasurement, ...] = ()   # the first SAMPLE_SIZE unexpected calls


def action_of(spec: spec_pb2.TestSpec, step: int, action: int) -> spec_pb2.Action | None:
    if step < len(spec.steps) and action < len(spec.steps[step].actions):
        return spec.steps[step].actions[action]
    return None


def expectations(spec: spec_pb2.TestSpec, step: int, action: int) -> list[spec_pb2.Expect]:
    a = action_of(spec, step, action)
    if a is None:
        return []
    kind = a.WhichOneof("kind")
    return list(a.call.expect) if kind == "call" else list(a.load.expect) if kind == "load" else []


def ended_as_expected(spec: spec_pb2.TestSpec, call: m_pb2.CallMeasurement) -> bool:
    expect = expectations(spec, call.step, call.action)
    if not expect:
        return call.outcome == m_pb2.SUCCESS
    outcome = m_pb2.CallOutcome.Name(call.outcome)
    return any(e.outcome == outcome and (not e.sip_code or e.sip_code == call.sip_code) for e in expect)


def count_call(tally: Tally, spec: spec_pb2.TestSpec, call: m_pb2.CallMeasurement) -> Tally:
    """``tally`` with one more recorded call (the caller records each call once)."""
    if ended_as_expected(spec, call):
        return Tally(tally.recorded + 1, tally.unexpected, tally.sample)
    if len(tally.sample) >= SAMPLE_SIZE:
        sample = tally.sample
    else:  # kept without its SIP ladder: the verdict names outcome and code; the calls projection has the rest
        kept = m_pb2.CallMeasurement()
        kept.CopyFrom(call)
        kept.ClearField("sip_ladder")
        sample = (*tally.sample, kept)
    return Tally(tally.recorded + 1, tally.unexpected + 1, sample)


def metric_value(summary: m_pb2.RunSummary, metric: str) -> float | None:
    """The summary's figure for an assertion metric; None when it was not measured."""
    field = "acd_ms" if metric == "acd_s" else metric
    if not summary.HasField(field):
        return None
    value = float(getattr(summary, field))
    return value / 1000.0 if metric == "acd_s" else value


def tolerant(spec: spec_pb2.TestSpec) -> bool:
    return any(a.metric == "asr" for a in spec.assertions)


def describe_call(call: m_pb2.CallMeasurement) -> str:
    outcome = m_pb2.CallOutcome.Name(call.outcome)
    why = call.sip_reason or call.detail
    return " ".join(p for p in (f"call {call.index} (step {call.step}, action {call.action}):", outcome,
                                str(call.sip_code) if call.sip_code else "", why) if p)


def decide(spec: spec_pb2.TestSpec, summary: m_pb2.RunSummary, tally: Tally) -> tuple[bool, str]:
    """(passed, description). The description names what failed: calls that did not end as
    expected (the first few, with outcome and SIP code), assertions that did not hold or had no
    measured value."""
    if summary.calls_attempted == 0:
        return False, "no call was attempted"
    reasons = []
    # Calls the summary counts that the tally never saw (SIPp-driven load) are judged by the counts.
    unexpected = tally.unexpected
    unseen = max(0, summary.calls_attempted - tally.recorded)
    unseen_failed = min(unseen, summary.calls_failed) if unseen else 0
    if not tolerant(spec) and unexpected + unseen_failed:
        total = summary.calls_attempted
        reasons.append(f"{unexpected + unseen_failed} of {total} call(s) did not end as expected")
    for a in spec.assertions:
        value = metric_value(summary, a.metric)
        if value is None:
            reasons.append(f"{a.metric} not measured (expected {a.op} {a.value:g})")
        elif a.op not in OPS or not OPS[a.op](value, a.value):
            reasons.append(f"{a.metric} {value:g} (expected {a.op} {a.value:g})")
    if not reasons:
        return True, (f"{summary.calls_attempted}/{summary.calls_attempted} calls ended as expected "
                      f"({summary.calls_answered} answered), all assertions held"
                      if not tolerant(spec) else
                      f"{summary.calls_answered}/{summary.calls_attempted} calls answered, all assertions held")
    named = "; ".join(describe_call(c) for c in tally.sample[:NAMED_IN_VERDICT])
    more = unexpected - min(unexpected, NAMED_IN_VERDICT)
    if named and more:
        named += f"; and {more} more"
    return False, "failed: " + ", ".join(reasons) + (f" — {named}" if named else "")

