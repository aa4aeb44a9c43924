"""How a user agent's registration becomes a RegistrationMeasurement, and the run summary's
registration figures (pure: no pjsua2, no network)."""

from __future__ import annotations

from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.jobs import SipAccount, UaJob
from callgauge_media.domain.measurement import ladder_entry, registration_measurement
from callgauge_media.domain.summary import add_registrations, merge_counts
from callgauge_media.adapters.pjsua.message_log import call_id_of

ALICE = SipAccount(username="alice", domain="example.com", registrar="10.0.0.1:5060", password="pw")
JOB = UaJob(ua_id="run-1:0.1.2", account=ALICE, regexpire=600, step=0, action=1, index=2)

OK_200 = ("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070\r\nCall-ID: abc-123@host\r\n"
          "Contact: <sip:alice@127.0.0.1:5070>;expires=600\r\n\r\n")


def test_the_call_id_is_read_by_full_and_compact_name_in_the_headers_only() -> None:
    assert call_id_of(OK_200) == "abc-123@host"
    assert call_id_of("SIP/2.0 401 Unauthorized\r\ni:  short-form \r\n\r\n") == "short-form"
    assert call_id_of("SIP/2.0 200 OK\r\nCSeq: 1 REGISTER\r\n\r\nCall-ID: in-the-body") == ""
    assert call_id_of("") == ""


def test_a_registration_that_held_until_the_end() -> None:
    report = {"registrations": 3, "refresh_failures": 0, "expires": 600, "code": 200, "reason": "OK",
              "unregistered": True, "unregister_code": 200, "unregister_reason": "OK", "kept": False,
              "register_time_ms": 12.5, "sip_call_id": "abc-123@host", "started_wall": 1_700_000_000.0,
              "ended_wall": 1_700_000_060.0, "ladder": [ladder_entry(12.0, "in", OK_200)], "answered": 4}
    r = registration_measurement(JOB, registration_id=JOB.ua_id, kind="wait_for_calls",
                                 outcome={"event": "registered", "code": 200, "reason": "OK", "expires": 600},
                                 report=report)
    assert r.outcome == m_pb2.SUCCESS and (r.sip_code, r.sip_reason) == (200, "OK")
    assert (r.registration_id, r.step, r.action, r.index, r.kind) == ("run-1:0.1.2", 0, 1, 2, "wait_for_calls")
    assert (r.user, r.registrar, r.transport) == ("sip:alice@example.com", "sip:10.0.0.1:5060", "udp")
    assert (r.register_time_ms, r.expires_requested, r.expires, r.refreshes, r.refresh_failures) == (12.5, 600, 600, 2, 0)
    assert r.unregistered and r.unregister_code == 200 and not r.kept
    assert r.sip_call_id == "abc-123@host" and r.calls_answered == 4
    assert not r.sip_ladder  # kept only when it did not succeed
    assert r.started_at.seconds == 1_700_000_000 and r.ended_at.seconds == 1_700_000_060
    assert "unregistered (200 OK)" in r.detail


def test_a_kept_binding_is_reported_as_kept_not_unregistered() -> None:
    report = {"registrations": 1, "expires": 600, "code": 200, "reason": "OK", "unregistered": False,
              "kept": True, "unregister_reason": "binding kept until it expires", "register_time_ms": 3.0}
    r = registration_measurement(JOB, registration_id=JOB.ua_id, kind="register",
                                 outcome={"event": "registered", "code": 200, "reason": "OK"}, report=report)
    assert r.outcome == m_pb2.SUCCESS and r.kept and not r.unregistered and r.unregister_code == 0
    assert "binding kept until it expires" in r.detail


def test_a_refused_registration_carries_the_code_and_the_ladder() -> None:
    ladder = [ladder_entry(5.0, "in", "SIP/2.0 401 Unauthorized\r\nCall-ID: x\r\n\r\n")]
    r = registration_measurement(JOB, registration_id=JOB.ua_id, kind="register",
                                 outcome={"event": "failed", "code": 401, "reason": "Unauthorized", "ladder": ladder},
                                 report={"registrations": 0, "code": 401, "reason": "Unauthorized",
                                         "register_time_ms": 0.0, "sip_call_id": "x"})
    assert r.outcome == m_pb2.REGISTRATION_FAILED and (r.sip_code, r.sip_reason) == (401, "Unauthorized")
    assert r.register_time_ms == 0 and r.expires == 0 and r.refreshes == 0 and not r.unregistered
    assert [e.summary for e in r.sip_ladder] == ["401 Unauthorized"]
    assert "register of sip:alice@example.com at sip:10.0.0.1:5060 failed: 401 Unauthorized" in r.detail


def test_a_registration_lost_at_a_refresh_is_failed_with_the_refresh_code() -> None:
    ladder = [ladder_entry(1.0, "in", OK_200), ladder_entry(9000.0, "in", "SIP/2.0 403 Forbidden\r\n\r\n")]
    r = registration_measurement(JOB, registration_id=JOB.ua_id, kind="register",
                                 outcome={"event": "registered", "code": 200, "reason": "OK", "expires": 600},
                                 report={"registrations": 1, "refresh_failures": 1, "code": 403, "reason": "Forbidden",
                                         "register_time_ms": 1.0, "ladder": ladder},
                                 lost=[{"event": "lost", "code": 403, "reason": "Forbidden"}])
    assert r.outcome == m_pb2.REGISTRATION_FAILED and r.sip_code == 403 and r.refresh_failures == 1
    assert r.register_time_ms == 1.0  # it did register once
    assert [e.summary for e in r.sip_ladder] == ["200 OK", "403 Forbidden"]
    assert "lost: a refresh got 403 Forbidden (1 failed refreshes)" in r.detail


def test_a_worker_that_went_away_is_said() -> None:
    r = registration_measurement(JOB, registration_id=JOB.ua_id, kind="register",
                                 outcome={"event": "registered", "code": 200, "reason": "OK", "expires": 600},
                                 report={"error": "media worker crashed"})
    assert r.outcome == m_pb2.SUCCESS and r.expires == 600 and "media worker crashed" in r.detail
    assert r.started_at.seconds == 0 and r.ended_at.seconds > 0


def test_summary_registration_figures_and_merge() -> None:
    regs = [m_pb2.RegistrationMeasurement(outcome=m_pb2.SUCCESS, register_time_ms=float(t)) for t in (10, 20, 30, 40)]
    regs.append(m_pb2.RegistrationMeasurement(outcome=m_pb2.REGISTRATION_FAILED, register_time_ms=99))
    s = add_registrations(m_pb2.RunSummary(), regs)
    assert (s.registrations_ok, s.registrations_failed, s.register_p50_ms, s.register_p95_ms) == (4, 1, 20, 40)
    empty = add_registrations(m_pb2.RunSummary(), [])
    assert (empty.registrations_ok, empty.registrations_failed, empty.register_p95_ms) == (0, 0, 0)
    merged = merge_counts(s, m_pb2.RunSummary(calls_attempted=5, calls_answered=5, registrations_failed=2))
    assert (merged.registrations_ok, merged.registrations_failed, merged.register_p50_ms) == (4, 3, 20)
    other_side = merge_counts(m_pb2.RunSummary(calls_attempted=1), s)
    assert (other_side.registrations_ok, other_side.register_p95_ms) == (4, 40)


def test_a_ladder_entry_hides_the_digest_response_and_keeps_what_a_person_checks() -> None:
    invite = ('INVITE sip:bob@example.com SIP/2.0\r\n'
              'Proxy-Authorization: Digest username="alice", realm="example.com", nonce="n1", '
              'uri="sip:bob@example.com", response="0123456789abcdef0123456789abcdef", algorithm=MD5, '
              'cnonce="c0ffee", qop=auth, nc=00000001\r\nCall-ID: x1\r\n\r\n')
    text = ladder_entry(1.0, "out", invite)[4]
    assert "0123456789abcdef" not in text and "c0ffee" not in text
    assert 'response="<redacted>"' in text and 'cnonce="<redacted>"' in text
    assert all(p in text for p in ('username="alice"', 'realm="example.com"', 'nonce="n1"', "Call-ID: x1"))
    register = 'REGISTER sip:example.com SIP/2.0\r\nauthorization: Digest username="a", response=ffff\r\n\r\n'
    assert ladder_entry(0.0, "out", register)[4].endswith('response="<redacted>"\r\n\r\n')
    challenge = 'SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm="x", nonce="n"\r\n\r\n'
    assert ladder_entry(0.0, "in", challenge)[4] == challenge
