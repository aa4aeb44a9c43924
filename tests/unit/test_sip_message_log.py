"""The SIP message log (pure): pjsua's message-log entries filed by Call-ID, held while a call or
registration lives, turned into a bounded ladder (no pjsua2, no network)."""

from __future__ import annotations

from callgauge_media.domain.measurement import LADDER_MAX_CHARS, LADDER_MAX_MESSAGES, LADDER_TAIL
from callgauge_media.adapters.pjsua.message_log import MAX_UNHELD, MessageLog, call_id_of, sip_text

PAD = " " * 10  # pj_log pads the sender (PJ_LOG_HAS_SENDER)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def sip(first_line: str, call_id: str = "cid-1", from_tag: str = "ft1", to_tag: str = "", extra: str = "",
        compact: bool = False) -> str:
    to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    hdrs = [
        first_line,
        "Via: SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bKPj1",
        f"{'f' if compact else 'From'}: <sip:alice@example.com>;tag={from_tag}",
        f"{'t' if compact else 'To'}: {to}",
        f"{'i' if compact else 'Call-ID'}: {call_id}",
        "CSeq: 1 INVITE",
    ]
    if extra:
        hdrs.append(extra)
    return "\r\n".join(hdrs) + "\r\nContent-Length:  0\r\n\r\n"


def entry(direction: str, msg: str, peer: str = "127.0.0.1:5060") -> str:
    """A log entry as pjsua's message logger writes it (decoration: the sender only)."""
    info = msg.split("\r\n", 1)[0]
    kind = "Response msg " + info.split()[1] if info.startswith("SIP/2.0") else "Request msg " + info.split()[0]
    word = "to" if direction == "TX" else "from"
    return (f"{PAD}pjsua_core.c  {direction} {len(msg)} bytes {kind}/cseq=1 (tdta0x1) {word} UDP {peer}:\n"
            f"{msg}\n--end msg--")


def test_only_message_entries_are_filed_by_call_id() -> None:
    log = MessageLog()
    assert not log.feed(f"{PAD}pjsua_call.c  Making call with acc #1 to sip:bob@example.com")
    assert not log.feed(f"{PAD}pjsua_core.c  .TX buffer pool is 12 kB")
    assert log.feed(entry("TX", sip("INVITE sip:bob@example.com SIP/2.0")))
    assert log.feed(entry("RX", sip("SIP/2.0 100 Trying", call_id="other", compact=True)))
    assert len(log) == 2 and log.messages == 2
    assert sip_text(entry("TX", sip("BYE sip:x SIP/2.0"))).startswith("TX ")
    assert call_id_of(sip("BYE sip:x SIP/2.0", call_id="a@b")) == "a@b"
    assert call_id_of(sip("BYE sip:x SIP/2.0", call_id="c@d", compact=True)) == "c@d"


def test_a_failed_call_gets_the_challenge_and_the_retry() -> None:
    clock = Clock()
    log = MessageLog(clock)
    t0 = clock.t
    auth = 'Proxy-Authenticate: Digest realm="example.com", nonce="abc123", algorithm=MD5'
    for direction, msg in [
        ("TX", sip("INVITE sip:bob@example.com SIP/2.0")),
        ("RX", sip("SIP/2.0 407 Proxy Authentication Required", to_tag="k1", extra=auth)),
        ("TX", sip("ACK sip:bob@example.com SIP/2.0", to_tag="k1")),
        ("TX", sip("INVITE sip:bob@example.com SIP/2.0", extra='Proxy-Authorization: Digest username="alice"')),
        ("RX", sip("SIP/2.0 403 Forbidden", to_tag="k2")),
    ]:
        clock.t += 0.010
        log.feed(entry(direction, msg))
    log.hold("cid-1")
    ladder, left_out = log.release("cid-1", t0=t0, keep=True, side="caller")
    assert left_out == 0 and len(log) == 0
    assert [(e[1], e[2]) for e in ladder] == [
        ("out", "INVITE sip:bob@example.com"), ("in", "407 Proxy Authentication Required"),
        ("out", "ACK sip:bob@example.com"), ("out", "INVITE sip:bob@example.com"), ("in", "403 Forbidden")]
    assert [round(e[0]) for e in ladder] == [10, 20, 30, 40, 50]
    assert all(e[3] == "127.0.0.1:5060" for e in ladder)
    assert 'nonce="abc123"' in ladder[1][4] and "Proxy-Authorization: Digest" in ladder[3][4]
    assert not any("--end msg--" in e[4] for e in ladder)
    assert ladder[0][4].startswith("INVITE sip:bob@example.com SIP/2.0\r\n") and not ladder[0][5]


def test_a_successful_call_keeps_nothing() -> None:
    log = MessageLog()
    log.feed(entry("TX", sip("INVITE sip:bob@example.com SIP/2.0")))
    log.hold("cid-1")
    assert log.release("cid-1", keep=False) == ([], 0)
    assert len(log) == 0


def test_bounds_first_and_last_messages_and_characters() -> None:
    log = MessageLog()
    log.hold("cid-1")
    log.feed(entry("TX", sip("INVITE sip:bob@example.com SIP/2.0", extra="X-Pad: " + "p" * 5000)))
    for i in range(1, 100):
        log.feed(entry("TX", sip(f"INFO sip:bob@example.com;n={i} SIP/2.0")))
    ladder, left_out = log.ladder("cid-1")
    assert len(ladder) == LADDER_MAX_MESSAGES and left_out == 100 - LADDER_MAX_MESSAGES
    assert ladder[0][5] and len(ladder[0][4]) == LADDER_MAX_CHARS  # cut, and says so
    assert all(len(e[4]) <= LADDER_MAX_CHARS for e in ladder)
    keep_head = LADDER_MAX_MESSAGES - LADDER_TAIL
    assert ladder[keep_head - 1][2].endswith(f";n={keep_head - 1}")
    assert [e[2].rsplit("=", 1)[1] for e in ladder[keep_head:]] == [str(i) for i in range(90, 100)]


def test_call_ids_nobody_holds_are_bounded_held_ones_stay() -> None:
    log = MessageLog()
    log.feed(entry("TX", sip("INVITE sip:bob@example.com SIP/2.0", call_id="live")))
    log.hold("live")
    for i in range(3 * MAX_UNHELD):
        log.feed(entry("RX", sip("OPTIONS sip:x SIP/2.0", call_id=f"stray-{i}")))
    assert len(log) == MAX_UNHELD + 1
    assert log.ladder("live")[0] and not log.ladder("stray-0")[0]
    log.feed(entry("RX", sip("SIP/2.0 486 Busy Here", call_id="live", to_tag="t")))
    assert [e[2] for e in log.release("live", keep=True)[0]] == ["INVITE sip:bob@example.com", "486 Busy Here"]


def test_two_holders_share_a_call_id_until_both_let_go() -> None:
    """Caller and callee in one process: one Call-ID, every message logged once per side."""
    log = MessageLog()
    inv = sip("INVITE sip:bob@example.com SIP/2.0", from_tag="A")
    ringing = sip("SIP/2.0 180 Ringing", from_tag="A", to_tag="B")
    bye = sip("BYE sip:alice@example.com SIP/2.0", from_tag="B", to_tag="A")
    ok = sip("SIP/2.0 200 OK", from_tag="B", to_tag="A")
    for direction, msg in [("TX", inv), ("RX", inv), ("TX", ringing), ("RX", ringing),
                           ("TX", bye), ("RX", bye), ("TX", ok), ("RX", ok)]:
        log.feed(entry(direction, msg))
    log.hold("cid-1")
    log.hold("cid-1")
    caller, _ = log.release("cid-1", keep=True, side="caller")
    assert [(e[1], e[2]) for e in caller] == [("out", "INVITE sip:bob@example.com"), ("in", "180 Ringing"),
                                              ("in", "BYE sip:alice@example.com"), ("out", "200 OK")]
    assert len(log) == 1
    callee, _ = log.release("cid-1", keep=True, side="callee")
    assert [(e[1], e[2]) for e in callee] == [("in", "INVITE sip:bob@example.com"), ("out", "180 Ringing"),
                                              ("out", "BYE sip:alice@example.com"), ("in", "200 OK")]
    assert len(log) == 0


def test_the_last_register_sent_is_remembered() -> None:
    log = MessageLog()
    log.feed(entry("TX", sip("REGISTER sip:example.com SIP/2.0", call_id="reg-1")))
    log.feed(entry("RX", sip("SIP/2.0 401 Unauthorized", call_id="reg-1", to_tag="x")))
    assert log.last_register == "reg-1"
    log.feed(entry("TX", sip("INVITE sip:bob@example.com SIP/2.0", call_id="inv-1")))
    assert log.last_register == "reg-1"
