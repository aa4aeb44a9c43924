"""From what a worker observed on one call to a CallMeasurement (pure: no pjsua2, no I/O).

The pjsua2 adapter fills a :class:`RawCall` (monotonic timestamps, SIP codes, a snapshot of the
RTCP statistics taken just before the hang-up) and :func:`build_measurement` turns it into the
protobuf, classifies the outcome and scores the call with the E-model.

Outcome rules
-------------
* never placed (bad URI, codec not in this engine, worker trouble): CALL_FAILED, sip_code 0
  (NEGOTIATION_FAILED when the wanted codec is not available here);
* answered (2xx) with an audio stream: SUCCESS (also when the far end hung up first; ``detail``
  says so); answered without a usable audio stream: NEGOTIATION_FAILED;
* no final answer within ``setup_timeout_ms``: TIMEOUT, sip_code 408 "Setup Timeout" (the engine
  hangs up: pjsip sends CANCEL once a provisional response came, and none before; ``detail`` says
  what the call's SIP ladder shows: the INVITEs sent, the last provisional, whether a CANCEL went out
  and the final answer seen, see :func:`timeout_detail`);
* final 408: TIMEOUT; 488 / 606: NEGOTIATION_FAILED; any other final >= 300: CALL_FAILED.

E-model inputs
--------------
``one_way_delay_ms = rtt_ms / 2 + packetization_ms(codec) + PLAYOUT_ALLOWANCE_MS``: half the RTCP
round trip (taken as 0 when no RTCP report came back, e.g. calls shorter than ~5 s; ``rtt_ms`` is then
absent), one codec frame of
packetization (20 ms; iLBC 30 ms) and a fixed 40 ms for the jitter buffer and playout (pjmedia's
adaptive buffer holds 1-2 frames on a clean network; measured 20 ms on loopback). Loss is the
receive-direction loss in percent, burst ratio 1 (random loss), PLC on (pjmedia conceals losses).
Codecs the E-model has no planning values for (speex, iLBC, L16) get no R/MOS (absent) and a note in
``detail``; so do calls that received no RTP (no loss could be measured). A figure that was not
measured is left unset (proto ``optional``), never 0.
"""

from __future__ import annotations

import re

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.jobs import CallJob, UaJob, audio_bandwidth_of, call_transport
from callgauge_media.domain.reasons import is_internal, short_reason, where_of

PLAYOUT_ALLOWANCE_MS = 40.0
_FRAME_MS = {"ilbc": 30.0}
DEFAULT_FRAME_MS = 20.0

TIMEOUT_SIP_CODE = 408
TIMEOUT_SIP_REASON = "Setup Timeout"
NEGOTIATION_CODES = frozenset({488, 606})

CRASHED_DETAIL = "media worker crashed"

LADDER_MAX_MESSAGES = 30
LADDER_MAX_CHARS = 2000
LADDER_TAIL = 10  # a ladder cut to LADDER_MAX_MESSAGES keeps the first ones and this many last ones


def packetization_ms(codec: str) -> float:
    return _FRAME_MS.get(codec.split("/", 1)[0].strip().lower(), DEFAULT_FRAME_MS)


def one_way_delay_ms(codec: str, rtt_ms: float) -> float:
    return max(0.0, rtt_ms) / 2.0 + packetization_ms(codec) + PLAYOUT_ALLOWANCE_MS


@dataclass(slots=True)
class StreamSnapshot:
    """RTCP statistics of the call's audio stream (``Call.getStreamStat(i).rtcp``)."""

    tx_packets: int = 0
    rx_packets: int = 0
    rx_lost: int = 0
    tx_lost: int = 0  # as reported by the far end's RTCP receiver reports
    jitter_us: float = 0.0  # mean interarrival jitter, receive direction
    rtt_us: float = 0.0  # mean RTT, 0 when no RTCP round trip was measured
    jb_avg_delay_ms: float = 0.0


@dataclass(slots=True)
class RawCall:
    """What the worker saw on one call. Times are ``time.monotonic()`` seconds except the
    ``*_wall`` ones (epoch seconds)."""

    job: CallJob
    started_wall: float | None = None
    ended_wall: float | None = None
    t_invite: float | None = None
    t_first_response: float | None = None  # first 18x (or final) response
    first_code: int = 0
    first_reason: str = ""
    t_answer: float | None = None  # 2xx received
    answer_code: int = 0
    answer_reason: str = ""
    t_end: float | None = None  # our hang-up, or the disconnect
    final_code: int = 0  # code pjsua reported at DISCONNECTED
    final_reason: str = ""
    codec: str = ""
    codec_clock_hz: int = 0  # the audio sample rate the stream's codec was opened at (0: no stream)
    media_active: bool = False
    stats: StreamSnapshot | None = None
    timed_out: bool = False  # our setup timer fired
    hangup_reason: str = ""  # why WE ended it: "" (remote did), "duration", "timeout", or free text
    remote_hangup: bool = False
    notes: list[str] = field(default_factory=list)
    role: str = "caller"  # caller | callee
    sip_call_id: str = ""
    dtmf_sent: str = ""
    dtmf_received: str = ""
    expect_dtmf: str = ""  # callee: the digits that must arrive
    ladder: list[tuple] = field(default_factory=list)  # ladder_entry(...) tuples, oldest first
    ladder_dropped: int = 0
    impairment: dict | None = None  # what the call's impairment relays did (rx/tx packets, dropped)
    srtp_suite: str = ""  # the SRTP crypto suite pjmedia reported active on the call's audio ("": no SRTP)
    srtp_keying: str = ""  # sdes | dtls: how the active SRTP's keys were agreed (the stream's profile)


_AUTH_LINE = re.compile(r"(?im)^(?:proxy-)?authorization[ \t]*:.*$")
_DIGEST_SECRET = re.compile(r'(?i)\b(response|cnonce)[ \t]*=[ \t]*(?:"[^"\r\n]*"|[^,\s]*)')


def redact_credentials(text: str) -> str:
    """The message with the ``response`` and ``cnonce`` of its (Proxy-)Authorization headers
    replaced: with the nonce they would allow an offline guess of the SIP password. Username,
    realm, nonce, uri and algorithm stay (what a person checks when a challenge is not met)."""
    if "uthorization" not in text:
        return text
    return _AUTH_LINE.sub(lambda line: _DIGEST_SECRET.sub(r'\1="<redacted>"', line.group(0)), text)


def ladder_entry(at_ms: float, direction: str, text: str, peer: str = "") -> tuple:
    """(at_ms, direction, summary, peer, text, truncated): one SIP message, cut to a bounded size,
    digest responses redacted."""
    text = redact_credentials(text or "")
    summary = text.split("\r\n", 1)[0].split("\n", 1)[0].strip()
    if summary.startswith("SIP/2.0 "):
        summary = summary[len("SIP/2.0 "):]
    elif summary.endswith(" SIP/2.0"):
        summary = summary[: -len(" SIP/2.0")]
    truncated = len(text) > LADDER_MAX_CHARS
    return (round(max(0.0, at_ms), 3), direction, summary[:200], peer, text[:LADDER_MAX_CHARS], truncated)


def add_ladder(raw: RawCall, entry: tuple) -> None:
    if len(raw.ladder) < LADDER_MAX_MESSAGES:
        raw.ladder.append(entry)
    else:
        raw.ladder_dropped += 1


def keeps_ladder(outcome: int, raw: RawCall) -> bool:
    """Whether a call's measurement carries its SIP ladder: failures, and DTMF calls until the
    far side's check (the engine drops it when they succeed)."""
    return outcome != m_pb2.SUCCESS or bool(raw.job.dtmf or raw.expect_dtmf)


def fill_ladder(m: m_pb2.CallMeasurement, entries: list[tuple]) -> None:
    del m.sip_ladder[:]
    for at_ms, direction, summary, peer, text, truncated in entries[:LADDER_MAX_MESSAGES]:
        m.sip_ladder.add(at_ms=at_ms, direction=direction, summary=summary, peer=peer, text=text,
                         truncated=truncated)


def _ts(msg, wall: float | None) -> None:
    if wall is not None:
        msg.FromNanoseconds(int(wall * 1e9))


def _base(job: CallJob, role: str = "caller") -> m_pb2.CallMeasurement:
    return m_pb2.CallMeasurement(
        call_id=job.call_id, step=job.step, action=job.action, index=job.index, destination=job.destination,
        role=role,
    )


def failed_measurement(
    job: CallJob,
    detail: str,
    *,
    outcome: int = m_pb2.CALL_FAILED,
    sip_code: int = 0,
    sip_reason: str = "",
    started_wall: float | None = None,
) -> m_pb2.CallMeasurement:
    """A call that could not be placed or whose worker went away."""
    m = _base(job)
    m.outcome = outcome
    m.sip_code = sip_code
    m.sip_reason = sip_reason
    m.detail = detail
    now = time.time()
    _ts(m.started_at, started_wall if started_wall is not None else now)
    _ts(m.ended_at, now)
    return m


def _ms(a: float | None, b: float | None) -> float:
    if a is None or b is None:
        return 0.0
    return max(0.0, (b - a) * 1000.0)


def build_measurement(raw: RawCall, ladder: list[tuple] | None = None,
                      ladder_complete: bool = False) -> m_pb2.CallMeasurement:
    """The call's measurement. ``ladder``: its SIP messages (``ladder_entry`` tuples) from pjsip's
    message log, ``ladder_complete`` then (every message, retransmissions included); without it the
    ladder pjsua's callbacks showed (``raw.ladder``). Details about the SIP exchange are derived
    from that ladder, so that they never say what the ladder does not show."""
    entries = raw.ladder if ladder is None else ladder
    m = _base(raw.job, raw.role)
    m.sip_call_id = raw.sip_call_id
    _ts(m.started_at, raw.started_wall)
    _ts(m.ended_at, raw.ended_wall if raw.ended_wall is not None else time.time())
    notes = list(raw.notes)
    answered = raw.t_answer is not None

    if raw.t_invite is not None and raw.t_first_response is not None:
        m.post_dial_delay_ms = _ms(raw.t_invite, raw.t_first_response)
    if answered:
        m.setup_time_ms = _ms(raw.t_invite, raw.t_answer)
        m.duration_ms = _ms(raw.t_answer, raw.t_end)
        m.sip_code = raw.answer_code or 200
        m.sip_reason = raw.answer_reason or "OK"
        if raw.media_active:
            m.outcome = m_pb2.SUCCESS
            if raw.remote_hangup and not raw.hangup_reason and raw.role == "caller":
                notes.append(f"far end hung up after {m.duration_ms:.0f} ms")
            elif raw.hangup_reason and raw.hangup_reason != "duration":
                notes.append(f"hung up early: {raw.hangup_reason}")
        else:
            m.outcome = m_pb2.NEGOTIATION_FAILED
            notes.insert(0, f"answered ({m.sip_code}) but no audio stream was negotiated")
    elif raw.timed_out:
        m.outcome = m_pb2.TIMEOUT
        m.sip_code = TIMEOUT_SIP_CODE
        m.sip_reason = TIMEOUT_SIP_REASON
        facts = pjsua_ladder_facts(entries)
        if not facts.provisional and raw.first_code:  # pjsua's callback saw it (the ladder may be cut)
            facts = replace(facts, provisional=f"{raw.first_code} {raw.first_reason}".strip())
        notes.insert(0, timeout_detail(raw.job.setup_timeout_ms, facts, complete=ladder_complete))
    else:
        m.sip_code = raw.final_code
        m.sip_reason = raw.final_reason
        if raw.final_code == 408:
            m.outcome = m_pb2.TIMEOUT
        elif raw.final_code in NEGOTIATION_CODES:
            m.outcome = m_pb2.NEGOTIATION_FAILED
        else:
            m.outcome = m_pb2.CALL_FAILED
            if raw.hangup_reason:
                notes.insert(0, f"ended by the engine before an answer: {raw.hangup_reason}")
            elif raw.final_code < 300:
                notes.insert(0, "call ended without a final error response")
        if raw.final_code >= 300:
            local = _local_final(raw, entries, ladder_complete)
            if local:
                m.sip_reason = local[0]
                notes.insert(1 if raw.hangup_reason and m.outcome == m_pb2.CALL_FAILED else 0, local[1])

    m.codec = raw.codec
    if raw.codec_clock_hz:
        m.codec_clock_hz = raw.codec_clock_hz
        m.audio_bandwidth = audio_bandwidth_of(raw.codec_clock_hz)
    st = raw.stats
    if st is not None:
        m.tx_packets = st.tx_packets
        m.rx_packets = st.rx_packets
        m.rx_lost_packets = st.rx_lost
    if st is not None and answered and raw.media_active:
        # Loss, jitter and RTT only when measured: a call that was not answered has none; jitter
        # needs received RTP, RTT an RTCP round trip (absent, never 0, when none came back).
        expected = st.rx_packets + st.rx_lost
        if expected:
            m.loss_pct = 100.0 * st.rx_lost / expected
        if st.rx_packets:
            m.jitter_ms = st.jitter_us / 1000.0
        if st.rtt_us > 0:
            m.rtt_ms = st.rtt_us / 1000.0
    if answered and raw.media_active:
        if st is None:
            notes.append("no RTP statistics could be read")
        elif st.tx_packets > 0 and st.rx_packets == 0:
            m.one_way_audio = True
            notes.append("one-way audio: no RTP received")
        elif st.rx_packets > 0 and st.tx_packets == 0:
            m.one_way_audio = True
            notes.append("one-way audio: no RTP sent")
        elif st.rx_packets == 0 and st.tx_packets == 0:
            notes.append("no RTP sent or received")
        if st is not None and raw.codec and m.HasField("loss_pct"):
            _score(m, raw.codec, notes)
    if raw.job.impairment is not None:
        _impairment(m, raw, notes)
    _security(m, raw, notes)
    m.dtmf_sent = raw.dtmf_sent
    m.dtmf_received = raw.dtmf_received
    if raw.role == "callee" and raw.expect_dtmf:
        m.dtmf_ok = raw.dtmf_received == raw.expect_dtmf
        if answered and not m.dtmf_ok:
            notes.append(f"DTMF: expected {raw.expect_dtmf!r}, received {raw.dtmf_received!r}")
            if m.outcome == m_pb2.SUCCESS:
                m.outcome = m_pb2.CALL_FAILED
    if keeps_ladder(m.outcome, raw):
        fill_ladder(m, entries)  # without the message log: what pjsua's callbacks showed
        if ladder is None and raw.ladder_dropped:
            notes.append(f"SIP ladder: {raw.ladder_dropped} later messages not kept")
    m.detail = "; ".join(notes)
    return m


def _security(m: m_pb2.CallMeasurement, raw: RawCall, notes: list[str]) -> None:
    """The call's SIP transport (once its INVITE went out) and whether SRTP protected its audio."""
    if raw.t_invite is not None:
        m.transport = call_transport(raw.job)
    if raw.srtp_suite:
        m.srtp = True
        m.srtp_suite = raw.srtp_suite
        m.srtp_keying = raw.srtp_keying or "sdes"
    srtp = raw.job.srtp or "off"
    if srtp == "off":
        return
    if raw.t_answer is not None and raw.media_active and not raw.srtp_suite:
        notes.append("SRTP offered, the far end answered plain RTP" if srtp == "optional"
                     else "SRTP was required but the audio is not protected")
        if srtp == "mandatory" and m.outcome == m_pb2.SUCCESS:
            m.outcome = m_pb2.NEGOTIATION_FAILED
    elif m.outcome == m_pb2.NEGOTIATION_FAILED and raw.t_answer is None:
        dtls = (raw.job.srtp_keying or "sdes") == "dtls"
        why = f"({m.sip_code} {m.sip_reason})".replace(" )", ")")
        if srtp == "mandatory":
            keying = ", DTLS-SRTP keying" if dtls else ""
            notes.insert(0, f"SRTP was required (srtp mandatory{keying}) and the far end did not accept the "
                            f"{'DTLS-SRTP' if dtls else 'SRTP'} offer {why}")
        elif dtls:  # a DTLS-SRTP offer (UDP/TLS/RTP/SAVP) has no plain RTP fallback
            notes.insert(0, f"DTLS-SRTP was offered (srtp optional, DTLS-SRTP keying: no plain RTP fallback) "
                            f"and the far end did not accept it {why}")


_CSEQ = re.compile(r"(?im)^CSeq[ \t]*:[ \t]*\d+[ \t]+([A-Za-z]+)")


@dataclass(frozen=True, slots=True)
class LadderFacts:
    """What a call's SIP ladder shows about its INVITE (the same facts for every driver)."""

    invites_sent: int = 0  # the INVITE and its retransmissions (and a repeat with credentials)
    provisional: str = ""  # the last provisional response received to it, e.g. "180 Ringing"
    final: str = ""  # the final response received to it, e.g. "487 Request Terminated"
    cancel_sent: bool = False
    received: int = 0  # messages received


def ladder_facts(messages: Iterable[tuple[str, str, str]]) -> LadderFacts:
    """From ``(direction, first line, CSeq method)`` of each message ("out"/"in"; the first line
    without "SIP/2.0")."""
    invites = received = 0
    provisional = final = ""
    cancel = False
    for direction, first, method in messages:
        first = (first or "").strip()
        if first.startswith("SIP/2.0 "):
            first = first[8:]
        is_response = first[:3].isdigit()
        method = (method or ("" if is_response else first.split(" ", 1)[0])).upper()
        if direction == "out":
            if not is_response and method == "INVITE":
                invites += 1
            elif not is_response and method == "CANCEL":
                cancel = True
            continue
        received += 1
        if is_response and method == "INVITE":
            code = int(first[:3])
            if code < 200:
                provisional = first
            elif not final or final[:3] in ("401", "407"):
                final = first  # the first final answer (after a challenge pjsip answered, the next one)
    return LadderFacts(invites, provisional, final, cancel, received)


def pjsua_ladder_facts(entries: Iterable[tuple]) -> LadderFacts:
    """:func:`ladder_facts` of ``ladder_entry`` tuples (the method of a response from its CSeq)."""
    def messages():
        for entry in entries:
            summary, text = entry[2], entry[4]
            m = _CSEQ.search(text or "")
            yield entry[1], summary, m.group(1) if m else ""
    return ladder_facts(messages())


def timeout_detail(timeout_ms: int | float, facts: LadderFacts, *, complete: bool = True, why: str = "") -> str:
    """The detail of a call that got no final answer in time, from what its ladder shows: never a
    CANCEL that was not sent (pjsip and SIPp send none before a provisional response; RFC 3261
    9.1). ``complete``: the ladder has every message (retransmissions included)."""
    parts = [why or f"no final answer within {timeout_ms:.0f} ms"]
    if facts.provisional:
        parts.append(f"last provisional: {facts.provisional}")
    elif facts.invites_sent > 1 and complete:
        parts.append(f"no response to the INVITE (sent {facts.invites_sent} times)")
    elif facts.invites_sent:
        parts.append("no response to the INVITE")
    if facts.cancel_sent:
        parts.append("CANCEL sent" + (f", then {facts.final}" if facts.final else ""))
    elif not facts.provisional and facts.invites_sent:
        parts.append("no CANCEL sent (none may be sent before a provisional response)")
    elif facts.invites_sent:
        parts.append("no CANCEL sent" if complete else "no CANCEL in the ladder")
    if facts.final and not facts.cancel_sent:
        parts.append(f"then {facts.final}")
    return "; ".join(parts)


def _local_final(raw: RawCall, entries: list[tuple], complete: bool) -> tuple[str, str] | None:
    """(sip_reason, note) when pjsua's final code was its own (a transport or DNS error, nothing of
    it received): the reason in words a person can act on, and a note saying no response came.
    None when the far end sent it (or the ladder cannot tell)."""
    if raw.role != "caller":
        return None
    internal = is_internal(raw.final_reason)
    facts = pjsua_ladder_facts(entries)
    if not internal and (not complete or facts.final):
        return None
    if facts.final and facts.final[:3] == str(raw.final_code):
        return None
    if raw.job.account is not None:
        host, port, transport = where_of(raw.job.account.registrar, raw.job.account.transport)
    else:
        host, port, transport = where_of(raw.job.destination, raw.job.transport)
    reason = short_reason(raw.final_reason, host=host, port=port, transport=transport) if internal \
        else raw.final_reason
    if not facts.invites_sent and complete:
        sent = "INVITE not sent"
    elif facts.provisional or raw.first_code:
        sent = "no final response received"
    else:
        sent = "no SIP response received"
    return reason, f"{sent}: {reason} ({raw.final_code} is the SIP stack's own code)"


def _impairment(m: m_pb2.CallMeasurement, raw: RawCall, notes: list[str]) -> None:
    """What was asked of the call's impairment relays and what they did (injected loss per
    direction), next to the loss the engine measured; says when the far end's RTP went around them."""
    imp = raw.job.impairment
    a = m.impairment
    imp.fill(a.asked)
    if imp.seed is not None:
        a.seed = imp.seed
    got = raw.impairment
    if not got:
        if raw.t_answer is not None:
            notes.append("impairment: no relay was set up for this call")
        return
    a.rx_packets, a.rx_dropped = int(got["rx_packets"]), int(got["rx_dropped"])
    a.tx_packets, a.tx_dropped = int(got["tx_packets"]), int(got["tx_dropped"])
    if a.rx_packets:
        a.rx_loss_pct = 100.0 * a.rx_dropped / a.rx_packets
    if a.tx_packets:
        a.tx_loss_pct = 100.0 * a.tx_dropped / a.tx_packets
    st = raw.stats
    if st is not None and raw.t_answer is not None:
        a.rx_bypassed = max(0, st.rx_packets - int(got.get("rx_forwarded", 0)))
        if st.rx_packets and not a.rx_packets:
            notes.append("impairment not applied: the far end's RTP did not come through the relay "
                         "(it does not send to the address in our SDP offer)")
        elif a.rx_bypassed:
            notes.append(f"impairment: {a.rx_bypassed} RTP packets arrived around the relay")


def _score(m: m_pb2.CallMeasurement, codec: str, notes: list[str]) -> None:
    from callgauge_media.domain.quality import emodel

    try:
        r = emodel.r_factor(codec, one_way_delay_ms(codec, m.rtt_ms), min(100.0, m.loss_pct), 1.0, True)
        m.r_factor = r
        m.mos = emodel.mos_from_r(r, wideband=emodel.is_wideband(codec))
        if emodel.is_estimate(codec):
            notes.append(f"MOS from the wideband E-model (G.107.1) with ESTIMATED Ie,WB/Bpl,WB for {codec}: "
                         "ITU-T publishes no planning values for it")
    except ValueError as exc:
        notes.append(f"no MOS: {exc}")


def registration_measurement(job: UaJob, *, registration_id: str, kind: str, outcome: Mapping,
                             report: Mapping, lost: Sequence[Mapping] = ()) -> m_pb2.RegistrationMeasurement:
    """How one user agent's registration went, from what its worker reported: ``outcome`` (the
    first "registered" / "failed" event), ``report`` (its ua_done report, or ``{"error": ...}``
    when the worker went away) and ``lost`` (the "lost" events: refreshes that failed).

    SUCCESS: registered and never lost; REGISTRATION_FAILED: the first REGISTER failed (``sip_code``
    is its final code) or a refresh did (the first failing refresh's code). The ladder (the
    registrar's responses, the last ones) is kept only when the outcome is not SUCCESS."""
    a = job.account
    r = m_pb2.RegistrationMeasurement(
        registration_id=registration_id, step=job.step, action=job.action, index=job.index, kind=kind,
        user=a.aor, registrar=a.registrar_uri, transport=a.transport, expires_requested=max(0, int(job.regexpire)),
        sip_call_id=str(report.get("sip_call_id") or ""), calls_answered=int(report.get("answered") or 0),
    )
    registered = outcome.get("event") == "registered"
    registrations = int(report.get("registrations") or (1 if registered else 0))
    if registered and report.get("register_time_ms") is not None:
        r.register_time_ms = float(report["register_time_ms"])
    r.expires = int(report.get("expires") or outcome.get("expires") or 0) if registered else 0
    r.refreshes = max(0, registrations - 1)
    r.refresh_failures = int(report.get("refresh_failures") or len(lost))
    r.unregistered = bool(report.get("unregistered"))
    r.unregister_code = int(report.get("unregister_code") or 0)
    r.unregister_reason = str(report.get("unregister_reason") or "")
    r.kept = bool(report.get("kept"))
    where = f"{a.aor} at {a.registrar_uri}"
    notes = []
    if not registered:
        r.outcome = m_pb2.REGISTRATION_FAILED
        r.sip_code = int(outcome.get("code") or 0)
        r.sip_reason = str(outcome.get("reason") or "")
        notes.append(f"{kind} of {where} failed: {r.sip_code or ''} {r.sip_reason}".replace("  ", " ").strip())
    elif lost:
        r.outcome = m_pb2.REGISTRATION_FAILED
        r.sip_code = int(lost[0].get("code") or 0)
        r.sip_reason = str(lost[0].get("reason") or "")
        notes.append(f"registration of {where} lost: a refresh got {r.sip_code or ''} {r.sip_reason}".rstrip()
                     + f" ({len(lost)} failed refreshes)")
    else:
        r.outcome = m_pb2.SUCCESS
        r.sip_code = int(report.get("code") or outcome.get("code") or 0)
        r.sip_reason = str(report.get("reason") or outcome.get("reason") or "")
    if registered:
        if r.kept:
            notes.append("not unregistered: binding kept until it expires")
        elif r.unregistered:
            notes.append(f"unregistered ({r.unregister_code} {r.unregister_reason})".replace(" )", ")"))
        elif r.unregister_reason and not lost:
            notes.append(f"not unregistered: {r.unregister_reason}")
    if report.get("error"):
        notes.append(str(report["error"]))
    r.detail = "; ".join(notes)
    if r.outcome != m_pb2.SUCCESS:
        ladder = list(outcome.get("ladder") or []) if not registered else []
        ladder = ladder or list(report.get("ladder") or [])
        for at_ms, direction, summary, peer, text, truncated in ladder[-LADDER_MAX_MESSAGES:]:
            r.sip_ladder.add(at_ms=at_ms, direction=direction, summary=summary, peer=peer, text=text,
                             truncated=truncated)
    now = time.time()
    started = report.get("started_wall")
    _ts(r.started_at, float(started) if started else None)
    _ts(r.ended_at, float(report.get("ended_wall") or now))
    return r
