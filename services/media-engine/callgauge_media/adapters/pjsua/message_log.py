"""Every SIP message pjsip sends or receives, from its message log, kept per Call-ID (pure: no pjsua2).

pjsua's message logging (``LogConfig.msgLogging``) writes one level-4 log entry per SIP message on
the wire, retransmissions and the 401/407 challenges pjsip answers itself included::

    <sender, padded>  TX 512 bytes Request msg INVITE/cseq=1 (tdta0x...) to UDP 127.0.0.1:5060:
    INVITE sip:bob@example.com SIP/2.0
    ...
    --end msg--

(``RX ... from UDP host:port:`` for received ones). The adapter's log writer hands each entry's
text to :meth:`MessageLog.feed`, which files it under its Call-ID, cheaply: a prefix check and one
header search per entry, nothing parsed further until a ladder is wanted. A call or registration
``hold``\\ s its Call-ID while it lives and ``release``\\ s it at the end, asking for the ladder
only when it failed; Call-IDs nobody holds (not claimed yet, or not ours) are kept for a bounded
number of Call-IDs, oldest dropped first.

Bounds: per Call-ID the first :data:`HEAD` and the last :data:`TAIL` messages (each cut to a bit
more than the ladder's 2000 characters); a ladder keeps the first ``LADDER_MAX_MESSAGES - 10`` and
the last 10 of its messages and counts the ones left out.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from callgauge_media.domain.measurement import LADDER_MAX_CHARS, LADDER_MAX_MESSAGES, LADDER_TAIL, ladder_entry

HEAD = 40  # first messages kept per Call-ID (the challenge is among the first few)
TAIL = 20  # and the last ones (the final error, a BYE that was never answered)
MAX_UNHELD = 48  # Call-IDs kept that no call or registration holds (oldest dropped first)
SENDER = "pjsua_core.c"  # pjsua's message logger (the log entry's sender)
END_MARK = "\n--end msg--"
_STORE_CHARS = LADDER_MAX_CHARS + 400  # head line + message, cut (the ladder cuts to 2000)
_CALL_ID = re.compile(r"^(?:call-id|i)[ \t]*:[ \t]*([^\s]+)", re.IGNORECASE | re.MULTILINE)
_FROM = re.compile(r"^(?:from|f)[ \t]*:([^\r\n]*)", re.IGNORECASE | re.MULTILINE)
_TAG = re.compile(r";[ \t]*tag[ \t]*=[ \t]*([^;>\s]+)", re.IGNORECASE)


class _Buffer:
    __slots__ = ("head", "tail", "dropped", "holders")

    def __init__(self) -> None:
        self.head: list[tuple[float, str]] = []
        self.tail: deque[tuple[float, str]] = deque(maxlen=TAIL)
        self.dropped = 0  # fell out of the tail
        self.holders = 0

    def add(self, item: tuple[float, str]) -> None:
        if len(self.head) < HEAD:
            self.head.append(item)
            return
        if len(self.tail) == TAIL:
            self.dropped += 1
        self.tail.append(item)


def sip_text(entry_text: str) -> str | None:
    """The ``TX ...``/``RX ...`` part of a log entry of pjsua's message logger, else None."""
    i = entry_text.find(SENDER, 0, 48)
    if i < 0:
        return None
    body = entry_text[i + len(SENDER):].lstrip(" .")
    if not (body.startswith("TX ") or body.startswith("RX ")) or " bytes " not in body[:24]:
        return None
    return body


def call_id_of(msg: str) -> str:
    """The Call-ID header's value (full or compact name) of a SIP message text, looked for in its
    headers only ('' when it has none)."""
    end = msg.find("\r\n\r\n")
    if end < 0:
        end = msg.find("\n\n")
    head = msg if end < 0 else msg[: end + 1]
    i = head.find("\nCall-ID: ")
    if i >= 0:
        j = head.find("\r", i + 10)
        return head[i + 10: j if j >= 0 else None].strip()
    m = _CALL_ID.search(head)
    return m.group(1) if m else ""


def parse(logged: str) -> tuple[str, str, str, bool]:
    """``(direction, peer, sip_text, cut)`` of a stored ``TX ...``/``RX ...`` text; ``cut`` when
    the end of the message is missing (pjlib's log line limit or our storage bound)."""
    nl = logged.find("\n")
    head, rest = (logged, "") if nl < 0 else (logged[:nl], logged[nl + 1:])
    direction = "out" if head.startswith("TX") else "in"
    peer = head.rstrip(": ").rsplit(" ", 1)[-1]
    cut = not rest.endswith(END_MARK)
    if not cut:
        rest = rest[: -len(END_MARK)]
    return direction, peer, rest, cut


def _from_tag(msg: str) -> str:
    m = _FROM.search(msg)
    if not m:
        return ""
    t = _TAG.search(m.group(1))
    return t.group(1) if t else ""


class MessageLog:
    """SIP messages by Call-ID. Not thread-safe: feed and query from the pjsua thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_unheld: int = MAX_UNHELD) -> None:
        self._clock = clock
        self._max_unheld = max_unheld
        self._bufs: OrderedDict[str, _Buffer] = OrderedDict()
        self._unheld = 0
        self.last_register = ""  # Call-ID of the last REGISTER sent
        self.messages = 0  # fed SIP messages (statistics)

    def __len__(self) -> int:
        return len(self._bufs)

    def feed(self, entry_text: str) -> bool:
        """File one log entry if it is a SIP message; True when it was one."""
        body = sip_text(entry_text)
        if body is None:
            return False
        cid = call_id_of(body)
        if not cid:
            return True
        self.messages += 1
        if body[0] == "T" and "Request msg REGISTER/" in body[:80]:
            self.last_register = cid
        buf = self._bufs.get(cid)
        if buf is None:
            buf = self._bufs[cid] = _Buffer()
            self._unheld += 1
            if self._unheld > self._max_unheld:
                self._evict()
        buf.add((self._clock(), body if len(body) <= _STORE_CHARS else body[:_STORE_CHARS]))
        return True

    def _evict(self) -> None:
        for cid, buf in self._bufs.items():
            if buf.holders == 0:
                del self._bufs[cid]
                self._unheld -= 1
                return

    def hold(self, call_id: str) -> None:
        """Keep this Call-ID's messages until :meth:`release` (one release per hold)."""
        if not call_id:
            return
        buf = self._bufs.get(call_id)
        if buf is None:
            buf = self._bufs[call_id] = _Buffer()
        elif buf.holders == 0:
            self._unheld -= 1
        buf.holders += 1

    def release(self, call_id: str, *, t0: float | None = None, keep: bool = False,
                side: str = "") -> tuple[list[tuple], int]:
        """Let the Call-ID go (its buffer goes with the last holder); with ``keep``, return its
        ladder first (see :meth:`ladder`)."""
        out: tuple[list[tuple], int] = ([], 0)
        buf = self._bufs.get(call_id) if call_id else None
        if buf is None:
            return out
        if keep:
            out = self.ladder(call_id, t0=t0, side=side)
        if buf.holders > 0:
            buf.holders -= 1
            if buf.holders == 0:
                del self._bufs[call_id]
        return out

    def ladder(self, call_id: str, *, t0: float | None = None, side: str = "") -> tuple[list[tuple], int]:
        """``(entries, left_out)``: ``ladder_entry`` tuples (time from ``t0``, default the first
        message) of this Call-ID, at most ``LADDER_MAX_MESSAGES``, and how many were left out.

        ``side`` "caller" or "callee" keeps what that side of the call sent and received, for when
        both ends of a call live in this process (same Call-ID, each message logged twice)."""
        buf = self._bufs.get(call_id) if call_id else None
        if buf is None:
            return [], 0
        items = [*buf.head, *buf.tail]
        dropped = buf.dropped
        if not items:
            return [], dropped
        parsed = [(t, *parse(text)) for t, text in items]
        if side in ("caller", "callee"):
            parsed = _one_side(parsed, side)
        if len(parsed) > LADDER_MAX_MESSAGES:
            keep_head = LADDER_MAX_MESSAGES - LADDER_TAIL
            dropped += len(parsed) - LADDER_MAX_MESSAGES
            parsed = parsed[:keep_head] + parsed[-LADDER_TAIL:]
        base = t0 if t0 is not None else parsed[0][0] if parsed else 0.0
        return [ladder_entry((t - base) * 1000.0, direction, text, peer)
                for t, direction, peer, text, _cut in parsed], dropped


def _one_side(parsed: list[tuple], side: str) -> list[tuple]:
    """The messages one side of the call sent and received. The caller's dialog tag is the From
    tag of the first INVITE: a request comes from the party whose tag is in From, a response from
    the other one."""
    caller_tag = ""
    for _t, _d, _p, text, _c in parsed:
        if text.startswith("INVITE "):
            caller_tag = _from_tag(text)
            break
    if not caller_tag:
        return parsed
    kept = []
    for item in parsed:
        text = item[3]
        is_request = not text.startswith("SIP/2.0")
        sent_by_caller = is_request == (_from_tag(text) == caller_tag)
        if (item[1] == "out") == (sent_by_caller == (side == "caller")):
            kept.append(item)
    return kept
