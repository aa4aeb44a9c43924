"""The Probe decider, given events / when command / then events: validation, schedule slots
(one per due time, at most one caught up), judging runs by thresholds, health state changes,
acknowledgement, uptime per day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from callgauge_platform.timestamps import datetime_of
from callgauge_proto.callgauge.events.v1 import monitor_pb2 as pb
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_runs.domain import probe as probe_model
from callgauge_runs.domain.errors import Conflict, Invalid, NotFound

T0 = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)


def fold(events, state=None):
    for e in events:
        state = probe_model.evolve_probe(state, e, None)
    return state


def create(**kw) -> probe_model.CreateProbe:
    args = dict(probe_id="pr1", project_id="p1", account_id="a1", mode="live", test_id="t1", name="echo probe",
                interval_seconds=60, now=T0)
    args.update(kw)
    return probe_model.CreateProbe(**args)


def created(**kw) -> probe_model.Probe:
    return fold(probe_model.decide_create_probe(True, True, None, create(**kw)))


def good(**kw) -> m_pb2.RunSummary:
    s = dict(calls_attempted=1, calls_answered=1, asr=1.0, mos_min=4.4, mos_mean=4.4, jitter_ms_max=2.0,
             loss_pct_max=0.0, setup_p95_ms=5.0)
    s.update(kw)
    return m_pb2.RunSummary(**s)


def fire(state, now, run_id):
    events = probe_model.decide_fire_slot(state, now, run_id)
    return fold(events, state), events


def record(state, run_id, summary, at, status="COMPLETED"):
    events = probe_model.decide_record_run(state, probe_model.RunOutcome(run_id, status, summary, at))
    return fold(events, state), events


# ------------------------------------------------------------ create / update / delete


def test_create_gets_default_thresholds_and_a_jittered_first_slot():
    [event] = probe_model.decide_create_probe(True, True, None, create())
    assert event.thresholds == probe_model.default_thresholds()
    first = datetime_of(event.first_due_at)
    assert T0 <= first < T0 + timedelta(seconds=6)  # at most 10 % of the interval
    assert first == T0 + probe_model.jitter("pr1", 60)
    state = fold([event])
    assert (state.state, state.enabled, state.next_due_at) == (probe_model.UNKNOWN, True, first)


def test_jitter_is_stable_per_probe_and_spreads_probes():
    offsets = {probe_model.jitter(f"probe-{i}", 600) for i in range(20)}
    assert len(offsets) > 10
    assert all(timedelta(0) <= o < timedelta(seconds=30) for o in offsets)
    assert probe_model.jitter("x", 600) == probe_model.jitter("x", 600)


def test_create_validates_every_field_at_once():
    bad = pb.ProbeThresholds(mos=pb.MetricThreshold(warning=3.0, critical=4.0),
                             jitter_ms=pb.MetricThreshold(warning=80, critical=30))
    with pytest.raises(Invalid) as err:
        probe_model.decide_create_probe(True, False, None, create(name=" ", interval_seconds=5, thresholds=bad,
                                                        webhook_url="ftp://x"))
    locs = [e.loc for e in err.value.errors]
    assert ["test_id"] in locs and ["name"] in locs and ["interval_seconds"] in locs
    assert ["thresholds", "mos", "critical"] in locs and ["thresholds", "jitter_ms", "critical"] in locs
    assert ["webhook_url"] in locs


def test_short_intervals_only_where_the_rules_allow_them():
    with pytest.raises(Invalid):
        probe_model.decide_create_probe(True, True, None, create(interval_seconds=2))
    [e] = probe_model.decide_create_probe(True, True, None, create(interval_seconds=2), probe_model.ProbeRules(min_interval_seconds=1))
    assert e.interval_seconds == 2


def test_create_in_unknown_project_is_not_found_and_twice_conflicts():
    with pytest.raises(NotFound):
        probe_model.decide_create_probe(False, True, None, create())
    with pytest.raises(Conflict):
        probe_model.decide_create_probe(True, True, created(), create())


def test_update_keeps_unset_fields_and_restarts_schedule_on_new_interval():
    state = created()
    [e] = probe_model.decide_update_probe(state, True, probe_model.UpdateProbe("pr1", "p1", "a1", "live", T0 + timedelta(hours=1),
                                                            name="renamed"))
    after = fold([e], state)
    assert (after.name, after.interval_seconds, after.next_due_at) == ("renamed", 60, state.next_due_at)
    [e] = probe_model.decide_update_probe(after, True, probe_model.UpdateProbe("pr1", "p1", "a1", "live", T0 + timedelta(hours=1),
                                                            interval_seconds=300))
    assert datetime_of(e.next_due_at) == T0 + timedelta(hours=1) + probe_model.jitter("pr1", 300)


def test_other_account_mode_or_project_does_not_see_the_probe():
    state = created()
    for acct, mode, proj in (("a2", "live", "p1"), ("a1", "test", "p1"), ("a1", "live", "p2")):
        with pytest.raises(NotFound):
            probe_model.decide_update_probe(state, True, probe_model.UpdateProbe("pr1", proj, acct, mode, T0, name="x"))
        with pytest.raises(NotFound):
            probe_model.decide_delete_probe(state, acct, mode, proj, "pr1")


def test_deleted_probe_is_gone_and_fires_nothing():
    state = fold(probe_model.decide_delete_probe(created(), "a1", "live", "p1", "pr1"), created())
    assert state.deleted
    assert probe_model.decide_fire_slot(state, T0 + timedelta(days=1), "r") == []
    with pytest.raises(NotFound):
        probe_model.decide_delete_probe(state, "a1", "live", "p1", "pr1")


# ------------------------------------------------------------ schedule


def test_nothing_fires_before_the_slot_is_due():
    state = created()
    assert probe_model.decide_fire_slot(state, state.next_due_at - timedelta(milliseconds=1), "r1") == []


def test_each_due_slot_fires_once():
    state = created()
    due1 = state.next_due_at
    state, [e1] = fire(state, due1, "r1")
    assert (e1.slot, e1.run_id, e1.skipped_slots, datetime_of(e1.due_at)) == (1, "r1", 0, due1)
    assert probe_model.decide_fire_slot(state, due1 + timedelta(seconds=59), "r2") == []  # same slot: nothing
    state, [e2] = fire(state, due1 + timedelta(seconds=60, milliseconds=300), "r2")
    assert (e2.slot, datetime_of(e2.due_at)) == (2, due1 + timedelta(seconds=60))
    assert state.pending_runs == ("r1", "r2")


def test_after_a_long_outage_only_the_latest_missed_slot_fires():
    state = created()
    due1 = state.next_due_at
    state, _ = fire(state, due1, "r1")
    state, [e] = fire(state, due1 + timedelta(minutes=10, seconds=5), "r2")
    assert (e.slot, e.skipped_slots) == (11, 9)
    assert datetime_of(e.due_at) == due1 + timedelta(minutes=10)
    assert state.next_due_at == due1 + timedelta(minutes=11)


def test_disabled_probe_does_not_fire_and_resumes_from_now_when_enabled():
    state = created(enabled=False)
    assert probe_model.decide_fire_slot(state, T0 + timedelta(hours=5), "r") == []
    now = T0 + timedelta(hours=5)
    state = fold(probe_model.decide_update_probe(state, True, probe_model.UpdateProbe("pr1", "p1", "a1", "live", now, enabled=True)),
                 state)
    assert state.next_due_at == now + probe_model.jitter("pr1", 60)


# ------------------------------------------------------------ judging and health


def test_judge_levels_by_thresholds():
    t = probe_model.default_thresholds()
    ok = probe_model.judge(t, probe_model.RunOutcome("r", "COMPLETED", good(), T0))
    assert ok[:2] == (probe_model.HEALTHY, ())
    lvl, reasons, metrics = probe_model.judge(t, probe_model.RunOutcome("r", "COMPLETED", good(jitter_ms_max=45.0), T0))
    assert lvl == probe_model.DEGRADED and reasons == ("jitter_ms 45 ms > warning 30 ms",)
    assert metrics.jitter_ms == 45.0
    lvl, reasons, _ = probe_model.judge(t, probe_model.RunOutcome("r", "FAILED", good(jitter_ms_max=45.0, mos_min=2.5), T0))
    assert lvl == probe_model.UNHEALTHY and "mos 2.5 < critical 3" in reasons and len(reasons) == 2
    lvl, reasons, _ = probe_model.judge(t, probe_model.RunOutcome("r", "FAILED", good(calls_answered=0, asr=0.0), T0))
    assert (lvl, reasons) == (probe_model.UNHEALTHY, ("0/1 calls answered",))


def test_unset_threshold_is_not_judged():
    t = pb.ProbeThresholds(mos=pb.MetricThreshold(warning=4.0, critical=3.0))
    assert probe_model.judge(t, probe_model.RunOutcome("r", "COMPLETED", good(jitter_ms_max=500.0), T0))[0] == probe_model.HEALTHY


def test_state_moves_with_the_latest_run_and_each_change_is_recorded_once():
    state = created()
    at = state.next_due_at
    levels = []
    for i, summary in enumerate([good(), good(), good(jitter_ms_max=40.0), good(jitter_ms_max=100.0), good()]):
        state, _ = fire(state, at + timedelta(seconds=60 * i), f"r{i}")
        state, events = record(state, f"r{i}", summary, at + timedelta(seconds=60 * i + 6))
        levels.append(state.state)
        assert isinstance(events[0], pb.ProbeRunRecorded)
    assert levels == [probe_model.HEALTHY, probe_model.HEALTHY, probe_model.DEGRADED, probe_model.UNHEALTHY, probe_model.HEALTHY]
    assert [(c.seq, c.from_state, c.to_state) for c in state.changes] == [
        (1, probe_model.UNKNOWN, probe_model.HEALTHY), (2, probe_model.HEALTHY, probe_model.DEGRADED), (3, probe_model.DEGRADED, probe_model.UNHEALTHY),
        (4, probe_model.UNHEALTHY, probe_model.HEALTHY)]
    assert state.changes[2].reasons == ("jitter_ms 100 ms > critical 80 ms",)


def test_recording_a_run_twice_or_a_foreign_run_decides_nothing():
    state, _ = fire(created(), created().next_due_at, "r1")
    state, _ = record(state, "r1", good(), T0 + timedelta(minutes=2))
    assert probe_model.decide_record_run(state, probe_model.RunOutcome("r1", "COMPLETED", good(), T0)) == []
    assert probe_model.decide_record_run(state, probe_model.RunOutcome("other", "COMPLETED", good(), T0)) == []


def test_cancelled_run_is_recorded_without_a_level_and_changes_nothing():
    state, _ = fire(created(), created().next_due_at, "r1")
    state, events = record(state, "r1", None, T0 + timedelta(minutes=2), status="CANCELLED")
    assert len(events) == 1 and events[0].level == ""
    assert (state.state, state.pending_runs, state.results) == (probe_model.UNKNOWN, (), ())


def test_acknowledge_hides_changes_up_to_a_seq():
    state = created()
    at = state.next_due_at
    for i, s in enumerate([good(), good(jitter_ms_max=40.0), good()]):
        state, _ = fire(state, at + timedelta(seconds=60 * i), f"r{i}")
        state, _ = record(state, f"r{i}", s, at + timedelta(seconds=60 * i + 5))
    assert [c.seq for c in state.unacknowledged] == [1, 2, 3]
    state = fold(probe_model.decide_acknowledge(state, "a1", "live", "p1", "pr1", up_to_seq=2), state)
    assert [c.seq for c in state.unacknowledged] == [3]
    state = fold(probe_model.decide_acknowledge(state, "a1", "live", "p1", "pr1"), state)
    assert state.unacknowledged == ()
    assert probe_model.decide_acknowledge(state, "a1", "live", "p1", "pr1") == []


def test_uptime_per_day_counts_runs_that_were_not_unhealthy():
    day1, day2 = datetime(2026, 11, 25, 23, 0, tzinfo=UTC), datetime(2026, 11, 26, 0, 30, tzinfo=UTC)
    results = (probe_model.Judged("a", probe_model.HEALTHY, (), day1), probe_model.Judged("b", probe_model.DEGRADED, (), day1 + timedelta(minutes=1)),
               probe_model.Judged("c", probe_model.UNHEALTHY, (), day1 + timedelta(minutes=2)), probe_model.Judged("d", probe_model.HEALTHY, (), day1),
               probe_model.Judged("e", probe_model.UNHEALTHY, (), day2))
    days = probe_model.uptime_by_day(results)
    assert [(d.day, d.runs, d.up_runs, d.uptime_pct) for d in days] == [
        ("2026-11-25", 4, 3, 75.0), ("2026-11-26", 1, 0, 0.0)]


def test_a_slot_without_a_result_in_time_makes_the_probe_unknown_and_a_late_result_is_ignored():
    rules = probe_model.ProbeRules(min_result_timeout_seconds=300)
    state = created()
    due = state.next_due_at
    state, _ = fire(state, due, "r1")
    state, _ = record(state, "r1", good(), due + timedelta(seconds=5))
    state, _ = fire(state, due + timedelta(seconds=60), "r2")
    assert probe_model.decide_expire_runs(state, due + timedelta(seconds=60 + 299), rules) == []
    events = probe_model.decide_expire_runs(state, due + timedelta(seconds=60 + 300), rules)
    assert [type(e).__name__ for e in events] == ["ProbeRunRecorded", "ProbeStateChanged"]
    assert events[0].level == probe_model.UNKNOWN and events[0].reasons == ["no result 300 s after the slot fired"]
    state = fold(events, state)
    assert (state.state, state.pending_runs, state.changes[-1].to_state) == (probe_model.UNKNOWN, (), probe_model.UNKNOWN)
    assert probe_model.decide_record_run(state, probe_model.RunOutcome("r2", "COMPLETED", good(), due + timedelta(hours=1))) == []
    assert [(d.runs, d.up_runs) for d in probe_model.uptime_by_day(state.results)] == [(1, 1)]  # UNKNOWN not counted
    state, _ = fire(state, due + timedelta(minutes=30), "r3")
    state, events = record(state, "r3", good(), due + timedelta(minutes=30, seconds=5))
    assert (events[-1].from_state, events[-1].to_state) == (probe_model.UNKNOWN, probe_model.HEALTHY)
    assert probe_model.ProbeRules().result_timeout(3600) == timedelta(hours=3)
