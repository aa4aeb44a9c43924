"""Pure parts of the SIP actions: dialled URIs, DTMF digits, accounts, the SIP ladder entries, and
how a run's pools and passwords become user agents and call jobs (no pjsua2, no network)."""

from __future__ import annotations

import asyncio

import pytest

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec
from callgauge_proto.callgauge.events.v1 import runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.jobs import SipAccount, clean_dtmf, dial_uri
from callgauge_media.domain.measurement import (
    LADDER_MAX_CHARS,
    LADDER_MAX_MESSAGES,
    RawCall,
    add_ladder,
    build_measurement,
    ladder_entry,
)
from callgauge_media.domain.jobs import CallJob
from callgauge_media.handlers.sip_run import SipRun, SipRunError, StaticCredentials


def test_dial_uri() -> None:
    assert dial_uri("bob", "example.com") == "sip:bob@example.com"
    assert dial_uri("+4930123", "pbx.lan") == "sip:+4930123@pbx.lan"
    assert dial_uri("sip:carol@other.net", "example.com") == "sip:carol@other.net"
    assert dial_uri("<sips:dave@x.org>", "example.com") == "sips:dave@x.org"
    assert dial_uri("erin@y.org", "example.com") == "sip:erin@y.org"
    assert dial_uri("a b", "d") == "sip:a_b@d"


def test_clean_dtmf() -> None:
    assert clean_dtmf(" 12#*ab ") == "12#*AB"
    assert clean_dtmf("") == ""
    with pytest.raises(ValueError, match="not DTMF"):
        clean_dtmf("12x")


def test_account_uris_and_no_password_in_repr() -> None:
    a = SipAccount("alice", "example.com", "10.0.0.1:5060", password="hunter2")
    assert (a.aor, a.registrar_uri, a.proxy_uri) == (
        "sip:alice@example.com", "sip:10.0.0.1:5060", "sip:10.0.0.1:5060;lr")
    t = SipAccount("alice", "example.com", "10.0.0.1:5060", transport="tcp")
    assert t.proxy_uri == "sip:10.0.0.1:5060;lr;transport=tcp"
    assert "hunter2" not in repr(a)


def test_ladder_entries_are_bounded() -> None:
    e = ladder_entry(12.3456, "in", "SIP/2.0 404 Not Found\r\nVia: x\r\n\r\n", "127.0.0.1:5060")
    assert e[:4] == (12.346, "in", "404 Not Found", "127.0.0.1:5060") and not e[5]
    assert ladder_entry(0, "out", "INVITE sip:bob@x SIP/2.0\r\n")[2] == "INVITE sip:bob@x"
    big = ladder_entry(0, "out", "INVITE sip:b@x SIP/2.0\r\n" + "X" * 5000)
    assert len(big[4]) == LADDER_MAX_CHARS and big[5]
    raw = RawCall(job=CallJob(call_id="c", destination="sip:x@y"), final_code=500, final_reason="Oops")
    for i in range(LADDER_MAX_MESSAGES + 5):
        add_ladder(raw, ladder_entry(i, "in", f"SIP/2.0 1{i:02d} Trying\r\n"))
    m = build_measurement(raw)
    assert m.outcome == m_pb2.CALL_FAILED and len(m.sip_ladder) == LADDER_MAX_MESSAGES
    assert "5 later messages not kept" in m.detail


def test_callee_dtmf_check_in_the_measurement() -> None:
    raw = RawCall(job=CallJob(call_id="c", destination="sip:x@y"), role="callee", expect_dtmf="12",
                  dtmf_received="1", t_invite=1.0, t_answer=2.0, t_end=3.0, media_active=True)
    m = build_measurement(raw)
    assert m.role == "callee" and not m.dtmf_ok and m.outcome == m_pb2.CALL_FAILED
    assert "expected '12', received '1'" in m.detail


def _req(**kw) -> runs_pb2.RunRequested:
    s = spec.TestSpec()
    s.steps.add().actions.add().register.CopyFrom(spec.RegisterAction(target_pool="reg", credential_pool="users"))
    s.steps.add().actions.add().wait_for_calls.CopyFrom(spec.WaitForCallsAction(credential_pool="users"))
    return runs_pb2.RunRequested(
        run_id="r1", spec=s,
        targets=[spec.ResolvedTarget(id="reg", host="10.1.1.1", port=5080, transport="udp", domain="pbx.lan")],
        pools=[spec.ResolvedPool(id="users", credentials=[
            spec.ResolvedCredential(username="1001"),
            spec.ResolvedCredential(username="1002", auth_username="auth1002", domain="other.lan")])], **kw)


def test_accounts_from_pools_and_passwords() -> None:
    run = SipRun(_req(), object(), StaticCredentials({"users/1001": "pw1", "users/1002": "pw2"}))
    accounts = asyncio.run(run.accounts("reg", "users"))
    assert [(a.username, a.domain, a.registrar, a.auth_username, a.password) for a in accounts] == [
        ("1001", "pbx.lan", "10.1.1.1:5080", "1001", "pw1"),
        ("1002", "other.lan", "10.1.1.1:5080", "auth1002", "pw2")]
    # a wait_for_calls without target_pool uses the registrar named for the same pool
    assert run.target_for("", "users") == "reg"
    with pytest.raises(SipRunError, match="not resolved"):
        asyncio.run(run.accounts("nope", "users"))
    with pytest.raises(SipRunError, match="not resolved"):
        asyncio.run(run.accounts("reg", "nope"))


def test_missing_passwords_are_named() -> None:
    run = SipRun(_req(), object(), StaticCredentials({}))
    asyncio.run(run.accounts("reg", "users"))
    assert run.password_note() == "no password for users/1001, users/1002 from the runs service"


def test_call_job_through_a_registrar() -> None:
    run = SipRun(_req(), object(), StaticCredentials({"users/1001": "pw1", "users/1002": "pw2"}))
    call = spec.CallAction(dial_destination="2000", target_pool="reg", credential_pool="users", dtmf="1#",
                           dtmf_delay_ms=300)
    jobs = [asyncio.run(run.call_job(f"r1:1.0.{i}", 1, 0, i, call)) for i in range(3)]
    assert [j.account.username for j in jobs] == ["1001", "1002", "1001"]  # users in turn
    assert jobs[0].destination == "sip:2000@pbx.lan" and jobs[0].dtmf == "1#" and jobs[0].dtmf_delay_ms == 300
    plain = asyncio.run(run.call_job("r1:1.0.0", 1, 0, 0, spec.CallAction(dial_destination="sip:a@b")))
    assert plain.account is None and plain.destination == "sip:a@b"
    with pytest.raises(SipRunError, match="needs a target_pool"):
        asyncio.run(run.call_job("x", 0, 0, 0, spec.CallAction(dial_destination="a", credential_pool="users")))
    with pytest.raises(ValueError, match="not DTMF"):
        asyncio.run(run.call_job("x", 0, 0, 0, spec.CallAction(dial_destination="a", target_pool="reg", dtmf="9z")))


def test_an_engine_without_user_agents_reports_register_actions_as_failed() -> None:
    run = SipRun(_req(), object(), StaticCredentials({}))
    [m] = asyncio.run(run.start_ua_action(0, 0, _req().spec.steps[0].actions[0]))
    assert m.outcome == m_pb2.REGISTRATION_FAILED and m.role == "register" and "cannot run" in m.detail
    [r] = run.registrations  # and the action's registration, for the registration's own event
    assert r.outcome == m_pb2.REGISTRATION_FAILED and r.registration_id == m.call_id and "cannot run" in r.detail


def test_a_registration_ladder_from_the_worker_event() -> None:
    from callgauge_media.handlers.sip_run import _fill_reg_ladder

    m = m_pb2.CallMeasurement(detail="register failed")
    _fill_reg_ladder(m, {"event": "lost", "call_id": "reg-1", "ladder_left_out": 3,
                         "ladder": [ladder_entry(1.0, "out", "REGISTER sip:pbx.lan SIP/2.0\r\n")]})
    assert m.sip_call_id == "reg-1" and [e.summary for e in m.sip_ladder] == ["REGISTER sip:pbx.lan"]
    assert m.detail == "register failed; SIP ladder: 3 messages before the last 10 not kept"


class _Audio:
    """The audio service's recording calls, recorded."""

    def __init__(self, kept: str, note: str) -> None:
        self.kept, self.note, self.calls = kept, note, []

    def recording_path(self, run_id: str, call_id: str, leg: str) -> str:
        return f"/rec/{run_id}/{call_id}-{leg}.wav"

    def keep_callee(self, run_id: str, source: str, call_id: str) -> tuple[str, str]:
        self.calls.append((run_id, source, call_id))
        return self.kept, self.note


def test_keep_callee_keeps_the_recording_under_the_callers_call_and_notes_why_not() -> None:
    run = SipRun(_req(), object(), StaticCredentials({}))
    audio = _Audio("/kept/c1-callee.wav", "")
    m = m_pb2.CallMeasurement(call_id="c1", detail="earlier")
    assert asyncio.run(run._keep_callee(audio, "callee-7", "c1", m)) == "/kept/c1-callee.wav"
    assert audio.calls == [(run.run_id, f"/rec/{run.run_id}/callee-7-callee.wav", "c1")]
    assert m.detail == "earlier"
    audio = _Audio("", "recording cap reached")
    assert asyncio.run(run._keep_callee(audio, "c2", "c2", m)) == ""
    assert m.detail == "earlier; recording cap reached"
    m2 = m_pb2.CallMeasurement(call_id="c3")
    asyncio.run(run._keep_callee(audio, "c3", "c3", m2))
    assert m2.detail == "recording cap reached"
