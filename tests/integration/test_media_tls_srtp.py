"""SIP over TLS and SRTP (SDES and DTLS-SRTP keys) in the media engine, on the real wire: real pjsua2
worker processes, the built-in responder, Kamailio with its TLS module (Debian `kamailio-tls-modules`)
holding a certificate this test makes with its own CA. Loopback only; every wait bounded.

- SRTP: mandatory to a responder that accepts SRTP (measured on, with its crypto suite), optional to
  one without SRTP (plain RTP, said so), mandatory to one without (refused 488, said so).
- DTLS-SRTP: the same responder (it answers either keying) with srtp_keying dtls: the keys come from a
  DTLS handshake on the media path and the measurement says keying dtls; a callee of the engine that
  accepts DTLS-SRTP only (and refuses SDES offers with 488), one with the default keying that refuses
  a DTLS-SRTP offer (488) and lives on; DTLS-SRTP, mandatory or optional, to a responder without SRTP
  (refused, said so: a DTLS-SRTP offer has no plain RTP fallback).
- TLS: register and call through Kamailio-TLS with certificate verification on (the test's CA given
  to the engine); a registrar whose certificate comes from a CA the engine does not trust is refused
  with verification on and reached with the registrar's tls_verify false.
"""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from callgauge_platform.kamailio import Kamailio
from callgauge_platform.stack import free_port
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.jobs import CallJob, SipAccount, TlsFiles, UaJob
from callgauge_media.adapters.pool import WorkerPool

pytest.importorskip("pjsua2", reason="pjsua2 is not installed (install.sh builds it)")

HOST = "127.0.0.1"
BOUND_S = 60.0
RTP_BASE = 52_000 + (os.getpid() % 10) * 200
USERS = {"alice": "alice-tls-secret", "bob": "bob-tls-secret", "carol": "carol-sdes-secret"}


def _explain(m: m_pb2.CallMeasurement) -> str:
    return (f"{m_pb2.CallOutcome.Name(m.outcome)} {m.sip_code} {m.sip_reason!r} transport={m.transport!r} "
            f"srtp={m.srtp} suite={m.srtp_suite!r} detail={m.detail!r}")


@pytest.fixture(scope="module")
def kamailio_tls(start_kamailio, pki) -> Kamailio:
    return start_kamailio(USERS, tls=pki["server"])


@pytest.fixture(scope="module")
def kamailio_stranger(start_kamailio, pki) -> Kamailio:
    """Kamailio-TLS with a certificate of a CA the engine does not trust."""
    return start_kamailio(USERS, tls=pki["stranger"])


@pytest.fixture
async def pool(start_pool, pki) -> WorkerPool:
    return await start_pool(rtp_port_base=RTP_BASE, rtp_ports_per_worker=120, calls_per_worker=8,
                            tls=TlsFiles(ca_file=str(pki["ca"].cert_path)))


async def _call(pool: WorkerPool, job: CallJob) -> m_pb2.CallMeasurement:
    return await asyncio.wait_for(pool.run_call(job), BOUND_S)


# ------------------------------------------------------------------------------------------ SRTP


async def test_srtp_mandatory_call_is_measured_with_its_suite(pool: WorkerPool, start_responder) -> None:
    uri = start_responder().uri  # the responder's default: SRTP when offered
    m = await _call(pool, CallJob(call_id="srtp-1", destination=uri, duration_ms=1500, tone_hz=440, srtp="mandatory"))
    assert m.outcome == m_pb2.SUCCESS, _explain(m)
    assert m.srtp and m.srtp_suite and m.srtp_keying == "sdes", _explain(m)
    assert m.transport == "udp", _explain(m)
    assert m.rx_packets > 0 and m.HasField("mos"), _explain(m)  # the media was decrypted and measured


async def test_plain_call_says_no_srtp(pool: WorkerPool, start_responder) -> None:
    uri = start_responder().uri
    m = await _call(pool, CallJob(call_id="plain-1", destination=uri, duration_ms=800))
    assert m.outcome == m_pb2.SUCCESS, _explain(m)
    assert not m.srtp and m.srtp_suite == "" and m.srtp_keying == "" and m.transport == "udp", _explain(m)


async def test_srtp_optional_to_a_far_end_without_srtp_falls_back_to_rtp(pool: WorkerPool, start_responder) -> None:
    uri = start_responder("--srtp", "off").uri
    m = await _call(pool, CallJob(call_id="srtp-opt", destination=uri, duration_ms=800, srtp="optional"))
    assert m.outcome == m_pb2.SUCCESS, _explain(m)
    assert not m.srtp and "SRTP offered, the far end answered plain RTP" in m.detail, _explain(m)


async def test_srtp_mandatory_to_a_far_end_without_srtp_is_refused(pool: WorkerPool, start_responder) -> None:
    uri = start_responder("--srtp", "off").uri
    m = await _call(pool, CallJob(call_id="srtp-refused", destination=uri, duration_ms=800, srtp="mandatory"))
    assert m.outcome == m_pb2.NEGOTIATION_FAILED and m.sip_code == 488, _explain(m)
    assert "SRTP was required" in m.detail and not m.srtp, _explain(m)


async def test_dtls_srtp_mandatory_call_is_measured_with_keying_dtls(pool: WorkerPool,
                                                                     start_responder) -> None:
    uri = start_responder().uri  # answers SDES offers with SDES, DTLS-SRTP ones with DTLS-SRTP
    m = await _call(pool, CallJob(call_id="dtls-1", destination=uri, duration_ms=1500, tone_hz=440,
                                  srtp="mandatory", srtp_keying="dtls"))
    assert m.outcome == m_pb2.SUCCESS, _explain(m)
    assert m.srtp and m.srtp_suite and m.srtp_keying == "dtls", _explain(m)
    assert m.rx_packets > 0 and m.HasField("mos"), _explain(m)  # DTLS-keyed media decrypted and measured


async def test_sdes_to_a_responder_that_takes_both_keyings_stays_sdes(pool: WorkerPool,
                                                                      start_responder) -> None:
    uri = start_responder().uri
    m = await _call(pool, CallJob(call_id="sdes-both", destination=uri, duration_ms=800, srtp="optional",
                                  srtp_keying="sdes"))
    assert m.outcome == m_pb2.SUCCESS, _explain(m)
    assert m.srtp and m.srtp_keying == "sdes", _explain(m)


async def test_dtls_srtp_mandatory_to_a_far_end_without_srtp_is_refused(pool: WorkerPool,
                                                                        start_responder) -> None:
    uri = start_responder("--srtp", "off").uri
    m = await _call(pool, CallJob(call_id="dtls-refused", destination=uri, duration_ms=800, srtp="mandatory",
                                  srtp_keying="dtls"))
    assert m.outcome == m_pb2.NEGOTIATION_FAILED and m.sip_code == 488, _explain(m)
    assert "SRTP was required (srtp mandatory, DTLS-SRTP keying)" in m.detail and not m.srtp, _explain(m)
    m = await _call(pool, CallJob(call_id="dtls-optional", destination=uri, duration_ms=800, srtp="optional",
                                  srtp_keying="dtls"))  # UDP/TLS/RTP/SAVP has no plain RTP fallback
    assert m.outcome == m_pb2.NEGOTIATION_FAILED and m.sip_code == 488, _explain(m)
    assert m.detail.startswith("DTLS-SRTP was offered (srtp optional"), _explain(m)


# ------------------------------------------------------------------------------------------- TLS


def _account(k: Kamailio, user: str, *, verify: bool = True) -> SipAccount:
    return SipAccount(username=user, domain=k.domain, registrar=f"{k.host}:{k.tls_port}", transport="tls",
                      password=USERS[user], tls_verify=verify)


@pytest.mark.kamailio_tls
async def test_tls_register_and_srtp_call_through_kamailio_tls(pool: WorkerPool, kamailio_tls: Kamailio) -> None:
    bob = pool.open_ua(UaJob(ua_id="bob", account=_account(kamailio_tls, "bob"), regexpire=60, answer=True,
                             srtp="optional"))
    try:
        reg = await bob.wait_registered(BOUND_S)
        assert reg["event"] == "registered", (reg, kamailio_tls.log_tail())
        job = CallJob(call_id="tls-1", destination=f"sip:bob@{kamailio_tls.domain}", duration_ms=1500, tone_hz=440,
                      account=_account(kamailio_tls, "alice"), transport="tls", srtp="mandatory")
        m = await _call(pool, job)
        assert m.outcome == m_pb2.SUCCESS, (_explain(m), kamailio_tls.log_tail())
        assert m.transport == "tls" and m.srtp and m.srtp_suite, _explain(m)
        assert m.rx_packets > 0, _explain(m)
    finally:
        report = await asyncio.wait_for(bob.close(), BOUND_S)
    assert report["answered"] == 1, report


@pytest.fixture(scope="module")
def kamailio_udp(start_kamailio) -> Kamailio:
    return start_kamailio(USERS)


async def test_a_callee_of_the_engine_that_takes_dtls_srtp_only(pool: WorkerPool,
                                                                kamailio_udp: Kamailio) -> None:
    """wait_for_calls with srtp_keying dtls: the engine's callee answers a DTLS-SRTP offer with DTLS-SRTP
    (both legs measured keying dtls) and refuses an SDES-only one (488: no keying it accepts)."""
    def account(user: str) -> SipAccount:
        k = kamailio_udp
        return SipAccount(username=user, domain=k.domain, registrar=f"{k.host}:{k.port}",
                          password=USERS[user])

    bob = pool.open_ua(UaJob(ua_id="bob-dtls", account=account("bob"), regexpire=60, answer=True,
                             srtp="mandatory", srtp_keying="dtls"))
    try:
        reg = await bob.wait_registered(BOUND_S)
        assert reg["event"] == "registered", (reg, kamailio_udp.log_tail())
        dest = f"sip:bob@{kamailio_udp.domain}"
        m = await _call(pool, CallJob(call_id="dtls-callee", destination=dest, duration_ms=1500, tone_hz=440,
                                      account=account("alice"), srtp="mandatory", srtp_keying="dtls"))
        assert m.outcome == m_pb2.SUCCESS, (_explain(m), kamailio_udp.log_tail())
        assert m.srtp and m.srtp_keying == "dtls" and m.rx_packets > 0, _explain(m)
        sdes = await _call(pool, CallJob(call_id="sdes-to-dtls", destination=dest, duration_ms=800,
                                         account=account("alice"), srtp="mandatory", srtp_keying="sdes"))
        assert sdes.outcome == m_pb2.NEGOTIATION_FAILED and sdes.sip_code == 488, _explain(sdes)
        for _ in range(100):  # the callee's measurement of the answered call follows its hang-up
            if any(c.outcome == m_pb2.SUCCESS for c in bob.calls):
                break
            bob.changed.clear()
            await asyncio.wait_for(bob.changed.wait(), BOUND_S)
        answered = [c for c in bob.calls if c.outcome == m_pb2.SUCCESS]
        assert answered and answered[0].srtp and answered[0].srtp_keying == "dtls", \
            [_explain(c) for c in bob.calls]
    finally:
        report = await asyncio.wait_for(bob.close(), BOUND_S)
    assert report["answered"] == 1, report


async def test_a_dtls_srtp_offer_to_an_sdes_callee_is_refused_and_the_worker_lives_on(
        pool: WorkerPool, kamailio_udp: Kamailio) -> None:
    """A callee with the default keying (sdes) gets a DTLS-SRTP offer: 488 (pjsua 2.15.1 itself would
    crash the worker on this offer, see registration.py), then takes an SDES call as before."""
    def account(user: str) -> SipAccount:
        k = kamailio_udp
        return SipAccount(username=user, domain=k.domain, registrar=f"{k.host}:{k.port}",
                          password=USERS[user])

    carol = pool.open_ua(UaJob(ua_id="carol-sdes", account=account("carol"), regexpire=60, answer=True,
                               srtp="optional"))
    try:
        reg = await carol.wait_registered(BOUND_S)
        assert reg["event"] == "registered", (reg, kamailio_udp.log_tail())
        dest = f"sip:carol@{kamailio_udp.domain}"
        m = await _call(pool, CallJob(call_id="dtls-to-sdes", destination=dest, duration_ms=800,
                                      account=account("alice"), srtp="mandatory", srtp_keying="dtls"))
        assert m.outcome == m_pb2.NEGOTIATION_FAILED and m.sip_code == 488, _explain(m)
        m = await _call(pool, CallJob(call_id="sdes-to-sdes", destination=dest, duration_ms=800, tone_hz=440,
                                      account=account("alice"), srtp="mandatory"))
        assert m.outcome == m_pb2.SUCCESS and m.srtp and m.srtp_keying == "sdes", _explain(m)
    finally:
        report = await asyncio.wait_for(carol.close(), BOUND_S)
    assert (report["answered"], report["rejected"]) == (1, 1), report


@pytest.mark.kamailio_tls
async def test_untrusted_certificate_is_refused_unless_the_registrar_says_tls_verify_false(
        pool: WorkerPool, kamailio_stranger: Kamailio) -> None:
    checked = pool.open_ua(UaJob(ua_id="strict", account=_account(kamailio_stranger, "alice"), regexpire=60))
    reg = await checked.wait_registered(BOUND_S)
    await asyncio.wait_for(checked.close(), BOUND_S)
    assert reg["event"] == "failed", reg
    assert "certificate" in reg["reason"].lower(), reg

    lax = pool.open_ua(UaJob(ua_id="lax", account=_account(kamailio_stranger, "alice", verify=False), regexpire=60))
    reg = await lax.wait_registered(BOUND_S)
    await asyncio.wait_for(lax.close(), BOUND_S)
    assert reg["event"] == "registered", (reg, kamailio_stranger.log_tail())


async def test_sips_dial_without_a_tls_listener_fails_with_a_reason(pool: WorkerPool) -> None:
    port = free_port(HOST, socket.SOCK_STREAM)  # nobody listens there
    m = await _call(pool, CallJob(call_id="sips-1", destination=f"sips:nobody@{HOST}:{port}", duration_ms=500,
                                  setup_timeout_ms=5000))
    assert m.outcome != m_pb2.SUCCESS and m.transport == "tls", _explain(m)
    assert f"connection refused by {HOST}:{port} (TLS)" in m.detail, _explain(m)
