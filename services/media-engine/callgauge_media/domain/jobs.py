"""What a media worker is asked to do: one call job (picklable, pure, no pjsua2)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2

from callgauge_media.domain.impairment import MediaImpairment

DEFAULT_DURATION_MS = 5_000
DEFAULT_SETUP_TIMEOUT_MS = 30_000
DEFAULT_CODEC = "PCMU"
DEFAULT_FROM_USER = "callgauge"
#: Opus audio bandwidths a call may ask for, as the sample rate pjmedia's opus codec is opened at (and
#: offers as maxplaybackrate / sprop-maxcapturerate, RFC 7587); unset: fullband, pjsua2's default
OPUS_RATES = {"narrowband": 8000, "mediumband": 12000, "wideband": 16000, "superwideband": 24000,
              "fullband": 48000}
OPUS_DEFAULT_RATE = 48000
TRANSPORTS = ("udp", "tcp", "tls")
SRTP_MODES = ("off", "optional", "mandatory")
SRTP_KEYINGS = ("sdes", "dtls")  # SDES (RFC 4568: keys in the SDP) | DTLS-SRTP (RFC 5763/5764)
DTMF_DIGITS = frozenset("0123456789*#ABCDabcd")
KEYING_NAMES = {"sdes": "SDES", "dtls": "DTLS-SRTP"}
HANGUP_BY = ("caller", "callee")
DEFAULT_REGEXPIRE = 3600

_USER_BAD_CHARS = re.compile(r"[^A-Za-z0-9\-_.!~*'()&=+$,;?/]")


SYSTEM_CA_FILE = "/etc/ssl/certs/ca-certificates.crt"  # Debian's ca-certificates bundle


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """SIP over TLS in a media worker: the CA bundle that verifies registrars and ``sips:``
    destinations (empty: the system's), and the engine's own certificate and key (optional)."""

    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    @property
    def ca(self) -> str:
        import os

        if self.ca_file:
            return self.ca_file
        return SYSTEM_CA_FILE if os.path.exists(SYSTEM_CA_FILE) else ""


@dataclass(frozen=True, slots=True)
class SipAccount:
    """A SIP user at a registrar/proxy: who we are (``username@domain``), where requests go
    (``registrar`` = ``host:port``, used as registrar and as outbound proxy) and the digest
    credentials. The password never appears in ``repr``."""

    username: str
    domain: str
    registrar: str
    transport: str = "udp"
    auth_username: str = ""
    password: str = field(default="", repr=False)
    tls_verify: bool = True  # transport tls: check the registrar's certificate (the registrar's tls_verify)

    @property
    def aor(self) -> str:
        return f"sip:{sip_user(self.username)}@{self.domain}"

    @property
    def _transport_param(self) -> str:
        return f";transport={self.transport}" if self.transport in ("tcp", "tls") else ""

    @property
    def registrar_uri(self) -> str:
        return f"sip:{self.registrar}{self._transport_param}"

    @property
    def proxy_uri(self) -> str:
        return f"sip:{self.registrar};lr{self._transport_param}"


@dataclass(frozen=True, slots=True)
class UaJob:
    """A SIP user agent that lives for a while in one worker: registers ``account`` (unless
    ``register`` is false), keeps the registration fresh (pjsua refreshes before ``regexpire``
    runs out), answers incoming calls when ``answer`` is set, and unregisters when closed (unless
    ``unregister`` is false).

    Answering: 180 at once, 200 after ``answer_delay_ms``; sends a tone of ``tone_hz`` (0: echoes
    what it receives); ``codec`` is put first in the answer when the offer has it; with
    ``hangup_by == "callee"`` it sends BYE ``duration_ms`` after answering. At most
    ``max_calls`` calls are answered (0: no limit); later ones get 486. ``expect_dtmf`` is checked
    per answered call."""

    ua_id: str
    account: SipAccount
    register: bool = True
    regexpire: int = DEFAULT_REGEXPIRE
    unregister: bool = True
    answer: bool = False
    answer_delay_ms: int = 0
    tone_hz: int = 0
    codec: str = ""
    expect_dtmf: str = ""
    hangup_by: str = "caller"
    duration_ms: int = 0
    max_calls: int = 0
    step: int = 0
    action: int = 0
    index: int = 0
    play_file: str = ""  # a 16-bit PCM mono WAV at the bridge's rate, played in place of the tone
    play_loop: bool = True
    record_dir: str = ""  # record what each answered call receives into <record_dir>/<call id>.callee.wav
    silent: bool = False  # play_file "silence": send silence instead of echoing the caller
    expect_audio: str = ""  # prompt:NAME or a media-dir .wav each answered call must receive (checked by the engine)
    expect_audio_min: float = 0.0
    srtp: str = "off"  # off | optional | mandatory: SRTP the answering UA accepts or demands
    srtp_keying: str = "sdes"  # sdes | dtls: the SRTP keying it accepts (SRTP_KEYINGS)


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
    account: SipAccount | None = None  # call as this user through its registrar (digest auth)
    dtmf: str = ""  # RFC 2833 digits to send after the answer
    dtmf_delay_ms: int = 0
    play_file: str = ""  # a 16-bit PCM mono WAV at the bridge's rate, played in place of the tone
    play_loop: bool = True  # False: play it once, then silence
    record_path: str = ""  # record what this side receives (WAV at the bridge's rate)
    impairment: MediaImpairment | None = None  # relays in front of this call's RTP/RTCP (impair/media.py)
    srtp: str = "off"  # off | optional (offer SRTP, accept RTP) | mandatory (SRTP or no call)
    srtp_keying: str = "sdes"  # sdes | dtls: how SRTP keys are agreed (SRTP_KEYINGS); unused with srtp off
    audio_bandwidth: str = ""  # opus only: narrowband .. fullband (OPUS_RATES); "": fullband

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
            transport=(action.transport or ("tls" if is_sips(action.dial_destination) else "udp")).lower(),
            srtp=(action.srtp or "off").lower(),
            srtp_keying=(action.srtp_keying or "sdes").lower(),
            audio_bandwidth=action.audio_bandwidth.lower(),
            step=step,
            action=action_index,
            index=index,
            dtmf=clean_dtmf(action.dtmf),
            dtmf_delay_ms=action.dtmf_delay_ms,
            impairment=(MediaImpairment.from_proto(action.impairment, seed_key=call_id)
                        if action.HasField("impairment") else None),
        )


def offered_srtp_keying(sip_message: str) -> str:
    """How an SDP offer (a SIP message with an SDP body, or the SDP) keys its audio's SRTP: "dtls" for
    the DTLS-SRTP profiles (UDP/TLS/RTP/SAVP[F], RFC 5764) or an a=fingerprint, "sdes" for a=crypto
    lines or the plain SRTP profile (RTP/SAVP[F]), "" for plain RTP or no audio offer."""
    text = sip_message
    for sep in ("\r\n\r\n", "\n\n"):
        if sep in text and not text.lstrip().startswith("v="):
            text = text.split(sep, 1)[1]
            break
    proto, attrs, session_fp, in_audio, seen_audio = "", [], False, False, False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("m="):
            if seen_audio:
                break
            parts = line[2:].split()
            in_audio = bool(parts) and parts[0] == "audio"
            if in_audio:
                seen_audio = True
                proto = parts[2].upper() if len(parts) > 2 else ""
        elif line.startswith("a="):
            if in_audio:
                attrs.append(line[2:].split(":", 1)[0].lower())
            elif not seen_audio and line[2:].lower().startswith("fingerprint:"):
                session_fp = True
    if not seen_audio:
        return ""
    if "TLS" in proto or ("SAVP" in proto and ("fingerprint" in attrs or session_fp)):
        return "dtls"
    if "crypto" in attrs or "SAVP" in proto:
        return "sdes"
    return ""


def keying_refusal(srtp: str, keying: str, offered: str) -> str:
    """Why an answering UA with SRTP ``srtp`` that takes ``keying`` keys refuses an offer keyed
    ``offered`` (:func:`offered_srtp_keying`); "" when it does not (a plain offer, or SRTP off, is
    left to pjsua: plain RTP, or 488 for a mandatory SRTP callee)."""
    if (srtp or "off") == "off" or not offered or offered == (keying or "sdes"):
        return ""
    keying = keying or "sdes"
    return (f"the callee takes {KEYING_NAMES[keying]} keys only (srtp_keying {keying}), the offer keys SRTP "
            f"with {KEYING_NAMES.get(offered, offered)}")


def audio_bandwidth_of(clock_hz: int) -> str:
    """The audio bandwidth a codec's audio sample rate carries: 8 kHz narrowband, 12 kHz mediumband,
    16 kHz wideband, 24/32 kHz superwideband, 44.1/48 kHz fullband; "" when unknown."""
    if clock_hz <= 0:
        return ""
    for name, top in (("narrowband", 8000), ("mediumband", 12000), ("wideband", 16000), ("superwideband", 32000)):
        if clock_hz <= top:
            return name
    return "fullband"


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


def is_sips(destination: str) -> bool:
    """A ``sips:`` URI: TLS on every hop (RFC 3261 §19.1)."""
    return (destination or "").strip().lstrip("<").lower().startswith("sips:")


def normalize_destination(destination: str, transport: str) -> str:
    """``sip:`` scheme added when missing; ``;transport=tcp|tls`` added for TCP/TLS unless already
    given (a ``sips:`` URI needs none: it means TLS)."""
    dest = (destination or "").strip()
    if dest.startswith("<") and dest.endswith(">"):
        dest = dest[1:-1].strip()
    if not re.match(r"^sips?:", dest, re.IGNORECASE):
        dest = "sip:" + dest
    if transport in ("tcp", "tls") and ";transport=" not in dest.lower() and not is_sips(dest):
        dest += f";transport={transport}"
    return dest


def call_transport(job: CallJob) -> str:
    """The SIP transport a call's INVITE goes out on: the account's (through a registrar), else the
    destination URI's (``sips:`` is tls, a ``;transport=`` parameter), else the job's."""
    if job.account is not None:
        return job.account.transport
    if is_sips(job.destination):
        return "tls"
    m = re.search(r";transport=(\w+)", job.destination or "", re.IGNORECASE)
    return (m.group(1) if m else job.transport or "udp").lower()


def clean_dtmf(digits: str) -> str:
    """The RFC 2833 digits of ``digits`` (0-9, *, #, A-D; upper case); ValueError on anything else."""
    text = (digits or "").strip()
    bad = sorted({c for c in text if c not in DTMF_DIGITS})
    if bad:
        raise ValueError(f"not DTMF digits: {''.join(bad)!r} (allowed: 0-9 * # A-D)")
    return text.upper()


def dial_uri(destination: str, domain: str) -> str:
    """``destination`` when it is already a SIP URI (``sip:``/``sips:``, or ``user@host``),
    else ``sip:<destination>@<domain>``: a user or number dialled at the registrar's domain."""
    dest = (destination or "").strip()
    if dest.startswith("<") and dest.endswith(">"):
        dest = dest[1:-1].strip()
    if re.match(r"^sips?:", dest, re.IGNORECASE) or "@" in dest:
        return dest if re.match(r"^sips?:", dest, re.IGNORECASE) else "sip:" + dest
    return f"sip:{sip_user(dest)}@{domain}"
