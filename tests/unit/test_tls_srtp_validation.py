"""SIP over TLS and SRTP, the pure parts: validation of actions and registrars (422 per field),
defaults, the media engine's job fields and the measurement's transport/SRTP facts."""

from __future__ import annotations

import pytest

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.events.v1 import runs_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_runs.domain import resources as resource_model, spec as specs
from callgauge_runs.domain.errors import Invalid, ValidationCollector

from callgauge_media.domain.jobs import (
    CallJob,
    SipAccount,
    call_transport,
    keying_refusal,
    normalize_destination,
    offered_srtp_keying,
)
from callgauge_media.domain.measurement import RawCall, build_measurement
from callgauge_media.domain.reasons import where_of
from callgauge_media.handlers.runner import load_call_action
from callgauge_platform.kamailio import command as kamailio_command


def errors(spec: spec_pb2.TestSpec) -> dict[tuple, str]:
    v = ValidationCollector()
    specs.validate(spec, v, [])
    return {tuple(e.loc): e.msg for e in v.errors}


def one(kind: str, **kw) -> spec_pb2.TestSpec:
    spec = spec_pb2.TestSpec()
    getattr(spec.steps.add().actions.add(), kind).CopyFrom(
        {"call": spec_pb2.CallAction, "load": spec_pb2.LoadAction,
         "wait_for_calls": spec_pb2.WaitForCallsAction}[kind](**kw))
    return spec


AT = ("steps", 0, "actions", 0)


def test_unknown_srtp_mode_is_refused_on_every_action() -> None:
    assert "srtp" in errors(one("call", dial_destination="sip:a@127.0.0.1", srtp="always"))[(*AT, "srtp")]
    assert (*AT, "srtp") in errors(one("load", dial_destination="sip:a@127.0.0.1", cps=1, hold_s=1, srtp="yes"))
    assert (*AT, "srtp") in errors(one("wait_for_calls", credential_pool="c", srtp="sdes"))
    for mode in ("off", "optional", "mandatory", ""):
        assert errors(one("call", dial_destination="sip:a@127.0.0.1", srtp=mode)) == {}


def test_srtp_keying_is_sdes_or_dtls_and_needs_srtp_on_every_action() -> None:
    for kind, kw in (("call", {"dial_destination": "sip:a@127.0.0.1"}),
                     ("load", {"dial_destination": "sip:a@127.0.0.1", "cps": 1, "hold_s": 1}),
                     ("wait_for_calls", {"credential_pool": "c"})):
        msg = errors(one(kind, **kw, srtp="mandatory", srtp_keying="zrtp"))[(*AT, "srtp_keying")]
        assert "unknown srtp_keying 'zrtp'" in msg and "sdes, dtls" in msg, msg
        for srtp in ("", "off"):
            msg = errors(one(kind, **kw, srtp=srtp, srtp_keying="dtls"))[(*AT, "srtp_keying")]
            assert "srtp is off" in msg and "optional or mandatory" in msg, msg
        for srtp in ("optional", "mandatory"):
            for keying in ("sdes", "dtls", ""):
                assert errors(one(kind, **kw, srtp=srtp, srtp_keying=keying)) == {}, (kind, srtp, keying)


def test_dtls_srtp_with_the_sipp_driver_or_impairment_is_refused() -> None:
    e = errors(one("load", dial_destination="sip:a@127.0.0.1", cps=1, hold_s=1, driver="sipp",
                   srtp="mandatory", srtp_keying="dtls"))
    assert "pjsua driver" in e[(*AT, "srtp")], e
    spec = one("call", dial_destination="sip:a@127.0.0.1", srtp="mandatory", srtp_keying="dtls")
    spec.steps[0].actions[0].call.impairment.loss_pct = 5
    assert "plain RTP only" in errors(spec)[(*AT, "srtp")]


def test_impairment_with_srtp_is_refused() -> None:
    spec = one("call", dial_destination="sip:a@127.0.0.1", srtp="optional")
    spec.steps[0].actions[0].call.impairment.loss_pct = 5
    assert "plain RTP only" in errors(spec)[(*AT, "srtp")]


def test_sips_with_transport_udp_or_tcp_is_refused() -> None:
    for t in ("udp", "tcp"):
        msg = errors(one("call", dial_destination="sips:a@127.0.0.1", transport=t))[(*AT, "transport")]
        assert "TLS only" in msg
    assert errors(one("call", dial_destination="sips:a@127.0.0.1", transport="tls")) == {}
    assert errors(one("call", dial_destination="sips:a@127.0.0.1")) == {}
    assert "udp, tcp or tls" in errors(one("call", dial_destination="sip:a@h", transport="sctp"))[(*AT, "transport")]


def test_sipp_driver_refuses_srtp_and_tls() -> None:
    e = errors(one("load", dial_destination="sip:a@127.0.0.1", cps=1, hold_s=1, driver="sipp", srtp="mandatory",
                   transport="tls"))
    assert "pjsua driver" in e[(*AT, "srtp")] and "pjsua driver" in e[(*AT, "transport")]
    assert errors(one("load", dial_destination="sip:a@127.0.0.1", cps=1, hold_s=1, driver="sipp", srtp="off")) == {}


def test_defaults_tls_for_sips_and_the_registrars_transport_through_a_target_pool() -> None:
    spec = specs.with_defaults(one("call", dial_destination="sips:a@127.0.0.1"))
    assert spec.steps[0].actions[0].call.transport == "tls"
    spec = specs.with_defaults(one("call", dial_destination="bob", target_pool="r1"))
    assert spec.steps[0].actions[0].call.transport == ""  # the registrar's, resolved by the engine
    spec = specs.with_defaults(one("call", dial_destination="sip:a@127.0.0.1"))
    assert spec.steps[0].actions[0].call.transport == "udp"


def _project():
    from callgauge_runs.domain import project as project_model

    return project_model.evolve_project(None, runs_pb2.ProjectCreated(project_id="p1", account_id="a1", name="P",
                                                                      slug="p", mode="live"), None)


def test_tls_registrar_defaults_to_port_5061_and_verification_on() -> None:
    [event] = resource_model.decide_create_registrar(_project(), None, resource_model.CreateRegistrar(
        "r1", "p1", "a1", "live", resource_model.RegistrarFields(name="tls", host="sip.example", transport="tls")))
    assert (event.port, event.transport, event.tls_verify) == (5061, "tls", True)
    reg = resource_model.evolve_registrar(None, event, None)
    assert reg.tls_verify is True
    [upd] = resource_model.decide_update_registrar(reg, resource_model.UpdateRegistrar(
        "r1", "p1", "a1", "live", resource_model.RegistrarFields(tls_verify=False)))
    assert upd.tls_verify is False and resource_model.evolve_registrar(reg, upd, None).tls_verify is False
    # an older event without the field keeps verification on
    old = runs_pb2.RegistrarCreated(registrar_id="r2", project_id="p1", account_id="a1", name="x", host="h",
                                    port=5061, transport="tls", domain="h")
    assert resource_model.evolve_registrar(None, old, None).tls_verify is True


def test_registrar_transport_error_names_tls() -> None:
    with pytest.raises(Invalid) as err:
        resource_model.decide_create_registrar(_project(), None, resource_model.CreateRegistrar(
            "r1", "p1", "a1", "live", resource_model.RegistrarFields(name="x", host="h", transport="dtls")))
    [e] = err.value.errors
    assert e.loc == ["transport"] and "tls" in e.msg


def test_engine_jobs_carry_tls_and_srtp() -> None:
    job = CallJob.from_action("c1", spec_pb2.CallAction(dial_destination="sips:bob@pbx.example", srtp="mandatory"))
    assert (job.transport, job.srtp, call_transport(job)) == ("tls", "mandatory", "tls")
    assert normalize_destination("bob@pbx.example", "tls") == "sip:bob@pbx.example;transport=tls"
    assert normalize_destination("sips:bob@pbx.example", "tls") == "sips:bob@pbx.example"
    assert call_transport(CallJob("c2", "sip:x@h;transport=TCP")) == "tcp"
    acc = SipAccount("alice", "pbx.example", "pbx.example:5061", transport="tls")
    assert acc.registrar_uri == "sip:pbx.example:5061;transport=tls"
    assert acc.proxy_uri == "sip:pbx.example:5061;lr;transport=tls"
    assert call_transport(CallJob("c3", "sip:bob@pbx.example", account=acc)) == "tls"
    assert where_of("sips:bob@pbx.example") == ("pbx.example", 5061, "tls")
    load = spec_pb2.LoadAction(dial_destination="sip:a@h", cps=1, srtp="optional", transport="tls")
    assert load_call_action(load, 1000).srtp == "optional"
    default = CallJob.from_action("c4", spec_pb2.CallAction(dial_destination="sip:a@h", srtp="optional"))
    assert default.srtp_keying == "sdes"
    load.srtp_keying = "dtls"
    job = CallJob.from_action("c5", load_call_action(load, 1000))
    assert (job.srtp, job.srtp_keying) == ("optional", "dtls")


def _answered(job: CallJob, suite: str = "") -> RawCall:
    raw = RawCall(job=job, started_wall=1.0, ended_wall=2.0, t_invite=1.0, t_first_response=1.1, t_answer=1.2,
                  t_end=3.0, media_active=True, codec="PCMU", srtp_suite=suite, srtp_keying="sdes" if suite else "")
    return raw


def test_measurement_records_transport_and_srtp() -> None:
    m = build_measurement(_answered(CallJob("c", "sips:a@h", srtp="mandatory"), "AES_CM_128_HMAC_SHA1_80"))
    assert (m.transport, m.srtp, m.srtp_suite, m.srtp_keying) == ("tls", True, "AES_CM_128_HMAC_SHA1_80", "sdes")
    m = build_measurement(_answered(CallJob("c", "sip:a@h", srtp="optional")))
    assert not m.srtp and m.outcome == m_pb2.SUCCESS and "answered plain RTP" in m.detail
    m = build_measurement(_answered(CallJob("c", "sip:a@h", srtp="mandatory")))
    assert m.outcome == m_pb2.NEGOTIATION_FAILED and "SRTP was required" in m.detail
    refused = RawCall(job=CallJob("c", "sip:a@h", srtp="mandatory"), t_invite=1.0, t_first_response=1.1, t_end=1.1,
                      final_code=488, final_reason="Not Acceptable Here")
    m = build_measurement(refused)
    assert m.outcome == m_pb2.NEGOTIATION_FAILED and m.detail.startswith("SRTP was required (srtp mandatory)")
    assert "488 Not Acceptable Here" in m.detail and m.transport == "udp"
    assert build_measurement(RawCall(job=CallJob("c", "sip:a@h"))).transport == ""  # never sent


def test_measurement_says_dtls_keying_and_a_refused_dtls_offer() -> None:
    raw = _answered(CallJob("c", "sip:a@h", srtp="mandatory", srtp_keying="dtls"), "AES_CM_128_HMAC_SHA1_80")
    raw.srtp_keying = "dtls"  # what the engine read off pjsua's negotiated stream (UDP/TLS/RTP/SAVP)
    m = build_measurement(raw)
    assert (m.outcome, m.srtp, m.srtp_keying) == (m_pb2.SUCCESS, True, "dtls")
    refused = RawCall(job=CallJob("c", "sip:a@h", srtp="mandatory", srtp_keying="dtls"), t_invite=1.0,
                      t_first_response=1.1, t_end=1.1, final_code=488, final_reason="Not Acceptable Here")
    m = build_measurement(refused)
    assert m.outcome == m_pb2.NEGOTIATION_FAILED and not m.srtp and m.srtp_keying == ""
    assert m.detail.startswith("SRTP was required (srtp mandatory, DTLS-SRTP keying) and the far end did not "
                               "accept the DTLS-SRTP offer (488 Not Acceptable Here)"), m.detail
    refused.job = CallJob("c", "sip:a@h", srtp="optional", srtp_keying="dtls")  # no plain RTP fallback
    m = build_measurement(refused)
    assert m.outcome == m_pb2.NEGOTIATION_FAILED and m.detail.startswith(
        "DTLS-SRTP was offered (srtp optional, DTLS-SRTP keying: no plain RTP fallback) and the far end did "
        "not accept it (488 Not Acceptable Here)"), m.detail


def test_offered_keying_and_the_callees_refusal() -> None:
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=audio 4000 {proto} 0 101\r\n{attrs}a=rtpmap:0 PCMU/8000\r\n")
    invite = "INVITE sip:bob@h SIP/2.0\r\nCall-ID: x\r\nContent-Type: application/sdp\r\n\r\n"
    dtls = sdp.format(proto="UDP/TLS/RTP/SAVP", attrs="a=setup:actpass\r\na=fingerprint:SHA-256 AB:CD\r\n")
    sdes = sdp.format(proto="RTP/SAVP", attrs="a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abcd\r\n")
    sdes_optional = sdp.format(proto="RTP/AVP", attrs="a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abcd\r\n")
    plain = sdp.format(proto="RTP/AVP", attrs="")
    got = [offered_srtp_keying(invite + x) for x in (dtls, sdes, sdes_optional, plain)]
    assert got == ["dtls", "sdes", "sdes", ""], got
    assert offered_srtp_keying(dtls) == "dtls" and offered_srtp_keying(invite) == ""  # the bare SDP; no body
    assert offered_srtp_keying(invite + sdp.format(proto="RTP/SAVPF", attrs="").replace(
        "m=audio", "a=fingerprint:SHA-256 AB\r\nm=audio")) == "dtls"  # a session-level fingerprint
    assert keying_refusal("mandatory", "dtls", "sdes") == (
        "the callee takes DTLS-SRTP keys only (srtp_keying dtls), the offer keys SRTP with SDES")
    assert "SDES keys only" in keying_refusal("optional", "sdes", "dtls")
    assert keying_refusal("optional", "dtls", "dtls") == keying_refusal("mandatory", "dtls", "") == ""
    assert keying_refusal("off", "sdes", "dtls") == ""  # SRTP off: pjsua answers (488 for an SRTP-only offer)


def test_kamailio_tls_command_line(tmp_path) -> None:
    argv = kamailio_command(tmp_path / "k.cfg", tmp_path, "127.0.0.1", 5070, db_dir=tmp_path, tls_port=5071,
                            tls_config=tmp_path / "tls.cfg")
    assert "tls:127.0.0.1:5071" in argv and "WITH_TLS" in argv
    assert "tls:127.0.0.1:0" not in kamailio_command(tmp_path / "k.cfg", tmp_path, "127.0.0.1", 5070, db_dir=tmp_path)
