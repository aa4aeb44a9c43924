"""The SIPp driver's pure parts: scenario, command line, statistics files -> events and summary."""

import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from callgauge_media.domain.load_shape import LoadShape
from callgauge_media.adapters.sipp.scenario import (
    injection_file,
    parse_destination,
    sipp_command,
    uac_scenario,
)
from callgauge_media.adapters.sipp.stats import (
    SIPP_CALL_DETAIL,
    SippCalls,
    SippSeconds,
    StatRow,
    parse_answer_counts,
    parse_counts,
    parse_error_codes,
    parse_rtt_ms,
    parse_stat_rows,
    sipp_summary,
)
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

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


def test_the_driver_sends_to_the_registrar_of_a_target_pool():
    import asyncio
    from types import SimpleNamespace

    from callgauge_media.bootstrap import load_drivers
    from callgauge_media.adapters.sipp.driver import _target, run_sipp_load

    state = SimpleNamespace(sip=SimpleNamespace(targets={"reg": spec_pb2.ResolvedTarget(id="reg", host="10.0.0.5",
                                                                                          port=5080)}))
    t = _target(state, spec_pb2.LoadAction(dial_destination="bob", target_pool="reg"))
    assert (t.user, t.host, t.port) == ("bob", "10.0.0.5", 5080)
    assert _target(state, spec_pb2.LoadAction(dial_destination="sip:x@1.2.3.4:7000")).remote == "1.2.3.4:7000"
    with pytest.raises(ValueError, match="was not resolved"):
        _target(state, spec_pb2.LoadAction(dial_destination="bob", target_pool="other"))
    with pytest.raises(ValueError, match="needs a target_pool"):
        asyncio.run(run_sipp_load(state, 0, 0, spec_pb2.LoadAction(dial_destination="sip:bob@10.0.0.1",
                                                                   credential_pool="p"),
                                 tools=load_drivers()["sipp"].tools))


# ----------------------------------------------------------------------------- digest auth
def test_the_authenticating_scenario_answers_a_challenge_with_the_injected_credentials():
    load = spec_pb2.LoadAction(duration_ms=1000)
    xml = uac_scenario(load, parse_destination("sip:bob@127.0.0.1:5060"), auth=True)
    root = ET.fromstring(xml.split("\n", 1)[1])
    recvs = [(c.get("response"), c.get("auth"), c.get("next"), c.get("optional")) for c in root if c.tag == "recv"]
    assert ("401", "true", "challenged", "true") in recvs and ("407", "true", "challenged", "true") in recvs
    # refusals of the authenticated INVITE are ACKed by the scenario, which then ends
    assert ("403", None, "refused", "true") in recvs and ("407", None, "refused", "true") in recvs
    assert [c.get("id") for c in root if c.tag == "label"] == ["challenged", "refused", "answered", "done"]
    assert [c.get("next") for c in root if c.tag == "nop"] == ["done"]
    assert xml.count("      [field1]\n") == 1  # the injected [authentication] keyword, in the second INVITE
    assert "From: callgauge <sip:[field0]@[field2]>" in xml and "To: <sip:bob@[field2]>" in xml
    assert xml.count("CSeq: 1 INVITE") == 1 and xml.count("CSeq: 2 INVITE") == 1
    assert "CSeq: 1 ACK" in xml and "CSeq: 2 ACK" in xml
    # the dialog follows the proxy's Record-Route: ACK and BYE to the Contact, through [routes]
    assert "ACK [next_url] SIP/2.0" in xml and "BYE [next_url] SIP/2.0" in xml and xml.count("[routes]") == 2
    plain = uac_scenario(load, parse_destination("sip:bob@127.0.0.1:5060"))
    assert "[authentication" not in plain and "[field" not in plain and 'rrs="true"' in plain
    assert 'label id="done"' not in plain


def test_the_injection_file_carries_each_user_and_refuses_what_sipp_cannot_read():
    text = injection_file([("alice", "alice", "s3;cret ]pw", "example.com"), ("bob", "bob-auth", "", "10.0.0.1")])
    hex_pw = "s3;cret ]pw".encode().hex()
    assert text == ("SEQUENTIAL\n"
                    f"alice;[authentication username=0x{'alice'.encode().hex()} password=0x{hex_pw}];example.com;\n"
                    f"bob;[authentication username=0x{'bob-auth'.encode().hex()}];10.0.0.1;\n")
    with pytest.raises(ValueError, match="contains ';'"):
        injection_file([("alice", "alice", "x", "example.com;x")])
    with pytest.raises(ValueError, match="line break"):
        injection_file([("alice\n", "alice", "x", "example.com")])
    with pytest.raises(ValueError, match="cannot be used"):
        injection_file([("al ice", "alice", "x", "example.com")])
    with pytest.raises(ValueError, match="too long"):
        injection_file([("alice", "alice", "x" * 200, "example.com")])
    with pytest.raises(ValueError, match="no calling users"):
        injection_file([])


def test_the_command_line_injects_users_and_logs_every_message():
    cmd = " ".join(sipp_command(spec_pb2.LoadAction(), parse_destination("sip:a@127.0.0.1:5070"), scenario="s.xml",
                                local_ip="127.0.0.1", sip_port=1, media_port=2, control_port=3, initial_rate=1,
                                max_calls=4, timeout_s=60, users_file="users.csv"))
    assert "-inf users.csv" in cmd and "-trace_shortmsg -shortmessage_file calls.log" in cmd
    assert "-cid_str %u-%p@%s" in cmd and "-ap" not in cmd and "-au" not in cmd  # no password in argv
    # no max_concurrency: a limit of the plan's size, never SIPp's default 3 x rate x call length
    assert " -l 4" in cmd


def test_counts_of_an_authenticating_scenario_add_both_invites_answers_and_find_its_refusals(tmp_path):
    (tmp_path / "counts.csv").write_text(
        "CurrentTime;ElapsedTime;0_INVITE_Sent;4_407_Recv;6_200_Recv;8_ACK_Sent;9_INVITE_Sent;12_180_Recv;"
        "13_403_Recv;14_407_Recv;15_200_Recv;19_BYE_Sent;20_200_Recv;\n"
        "t;e;0;0;0;0;0;0;0;0;0;0;0;\nt;e;5;5;1;4;4;3;1;1;2;2;2;\n")
    [first, last] = parse_counts(tmp_path / "counts.csv")
    assert (first.answers, last.answers) == (0, 3) and not first.refusals
    assert last.refusals == Counter({403: 1, 407: 1})  # not the first INVITE's challenge, not the 180
    assert parse_answer_counts(tmp_path / "counts.csv") == [0, 3]
    sec = SippSeconds("r", "e")
    row = StatRow(outgoing_p=5, current=0, successful_p=5, total_created=5, successful_c=5)
    assert sec.next(row, 3, 0, 2).failures == 2  # SIPp counted the refused calls successful
    s = sipp_summary([row], 3, [], Counter(), calls_planned=5, peak=2, refusals=last.refusals, acd_ms=640.0)
    assert dict(s.sip_codes) == {200: 3, 403: 1, 407: 1} and s.calls_failed == 2 and s.acd_ms == 640.0


# ----------------------------------------------------------------------------- per call
T0 = 1764133200.0


def _msg(dt: float, direction: str, call: int, cseq: str, first: str) -> str:
    t = T0 + dt
    return f"2025-11-26\t05:00:00.000000\t{t:.6f}\t{direction}\t{call}-4242@127.0.0.1\tCSeq:{cseq}\t{first}"


def _calls(**kw) -> SippCalls:
    return SippCalls("run-1:0.1.", step=0, action=1, destination="sip:bob@example.com", **kw)


def test_an_answered_call_is_reported_at_its_answer_and_measured_at_its_bye():
    calls = _calls()
    facts = calls.feed([
        _msg(0.000, "S", 1, " 1 INVITE", "INVITE sip:bob@127.0.0.1:5060 SIP/2.0"),
        _msg(0.002, "R", 1, " 1 INVITE", "SIP/2.0 100 Trying"),
        _msg(0.010, "R", 1, " 1 INVITE", "SIP/2.0 180 Ringing"),
        _msg(0.050, "R", 1, " 1 INVITE", "SIP/2.0 200 OK"),
    ])
    assert facts == [("answered", "run-1:0.1.0", None)] and list(calls.up) == ["1-4242@127.0.0.1"]
    facts = calls.feed([_msg(0.051, "S", 1, " 1 ACK", "ACK sip:bob@127.0.0.1:5060 SIP/2.0"),
                        _msg(2.551, "S", 1, " 3 BYE", "BYE sip:bob@127.0.0.1:5060 SIP/2.0"),
                        _msg(2.553, "R", 1, " 3 BYE", "SIP/2.0 200 OK"),
                        _msg(2.600, "S", 1, " 3 BYE", "BYE sip:bob@127.0.0.1:5060 SIP/2.0")])  # a late retransmission
    [(kind, call_id, m)] = facts
    assert (kind, call_id, m.call_id, m.index, m.step, m.action) == ("ended", "run-1:0.1.0", "run-1:0.1.0", 0, 0, 1)
    assert m.outcome == m_pb2.SUCCESS and (m.sip_code, m.sip_reason) == (200, "OK")
    assert m.setup_time_ms == pytest.approx(50.0) and m.post_dial_delay_ms == pytest.approx(10.0)
    assert m.duration_ms == pytest.approx(2501.0) and m.sip_call_id == "1-4242@127.0.0.1"
    assert m.destination == "sip:bob@example.com" and m.role == "caller" and m.mos == 0 and m.rx_packets == 0
    assert m.detail == SIPP_CALL_DETAIL and not m.sip_ladder
    assert m.started_at.ToNanoseconds() == int(T0 * 1e9) and not calls.up and not calls.pending


def test_a_challenge_answered_with_credentials_is_not_a_failure_but_a_second_one_is():
    calls = _calls(auth=True)
    facts = calls.feed([
        _msg(0.000, "S", 1, " 1 INVITE", "INVITE sip:bob@127.0.0.1:5060 SIP/2.0"),
        _msg(0.001, "R", 1, " 1 INVITE", "SIP/2.0 407 Proxy Authentication Required"),
        _msg(0.002, "S", 1, " 1 ACK", "ACK sip:bob@127.0.0.1:5060 SIP/2.0"),
        _msg(0.003, "S", 1, " 2 INVITE", "INVITE sip:bob@127.0.0.1:5060 SIP/2.0"),
        _msg(0.020, "R", 1, " 2 INVITE", "SIP/2.0 200 OK"),
        _msg(0.000, "S", 2, " 1 INVITE", "INVITE sip:bob@127.0.0.1:5060 SIP/2.0"),
        _msg(0.001, "R", 2, " 1 INVITE", "SIP/2.0 407 Proxy Authentication Required"),
        _msg(0.002, "S", 2, " 1 ACK", "ACK sip:bob@127.0.0.1:5060 SIP/2.0"),
        _msg(0.003, "S", 2, " 2 INVITE", "INVITE sip:bob@127.0.0.1:5060 SIP/2.0"),
        _msg(0.004, "R", 2, " 2 INVITE", "SIP/2.0 407 Proxy Authentication Required"),
        _msg(0.005, "S", 2, " 2 ACK", "ACK sip:bob@127.0.0.1:5060 SIP/2.0"),
        _msg(0.000, "S", 3, " 1 INVITE", "INVITE sip:bob@127.0.0.1:5060 SIP/2.0"),
        _msg(0.001, "R", 3, " 1 INVITE", "SIP/2.0 403 Forbidden"),
    ])
    assert [(k, c) for k, c, _ in facts] == [("answered", "run-1:0.1.0"), ("ended", "run-1:0.1.1"),
                                             ("ended", "run-1:0.1.2")]
    wrong, unknown = facts[1][2], facts[2][2]
    assert (wrong.outcome, wrong.sip_code, wrong.sip_reason) == (m_pb2.CALL_FAILED, 407,
                                                                 "Proxy Authentication Required")
    assert "refused" in wrong.detail and SIPP_CALL_DETAIL in wrong.detail
    assert [(e.direction, e.summary) for e in wrong.sip_ladder] == [
        ("out", "INVITE sip:bob@127.0.0.1:5060"), ("in", "407 Proxy Authentication Required"),
        ("out", "ACK sip:bob@127.0.0.1:5060"), ("out", "INVITE sip:bob@127.0.0.1:5060"),
        ("in", "407 Proxy Authentication Required")]
    assert (unknown.outcome, unknown.sip_code, unknown.index) == (m_pb2.CALL_FAILED, 403, 2)
    assert list(calls.up) == ["1-4242@127.0.0.1"] and not calls.pending
    # without credentials a challenge is the call's final answer
    [(_, _, m)] = _calls().feed([_msg(0, "S", 7, " 1 INVITE", "INVITE sip:b@h SIP/2.0"),
                                 _msg(0.1, "R", 7, " 1 INVITE", "SIP/2.0 401 Unauthorized")])
    assert (m.sip_code, m.index) == (401, 6)


def test_busy_timeouts_far_end_hangups_and_calls_left_at_the_end():
    calls = _calls(setup_timeout_s=5.0)
    facts = calls.feed([
        _msg(0.0, "S", 1, " 1 INVITE", "INVITE sip:b@h SIP/2.0"),
        _msg(0.1, "R", 1, " 1 INVITE", "SIP/2.0 486 Busy Here"),
        _msg(0.2, "R", 1, " 1 INVITE", "SIP/2.0 486 Busy Here"),  # retransmitted: the call ended already
        _msg(1.0, "S", 2, " 1 INVITE", "INVITE sip:b@h SIP/2.0"),  # never answered
        _msg(2.0, "S", 2, " 1 INVITE", "INVITE sip:b@h SIP/2.0"),  # a retransmission is not a new call
        _msg(3.0, "S", 3, " 1 INVITE", "INVITE sip:b@h SIP/2.0"),
        _msg(3.1, "R", 3, " 1 INVITE", "SIP/2.0 200 OK"),
        _msg(4.0, "R", 3, " 2 BYE", "BYE sip:callgauge@127.0.0.1:5061 SIP/2.0"),  # the far end hangs up
        _msg(5.0, "S", 4, " 1 INVITE", "INVITE sip:b@h SIP/2.0"),
        _msg(5.1, "R", 4, " 1 INVITE", "SIP/2.0 180 Ringing"),
        _msg(9.0, "S", 4, " 1 CANCEL", "CANCEL sip:b@h SIP/2.0"),  # SIPp gave up (recv timeout)
        _msg(9.5, "S", 5, " 1 INVITE", "INVITE sip:b@h SIP/2.0"),
        _msg(9.6, "R", 5, " 1 INVITE", "SIP/2.0 200 OK"),
        _msg(9.9, "S", 6, " 1 INVITE", "INVITE sip:b@h SIP/2.0"),
    ])
    ended = {c: m for k, c, m in facts if k == "ended"}
    busy, hungup, cancelled = ended["run-1:0.1.0"], ended["run-1:0.1.2"], ended["run-1:0.1.3"]
    assert (busy.outcome, busy.sip_code, busy.sip_reason) == (m_pb2.CALL_FAILED, 486, "Busy Here")
    assert hungup.outcome == m_pb2.SUCCESS and hungup.duration_ms == pytest.approx(900.0)
    assert hungup.detail.startswith("far end hung up after 900 ms")
    assert (cancelled.outcome, cancelled.sip_code) == (m_pb2.TIMEOUT, 408)
    assert cancelled.post_dial_delay_ms == pytest.approx(100.0)
    assert set(ended) == {"run-1:0.1.0", "run-1:0.1.2", "run-1:0.1.3"}
    # call 2: no message for 5 s after its INVITE (retransmitted at 2 s)
    [(kind, cid, m)] = calls.expire(T0 + 7.5)
    assert (kind, cid, m.outcome, m.sip_code, m.sip_reason) == ("ended", "run-1:0.1.1", m_pb2.TIMEOUT, 408,
                                                                 "Setup Timeout")
    assert [e.summary for e in m.sip_ladder] == ["INVITE sip:b@h", "INVITE sip:b@h"]
    assert calls.expire(T0 + 7.5) == []
    left = {c: m for _, c, m in calls.flush(T0 + 10.6)}
    assert left["run-1:0.1.4"].outcome == m_pb2.SUCCESS and left["run-1:0.1.4"].duration_ms == pytest.approx(1000.0)
    assert left["run-1:0.1.5"].outcome == m_pb2.TIMEOUT and "SIPp ended" in left["run-1:0.1.5"].detail
    assert not calls.up and not calls.pending and calls.ended == 6


def test_unreadable_lines_are_skipped():
    calls = _calls()
    bad_time = "2025-11-26\t05:00:00\tnot-a-time\tS\t1-1@h\tCSeq: 1 INVITE\tINVITE x SIP/2.0"
    assert calls.feed(["", "garbage", "a\tb\tc", bad_time]) == []
    assert not calls.pending


def test_the_follower_reads_whole_lines_as_they_come_and_gives_the_read_part_back(tmp_path, monkeypatch):
    from callgauge_media.adapters.sipp import driver as sipp_driver

    monkeypatch.setattr(sipp_driver, "PUNCH_EVERY", 64 * 1024)
    path = tmp_path / "calls.log"
    f = sipp_driver._Follower(path)
    assert f.read() == ([], False)  # SIPp has not created it yet
    lines = [f"line {i:06d} " + "x" * 90 for i in range(5000)]
    with open(path, "w") as out:
        out.write("\n".join(lines[:2500]) + "\n" + lines[2500][:40])  # the last line is still being written
        out.flush()
        got, more = [], True
        while more:
            chunk, more = f.read(limit=50_000)
            got += chunk
        assert got == lines[:2500]
        out.write(lines[2500][40:] + "\n" + "\n".join(lines[2501:]) + "\n")
        out.flush()
        while True:
            chunk, more = f.read(limit=50_000)
            got += chunk
            if not more:
                break
    assert got == lines
    if f._punch is not None:  # this file system can punch holes: the part read no longer takes space
        assert path.stat().st_blocks * 512 < path.stat().st_size / 2
    f.close()


def test_timeout_details_say_what_the_ladder_shows():
    # issue 18: a TIMEOUT's detail and its ladder come from the same messages: a CANCEL is named
    # only when SIPp sent one (it sends none before a provisional answer)
    calls = _calls(setup_timeout_s=5.0, timeout_ms=4000)
    facts = calls.feed([
        _msg(0.0, "S", 1, " 1 INVITE", "INVITE sip:b@h SIP/2.0"),
        _msg(0.5, "S", 1, " 1 INVITE", "INVITE sip:b@h SIP/2.0"),  # retransmitted, never answered
        _msg(1.0, "S", 2, " 1 INVITE", "INVITE sip:b@h SIP/2.0"),
        _msg(1.1, "R", 2, " 1 INVITE", "SIP/2.0 100 Trying"),
        _msg(1.2, "R", 2, " 1 INVITE", "SIP/2.0 183 Session Progress"),
        _msg(5.0, "S", 2, " 1 CANCEL", "CANCEL sip:b@h SIP/2.0"),
    ])
    [(_, _, cancelled)] = [f for f in facts if f[0] == "ended"]
    assert cancelled.outcome == m_pb2.TIMEOUT
    assert cancelled.detail.startswith(
        "no final answer within 4000 ms; last provisional: 183 Session Progress; CANCEL sent;"), cancelled.detail
    [(_, _, silent)] = calls.expire(T0 + 6.0)
    assert silent.outcome == m_pb2.TIMEOUT and [e.summary for e in silent.sip_ladder] == ["INVITE sip:b@h"] * 2
    assert silent.detail.startswith("no final answer within 4000 ms; no response to the INVITE (sent 2 times); "
                                    "no CANCEL sent (none may be sent before a provisional response);"), silent.detail
    assert "CANCEL sent," not in silent.detail



def test_the_cancel_that_ended_a_call_is_in_its_ladder_even_past_the_bound():
    calls = _calls(setup_timeout_s=5.0, timeout_ms=4000)
    lines = [_msg(0.0, "S", 1, " 1 INVITE", "INVITE sip:b@h SIP/2.0")]
    lines += [_msg(0.1 * i, "R", 1, " 1 INVITE", "SIP/2.0 180 Ringing") for i in range(1, 20)]  # retransmitted
    lines.append(_msg(4.0, "S", 1, " 1 CANCEL", "CANCEL sip:b@h SIP/2.0"))
    [(_, _, m)] = [f for f in calls.feed(lines) if f[0] == "ended"]
    assert m.sip_ladder[-1].summary == "CANCEL sip:b@h" and "CANCEL sent" in m.detail, m.detail
