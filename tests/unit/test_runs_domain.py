"""The runs deciders, given events / when command / then events."""

from __future__ import annotations

import pytest

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_runs.domain import project as project_model, run as run_model, test as test_model, verdict
from callgauge_runs.domain.errors import Conflict, Invalid, NotFound


def fold(evolve, events):
    state = None
    for e in events:
        state = evolve(state, e, None)
    return state


def call_spec(destination="sip:echo@127.0.0.1:5070", **kw) -> spec_pb2.TestSpec:
    spec = spec_pb2.TestSpec()
    spec.steps.add().actions.add().call.CopyFrom(spec_pb2.CallAction(dial_destination=destination, **kw))
    return spec


PROJECT = runs_pb2.ProjectCreated(project_id="p1", account_id="a1", name="PBX", slug="pbx")


def test_create_project_derives_slug():
    events = project_model.decide_create_project(None, project_model.CreateProject("p1", "a1", "  Production PBX "))
    assert events == [runs_pb2.ProjectCreated(project_id="p1", account_id="a1", name="Production PBX",
                                              slug="production-pbx", mode="live")]


def test_create_project_twice_conflicts():
    with pytest.raises(Conflict):
        project_model.decide_create_project(fold(project_model.evolve_project, [PROJECT]), project_model.CreateProject("p1", "a1", "x"))


def test_create_project_without_name_names_the_field():
    with pytest.raises(Invalid) as err:
        project_model.decide_create_project(None, project_model.CreateProject("p1", "a1", " "))
    assert [e.loc for e in err.value.errors] == [["name"]]


def test_create_test_fills_defaults_and_adds_no_assertion():
    project = fold(project_model.evolve_project, [PROJECT])
    [event] = test_model.decide_create_test(project, None, test_model.CreateTest("t1", "p1", "a1", "echo", call_spec()))
    call = event.spec.steps[0].actions[0].call
    assert (call.duration_ms, call.codec, call.max_total_calls, call.setup_timeout_ms) == (5000, "PCMU", 1, 10000)
    assert list(event.spec.assertions) == []  # every call must end as expected without one (verdict.py)


def test_create_test_in_another_accounts_project_is_not_found():
    project = fold(project_model.evolve_project, [PROJECT])
    with pytest.raises(NotFound):
        test_model.decide_create_test(project, None, test_model.CreateTest("t1", "p1", "other", "echo", call_spec()))


def test_create_test_reports_every_bad_attribute_with_its_location():
    project = fold(project_model.evolve_project, [PROJECT])
    spec = call_spec("http://x", codec="MP3", max_total_calls=2, concurrency=5)
    spec.steps.add()
    with pytest.raises(Invalid) as err:
        test_model.decide_create_test(project, None, test_model.CreateTest("t1", "p1", "a1", "echo", spec))
    locs = {tuple(e.loc) for e in err.value.errors}
    assert ("steps", 0, "actions", 0, "dial_destination") in locs
    assert ("steps", 0, "actions", 0, "codec") in locs
    assert ("steps", 0, "actions", 0, "concurrency") in locs
    assert ("steps", 1, "actions") in locs


TEST = runs_pb2.TestCreated(test_id="t1", project_id="p1", account_id="a1", name="echo", spec=call_spec(max_total_calls=2))


def requested(run_id="r1"):
    test = fold(test_model.evolve_test, [TEST])
    return run_model.decide_start_run(test, None, run_model.StartRun(run_id, "p1", "t1", "a1", tags=("ci",)))


def test_start_run_snapshots_the_test():
    [event] = requested()
    assert event.test_name == "echo" and event.spec == TEST.spec and list(event.tags) == ["ci"]
    run = fold(run_model.evolve_run, [event])
    assert run.status == "PENDING" and run.planned_calls == 2


def test_start_run_of_unknown_test_is_not_found():
    with pytest.raises(NotFound):
        run_model.decide_start_run(None, None, run_model.StartRun("r1", "p1", "t1", "a1"))


def test_start_run_with_test_in_other_project_is_not_found():
    test = fold(test_model.evolve_test, [TEST])
    with pytest.raises(NotFound):
        run_model.decide_start_run(test, None, run_model.StartRun("r1", "p2", "t1", "a1"))


def measured(index, outcome=m_pb2.SUCCESS, code=200):
    return media_pb2.CallMeasured(run_id="r1", call=m_pb2.CallMeasurement(
        call_id=f"c{index}", index=index, outcome=outcome, sip_code=code, mos=4.4))


def advance(events, media_events):
    for me in media_events:
        run = fold(run_model.evolve_run, events)
        events = [*events, *run_model.decide_media_event(run, me)]
    return events


def test_media_events_move_the_run_to_completed():
    summary = m_pb2.RunSummary(calls_attempted=2, calls_answered=2, asr=1.0, mos_min=4.4)
    events = advance(requested(), [
        media_pb2.RunAccepted(run_id="r1", engine_id="e", planned_calls=2),
        media_pb2.RunMediaStarted(run_id="r1", engine_id="e"),
        measured(0), measured(1),
        media_pb2.RunMediaFinished(run_id="r1", engine_id="e", summary=summary),
    ])
    assert [type(e).__name__ for e in events] == [
        "RunRequested", "RunQueued", "RunStarted", "CallRecorded", "CallRecorded", "RunCompleted"]
    run = fold(run_model.evolve_run, events)
    assert run.status == "COMPLETED" and run.passed and run.stats.count == 2
    assert run.stats.summary().calls_answered == 2 and run.first_failed == ()


def test_redelivered_media_events_decide_nothing_new():
    first = advance(requested(), [media_pb2.RunAccepted(run_id="r1"), measured(0)])
    assert advance(first, [media_pb2.RunAccepted(run_id="r1")]) == first
    # a redelivered call decides the same CallRecorded: the handler appends it under the id derived
    # from the media event's id, which the store keeps once (no scan of the run's calls here)
    assert advance(first, [measured(0)])[len(first):] == [runs_pb2.CallRecorded(run_id="r1", call=measured(0).call)]


def test_a_run_keeps_counts_and_the_first_failed_calls_not_its_calls():
    ladder = [m_pb2.SipMessage(summary="INVITE sip:x", text="INVITE sip:x SIP/2.0")]
    calls = [measured(i, m_pb2.CALL_FAILED if i % 2 else m_pb2.SUCCESS, 486 if i % 2 else 200) for i in range(1000)]
    for c in calls:
        c.call.sip_ladder.extend(ladder)
    run = fold(run_model.evolve_run, advance(requested(), calls))
    assert run.stats.count == 1000
    assert [c.index for c in run.first_failed] == [1, 3, 5]
    assert all(not c.sip_ladder for c in run.first_failed)
    summary = run.stats.summary()
    assert (summary.calls_attempted, summary.calls_answered, summary.calls_failed) == (1000, 500, 500)
    assert dict(summary.sip_codes) == {200: 500, 486: 500}
    assert dict(summary.outcomes) == {"SUCCESS": 500, "CALL_FAILED": 500}
    assert summary.mos_min == pytest.approx(4.4) and summary.mos_p5 == pytest.approx(4.4, rel=0.01)


def test_started_without_accepted_still_queues_first():
    events = advance(requested(), [media_pb2.RunMediaStarted(run_id="r1", engine_id="e")])
    assert [type(e).__name__ for e in events[1:]] == ["RunQueued", "RunStarted"]


def test_failed_calls_fail_the_run_with_outcome_and_code():
    summary = m_pb2.RunSummary(calls_attempted=2, calls_answered=1, calls_failed=1, asr=0.5)
    events = advance(requested(), [
        measured(0), measured(1, m_pb2.TIMEOUT, 408),
        media_pb2.RunMediaFinished(run_id="r1", summary=summary),
    ])
    run = fold(run_model.evolve_run, events)
    assert run.status == "FAILED" and not run.passed
    assert "1 of 2 call(s) did not end as expected" in run.result_description
    assert "TIMEOUT 408" in run.result_description


def test_engine_error_fails_the_run():
    events = advance(requested(), [media_pb2.RunMediaFinished(run_id="r1", error="boom")])
    run = fold(run_model.evolve_run, events)
    assert run.status == "FAILED" and "boom" in run.result_description


def test_events_after_the_end_are_ignored():
    done = advance(requested(), [media_pb2.RunMediaFinished(run_id="r1", error="boom")])
    assert advance(done, [measured(5), media_pb2.RunMediaStarted(run_id="r1")]) == done


def test_no_calls_attempted_never_passes():
    assert verdict.decide(call_spec(), m_pb2.RunSummary(), verdict.Tally()) == (False, "no call was attempted")


# ---- #20: a run never ends COMPLETED on calls it did not record; a lost engine ends it

def test_calls_the_engine_placed_but_not_recorded_fail_the_run_naming_how_many():
    summary = m_pb2.RunSummary(calls_attempted=3, calls_answered=3, asr=1.0, mos_min=4.4)
    events = advance(requested(), [measured(0), measured(1),  # the third CallMeasured was lost
                                   media_pb2.RunMediaFinished(run_id="r1", summary=summary)])
    run = fold(run_model.evolve_run, events)
    assert run.status == "FAILED" and run.stats.count == 2
    assert run.result_description.startswith("1 of the 3 call(s) the media engine placed were not recorded")


def test_planned_calls_never_attempted_fail_the_run():
    summary = m_pb2.RunSummary(calls_attempted=2, calls_answered=2, asr=1.0, mos_min=4.4, calls_planned=5)
    events = advance(requested(), [measured(0), measured(1), media_pb2.RunMediaFinished(run_id="r1", summary=summary)])
    run = fold(run_model.evolve_run, events)
    assert run.status == "FAILED"
    assert run.result_description == ("3 of the 5 planned call(s) were never attempted (2 attempted): "
                                      "the media engine did not say why")


def test_planned_calls_never_attempted_are_named_with_the_engines_reasons():
    summary = m_pb2.RunSummary(calls_attempted=2, calls_answered=2, asr=1.0, mos_min=4.4, calls_planned=6,
                               not_attempted={"max_concurrency (2) calls were up until the load window closed": 3,
                                              "SIPp exited with code 255 (fatal error) after 2 call(s)": 1})
    events = advance(requested(), [measured(0), measured(1), media_pb2.RunMediaFinished(run_id="r1", summary=summary)])
    run = fold(run_model.evolve_run, events)
    assert run.status == "FAILED"
    assert run.result_description == (
        "4 of the 6 planned call(s) were never attempted (2 attempted): "
        "3: max_concurrency (2) calls were up until the load window closed; "
        "1: SIPp exited with code 255 (fatal error) after 2 call(s)")
    assert dict(run.summary.not_attempted) == dict(summary.not_attempted)  # kept on the run (its JSON shows it)


def test_a_test_that_allows_unattempted_calls_is_judged_on_the_calls_it_attempted():
    spec = spec_pb2.TestSpec()
    spec.CopyFrom(TEST.spec)
    spec.allow_unattempted_calls = True
    test = fold(test_model.evolve_test, [runs_pb2.TestCreated(
        test_id="t1", project_id="p1", account_id="a1", name="echo", spec=spec)])
    started = run_model.decide_start_run(test, None, run_model.StartRun("r1", "p1", "t1", "a1"))
    summary = m_pb2.RunSummary(calls_attempted=2, calls_answered=2, asr=1.0, mos_min=4.4, calls_planned=5)
    events = advance(started, [measured(0), measured(1), media_pb2.RunMediaFinished(run_id="r1", summary=summary)])
    run = fold(run_model.evolve_run, events)
    assert run.status == "COMPLETED" and run.passed, run.result_description
    # still no pass on calls placed but not recorded, switch or not
    lost = m_pb2.RunSummary(calls_attempted=3, calls_answered=3, asr=1.0, mos_min=4.4, calls_planned=5)
    events = advance(started, [measured(0), measured(1), media_pb2.RunMediaFinished(run_id="r1", summary=lost)])
    assert fold(run_model.evolve_run, events).result_description.startswith("1 of the 3 call(s) the media engine")


def test_allow_unattempted_calls_is_kept_by_updates_that_leave_it_out_and_changed_by_those_that_give_it():
    test = fold(test_model.evolve_test, [TEST])
    cmd = dict(test_id=test.id, project_id="p1", account_id="a1", mode="live")
    [on] = test_model.decide_update_test(test, test_model.UpdateTest(**cmd, allow_unattempted_calls=True))
    test = fold(test_model.evolve_test, [TEST, on])
    assert test.spec.allow_unattempted_calls
    assert test_model.decide_update_test(test, test_model.UpdateTest(**cmd, name=test.name)) == []
    [renamed] = test_model.decide_update_test(test, test_model.UpdateTest(**cmd, name="other"))
    assert renamed.spec.allow_unattempted_calls
    [off] = test_model.decide_update_test(test, test_model.UpdateTest(**cmd, allow_unattempted_calls=False))
    assert not off.spec.allow_unattempted_calls


def test_a_stopped_run_is_cancelled_even_with_planned_calls_left():
    summary = m_pb2.RunSummary(calls_attempted=1, calls_answered=1, asr=1.0, calls_planned=5)
    events = requested() + [runs_pb2.RunStopRequested(run_id="r1", reason="x")]
    events = advance(events, [measured(0), media_pb2.RunMediaFinished(run_id="r1", summary=summary)])
    assert fold(run_model.evolve_run, events).status == "CANCELLED"


def test_a_lost_engine_fails_a_taken_run_keeping_its_calls():
    events = advance(requested(), [media_pb2.RunMediaStarted(run_id="r1", engine_id="e7"), measured(0)])
    run = fold(run_model.evolve_run, events)
    [failed] = run_model.decide_engine_lost(run, 31)
    run = fold(run_model.evolve_run, [*events, failed])
    assert run.status == "FAILED" and run.stats.count == 1
    assert run.result_description.startswith("media engine lost: no word from engine e7 for 31 s; 1 of 2")
    assert run.summary.calls_attempted == 1 and run.summary.calls_answered == 1
    assert run_model.decide_engine_lost(run, 31) == []  # already over


def test_a_lost_engine_does_not_touch_an_untaken_run():
    assert run_model.decide_engine_lost(fold(run_model.evolve_run, requested()), 99) == []


def test_stopping_has_a_deadline():
    events = advance(requested(), [media_pb2.RunMediaStarted(run_id="r1", engine_id="e")])
    run = fold(run_model.evolve_run, events)
    assert run_model.decide_stop_deadline(run, 60) == []  # not stopping
    events = [*events, *run_model.decide_stop_run(run, run_model.StopRun("r1", "a1", "live"))]
    run = fold(run_model.evolve_run, events)
    [cancelled] = run_model.decide_stop_deadline(run, 60)
    assert isinstance(cancelled, runs_pb2.RunCancelled) and "did not confirm within 60 s" in cancelled.result_description


@pytest.mark.parametrize("codec", ["PCMU", "G722", "opus"])
def test_every_codec_of_the_media_build_is_accepted(codec):
    project = fold(project_model.evolve_project, [PROJECT])
    spec = call_spec("sip:echo@127.0.0.1:5060", codec=codec)
    test_model.decide_create_test(project, None, test_model.CreateTest("t1", "p1", "a1", "echo", spec))


@pytest.mark.parametrize("bandwidth", ["narrowband", "mediumband", "wideband", "superwideband", "fullband"])
def test_an_opus_call_may_ask_for_an_audio_bandwidth(bandwidth):
    # Given codec opus, when a call asks for any bandwidth narrowband..fullband, then the test is created.
    project = fold(project_model.evolve_project, [PROJECT])
    spec = call_spec("sip:echo@127.0.0.1:5060", codec="opus", audio_bandwidth=bandwidth)
    [event] = test_model.decide_create_test(project, None, test_model.CreateTest("t1", "p1", "a1", "echo", spec))
    assert event.spec.steps[0].actions[0].call.audio_bandwidth == bandwidth


@pytest.mark.parametrize(("kw", "words"), [
    ({"codec": "opus", "audio_bandwidth": "hifi"}, "one of narrowband"),
    ({"codec": "PCMU", "audio_bandwidth": "wideband"}, "codec opus only"),
    ({"audio_bandwidth": "fullband"}, "codec opus only"),
])
def test_a_bad_audio_bandwidth_is_refused_naming_the_field(kw, words):
    # Given a bandwidth that is unknown or asked for another codec than opus, when the test is created,
    # then it is refused with the field named and a message a person can act on.
    project = fold(project_model.evolve_project, [PROJECT])
    with pytest.raises(Invalid) as err:
        test_model.decide_create_test(project, None, test_model.CreateTest(
            "t1", "p1", "a1", "echo", call_spec("sip:echo@127.0.0.1:5060", **kw)))
    [e] = err.value.errors
    assert e.loc[-1] == "audio_bandwidth" and words in e.msg, e


def test_recording_calls_a_batch_at_once_equals_evolving_them_one_by_one():
    """The runs service folds each batch of CallRecorded it appends with record_calls: the same run
    as evolve_run over them one by one (counts, sketches' percentiles, the verdict's tally, the first
    failed calls), whatever the batches' sizes against the sketches' folding every 256 calls."""
    import random

    rng = random.Random(3)
    started = fold(run_model.evolve_run, advance(requested(), [
        media_pb2.RunAccepted(run_id="r1", engine_id="e", planned_calls=700),
        media_pb2.RunMediaStarted(run_id="r1", engine_id="e")]))
    calls = []
    for i in range(700):
        ok = rng.random() < 0.8
        c = m_pb2.CallMeasurement(call_id=f"c{i}", index=i, outcome=m_pb2.SUCCESS if ok else m_pb2.CALL_FAILED,
                                  sip_code=200 if ok else rng.choice([408, 486, 503]),
                                  duration_ms=rng.randrange(900, 1100), rx_packets=rng.randrange(40, 60))
        if ok and rng.random() < 0.9:
            c.mos, c.jitter_ms, c.loss_pct = rng.uniform(3.5, 4.4), rng.uniform(0, 9), rng.uniform(0, 3)
        if rng.random() < 0.95:
            c.setup_time_ms = rng.uniform(2, 80)
        calls.append(c)
    one_by_one = started
    for c in calls:
        one_by_one = run_model.evolve_run(one_by_one, runs_pb2.CallRecorded(run_id="r1", call=c), None)
    batched, i = started, 0
    for size in (1, 37, 256, 300, 5, 101):
        batched = run_model.record_calls(batched, calls[i:i + size])
        i += size
    assert i == len(calls)
    assert batched.stats.summary() == one_by_one.stats.summary()
    assert batched.stats.count == one_by_one.stats.count == 700
    assert len(batched.stats.recent) == len(one_by_one.stats.recent)
    assert batched.tally == one_by_one.tally and batched.tally.unexpected > 0
    assert batched.first_failed == one_by_one.first_failed and len(batched.first_failed) == 3
    assert started.stats.count == 0  # the run before the batches is not changed
