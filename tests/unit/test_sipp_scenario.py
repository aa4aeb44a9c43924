"""The SIPp driver's pure parts: scenario, command line, statistics files -> events and summary."""

import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from callgauge_media.engine.load_shape import LoadShape
from callgauge_media.engine.sipp_scenario import (
    SippSeconds,
    StatRow,
    parse_answer_counts,
    parse_destination,
    parse_error_codes,
    parse_rtt_ms,
    parse_stat_rows,
    sipp_command,
    sipp_summary,
    uac_scenario,
)
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2

STAT_HEAD = ("StartTime;LastResetTime;CurrentTime;ElapsedTime(P);ElapsedTime(C);TargetRate;CallRate(P);CallRate(C);"
             "IncomingCall(P);IncomingCall(C);OutgoingCall(P);OutgoingCall(C);TotalCallCreated;CurrentCall;"
             "SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);CallLength(P);CallLength(C)")


def _stat_row(out_p, out_c, current, ok_p, ok_c, fail_p, fail_c, length="00:00:00:000000"):
    return f"a;b;c;00:00:01;00:00:01;5;1;1;0;0;{out_p};{out_c};{out_c};{current};{ok_p};{ok_c};{fail_p};{fail_c};" \
           f"{length};{length}"


def test_destination_parsing():
    t = parse_destination("sip:service@127.0.0.1:5070")
    assert (t.user, t.host, t.port, t.remote) == ("service", "127.0.0.1", 5070, "127.0.0.1:5070")
    assert parse_destination("sip:pbx.example.com").port == 5060
    with pytest.raises(ValueError, match="is not a SIP URI"):
        parse_destination("")


@pytest.mark.parametrize("dist,pause", [
    ("", '<pause milliseconds="2000"/>'),
    ("uniform", '<pause distribution="uniform" min="1500" max="2500"/>'),
    ("exponential", '<pause distribution="exponential" mean="2000"/>'),
])
def test_the_scenario_is_well_formed_xml_with_the_talk_time_distribution(dist, pause):
    load = spec_pb2.LoadAction(duration_ms=2000, duration_distribution=dist, duration_spread_ms=500)
    xml = uac_scenario(load, parse_destination("sip:svc@10.0.0.1:5080"), with_pcap=dist == "uniform")
    root = ET.fromstring(xml.split("\n", 1)[1])
    steps = [(c.tag, c.get("response") or c.get("request")) for c in root]
    assert ("recv", "200") in steps and steps[0][0] == "send"
    assert pause in xml and "INVITE sip:svc@10.0.0.1:5080 SIP/2.0" in xml
    assert ("play_pcap_audio" in xml) == (dist == "uniform")


def test_the_command_line_carries_rate_limit_and_statistics_files():
    load = spec_pb2.LoadAction(max_concurrency=30, transport="tcp")
    cmd = sipp_command(load, parse_destination("sip:a@127.0.0.1:5070"), scenario="s.xml", local_ip="127.0.0.1",
                       sip_port=1, media_port=2, control_port=3, initial_rate=2.5, max_calls=40, timeout_s=60)
    text = " ".join(cmd)
    for part in ("127.0.0.1:5070 -sf s.xml", "-t t1", "-r 2.5 -rp 1000", "-m 40", "-l 30", "-cp 3",
                 "-trace_stat -stf stat.csv -fd 1", "-trace_rtt -rtt_freq 1", "-trace_error_codes"):
        assert part in text


def test_stat_rows_counts_rtt_and_error_codes_parse(tmp_path):
    (tmp_path / "stat.csv").write_text("\n".join([
        STAT_HEAD, _stat_row(0, 0, 0, 0, 0, 0, 0), _stat_row(4, 4, 3, 0, 0, 1, 1),
        _stat_row(2, 6, 1, 4, 4, 0, 1, "00:00:01:250000")]) + "\n")
    rows = parse_stat_rows(tmp_path / "stat.csv")
    assert [(r.outgoing_p, r.current, r.successful_p, r.failed_p) for r in rows] == [
        (0, 0, 0, 0), (4, 3, 0, 1), (2, 1, 4, 0)]
    assert rows[-1].call_length_c_ms == 1250.0 and rows[-1].total_created == 6
    (tmp_path / "counts.csv").write_text(
        "CurrentTime;ElapsedTime;0_INVITE_Sent;1_100_Recv;4_200_Recv;4_200_Retrans;8_200_Recv;\n"
        "t;e;0;0;0;0;0;\nt;e;4;0;3;0;0;\nt;e;6;0;5;0;4;\n")
    assert parse_answer_counts(tmp_path / "counts.csv") == [0, 3, 5]
    (tmp_path / "rtt.csv").write_text("Date_ms;response_time_ms;rtd_no\n204.0;12;1\n404.0;30;1\n")
    assert parse_rtt_ms(tmp_path / "rtt.csv") == [12.0, 30.0]
    (tmp_path / "codes.csv").write_text("2026-11-26\t01:45:16.2 179.2;00:00:00:001000;\n"
                                        "2026-11-26\t01:45:17.0 179.3;00:00:00:803000;486,503,\n")
    assert parse_error_codes(tmp_path / "codes.csv") == Counter({486: 1, 503: 1})
    assert parse_stat_rows(tmp_path / "missing.csv") == [] and parse_answer_counts(tmp_path / "x") == []


def test_rows_become_seconds_and_a_summary():
    sec = SippSeconds("r", "e")
    rows = [StatRow(outgoing_p=4, current=3, failed_p=1), StatRow(outgoing_p=2, current=0, successful_p=5,
                                                                   total_created=6, successful_c=5, failed_c=1,
                                                                   call_length_c_ms=1250)]
    a = sec.next(rows[0], 3, 1_000_000_000)
    b = sec.next(rows[1], 5, 2_000_000_000)
    assert (a.second, a.attempts, a.answers, a.failures, a.active_calls, a.driver) == (0, 4, 3, 1, 3, "sipp")
    assert (b.second, b.attempts, b.answers, b.calls_ended, b.at.seconds) == (1, 2, 2, 5, 2)
    s = sipp_summary(rows, 5, [10.0, 20.0, 30.0], Counter({486: 1}), calls_planned=6, peak=sec.peak)
    assert (s.calls_attempted, s.calls_answered, s.calls_failed, s.calls_planned, s.peak_concurrency) == (6, 5, 1, 6, 3)
    assert s.asr == pytest.approx(5 / 6) and (s.setup_p50_ms, s.setup_p95_ms) == (20.0, 30.0)
    assert s.acd_ms == 1230.0 and dict(s.sip_codes) == {200: 5, 486: 1} and s.driver == "sipp"
    timeouts = sipp_summary(rows, 5, [], Counter(), calls_planned=6, peak=3)
    assert dict(timeouts.sip_codes) == {200: 5, 0: 1} and dict(timeouts.outcomes) == {"SUCCESS": 5, "CALL_FAILED": 1}


def test_rate_steps_place_the_planned_calls():
    for shape in (LoadShape(cps=6, ramp_up_s=2, hold_s=1), LoadShape(cps=2, ramp_up_s=10, hold_s=5, ramp_down_s=4),
                  LoadShape(cps=100, ramp_up_s=3, hold_s=5, ramp_down_s=1)):
        steps = shape.rate_steps()
        placed = sum((b[0] - a[0]) * a[1] for a, b in zip(steps, steps[1:]))
        assert placed == pytest.approx(len(shape.attempt_times()))
        assert steps[-1] == (shape.window_s, 0.0)
        assert all(a[1] != b[1] for a, b in zip(steps, steps[1:]))


def test_the_driver_sends_to_the_registrar_of_a_target_pool_and_refuses_credentials():
    import asyncio
    from types import SimpleNamespace

    from callgauge_media.engine.sipp_driver import _target, run_sipp_load

    state = SimpleNamespace(sip=SimpleNamespace(targets={"reg": spec_pb2.ResolvedTarget(id="reg", host="10.0.0.5",
                                                                                          port=5080)}))
    t = _target(state, spec_pb2.LoadAction(dial_destination="bob", target_pool="reg"))
    assert (t.user, t.host, t.port) == ("bob", "10.0.0.5", 5080)
    assert _target(state, spec_pb2.LoadAction(dial_destination="sip:x@1.2.3.4:7000")).remote == "1.2.3.4:7000"
    with pytest.raises(ValueError, match="was not resolved"):
        _target(state, spec_pb2.LoadAction(dial_destination="bob", target_pool="other"))
    with pytest.raises(ValueError, match="does not authenticate"):
        asyncio.run(run_sipp_load(state, 0, 0, spec_pb2.LoadAction(dial_destination="bob", credential_pool="p")))
