"""What a media worker is asked to do: one call job (picklable, pure, no pjsua2)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2

DEFAULT_DURATION_MS = 5_000
DEFAULT_SETUP_TIMEOUT_MS = 30_000
DEFAULT_CODEC = "PCMU"
DEFAULT_FROM_USER = "callgauge"
TRANSPORTS = ("udp", "tcp")

_USER_BAD_CHARS = re.compile(r"[^A-Za-z0-9\-_.!~*'()&=+$,;?/]")


@dataclass(frozen=True, slots=True)
class CallJob:
    """One call to place and measure.

    ``duration_ms`` is talk time after the answer; ``setup_timeout_ms`` bounds the wait for a final
    answer (then CANCEL, outcome TIMEOUT). ``tone_hz`` 0 sends silence (RTP still flows).
    ``codec`` is the only codec offered: an encoding name ("PCMU", "G722", "speex") or a pjsua
    codec id prefix ("speex/8000"). ``step``/``action``/``index`` are copied into the measurement.
    """

    call_id: str
    destination: str
    duration_ms: int = DEFAULT_DURATION_MS
    tone_hz: int = 0
    codec: str = DEFAULT_CODEC
    setup_timeout_ms: int = DEFAULT_SETUP_TIMEOUT_MS
    from_user: str = DEFAULT_FROM_USER
    transport: str = "udp"
    step: int = 0
    action: int = 0
    index: int = 0

    @classmethod
    def from_action(
        cls, call_id: str, action: spec_pb2.CallAction, *, step: int = 0, action_index: int = 0, index: int = 0
    ) -> CallJob:
        """A job from a test spec's CallAction; unset (zero/empty) fields take the defaults above."""
        return cls(
            call_id=call_id,
            destination=action.dial_destination,
            duration_ms=action.duration_ms or DEFAULT_DURATION_MS,
            tone_hz=action.tone_hz,
            codec=action.codec or DEFAULT_CODEC,
            setup_timeout_ms=action.setup_timeout_ms or DEFAULT_SETUP_TIMEOUT_MS,
            from_user=action.from_user or DEFAULT_FROM_USER,
            transport=(action.transport or "udp").lower(),
            step=step,
            action=action_index,
            index=index,
        )


def pick_codec_id(available: Iterable[str], preference: str) -> str | None:
    """The one pjsua codec id ("PCMU/8000/1") to offer for ``preference``, or None.

    A bare name ("speex") matches the encoding name case-insensitively and takes the first match in
    ``available`` (pjsua lists codecs by default priority); a name with a rate ("speex/8000")
    matches the id prefix.
    """
    pref = (preference or DEFAULT_CODEC).strip().lower()
    if not pref:
        return None
    for cid in available:
        low = cid.lower()
        if "/" in pref:
            if low == pref or low.startswith(pref + "/"):
                return cid
        elif low.split("/", 1)[0] == pref:
            return cid
    return None


def sip_user(value: str) -> str:
    """A From user part that is safe to put in a SIP URI (bad characters become '_')."""
    cleaned = _USER_BAD_CHARS.sub("_", (value or "").strip())
    return cleaned or DEFAULT_FROM_USER


def normalize_destination(destination: str, transport: str) -> str:
    """``sip:`` scheme added when missing; ``;transport=tcp`` added for TCP unless already given."""
    dest = (destination or "").strip()
    if dest.startswith("<") and dest.endswith(">"):
        dest = dest[1:-1].strip()
    if not re.match(r"^sips?:", dest, re.IGNORECASE):
        dest = "sip:" + dest
    if transport == "tcp" and ";transport=" not in dest.lower():
        dest += ";transport=tcp"
    return dest
