"""A far end that misbehaves gives every call an outcome with a reason, and no media worker dies:
a tiny raw-UDP SIP peer written here (broken SDP, broken responses, an answer without RTP, an
inactive stream, junk sent to the worker's own SIP port) and SIPp's uas without `-rtp_echo`
(one-way audio). Real pjsua2 workers on loopback; every wait bounded."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time

import pytest

from callgauge_platform.stack import free_port
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.jobs import CallJob, SipAccount, UaJob
from callgauge_media.adapters.pool import WorkerPool

pytest.importorskip("pjsua2", reason="pjsua2-python (extra 'media') is not installed")

HOST = "127.0.0.1"
BOUND_S = 45.0


def _sdp(port: int, direction: str = "sendrecv", body: str | None = None) -> str:
    if body is not None:
        return body
    return (f"v=0\r\no=peer 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            f"a={direction}\r\n")


class RawSipPeer:
    """Answers INVITEs as ``mode`` says; 200 to BYE/CANCEL; never sends RTP.

    modes: no_rtp (valid answer, silent), inactive (a=inactive), bad_sdp (unparseable body),
    no_to_tag (a 2xx that cannot form a dialog), bad_status (a status line that is not SIP),
    silent (answers nothing at all)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # where the caller sends RTP
        self.media.bind((HOST, 0))
        self.received: list[str] = []
        self._done = threading.Event()
        self._t = threading.Thread(target=self._serve, daemon=True)

    @property
    def uri(self) -> str:
        return f"sip:peer@{HOST}:{self.port}"

    def __enter__(self) -> RawSipPeer:
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._t.join(5)
        self.sock.close()
        self.media.close()

    def _reply(self, req: str, addr, code: str, body: str = "", tag: bool = True) -> None:
        head, _, _ = req.partition("\r\n\r\n")
        lines = head.split("\r\n")
        keep = [ln for ln in lines[1:] if re.match(r"(?i)^(via|from|call-id|cseq):", ln)]
        to = next(ln for ln in lines if re.match(r"(?i)^to:", ln))
        if tag and ";tag=" not in to:
            to += ";tag=peer1"
        msg = [f"SIP/2.0 {code}", *keep, to, f"Contact: <sip:peer@{HOST}:{self.port}>"]
        if body:
            msg.append("Content-Type: application/sdp")
        msg.append(f"Content-Length: {len(body.encode())}")
        self.sock.sendto(("\r\n".join(msg) + "\r\n\r\n" + body).encode(), addr)

    def _serve(self) -> None:
        while not self._done.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except OSError:
                continue
            req = data.decode(errors="replace")
            if not req.strip():
                continue
            self.received.append(req.split("\r\n", 1)[0])
            method = req.split(" ", 1)[0]
            if self.mode == "silent":
                continue
            try:
                if method == "INVITE":
                    self._reply(req, addr, "100 Trying", tag=False)
                    mport = self.media.getsockname()[1]
                    if self.mode == "no_rtp":
                        self._reply(req, addr, "200 OK", _sdp(mport))
                    elif self.mode == "inactive":
                        self._reply(req, addr, "200 OK", _sdp(mport, "inactive"))
                    elif self.mode == "bad_sdp":
                        self._reply(req, addr, "200 OK", _sdp(0, body="v=0\r\nthis is not SDP\r\nm=audio x\r\n"))
                    elif self.mode == "no_to_tag":
                        self._reply(req, addr, "200 OK", _sdp(mport), tag=False)
                    elif self.mode == "bad_status":
                        self.sock.sendto(b"SIP/2.0 2x0 Whatever\r\nVia: broken\r\n\r\n", addr)
                elif method in ("BYE", "CANCEL"):
                    self._reply(req, addr, "200 OK")
            except (OSError, StopIteration):
                pass


@pytest.fixture
async def pool(start_pool) -> WorkerPool:
    return await start_pool(rtp_port_base=48200)


def _explain(m: m_pb2.CallMeasurement) -> str:
    ladder = "\n".join(f"  {e.at_ms:8.1f} {e.direction:3} {e.summary}" for e in m.sip_ladder)
    return f"{m_pb2.CallOutcome.Name(m.outcome)} {m.sip_code} {m.sip_reason!r} detail={m.detail!r}\n{ladder}"


async def _call(pool: WorkerPool, dest: str, **kw) -> m_pb2.CallMeasurement:
    job = CallJob(call_id=f"r-{time.monotonic_ns()}", destination=dest, duration_ms=kw.pop("duration_ms", 1500),
                  setup_timeout_ms=kw.pop("setup_timeout_ms", 3000), tone_hz=440, **kw)
    return await asyncio.wait_for(pool.run_call(job), BOUND_S)


def _same_worker(pool: WorkerPool, pid: int) -> None:
    assert pool.worker_pids()[0] == pid and pool.restarts == 0


async def test_an_answer_without_rtp_is_one_way_audio(pool: WorkerPool) -> None:
    pid = pool.worker_pids()[0]
    with RawSipPeer("no_rtp") as peer:
        m = await _call(pool, peer.uri)
    assert m.outcome == m_pb2.SUCCESS and m.sip_code == 200, _explain(m)
    assert m.one_way_audio and m.tx_packets > 0 and m.rx_packets == 0, _explain(m)
    assert "no RTP received" in m.detail
    _same_worker(pool, pid)


async def test_an_inactive_stream_says_no_rtp_either_way(pool: WorkerPool) -> None:
    with RawSipPeer("inactive") as peer:
        m = await _call(pool, peer.uri)
    assert m.sip_code == 200, _explain(m)
    assert m.rx_packets == 0 and m.tx_packets == 0, _explain(m)
    assert "no RTP sent or received" in m.detail or "no audio stream" in m.detail, _explain(m)


async def test_an_unparseable_sdp_answer_is_a_failure_with_a_ladder(pool: WorkerPool) -> None:
    pid = pool.worker_pids()[0]
    with RawSipPeer("bad_sdp") as peer:
        m = await _call(pool, peer.uri)
    assert m.outcome == m_pb2.NEGOTIATION_FAILED, _explain(m)
    assert m.detail, _explain(m)
    assert m.sip_ladder and m.sip_ladder[0].summary.startswith("INVITE"), _explain(m)
    _same_worker(pool, pid)


async def test_a_status_line_that_is_not_sip_ends_in_a_timeout(pool: WorkerPool) -> None:
    pid = pool.worker_pids()[0]
    with RawSipPeer("bad_status") as peer:
        m = await _call(pool, peer.uri, setup_timeout_ms=2000)
    assert m.outcome == m_pb2.TIMEOUT and m.sip_code == 408, _explain(m)
    assert "no final answer" in m.detail and m.sip_ladder, _explain(m)
    _same_worker(pool, pid)


async def test_a_far_end_that_never_answers_shows_the_retransmissions(pool: WorkerPool) -> None:
    with RawSipPeer("silent") as peer:
        m = await _call(pool, peer.uri, setup_timeout_ms=2000)
        seen = sum(1 for line in peer.received if line.startswith("INVITE "))
    assert m.outcome == m_pb2.TIMEOUT, _explain(m)
    # the ladder has every INVITE that went out (pjsip retransmits over UDP: T1 = 500 ms, doubling)
    invites = [e for e in m.sip_ladder if e.summary.startswith("INVITE")]
    assert len(invites) >= 2 and all(e.direction == "out" and e.text == invites[0].text for e in invites), _explain(m)
    assert len(invites) <= seen, (seen, _explain(m))
    # issue 18: the detail says what the ladder shows: no CANCEL went out (pjsip sends none before a
    # provisional response), the INVITE was sent as many times as the ladder has it
    assert not any(e.summary.startswith("CANCEL") for e in m.sip_ladder), _explain(m)
    assert m.detail == (f"no final answer within 2000 ms; no response to the INVITE (sent {len(invites)} times); "
                        "no CANCEL sent (none may be sent before a provisional response)"), _explain(m)


async def test_an_unresolvable_host_is_a_short_reason(pool: WorkerPool) -> None:
    # issue 18: not "pjsua_call_make_call(acc.getId(), …): gethostbyname() has returned error (PJ_ERESOLVE)"
    m = await _call(pool, "sip:echo@callgauge-test.invalid:5060")
    assert (m.outcome, m.sip_code) == (m_pb2.CALL_FAILED, 0), _explain(m)
    assert m.detail == "INVITE not sent: cannot resolve host 'callgauge-test.invalid'", _explain(m)


async def test_a_refused_tcp_connection_is_named_and_not_taken_for_an_answer(pool: WorkerPool) -> None:
    port = free_port()  # closed again: nothing listens there
    m = await _call(pool, f"sip:x@{HOST}:{port}", transport="tcp")
    assert (m.outcome, m.sip_code) == (m_pb2.CALL_FAILED, 503), _explain(m)
    assert m.sip_reason == f"connection refused by {HOST}:{port} (TCP)", _explain(m)
    assert not any(e.direction == "in" for e in m.sip_ladder), _explain(m)
    assert m.detail == (f"no SIP response received: connection refused by {HOST}:{port} (TCP) "
                        "(503 is the SIP stack's own code)"), _explain(m)


async def test_a_registrar_that_does_not_resolve_is_a_short_reason(pool: WorkerPool) -> None:
    account = SipAccount("alice", "example.com", "registrar.callgauge-test.invalid:5060", password="x")
    ua = pool.open_ua(UaJob(ua_id="reg-invalid", account=account))
    outcome = await asyncio.wait_for(ua.wait_registered(20), BOUND_S)
    report = await asyncio.wait_for(ua.close(), BOUND_S)
    assert outcome["event"] == "failed", outcome
    assert outcome["reason"] == report["reason"] == "cannot resolve host 'registrar.callgauge-test.invalid'", \
        (outcome, report)
    m = await _call(pool, "sip:bob@example.com", account=account)
    assert m.detail == "INVITE not sent: cannot resolve host 'registrar.callgauge-test.invalid'", _explain(m)


async def test_a_2xx_without_to_tag_is_tolerated_and_measured(pool: WorkerPool) -> None:
    # pjsip accepts it (RFC 3261 says a UAS must add one); the peer sends no RTP: one-way audio
    pid = pool.worker_pids()[0]
    with RawSipPeer("no_to_tag") as peer:
        m = await _call(pool, peer.uri, setup_timeout_ms=2000)
    assert m.sip_code == 200 and m.one_way_audio and "no RTP received" in m.detail, _explain(m)
    _same_worker(pool, pid)


async def test_junk_sent_to_the_workers_sip_port_is_ignored(pool: WorkerPool) -> None:
    pid = pool.worker_pids()[0]
    host, port = pool.worker_info()[0]["sip"].rsplit(":", 1)
    junk = [b"\x00\xff\xfe" * 50, b"INVITE sip:x SIP/2.0\r\n\r\n", b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP x\r\n"
            b"Content-Length: 99999\r\n\r\nv=0", b"SIP/2.0 200 OK\r\nCSeq: nope\r\n\r\n", b"\r\n" * 2000]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for j in junk * 5:
            s.sendto(j, (host, int(port)))
    # a well-formed INVITE nobody asked for: refused, with a final response
    sdp = _sdp(9)
    invite = (f"INVITE sip:stranger@{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:{{p}};rport;branch=z9hG4bKx1\r\n"
              f"Max-Forwards: 70\r\nFrom: <sip:x@{HOST}>;tag=1\r\nTo: <sip:stranger@{host}>\r\n"
              f"Call-ID: unsolicited@x\r\nCSeq: 1 INVITE\r\nContact: <sip:x@{HOST}:{{p}}>\r\n"
              f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        s.settimeout(5)
        s.sendto(invite.replace("{p}", str(s.getsockname()[1])).encode(), (host, int(port)))
        codes = []
        for _ in range(5):
            try:
                codes.append(int(s.recv(65535).split(b" ", 2)[1]))
            except (OSError, ValueError):
                break
            if codes[-1] >= 200:
                break
    assert codes and codes[-1] >= 400, codes
    with RawSipPeer("no_rtp") as peer:  # still places and measures calls
        m = await _call(pool, peer.uri, duration_ms=500)
    assert m.sip_code == 200, _explain(m)
    _same_worker(pool, pid)


@pytest.fixture
def sipp_uas_no_echo(sipp_uas_factory) -> str:
    """SIPp's built-in uas without -rtp_echo: it answers, and sends no RTP back."""
    return sipp_uas_factory(echo=False, calls=1)


async def test_sipp_uas_without_rtp_echo_is_one_way_audio(pool: WorkerPool, sipp_uas_no_echo: str) -> None:
    m = await _call(pool, sipp_uas_no_echo, duration_ms=2000)
    assert m.outcome == m_pb2.SUCCESS and m.sip_code == 200, _explain(m)
    assert m.one_way_audio and m.rx_packets == 0 and m.tx_packets > 0, _explain(m)
    assert "no RTP received" in m.detail
