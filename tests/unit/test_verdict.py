"""A run's verdict (domain/verdict.py), given the calls recorded and the engine's summary."""

from __future__ import annotations

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_runs.domain import spec as specs
from callgauge_runs.domain import verdict
from callgauge_runs.domain.errors import ValidationCollector


def spec(*assertions, expect=()):
    s = spec_pb2.TestSpec(assertions=[spec_pb2.Assertion(metric=m, op=o, value=v) for m, o, v in assertions])
    s.steps.add().actions.add().call.CopyFrom(spec_pb2.CallAction(
        dial_destination="sip:echo@127.0.0.1:5070",
        expect=[spec_pb2.Expect(outcome=o, sip_code=c) for o, c in expect]))
    return s


def call(i, outcome=m_pb2.SUCCESS, code=200, reason="OK", **kw):
    return m_pb2.CallMeasurement(call_id=f"c{i}", index=i, outcome=outcome, sip_code=code, sip_reason=reason, **kw)


def tally_of(s, calls):
    t = verdict.Tally()
    for c in calls:
        t = verdict.count_call(t, s, c)
    return t


def summary_of(calls, **kw):
    answered = sum(1 for c in calls if c.outcome == m_pb2.SUCCESS)
    out = m_pb2.RunSummary(calls_attempted=len(calls), calls_answered=answered, calls_failed=len(calls) - answered,
                           **kw)
    if calls:
        out.asr = answered / len(calls)
    return out


BUSY = dict(outcome=m_pb2.CALL_FAILED, code=486, reason="Busy Here")


def test_failed_calls_fail_a_run_that_only_asserts_mos():
    # given a test asserting only mos_min >= 4, and 6 calls of which 2 got 486
    s = spec(("mos_min", ">=", 4.0))
    calls = [call(i, mos=4.4) for i in range(4)] + [call(4, **BUSY), call(5, **BUSY)]
    # when the run ends
    passed, why = verdict.decide(s, summary_of(calls, mos_min=4.4), tally_of(s, calls))
    # then it fails, naming the calls
    assert not passed
    assert "2 of 6 call(s) did not end as expected" in why
    assert "call 4 (step 0, action 0): CALL_FAILED 486 Busy Here" in why and "call 5" in why


def test_a_run_expecting_486_passes_on_486_and_fails_when_answered():
    s = spec(expect=[("CALL_FAILED", 486)])
    busy = [call(0, **BUSY), call(1, **BUSY)]
    passed, why = verdict.decide(s, summary_of(busy), tally_of(s, busy))
    assert passed and why == "2/2 calls ended as expected (0 answered), all assertions held"
    answered = [call(0), call(1, **BUSY)]
    passed, why = verdict.decide(s, summary_of(answered), tally_of(s, answered))
    assert not passed and "call 0 (step 0, action 0): SUCCESS 200 OK" in why


def test_an_expect_without_code_matches_any_code_of_that_outcome():
    s = spec(expect=[("CALL_FAILED", 0), ("SUCCESS", 0)])
    calls = [call(0, outcome=m_pb2.CALL_FAILED, code=503, reason="Service Unavailable"), call(1)]
    assert verdict.decide(s, summary_of(calls), tally_of(s, calls))[0]
    timeout = [call(0, outcome=m_pb2.TIMEOUT, code=408)]
    assert not verdict.decide(s, summary_of(timeout), tally_of(s, timeout))[0]


def test_an_explicit_asr_assertion_opts_into_tolerance():
    s = spec(("asr", ">=", 0.5))
    calls = [call(0), call(1, **BUSY)]
    passed, why = verdict.decide(s, summary_of(calls), tally_of(s, calls))
    assert passed and why == "1/2 calls answered, all assertions held"
    strict = spec(("asr", ">=", 0.9))
    passed, why = verdict.decide(strict, summary_of(calls), tally_of(strict, calls))
    assert not passed and "asr 0.5 (expected >= 0.9)" in why and "CALL_FAILED 486" in why


def test_an_assertion_on_a_metric_nobody_measured_is_not_measured_and_fails():
    # given no answered call, so no MOS
    s = spec(("mos_min", ">=", 4.0), ("asr", ">=", 0.0))
    calls = [call(0, **BUSY)]
    passed, why = verdict.decide(s, summary_of(calls), tally_of(s, calls))
    assert not passed and "mos_min not measured (expected >= 4)" in why


def test_the_sample_of_unexpected_calls_is_bounded_and_the_rest_counted():
    s = spec()
    calls = [call(i, **BUSY) for i in range(50)]
    t = tally_of(s, calls)
    assert (t.recorded, t.unexpected, len(t.sample)) == (50, 50, verdict.SAMPLE_SIZE)
    passed, why = verdict.decide(s, summary_of(calls), t)
    assert not passed and "50 of 50" in why and "and 47 more" in why


def test_calls_only_counted_by_the_summary_are_judged_by_its_counts():
    # a SIPp-driven load reports counts, not every call
    s = spec()
    passed, why = verdict.decide(s, m_pb2.RunSummary(calls_attempted=10, calls_answered=9, calls_failed=1, asr=0.9),
                                 verdict.Tally())
    assert not passed and "1 of 10 call(s) did not end as expected" in why


def test_expect_entries_are_validated():
    v = ValidationCollector()
    specs.validate(spec(expect=[("BUSY", 486), ("CALL_FAILED", 99)]), v, ["spec"])
    assert [e.loc for e in v.errors] == [["spec", "steps", 0, "actions", 0, "expect", 0, "outcome"],
                                         ["spec", "steps", 0, "actions", 0, "expect", 1, "sip_code"]]


def test_mos_lqo_assertions_judge_the_scored_calls_and_fail_not_measured_without_any():
    from callgauge_media.domain.summary import summarize
    from callgauge_runs.domain.callstats import CallStats

    s = spec(("mos_lqo_min", ">=", 3.5), ("mos_lqo_mean", ">=", 4.0))
    v = ValidationCollector()
    specs.validate(s, v, [])
    assert not v.errors, v.errors
    scored = [call(0, mos=4.4, mos_lqo=4.3, recorded_legs="caller"), call(1, mos=4.4, mos_lqo=3.9,
                                                                        recorded_legs="caller"),
              call(2, mos=4.4)]  # not recorded: left out, not 0
    engine = summarize(scored)
    assert (engine.mos_lqo_min, round(engine.mos_lqo_mean, 3), engine.calls_audio_recorded) == (3.9, 4.1, 2)
    stats = CallStats()
    for c in scored:
        stats = stats.add(c)
    recorded = stats.summary()
    assert (recorded.mos_lqo_min, round(recorded.mos_lqo_mean, 3), recorded.calls_audio_recorded) == (3.9, 4.1, 2)
    passed, why = verdict.decide(s, engine, tally_of(s, scored))
    assert passed, why
    low = spec(("mos_lqo_min", ">=", 4.0))
    passed, why = verdict.decide(low, engine, tally_of(low, scored))
    assert not passed and "mos_lqo_min 3.9 (expected >= 4)" in why
    unscored = [call(0, mos=4.4)]
    passed, why = verdict.decide(s, summarize(unscored), tally_of(s, unscored))
    assert not passed and "mos_lqo_min not measured (expected >= 3.5)" in why
    assert "mos_lqo_mean not measured" in why


def test_audio_fields_of_actions_are_checked():
    def errors(action: spec_pb2.Action) -> dict:
        v = ValidationCollector()
        specs.validate(spec_pb2.TestSpec(steps=[spec_pb2.Step(actions=[action])]), v, [])
        return {str(e.loc[-1]): e.msg for e in v.errors}

    load = dict(dial_destination="sip:a@127.0.0.1", cps=1, hold_s=2)
    assert errors(spec_pb2.Action(load=spec_pb2.LoadAction(**load, play_file="prompt:greeting", record_sample=0.1,
                                                           record_max=5))) == {}
    bad = errors(spec_pb2.Action(load=spec_pb2.LoadAction(**load, record_sample=1.5)))
    assert "between 0 and 1" in bad["record_sample"]
    assert "set record_sample too" in errors(spec_pb2.Action(load=spec_pb2.LoadAction(**load, record_max=3)))["record_max"]
    sipp = errors(spec_pb2.Action(load=spec_pb2.LoadAction(**load, driver="sipp", record_sample=0.5)))
    assert "pjsua driver" in sipp["record_sample"]
    assert "no path" in errors(spec_pb2.Action(load=spec_pb2.LoadAction(**load, play_file="../x.wav")))["play_file"]
    wait = dict(credential_pool="p")
    assert errors(spec_pb2.Action(wait_for_calls=spec_pb2.WaitForCallsAction(
        **wait, expect_audio="prompt:greeting", expect_audio_min=0.7, play_file="silence"))) == {}
    assert "not silence" in errors(spec_pb2.Action(wait_for_calls=spec_pb2.WaitForCallsAction(
        **wait, expect_audio="silence")))["expect_audio"]
    assert errors(spec_pb2.Action(wait_for_calls=spec_pb2.WaitForCallsAction(
        **wait, expect_audio_min=2)))["expect_audio_min"]
