"""Pure parts of the media worker: call jobs, codec choice, outcome classification, scoring."""

from __future__ import annotations

import pickle

import pytest

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.jobs import CallJob, SipAccount, normalize_destination, pick_codec_id, sip_user
from callgauge_media.domain.measurement import (
    RawCall,
    StreamSnapshot,
    build_measurement,
    failed_measurement,
    ladder_entry,
    one_way_delay_ms,
)

CODECS = ["speex/16000/1", "speex/8000/1", "iLBC/8000/1", "GSM/8000/1", "PCMU/8000/1", "PCMA/8000/1",
          "G722/16000/1", "L16/44100/1"]
JOB = CallJob(call_id="c1", destination="sip:x@127.0.0.1:5070", duration_ms=3000, setup_timeout_ms=5000,
              step=1, action=2, index=3)


def test_job_pickles_and_comes_from_a_call_action() -> None:
    assert pickle.loads(pickle.dumps(JOB)) == JOB
    job = CallJob.from_action("r:0.0.1", spec_pb2.CallAction(dial_destination="sip:a@b", codec="G722", tone_hz=440),
                              step=0, action_index=0, index=1)
    assert (job.codec, job.tone_hz, job.transport, job.index) == ("G722", 440, "udp", 1)
    assert job.duration_ms > 0 and job.setup_timeout_ms > 0 and job.from_user


@pytest.mark.parametrize(("pref", "expected"), [
    ("PCMU", "PCMU/8000/1"), ("pcma", "PCMA/8000/1"), ("G722", "G722/16000/1"),
    ("speex", "speex/16000/1"), ("speex/8000", "speex/8000/1"), ("AMR", None), ("", "PCMU/8000/1"),
])
def test_pick_codec_id(pref: str, expected: str | None) -> None:
    assert pick_codec_id(CODECS, pref) == expected


def test_destination_and_user_normalisation() -> None:
    assert normalize_destination("x@127.0.0.1:5070", "udp") == "sip:x@127.0.0.1:5070"
    assert normalize_destination("<sip:x@h>", "tcp") == "sip:x@h;transport=tcp"
    assert normalize_destination("sip:x@h;transport=TCP", "tcp") == "sip:x@h;transport=TCP"
    assert sip_user("alice smith<>") == "alice_smith__"
    assert sip_user("") == "callgauge"


def _answered(**kw) -> RawCall:
    raw = RawCall(job=JOB, started_wall=1000.0, ended_wall=1003.1, t_invite=10.0, t_first_response=10.05,
                  first_code=180, t_answer=10.1, answer_code=200, answer_reason="OK", t_end=13.1,
                  final_code=200, codec="PCMU", media_active=True, hangup_reason="duration",
                  stats=StreamSnapshot(tx_packets=150, rx_packets=148, rx_lost=2, jitter_us=1500, rtt_us=40_000))
    for k, v in kw.items():
        setattr(raw, k, v)
    return raw


def test_answered_call_is_measured_and_scored() -> None:
    m = build_measurement(_answered())
    assert m.outcome == m_pb2.SUCCESS and m.sip_code == 200
    assert (m.call_id, m.step, m.action, m.index) == ("c1", 1, 2, 3)
    assert m.setup_time_ms == pytest.approx(100) and m.post_dial_delay_ms == pytest.approx(50)
    assert m.duration_ms == pytest.approx(3000)
    assert m.loss_pct == pytest.approx(100 * 2 / 150)
    assert m.jitter_ms == pytest.approx(1.5) and m.rtt_ms == pytest.approx(40)
    assert 80 < m.r_factor < 93.3 and 4.0 < m.mos < 4.42
    assert not m.one_way_audio and m.detail == ""
    assert m.started_at.seconds == 1000


def test_delay_allowance() -> None:
    assert one_way_delay_ms("PCMU", 40) == pytest.approx(20 + 20 + 40)
    assert one_way_delay_ms("iLBC", 0) == pytest.approx(30 + 40)


def test_one_way_audio_and_missing_media() -> None:
    m = build_measurement(_answered(stats=StreamSnapshot(tx_packets=150, rx_packets=0)))
    assert m.outcome == m_pb2.SUCCESS and m.one_way_audio and "no RTP received" in m.detail
    m = build_measurement(_answered(media_active=False, stats=None))
    assert m.outcome == m_pb2.NEGOTIATION_FAILED and m.sip_code == 200 and m.mos == 0


def test_codec_without_emodel_values_has_no_mos() -> None:
    m = build_measurement(_answered(codec="speex"))
    assert m.outcome == m_pb2.SUCCESS and m.mos == 0 and "no MOS" in m.detail


@pytest.mark.parametrize(("code", "outcome"), [
    (486, m_pb2.CALL_FAILED), (503, m_pb2.CALL_FAILED), (603, m_pb2.CALL_FAILED), (404, m_pb2.CALL_FAILED),
    (408, m_pb2.TIMEOUT), (488, m_pb2.NEGOTIATION_FAILED), (606, m_pb2.NEGOTIATION_FAILED),
])
def test_rejections(code: int, outcome: int) -> None:
    raw = RawCall(job=JOB, t_invite=1.0, t_first_response=1.2, first_code=180, final_code=code,
                  final_reason="X", t_end=1.5)
    m = build_measurement(raw)
    assert (m.outcome, m.sip_code, m.setup_time_ms, m.mos) == (outcome, code, 0, 0)


def _sip(first: str, cseq: str) -> str:
    return f"{first}\r\nVia: SIP/2.0/UDP 127.0.0.1:5060\r\nCall-ID: abc\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"


INVITE = _sip("INVITE sip:x@127.0.0.1:5070 SIP/2.0", "1 INVITE")


def test_setup_timeout_after_ringing_says_what_the_ladder_shows() -> None:
    ladder = [ladder_entry(0.2, "out", INVITE), ladder_entry(1.0, "in", _sip("SIP/2.0 180 Ringing", "1 INVITE")),
              ladder_entry(5000.0, "out", _sip("CANCEL sip:x@127.0.0.1:5070 SIP/2.0", "1 CANCEL")),
              ladder_entry(5001.0, "in", _sip("SIP/2.0 200 OK", "1 CANCEL")),
              ladder_entry(5001.5, "in", _sip("SIP/2.0 487 Request Terminated", "1 INVITE"))]
    raw = RawCall(job=JOB, t_invite=1.0, t_first_response=1.1, first_code=180, first_reason="Ringing",
                  timed_out=True, hangup_reason="timeout", final_code=487, final_reason="Request Terminated")
    m = build_measurement(raw, ladder, ladder_complete=True)
    assert (m.outcome, m.sip_code) == (m_pb2.TIMEOUT, 408)
    assert m.detail == ("no final answer within 5000 ms; last provisional: 180 Ringing; "
                        "CANCEL sent, then 487 Request Terminated")
    assert [e.summary for e in m.sip_ladder][2].startswith("CANCEL")


def test_setup_timeout_without_any_response_never_claims_a_cancel() -> None:
    # issue 18: the detail said "CANCEL sent" where the ladder held only INVITE retransmissions
    # (pjsip sends no CANCEL before a provisional response; pjsua then reports 487 on its own)
    ladder = [ladder_entry(t, "out", INVITE) for t in (0.2, 500.0, 1500.0, 3500.0)]
    raw = RawCall(job=JOB, t_invite=1.0, timed_out=True, hangup_reason="timeout", final_code=487,
                  final_reason="Request Terminated")
    m = build_measurement(raw, ladder, ladder_complete=True)
    assert (m.outcome, m.sip_code) == (m_pb2.TIMEOUT, 408)
    assert "CANCEL sent," not in m.detail and not m.detail.startswith("CANCEL") and "487" not in m.detail
    assert m.detail == ("no final answer within 5000 ms; no response to the INVITE (sent 4 times); "
                        "no CANCEL sent (none may be sent before a provisional response)")
    assert [e.summary for e in m.sip_ladder] == ["INVITE sip:x@127.0.0.1:5070"] * 4
    # without the message log (what pjsua's callbacks show: no retransmissions) the same facts
    raw.ladder = ladder[:1]
    m = build_measurement(raw)
    assert m.detail == ("no final answer within 5000 ms; no response to the INVITE; "
                        "no CANCEL sent (none may be sent before a provisional response)")


def test_a_final_code_the_sip_stack_made_itself_is_named_as_such() -> None:
    # TCP connection refused: pjsua reports 503 with the socket error as its reason; nothing came back
    job = CallJob(call_id="c1", destination="sip:x@127.0.0.1:5999", transport="tcp")
    raw = RawCall(job=job, t_invite=1.0, final_code=503, final_reason="Connection refused", t_end=1.1)
    m = build_measurement(raw, [ladder_entry(0.3, "out", INVITE)], ladder_complete=True)
    assert (m.outcome, m.sip_code, m.sip_reason) == (m_pb2.CALL_FAILED, 503, "connection refused by 127.0.0.1:5999 (TCP)")
    assert m.detail == ("no SIP response received: connection refused by 127.0.0.1:5999 (TCP) "
                        "(503 is the SIP stack's own code)")
    # a registrar that does not resolve (the call goes through it as outbound proxy)
    acc = SipAccount("alice", "example.com", "pbx.example.invalid:5060")
    raw = RawCall(job=CallJob(call_id="c2", destination="sip:bob@example.com", account=acc), t_invite=1.0,
                  final_code=502, final_reason="gethostbyname() has returned error (PJ_ERESOLVE)", t_end=1.1)
    m = build_measurement(raw, [], ladder_complete=True)
    assert m.sip_reason == "cannot resolve host 'pbx.example.invalid'" and "PJ_" not in m.detail
    assert m.detail.startswith("INVITE not sent: cannot resolve host 'pbx.example.invalid'")
    # the engine hung up a ringing call (a stop): pjsua's 487 is its own, the 180 was received
    raw = RawCall(job=JOB, t_invite=1.0, t_first_response=1.1, first_code=180, first_reason="Ringing",
                  hangup_reason="hung up on request", final_code=487, final_reason="Request Terminated", t_end=2.0)
    m = build_measurement(raw, [ladder_entry(0.3, "out", INVITE),
                                ladder_entry(9.0, "in", _sip("SIP/2.0 180 Ringing", "1 INVITE")),
                                ladder_entry(990.0, "out", _sip("CANCEL sip:x@127.0.0.1:5070 SIP/2.0", "1 CANCEL"))],
                          ladder_complete=True)
    assert m.detail == ("ended by the engine before an answer: hung up on request; "
                        "no final response received: Request Terminated (487 is the SIP stack's own code)"), m.detail
    # a far end's own 503 stays as it is
    raw = RawCall(job=JOB, t_invite=1.0, final_code=503, final_reason="Service Unavailable", t_end=1.1)
    m = build_measurement(raw, [ladder_entry(0.3, "out", INVITE),
                                ladder_entry(9.0, "in", _sip("SIP/2.0 503 Service Unavailable", "1 INVITE"))],
                          ladder_complete=True)
    assert (m.sip_reason, m.detail) == ("Service Unavailable", "")


def test_failed_measurement() -> None:
    m = failed_measurement(JOB, "media worker crashed")
    assert (m.outcome, m.sip_code, m.detail, m.destination) == (m_pb2.CALL_FAILED, 0, "media worker crashed",
                                                                JOB.destination)


def test_ladder_facts_take_the_answer_after_a_challenge() -> None:
    from callgauge_media.domain.measurement import ladder_facts

    facts = ladder_facts([("out", "INVITE sip:b@h SIP/2.0", "INVITE"), ("in", "SIP/2.0 407 Proxy Authentication Required",
                          "INVITE"), ("out", "INVITE sip:b@h SIP/2.0", "INVITE"), ("in", "SIP/2.0 180 Ringing", "INVITE"),
                          ("in", "SIP/2.0 486 Busy Here", "INVITE"), ("in", "SIP/2.0 200 OK", "CANCEL")])
    assert (facts.invites_sent, facts.provisional, facts.final, facts.cancel_sent, facts.received) == \
        (2, "180 Ringing", "486 Busy Here", False, 4)


def test_opus_is_offered_alone_when_asked_and_scored_on_the_wideband_model_as_an_estimate() -> None:
    """The pjsua2 binding built here lists opus/48000/2: a call action's codec "opus" picks it.
    Issue #16: its MOS comes from the wideband E-model (G.107.1) with ESTIMATED Ie,WB/Bpl,WB
    (ITU-T publishes none for Opus), and the note says so."""
    from callgauge_media.domain.measurement import _score
    from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

    assert pick_codec_id([*CODECS, "opus/48000/2"], "opus") == "opus/48000/2"
    m, notes = m_pb2.CallMeasurement(loss_pct=1.0, rtt_ms=2.0), []
    _score(m, "opus", notes)
    assert m.HasField("mos") and m.HasField("r_factor") and m.r_factor > 100.0  # the G.107.1 scale
    assert 4.0 < m.mos < 4.5
    assert notes and "ESTIMATED" in notes[0] and "opus" in notes[0]


def test_audio_bandwidth_names_the_codec_sample_rate_and_comes_from_the_action() -> None:
    # Given a codec opened at a sample rate, when the measurement names its bandwidth,
    # then 8 kHz is narrowband .. 48 kHz fullband, and unknown is empty.
    from callgauge_media.domain.jobs import OPUS_RATES, audio_bandwidth_of

    assert {b: audio_bandwidth_of(r) for b, r in OPUS_RATES.items()} == {b: b for b in OPUS_RATES}
    assert (audio_bandwidth_of(0), audio_bandwidth_of(32000), audio_bandwidth_of(44100)) == \
        ("", "superwideband", "fullband")
    # a call action's audio_bandwidth reaches the job
    from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2

    job = CallJob.from_action("c1", spec_pb2.CallAction(dial_destination="sip:x@127.0.0.1", codec="opus",
                                                        audio_bandwidth="wideband"))
    assert (job.codec, job.audio_bandwidth) == ("opus", "wideband")
