"""The media engine against Kamailio (registrar + digest-auth proxy, Debian package): register,
refresh and unregister; answer calls as a registered callee; call through the proxy with digest
auth; DTMF RFC 2833 sent and verified on the far side; SIP ladders of failed calls.

Real pjsua2 worker processes, real Kamailio, loopback only; every wait bounded."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from callgauge_platform.kamailio import Kamailio
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.engine.jobs import CallJob, SipAccount, UaJob
from callgauge_media.engine.pool import WorkerPool

pytest.importorskip("pjsua2", reason="pjsua2-python (extra 'media') is not installed")
pytestmark = pytest.mark.skipif(shutil.which("kamailio") is None and not Path("/usr/sbin/kamailio").exists(),
                                reason="kamailio (Debian package) is not installed")

HOST = "127.0.0.1"
BOUND_S = 45.0
USERS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory) -> Kamailio:
    k = Kamailio.on_free_port(tmp_path_factory.mktemp("kamailio"), USERS)
    k.start()
    try:
        yield k
    finally:
        k.stop()


@pytest.fixture
async def pool() -> WorkerPool:
    p = WorkerPool(workers=2, rtp_port_base=47000, rtp_ports_per_worker=100, bind_host=HOST)
    await asyncio.wait_for(p.start(), 60)
    try:
        yield p
    finally:
        await asyncio.wait_for(p.stop(), 60)


def account(k: Kamailio, user: str, password: str | None = None, auth_user: str = "") -> SipAccount:
    return SipAccount(username=user, domain=k.domain, registrar=f"{k.host}:{k.port}", auth_username=auth_user,
                      password=USERS.get(user, "") if password is None else password)


def _explain(m: m_pb2.CallMeasurement) -> str:
    ladder = "\n".join(f"  {e.at_ms:8.1f} {e.direction:3} {e.summary}" for e in m.sip_ladder)
    return f"{m_pb2.CallOutcome.Name(m.outcome)} {m.sip_code} {m.sip_reason!r} detail={m.detail!r}\n{ladder}"


async def test_register_then_unregister(pool: WorkerPool, kamailio: Kamailio) -> None:
    ua = pool.open_ua(UaJob(ua_id="reg-1", account=account(kamailio, "alice"), regexpire=60))
    outcome = await ua.wait_registered(BOUND_S)
    assert outcome["event"] == "registered", outcome
    assert outcome["code"] == 200 and outcome["expires"] == 60
    report = await ua.close()
    assert report["registrations"] == 1 and report["unregistered"], report
    assert report["unregister_code"] == 200


@pytest.mark.parametrize(("user", "password", "auth_user", "code"), [
    ("alice", "wrong", "", 401),          # wrong password: challenged again
    ("mallory", "x", "", 403),            # not a subscriber
    ("bob", "alice-secret", "alice", 403),  # alice's credentials for bob's address
])
async def test_registration_failures_carry_the_sip_code(pool: WorkerPool, kamailio: Kamailio, user: str,
                                                       password: str, auth_user: str, code: int) -> None:
    ua = pool.open_ua(UaJob(ua_id=f"bad-{user}", account=account(kamailio, user, password, auth_user)))
    outcome = await ua.wait_registered(BOUND_S)
    assert outcome["event"] == "failed" and outcome["code"] == code, outcome
    assert any(str(code) in e[2] for e in outcome["ladder"]), outcome
    report = await ua.close()
    assert report["registrations"] == 0 and not report["unregistered"], report


async def test_registration_is_refreshed_before_it_expires(pool: WorkerPool, kamailio: Kamailio) -> None:
    # pjsua refreshes 5 s before expiry (delayBeforeRefreshSec): with 7 s, every ~2 s
    ua = pool.open_ua(UaJob(ua_id="refresh", account=account(kamailio, "carol"), regexpire=7))
    assert (await ua.wait_registered(BOUND_S))["event"] == "registered"
    for _ in range(100):  # bounded: 100 x 0.1 s
        if sum(1 for e in ua.events if e.get("event") == "lost"):
            break
        await asyncio.sleep(0.1)
    report = await ua.close()
    assert report["registrations"] >= 3, report
    assert report["refresh_failures"] == 0 and report["unregistered"], report


async def test_call_through_the_proxy_with_digest_auth_and_dtmf(pool: WorkerPool, kamailio: Kamailio) -> None:
    callee = pool.open_ua(UaJob(ua_id="bob-ua", account=account(kamailio, "bob"), answer=True,
                                answer_delay_ms=300, expect_dtmf="12#"))
    assert (await callee.wait_registered(BOUND_S))["event"] == "registered"
    m = await asyncio.wait_for(pool.run_call(CallJob(
        call_id="c-1", destination=f"sip:bob@{kamailio.domain}", duration_ms=1500, tone_hz=440,
        account=account(kamailio, "alice"), dtmf="12#", dtmf_delay_ms=200)), BOUND_S)
    assert m.outcome == m_pb2.SUCCESS, _explain(m)
    assert m.dtmf_sent == "12#" and m.sip_call_id
    assert m.setup_time_ms >= 300 and m.rx_packets > 0
    for _ in range(50):
        if callee.calls:
            break
        await asyncio.sleep(0.1)
    report = await callee.close()
    assert report["answered"] == 1, report
    assert len(callee.calls) == 1
    c = callee.calls[0]
    assert c.role == "callee" and c.sip_call_id == m.sip_call_id
    assert c.outcome == m_pb2.SUCCESS, _explain(c)
    assert c.dtmf_received == "12#" and c.dtmf_ok, _explain(c)
    assert c.rx_packets > 0 and c.tx_packets > 0


async def test_call_to_an_unregistered_user_is_404_with_a_ladder(pool: WorkerPool, kamailio: Kamailio) -> None:
    m = await asyncio.wait_for(pool.run_call(CallJob(
        call_id="c-404", destination=f"sip:carol@{kamailio.domain}", duration_ms=500,
        account=account(kamailio, "alice"))), BOUND_S)
    assert m.outcome == m_pb2.CALL_FAILED and m.sip_code == 404, _explain(m)
    summaries = [e.summary for e in m.sip_ladder]
    assert summaries[0].startswith("INVITE sip:carol@"), _explain(m)
    # pjsip answers the 407 itself: the ladder shows the INVITE again, with credentials
    assert "Proxy-Authorization: Digest" in m.sip_ladder[1].text, _explain(m)
    assert summaries[-1].startswith("404"), _explain(m)
    assert all(e.text and len(e.text) <= 2000 for e in m.sip_ladder)


async def test_call_with_a_wrong_password_is_refused(pool: WorkerPool, kamailio: Kamailio) -> None:
    m = await asyncio.wait_for(pool.run_call(CallJob(
        call_id="c-auth", destination=f"sip:bob@{kamailio.domain}", duration_ms=500,
        account=account(kamailio, "alice", "nope"))), BOUND_S)
    assert m.outcome == m_pb2.CALL_FAILED and m.sip_code == 407, _explain(m)
    assert m.sip_ladder, _explain(m)
