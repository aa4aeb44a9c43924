"""The media engine against Kamailio (registrar + digest-auth proxy, Debian package): register,
refresh and unregister; answer calls as a registered callee; call through the proxy with digest
auth; DTMF RFC 2833 sent and verified on the far side; SIP ladders of failed calls.

Real pjsua2 worker processes, real Kamailio, loopback only; every wait bounded."""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import uuid

import pytest

from callgauge_platform.kamailio import Kamailio
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.jobs import CallJob, SipAccount, UaJob
from callgauge_media.adapters.pool import MAX_UAS_PER_WORKER, WorkerPool

pytest.importorskip("pjsua2", reason="pjsua2-python (extra 'media') is not installed")
pytestmark = pytest.mark.kamailio

HOST = "127.0.0.1"
BOUND_S = 45.0
USERS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret", "dave": "dave-secret",
         "erin": "erin-secret"}


@pytest.fixture(scope="module")
def kamailio(start_kamailio) -> Kamailio:
    return start_kamailio(USERS)


@pytest.fixture
async def pool(start_pool) -> WorkerPool:
    return await start_pool(workers=2, rtp_port_base=47000)


def account(k: Kamailio, user: str, password: str | None = None, auth_user: str = "") -> SipAccount:
    return SipAccount(username=user, domain=k.domain, registrar=f"{k.host}:{k.port}", auth_username=auth_user,
                      password=USERS.get(user, "") if password is None else password)


def registrar(k: Kamailio, user: str, headers: str = "") -> str:
    """A REGISTER for ``user`` straight to Kamailio over UDP (digest answered here); its final
    response. Without a Contact header the 200 lists the user's bindings (RFC 3261 10.2.3): what
    Kamailio's location table holds, whoever registered them."""
    d = k.domain
    ruri = f"sip:{d}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        s.settimeout(5)
        call_id, port, auth = uuid.uuid4().hex, s.getsockname()[1], ""
        for cseq in (1, 2):
            s.sendto((f"REGISTER {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:{port};rport;branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                      f"Max-Forwards: 70\r\nFrom: <sip:{user}@{d}>;tag={call_id[:8]}\r\nTo: <sip:{user}@{d}>\r\n"
                      f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n{headers}{auth}Content-Length: 0\r\n\r\n").encode(),
                     (k.host, k.port))
            for _ in range(5):  # bounded: skip provisional responses
                resp = s.recv(65535).decode()
                if not resp.startswith("SIP/2.0 1"):
                    break
            if not resp.startswith("SIP/2.0 401"):
                return resp
            ch = re.search(r"WWW-Authenticate: (.*)\r\n", resp).group(1)
            realm, nonce = re.search(r'realm="([^"]+)"', ch).group(1), re.search(r'nonce="([^"]+)"', ch).group(1)
            ha1 = hashlib.md5(f"{user}:{realm}:{USERS[user]}".encode()).hexdigest()
            ha2 = hashlib.md5(f"REGISTER:{ruri}".encode()).hexdigest()
            digest = hashlib.md5(f"{ha1}:{nonce}:00000001:0a4f113b:auth:{ha2}".encode()).hexdigest()
            auth = (f'Authorization: Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{ruri}", '
                    f'response="{digest}", algorithm=MD5, qop=auth, nc=00000001, cnonce="0a4f113b"\r\n')
        return resp


def bindings(k: Kamailio, user: str) -> list[str]:
    """The Contact bindings Kamailio holds for ``user`` (with their remaining ``expires``)."""
    resp = registrar(k, user)
    assert resp.startswith("SIP/2.0 200"), resp
    return re.findall(r"^(?:Contact|m): (.*)\r$", resp, flags=re.M)


def _explain(m: m_pb2.CallMeasurement) -> str:
    ladder = "\n".join(f"  {e.at_ms:8.1f} {e.direction:3} {e.summary}" for e in m.sip_ladder)
    return f"{m_pb2.CallOutcome.Name(m.outcome)} {m.sip_code} {m.sip_reason!r} detail={m.detail!r}\n{ladder}"


def _steps(entries) -> list[tuple[str, str]]:
    """(direction, first word of the summary: method or code) of a ladder, provisional 100s left out."""
    out = []
    for e in entries:
        direction, summary = (e.direction, e.summary) if hasattr(e, "summary") else (e[1], e[2])
        if not summary.startswith("100 "):
            out.append((direction, summary.split(" ", 1)[0]))
    return out


def _header(text: str, name: str) -> str:
    for line in text.split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def _param(header: str, name: str) -> str:
    m = re.search(rf'{name}="?([^",]+)"?', header)
    return m.group(1) if m else ""


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
    # the whole exchange, the challenge pjsip answers itself included
    ladder = outcome["ladder"]
    assert _steps(ladder) == [("out", "REGISTER"), ("in", "401"), ("out", "REGISTER"), ("in", str(code))], ladder
    challenge = _header(ladder[1][4], "WWW-Authenticate")
    assert challenge.startswith("Digest") and _param(challenge, "realm") == kamailio.domain, ladder[1][4]
    assert _param(challenge, "nonce"), challenge
    answer = _header(ladder[2][4], "Authorization")
    assert answer.startswith("Digest") and _param(answer, "nonce") == _param(challenge, "nonce"), ladder[2][4]
    assert _param(answer, "username") == (auth_user or user), answer
    assert not _header(ladder[0][4], "Authorization")
    assert all(e[3] == f"{kamailio.host}:{kamailio.port}" for e in ladder), ladder
    report = await ua.close()
    assert report["registrations"] == 0 and not report["unregistered"], report


async def test_keep_registered_leaves_the_binding_and_the_default_removes_it(pool: WorkerPool,
                                                                             kamailio: Kamailio) -> None:
    kept = pool.open_ua(UaJob(ua_id="dave-keep", account=account(kamailio, "dave"), regexpire=60, unregister=False))
    gone = pool.open_ua(UaJob(ua_id="erin-unreg", account=account(kamailio, "erin"), regexpire=60))
    try:
        assert (await kept.wait_registered(BOUND_S))["event"] == "registered"
        assert (await gone.wait_registered(BOUND_S))["event"] == "registered"
        assert len(bindings(kamailio, "dave")) == 1 and len(bindings(kamailio, "erin")) == 1
        kept_report, gone_report = await kept.close(), await gone.close()
        assert not kept_report["unregistered"] and kept_report["kept"], kept_report
        assert "binding kept until it expires" in kept_report["unregister_reason"], kept_report
        assert kept_report["unregister_code"] == 0, kept_report
        assert gone_report["unregistered"] and gone_report["unregister_code"] == 200 and not gone_report["kept"]
        # what Kamailio holds now: dave's contact (renewed by the last refresh), no binding for erin
        [contact] = bindings(kamailio, "dave")
        assert 0 < int(re.search(r"expires=(\d+)", contact).group(1)) <= 60, contact
        assert bindings(kamailio, "erin") == []
        # a call reaches dave's contact (whatever answers there), erin is not found
        to_dave, to_erin = [await asyncio.wait_for(pool.run_call(CallJob(
            call_id=f"after-{u}", destination=f"sip:{u}@{kamailio.domain}", duration_ms=300,
            account=account(kamailio, "alice"))), BOUND_S) for u in ("dave", "erin")]
        assert to_erin.sip_code == 404, _explain(to_erin)
        assert to_dave.sip_code != 404 and to_dave.sip_code, _explain(to_dave)
    finally:
        registrar(kamailio, "dave", "Contact: *\r\nExpires: 0\r\n")  # leave the shared Kamailio clean
    assert bindings(kamailio, "dave") == []


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
    # the 407 challenge pjsip answers itself is in the ladder, then the INVITE with credentials
    assert _steps(m.sip_ladder) == [("out", "INVITE"), ("in", "407"), ("out", "ACK"), ("out", "INVITE"),
                                    ("in", "404"), ("out", "ACK")], _explain(m)
    invites = [e for e in m.sip_ladder if e.summary.startswith("INVITE")]
    assert "Proxy-Authorization: Digest" in invites[1].text and "Proxy-Authorization" not in invites[0].text
    assert all(e.text and len(e.text) <= 2000 for e in m.sip_ladder)


async def test_call_with_a_wrong_password_is_refused(pool: WorkerPool, kamailio: Kamailio) -> None:
    m = await asyncio.wait_for(pool.run_call(CallJob(
        call_id="c-auth", destination=f"sip:bob@{kamailio.domain}", duration_ms=500,
        account=account(kamailio, "alice", "nope"))), BOUND_S)
    assert m.outcome == m_pb2.CALL_FAILED and m.sip_code == 407, _explain(m)
    # INVITE, the challenge (realm, nonce), the INVITE with credentials answering it, the final 407.
    # Kamailio's nonce carries the time: when a second ticks between two challenges the nonce is new
    # and pjsip takes the rejection for a stale nonce and answers once more (PJSIP_MAX_STALE_COUNT
    # bounds it: at most 3 INVITEs with credentials), so a slow machine sees more rounds.
    ladder = [e for e in m.sip_ladder if not e.summary.startswith("100 ")]
    steps = _steps(ladder)
    rounds = len(steps) // 3
    assert 2 <= rounds <= 4 and steps == [("out", "INVITE"), ("in", "407"), ("out", "ACK")] * rounds, _explain(m)
    for r in range(1, rounds):  # every retry answers the challenge just before it
        challenge = _header(ladder[3 * r - 2].text, "Proxy-Authenticate")
        answer = _header(ladder[3 * r].text, "Proxy-Authorization")
        assert _param(answer, "nonce") == _param(challenge, "nonce"), (ladder[3 * r - 2].text, ladder[3 * r].text)
        assert challenge.startswith("Digest") and _param(challenge, "realm") == kamailio.domain, ladder[3 * r - 2].text
        assert answer.startswith("Digest") and _param(answer, "username") == "alice", ladder[3 * r].text
        assert _param(answer, "realm") == kamailio.domain
    assert not _header(ladder[0].text, "Proxy-Authorization")
    assert [e.peer for e in ladder] == [f"{kamailio.host}:{kamailio.port}"] * len(ladder), _explain(m)
    assert ladder[0].at_ms <= ladder[1].at_ms <= ladder[3].at_ms <= ladder[4].at_ms


# ------------------------------------------------------------------ a whole run, engine level

def _basic_call_run(k: Kamailio, *, run_id: str, dtmf: str = "159", expect_dtmf: str = "159",
                    caller_password_ok: bool = True) -> "runs_pb2.RunRequested":
    from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec
    from callgauge_proto.callgauge.events.v1 import runs_pb2

    s = spec.TestSpec()
    step0 = s.steps.add()
    step0.actions.add().register.CopyFrom(spec.RegisterAction(target_pool="reg", credential_pool="callers",
                                                              regexpire=60))
    step0.actions.add().wait_for_calls.CopyFrom(spec.WaitForCallsAction(
        target_pool="reg", credential_pool="callees", answer_delay_ms=200, expect_dtmf=expect_dtmf))
    s.steps.add().actions.add().call.CopyFrom(spec.CallAction(
        dial_destination="bob", duration_ms=1500, tone_hz=440, target_pool="reg", credential_pool="callers",
        dtmf=dtmf, dtmf_delay_ms=300))
    return runs_pb2.RunRequested(
        run_id=run_id, spec=s,
        targets=[spec.ResolvedTarget(id="reg", host=k.host, port=k.port, transport="udp", domain=k.domain)],
        pools=[spec.ResolvedPool(id="callers", credentials=[spec.ResolvedCredential(username="alice")]),
               spec.ResolvedPool(id="callees", credentials=[spec.ResolvedCredential(username="bob")])],
    )


def _passwords(ok: bool = True):
    from callgauge_media.handlers.sip_run import StaticCredentials

    return StaticCredentials({"callers/alice": USERS["alice"] if ok else "wrong", "callees/bob": USERS["bob"]})


async def test_basic_call_run_register_wait_for_calls_call_with_dtmf(pool: WorkerPool, kamailio: Kamailio) -> None:
    from callgauge_proto.callgauge.events.v1 import media_pb2

    from callgauge_media.handlers.runner import execute_run

    events = []

    async def emit(msg) -> None:
        events.append(msg)

    req = _basic_call_run(kamailio, run_id="run-basic")
    summary = await asyncio.wait_for(execute_run(req, pool, emit, "engine-test", _passwords()), 2 * BOUND_S)
    measured = [e.call for e in events if isinstance(e, media_pb2.CallMeasured)]
    assert [m.role for m in measured] == ["caller"], [_explain(m) for m in measured]
    m = measured[0]
    assert m.outcome == m_pb2.SUCCESS, _explain(m)
    assert m.destination == f"sip:bob@{kamailio.domain}"
    assert (m.dtmf_sent, m.dtmf_received, m.dtmf_ok) == ("159", "159", True), _explain(m)
    assert not m.sip_ladder
    assert summary.calls_attempted == 1 and summary.calls_answered == 1
    finished = [e for e in events if isinstance(e, media_pb2.RunMediaFinished)]
    assert len(finished) == 1 and not finished[0].error
    # one RegistrationMeasured per user agent, when it ended (before the run's end)
    regs = {e.registration.kind: e.registration for e in events if isinstance(e, media_pb2.RegistrationMeasured)}
    assert sorted(regs) == ["register", "wait_for_calls"], regs
    names = [type(e).__name__ for e in events]
    assert names.index("RegistrationMeasured") < names.index("RunMediaFinished")
    for kind, user, expires in (("register", "alice", 60), ("wait_for_calls", "bob", 3600)):
        r = regs[kind]
        assert r.outcome == m_pb2.SUCCESS and (r.sip_code, r.sip_reason) == (200, "OK"), r
        assert r.user == f"sip:{user}@{kamailio.domain}" and r.registrar == f"sip:{kamailio.host}:{kamailio.port}"
        assert r.registration_id == f"run-basic:0.{0 if kind == 'register' else 1}.0" and r.index == 0
        assert 0 < r.register_time_ms < 40_000, r  # includes the 401 challenge round trip
        assert r.expires_requested == expires and r.expires == expires, r
        assert r.unregistered and r.unregister_code == 200 and not r.kept, r
        assert r.sip_call_id and not r.sip_ladder and r.refresh_failures == 0, r
        assert r.ended_at.ToNanoseconds() >= r.started_at.ToNanoseconds() > 0
    assert regs["wait_for_calls"].calls_answered == 1
    assert summary.registrations_ok == 2 and summary.registrations_failed == 0
    assert 0 < summary.register_p50_ms <= summary.register_p95_ms
    # the run unregistered bob: Kamailio no longer knows where he is
    after = await asyncio.wait_for(pool.run_call(CallJob(
        call_id="after", destination=f"sip:bob@{kamailio.domain}", duration_ms=300,
        account=account(kamailio, "alice"))), BOUND_S)
    assert after.sip_code == 404, _explain(after)


async def test_dtmf_that_does_not_arrive_as_sent_fails_the_call(pool: WorkerPool, kamailio: Kamailio) -> None:
    from callgauge_proto.callgauge.events.v1 import media_pb2

    from callgauge_media.handlers.runner import execute_run

    events = []

    async def emit(msg) -> None:
        events.append(msg)

    req = _basic_call_run(kamailio, run_id="run-dtmf-bad", dtmf="12", expect_dtmf="12")
    req.spec.steps[1].actions[0].call.dtmf = "1"  # the callee expects 12, the caller sends 1
    summary = await asyncio.wait_for(execute_run(req, pool, emit, "engine-test", _passwords()), 2 * BOUND_S)
    measured = [e.call for e in events if isinstance(e, media_pb2.CallMeasured)]
    assert len(measured) == 1
    m = measured[0]
    assert m.dtmf_sent == "1" and m.dtmf_received == "1"  # what was sent arrived, but not what was expected
    assert m.outcome == m_pb2.CALL_FAILED and not m.dtmf_ok, _explain(m)
    assert "expected '12', received '1'" in m.detail
    assert m.sip_ladder  # failed: the ladder is kept
    assert summary.calls_answered == 0


async def test_a_caller_with_a_wrong_password_fails_to_register_and_to_call(pool: WorkerPool,
                                                                          kamailio: Kamailio) -> None:
    from callgauge_proto.callgauge.events.v1 import media_pb2

    from callgauge_media.handlers.runner import execute_run

    events = []

    async def emit(msg) -> None:
        events.append(msg)

    req = _basic_call_run(kamailio, run_id="run-bad-pw")
    summary = await asyncio.wait_for(execute_run(req, pool, emit, "engine-test", _passwords(ok=False)), 2 * BOUND_S)
    measured = [e.call for e in events if isinstance(e, media_pb2.CallMeasured)]
    by_role = {m.role: m for m in measured}
    reg = by_role["register"]
    assert reg.outcome == m_pb2.REGISTRATION_FAILED and reg.sip_code == 401, _explain(reg)
    assert _steps(reg.sip_ladder) == [("out", "REGISTER"), ("in", "401"), ("out", "REGISTER"), ("in", "401")], \
        _explain(reg)
    assert reg.sip_call_id and all(_header(e.text, "Call-ID") == reg.sip_call_id for e in reg.sip_ladder)
    call = by_role["caller"]
    assert call.outcome == m_pb2.CALL_FAILED and call.sip_code == 407, _explain(call)
    assert _steps(call.sip_ladder)[:4] == [("out", "INVITE"), ("in", "407"), ("out", "ACK"), ("out", "INVITE")], \
        _explain(call)
    assert summary.calls_attempted == 2 and summary.calls_answered == 0
    regs = {e.registration.kind: e.registration for e in events if isinstance(e, media_pb2.RegistrationMeasured)}
    bad = regs["register"]  # the same failure, as the registration's own event
    assert bad.outcome == m_pb2.REGISTRATION_FAILED and (bad.sip_code, bad.sip_reason) == (401, "Unauthorized"), bad
    assert bad.registration_id == reg.call_id and bad.user == f"sip:alice@{kamailio.domain}"
    assert bad.register_time_ms == 0 and bad.expires == 0 and not bad.unregistered and not bad.kept
    assert bad.sip_ladder and bad.sip_ladder[-1].summary.startswith("401") and bad.sip_call_id, bad
    assert "failed: 401" in bad.detail
    assert regs["wait_for_calls"].outcome == m_pb2.SUCCESS
    assert (summary.registrations_ok, summary.registrations_failed) == (1, 1)


@pytest.mark.parametrize(("user", "password", "code"), [("alice", "wrong", 401), ("mallory", "x", 403)])
async def test_a_refused_registration_is_measured(pool: WorkerPool, kamailio: Kamailio, user: str, password: str,
                                                  code: int) -> None:
    from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec
    from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2

    from callgauge_media.handlers.runner import execute_run
    from callgauge_media.handlers.sip_run import StaticCredentials

    events = []

    async def emit(msg) -> None:
        events.append(msg)

    s = spec.TestSpec()
    s.steps.add().actions.add().register.CopyFrom(spec.RegisterAction(target_pool="reg", credential_pool="users"))
    req = runs_pb2.RunRequested(
        run_id=f"run-refused-{code}", spec=s,
        targets=[spec.ResolvedTarget(id="reg", host=kamailio.host, port=kamailio.port, transport="udp",
                                     domain=kamailio.domain)],
        pools=[spec.ResolvedPool(id="users", credentials=[spec.ResolvedCredential(username=user)])])
    summary = await asyncio.wait_for(execute_run(req, pool, emit, "engine-test", StaticCredentials(
        {f"users/{user}": password})), 2 * BOUND_S)
    [m] = [e.call for e in events if isinstance(e, media_pb2.CallMeasured)]
    [r] = [e.registration for e in events if isinstance(e, media_pb2.RegistrationMeasured)]
    assert m.role == "register" and m.outcome == m_pb2.REGISTRATION_FAILED and m.sip_code == code, _explain(m)
    assert r.registration_id == m.call_id and r.kind == "register" and r.user == f"sip:{user}@{kamailio.domain}"
    assert r.outcome == m_pb2.REGISTRATION_FAILED and r.sip_code == code and r.sip_reason, r
    assert r.register_time_ms == 0 and r.expires == 0 and r.expires_requested == 3600, r
    assert not r.unregistered and not r.kept and r.unregister_code == 0, r
    assert r.sip_call_id and r.sip_ladder[-1].summary.startswith(str(code)), r
    # the challenge pjsip answered itself, and the REGISTER that answered it
    assert _steps(r.sip_ladder) == [("out", "REGISTER"), ("in", "401"), ("out", "REGISTER"), ("in", str(code))], r
    assert all(_header(e.text, "Call-ID") == r.sip_call_id for e in r.sip_ladder), r
    assert (summary.registrations_ok, summary.registrations_failed, summary.register_p95_ms) == (0, 1, 0)


async def test_a_run_with_keep_registered_leaves_its_users_registered(pool: WorkerPool, kamailio: Kamailio) -> None:
    from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec
    from callgauge_proto.callgauge.events.v1 import media_pb2, runs_pb2

    from callgauge_media.handlers.runner import execute_run
    from callgauge_media.handlers.sip_run import StaticCredentials

    events = []

    async def emit(msg) -> None:
        events.append(msg)

    s = spec.TestSpec()
    s.steps.add().actions.add().register.CopyFrom(spec.RegisterAction(
        target_pool="reg", credential_pool="users", regexpire=120, keep_registered=True))
    req = runs_pb2.RunRequested(
        run_id="run-keep", spec=s,
        targets=[spec.ResolvedTarget(id="reg", host=kamailio.host, port=kamailio.port, transport="udp",
                                     domain=kamailio.domain)],
        pools=[spec.ResolvedPool(id="users", credentials=[spec.ResolvedCredential(username="dave")])])
    try:
        summary = await asyncio.wait_for(execute_run(req, pool, emit, "engine-test", StaticCredentials(
            {"users/dave": USERS["dave"]})), 2 * BOUND_S)
        [r] = [e.registration for e in events if isinstance(e, media_pb2.RegistrationMeasured)]
        assert r.outcome == m_pb2.SUCCESS and r.kept and not r.unregistered and r.unregister_code == 0, r
        assert r.expires_requested == 120 and "binding kept until it expires" in r.detail, r
        assert summary.registrations_ok == 1 and summary.calls_attempted == 0
        [contact] = bindings(kamailio, "dave")  # the run is over, dave is still registered
        assert 0 < int(re.search(r"expires=(\d+)", contact).group(1)) <= 120, contact
    finally:
        registrar(kamailio, "dave", "Contact: *\r\nExpires: 0\r\n")


async def test_without_the_message_log_ladders_hold_what_pjsua2_shows(kamailio: Kamailio) -> None:
    """sip_message_log off (CALLGAUGE_MEDIA_SIP_MESSAGE_LOG=false): pjsua2's callbacks only, the
    challenge pjsip answered itself is missing; the ladder is still there."""
    async with WorkerPool(workers=1, rtp_port_base=47800, rtp_ports_per_worker=100, calls_per_worker=16,
                          bind_host=HOST,
                          sip_message_log=False) as one:
        ua = one.open_ua(UaJob(ua_id="bad-nolog", account=account(kamailio, "alice", "wrong")))
        outcome = await ua.wait_registered(BOUND_S)
        await ua.close()
        m = await asyncio.wait_for(one.run_call(CallJob(
            call_id="c-nolog", destination=f"sip:bob@{kamailio.domain}", duration_ms=500,
            account=account(kamailio, "alice", "nope"))), BOUND_S)
    assert outcome["event"] == "failed" and outcome["code"] == 401, outcome
    assert outcome["ladder"] and outcome["ladder"][-1][2].startswith("401"), outcome
    assert m.outcome == m_pb2.CALL_FAILED and m.sip_code == 407, _explain(m)
    summaries = [e.summary for e in m.sip_ladder]
    assert summaries[0].startswith("INVITE") and summaries[-1].startswith("407"), _explain(m)
    assert "Proxy-Authorization: Digest" in m.sip_ladder[1].text, _explain(m)


async def test_the_callee_hangs_up_when_hangup_by_callee(pool: WorkerPool, kamailio: Kamailio) -> None:
    callee = pool.open_ua(UaJob(ua_id="bob-bye", account=account(kamailio, "bob"), answer=True, tone_hz=800,
                                codec="PCMU", hangup_by="callee", duration_ms=1200))
    assert (await callee.wait_registered(BOUND_S))["event"] == "registered"
    m = await asyncio.wait_for(pool.run_call(CallJob(
        call_id="c-bye", destination=f"sip:bob@{kamailio.domain}", duration_ms=20_000, tone_hz=440,
        account=account(kamailio, "alice"))), BOUND_S)
    report = await callee.close()
    assert m.outcome == m_pb2.SUCCESS, _explain(m)
    assert m.duration_ms < 20_000 and "far end hung up" in m.detail, _explain(m)
    assert m.rx_packets > 0
    assert report["answered"] == 1 and len(callee.calls) == 1
    assert callee.calls[0].outcome == m_pb2.SUCCESS and callee.calls[0].codec == "PCMU"


async def test_a_run_naming_an_unresolved_pool_reports_it(pool: WorkerPool, kamailio: Kamailio) -> None:
    from callgauge_proto.callgauge.events.v1 import media_pb2

    from callgauge_media.handlers.runner import execute_run

    events = []

    async def emit(msg) -> None:
        events.append(msg)

    req = _basic_call_run(kamailio, run_id="run-unresolved")
    del req.targets[:]  # the runs service resolved nothing
    summary = await asyncio.wait_for(execute_run(req, pool, emit, "engine-test", _passwords()), 2 * BOUND_S)
    measured = [e.call for e in events if isinstance(e, media_pb2.CallMeasured)]
    assert len(measured) == 3 and summary.calls_answered == 0
    assert all("was not resolved" in m.detail or "no target_pool" in m.detail for m in measured), \
        [m.detail for m in measured]
    assert not [e for e in events if isinstance(e, media_pb2.RunMediaFinished) and e.error]


async def test_register_and_call_over_tcp(pool: WorkerPool, kamailio: Kamailio) -> None:
    def tcp(user: str) -> SipAccount:
        return SipAccount(username=user, domain=kamailio.domain, registrar=f"{kamailio.host}:{kamailio.port}",
                          transport="tcp", password=USERS[user])

    callee = pool.open_ua(UaJob(ua_id="bob-tcp", account=tcp("bob"), answer=True))
    outcome = await callee.wait_registered(BOUND_S)
    assert outcome["event"] == "registered", outcome
    m = await asyncio.wait_for(pool.run_call(CallJob(
        call_id="c-tcp", destination=f"sip:bob@{kamailio.domain}", duration_ms=1000, tone_hz=440,
        account=tcp("alice"), transport="tcp")), BOUND_S)
    report = await callee.close()
    assert m.outcome == m_pb2.SUCCESS and m.rx_packets > 0, _explain(m)
    assert report["answered"] == 1 and report["unregistered"], report


async def test_caller_and_callee_in_one_worker_keep_their_codecs(kamailio: Kamailio) -> None:
    """pjsua's codec priorities are global to the process: the caller's single-codec offer must not
    leave the callee (same Endpoint) unable to answer."""
    async with WorkerPool(workers=1, rtp_port_base=47400, rtp_ports_per_worker=100, calls_per_worker=16,
                          bind_host=HOST) as one:
        callee = one.open_ua(UaJob(ua_id="bob-1w", account=account(kamailio, "bob"), answer=True, codec="PCMU"))
        assert (await callee.wait_registered(BOUND_S))["event"] == "registered"
        results = []
        for codec in ("G722", "PCMA", "PCMU"):
            results.append(await asyncio.wait_for(one.run_call(CallJob(
                call_id=f"c-1w-{codec}", destination=f"sip:bob@{kamailio.domain}", duration_ms=800, tone_hz=440,
                codec=codec, account=account(kamailio, "alice"))), BOUND_S))
        await callee.close()
    for codec, m in zip(("G722", "PCMA", "PCMU"), results):
        assert m.outcome == m_pb2.SUCCESS and m.codec == codec and m.rx_packets > 0, _explain(m)
    assert [c.codec for c in callee.calls] == ["G722", "PCMA", "PCMU"]


async def test_caller_and_callee_in_one_worker_each_get_their_side_of_the_ladder(kamailio: Kamailio) -> None:
    """Both ends of a call in one process share its Call-ID and pjsip logs every message twice (sent
    by one side, received by the other): each measurement's ladder is its own side's."""
    async with WorkerPool(workers=1, rtp_port_base=47600, rtp_ports_per_worker=100, calls_per_worker=16,
                          bind_host=HOST) as one:
        callee = one.open_ua(UaJob(ua_id="bob-side", account=account(kamailio, "bob"), answer=True,
                                   expect_dtmf="9"))
        assert (await callee.wait_registered(BOUND_S))["event"] == "registered"
        m = await asyncio.wait_for(one.run_call(CallJob(
            call_id="c-side", destination=f"sip:bob@{kamailio.domain}", duration_ms=300, tone_hz=440,
            account=account(kamailio, "alice"), dtmf="1", dtmf_delay_ms=100)), BOUND_S)
        for _ in range(50):
            if callee.calls:
                break
            await asyncio.sleep(0.1)
        await callee.close()
    assert m.outcome == m_pb2.SUCCESS and m.sip_ladder, _explain(m)  # a DTMF call keeps it for the check
    c = callee.calls[0]
    assert c.outcome == m_pb2.CALL_FAILED and c.sip_call_id == m.sip_call_id, _explain(c)  # wrong digit
    caller_steps, callee_steps = _steps(m.sip_ladder), _steps(c.sip_ladder)
    assert caller_steps[:4] == [("out", "INVITE"), ("in", "407"), ("out", "ACK"), ("out", "INVITE")], _explain(m)
    assert ("in", "200") in caller_steps and ("in", "INVITE") not in caller_steps, _explain(m)
    assert callee_steps[0] == ("in", "INVITE") and ("out", "200") in callee_steps, _explain(c)
    assert ("out", "INVITE") not in callee_steps and ("in", "407") not in callee_steps, _explain(c)
    assert ("in", "BYE") in callee_steps and ("out", "BYE") in caller_steps, (_explain(m), _explain(c))


async def test_wait_for_calls_ends_after_its_calls_and_timeout(pool: WorkerPool, kamailio: Kamailio) -> None:
    from callgauge_proto.callgauge.events.v1 import media_pb2

    from callgauge_media.handlers.runner import execute_run

    events = []

    async def emit(msg) -> None:
        events.append(msg)

    req = _basic_call_run(kamailio, run_id="run-two", dtmf="", expect_dtmf="")
    req.spec.steps[0].actions[1].wait_for_calls.max_total_calls = 2
    req.spec.steps[1].actions[0].call.max_total_calls = 2
    req.spec.steps[1].actions[0].call.duration_ms = 600
    summary = await asyncio.wait_for(execute_run(req, pool, emit, "engine-test", _passwords()), 2 * BOUND_S)
    measured = [e.call for e in events if isinstance(e, media_pb2.CallMeasured)]
    assert [m.role for m in measured] == ["caller", "caller"], [_explain(m) for m in measured]
    assert all(m.outcome == m_pb2.SUCCESS for m in measured), [_explain(m) for m in measured]
    assert summary.calls_answered == 2

    # a wait_for_calls that nobody calls gives up at its timeout_ms; the run ends without calls
    events.clear()
    lonely = _basic_call_run(kamailio, run_id="run-lonely")
    del lonely.spec.steps[1:]
    del lonely.spec.steps[0].actions[0]
    lonely.spec.steps[0].actions[0].wait_for_calls.timeout_ms = 1500
    summary = await asyncio.wait_for(execute_run(lonely, pool, emit, "engine-test", _passwords()), 2 * BOUND_S)
    assert summary.calls_attempted == 0
    assert [type(e).__name__ for e in events if not isinstance(e, media_pb2.RunSecondStats)] == [
        "RunAccepted", "RunMediaStarted", "RegistrationMeasured", "RunMediaFinished"]
    [r] = [e.registration for e in events if isinstance(e, media_pb2.RegistrationMeasured)]
    assert r.kind == "wait_for_calls" and r.outcome == m_pb2.SUCCESS and r.calls_answered == 0 and r.unregistered


async def test_more_sip_users_than_pjsua_accounts_fail_cleanly(kamailio: Kamailio) -> None:
    """pjsua asserts (aborts the process) on one account more than PJSUA_MAX_ACC (64 in our build):
    the pool (48 users per worker) and the agent refuse first."""
    async with WorkerPool(workers=1, rtp_port_base=47600, rtp_ports_per_worker=100, calls_per_worker=16,
                          bind_host=HOST) as one:
        pid = one.worker_pids()[0]
        uas = [one.open_ua(UaJob(ua_id=f"many-{i}", account=account(kamailio, "carol"), register=False))
               for i in range(MAX_UAS_PER_WORKER + 2)]
        outcomes = [await u.wait_registered(BOUND_S) for u in uas]
        assert [o["event"] for o in outcomes] == ["ready"] * MAX_UAS_PER_WORKER + ["failed"] * 2, outcomes
        assert "no room for another SIP user" in outcomes[-1]["reason"]
        # 64 - 1 - 48 = 15 accounts are left for caller identities (idle ones are dropped for new ones)
        ms = [await asyncio.wait_for(one.run_call(CallJob(
            call_id=f"who-{u}", destination=f"sip:nobody@{kamailio.domain}", duration_ms=200,
            account=account(kamailio, u))), BOUND_S) for u in ("alice", "bob")]
        assert ms[0].sip_code == 404, _explain(ms[0])
        assert ms[1].sip_code == 404, _explain(ms[1])
        for u in uas:
            await u.close()
        assert one.worker_pids()[0] == pid and one.restarts == 0
