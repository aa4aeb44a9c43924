"""SIP over TLS and SRTP (SDES) in the media engine, on the real wire: real pjsua2 worker processes,
the built-in responder, Kamailio with its TLS module (Debian `kamailio-tls-modules`) holding a
certificate this test makes with its own CA. Loopback only; every wait bounded.

- SRTP: mandatory to a responder that accepts SRTP (measured on, with its crypto suite), optional to
  one without SRTP (plain RTP, said so), mandatory to one without (refused 488, said so).
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
USERS = {"alice": "alice-tls-secret", "bob": "bob-tls-secret"}


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
