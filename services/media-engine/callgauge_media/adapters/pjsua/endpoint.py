"""The pjsua2 Endpoint of one process: library init and its threading model, the SIP transports
(UDP, TCP, TLS), the media transport and SRTP settings of accounts, the codecs, pjsip's log (and
the SIP message log built from it), and the helpers that turn pjsua2 errors into user text.

The pjsua2 modules (this one, :mod:`registration`, :mod:`call_state`, :mod:`call_media`,
:mod:`caller`, :mod:`responder`) are the only Callgauge modules that import pjsua2. Import them
only inside a process that is dedicated to SIP/RTP (a media worker, the responder): the pjsua2
Endpoint is a process singleton, its callbacks run in the thread that polls it, and it must never
live in an asyncio event-loop process. Nothing is created at import time.

Threading model: ``uaConfig.threadCnt = 0`` and ``mainThreadOnly = True``; the owner calls
``poll`` in a loop (``libHandleEvents``), every pjsua2 callback runs inside that call, in the
owner's thread. Media (RTP, the conference bridge clock of the null audio device) runs in pjmedia's
own C threads. Every callback body is wrapped in try/except: a Python exception escaping a SWIG
director callback can abort the process."""

from __future__ import annotations

import gc
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from typing import TextIO

import pjsua2 as pj

from callgauge_media.domain.jobs import SipAccount, TlsFiles
from callgauge_media.domain.reasons import UserError, is_internal, short_reason, where_of
from callgauge_media.adapters.pjsua.message_log import MessageLog
from callgauge_media.settings import RECORDED_JITTER_BUFFER_MS

log = logging.getLogger(__name__)

MAX_CALLS = 4  # default calls of one Endpoint (the pool sets its own; PJSUA_MAX_CALLS of our build is 256)
MAX_CONF_PORTS = 1024  # PJSUA_MAX_CONF_PORTS of our build
HANGUP_GRACE_S = 5.0  # after our hang-up, report anyway if pjsua has not disconnected by then
UNREGISTER_WAIT_S = 5.0  # how long closing a UA waits for the answer to its un-REGISTER
MSG_LOG_LEVEL = 4  # pjsua logs every SIP message at this level (msgLogging)
PJ_LOG_HAS_SENDER = 64  # pj_log decoration: only the sender (file name), padded; no time, no indent


def redirect_native_stdout() -> TextIO:
    """Point fd 1 at stderr (pjlib logs to fd 1 before ``libInit`` applies the log config) and
    return a line-buffered text stream on the original stdout, also installed as ``sys.stdout``."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    out = os.fdopen(saved, "w", buffering=1)
    sys.stdout = out
    return out


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, pj.Error):
        try:
            return f"{exc.title}: {exc.reason} (status {exc.status})"
        except Exception:  # noqa: BLE001 - best effort
            pass
    return f"{type(exc).__name__}: {exc}"


def user_error(exc: BaseException, doing: str, *, where: str = "", transport: str = "") -> str:
    """A short reason for what a user reads (a call's detail, a registration's reason): pjlib's
    error mapped by :func:`~callgauge_media.domain.reasons.short_reason` (``where``: the URI or
    host:port concerned). The internal text (the C call, pjlib's symbol and status, a Python
    exception) goes to the log only."""
    log.warning("%s: %s", doing, _error_text(exc))
    if isinstance(exc, UserError):  # written for the user
        return str(exc)
    if isinstance(exc, pj.Error):
        try:
            host, port, t = where_of(where, transport) if where else ("", 0, transport)
            return short_reason(str(exc.reason), int(exc.status), host=host, port=port, transport=t)
        except Exception:  # noqa: BLE001 - best effort
            pass
    return f"internal error in the media engine ({type(exc).__name__}; details in its log)"


def user_reason(code: int, reason: str, where: str, transport: str = "") -> str:
    """A reason pjsua reported with a SIP code: kept when it is the far end's reason phrase, mapped
    to a short one when it is the SIP stack's own error (a transport or DNS failure); logged then."""
    if not is_internal(reason):
        return reason
    log.warning("%s: %s %s", where, code, reason)
    host, port, t = where_of(where, transport)
    return short_reason(reason, host=host, port=port, transport=t)


@dataclass(frozen=True, slots=True)
class EndpointOptions:
    """How to build the process's pjsua2 Endpoint."""

    bind_host: str = "127.0.0.1"
    sip_port: int = 0  # 0: the OS picks
    rtp_port: int = 40_000  # first RTP port of this process's range
    rtp_port_range: int = 200  # ports in the range (each call takes 2: RTP + RTCP)
    max_calls: int = MAX_CALLS
    log_level: int = 1  # pjsua console log level (0..6); >= 4 also logs SIP messages
    tcp: bool = True  # listen on TCP at start (same port as UDP when possible); else on first use
    low_cpu: bool = True  # 8 kHz bridge, no echo canceller, linear resampling (docs/performance.md: CPU per call)
    # connect each call's received audio to the null playback device, so the bridge drains (and
    # decodes) its jitter buffer like a phone; off: RTP and RTCP statistics still flow, less CPU
    drain_rx: bool = True
    user_agent: str = "Callgauge media-engine"
    contact_user: str = "callgauge"
    # SIP ladders from pjsip's message log (every message on the wire: the 401/407 challenges pjsip
    # answers itself and retransmissions too); off: only what pjsua2's callbacks show
    sip_message_log: bool = True
    tls: TlsFiles = TlsFiles()  # SIP over TLS: CA bundle (verification), our certificate and key
    srtp: str = "off"  # SRTP of the local account: off | optional | mandatory (the responder's --srtp)
    srtp_keyings: tuple[str, ...] = ("sdes",)  # the keyings it accepts, in order (the responder: both)
    # recorded calls' receive jitter buffer: fixed at this many ms without discarding (fixed_jitter_buffer);
    # 0: pjmedia's adaptive one. Calls that record nothing always keep the adaptive one
    recorded_jitter_buffer_ms: int = RECORDED_JITTER_BUFFER_MS


_SRTP_USE = {"off": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL,
             "mandatory": pj.PJMEDIA_SRTP_MANDATORY}
_SRTP_STATUS = re.compile(r"SRTP status: (Active|Not active) Crypto-suite: (\S*)")
_SRTP_KEYING = {"sdes": pj.PJMEDIA_SRTP_KEYING_SDES, "dtls": pj.PJMEDIA_SRTP_KEYING_DTLS_SRTP}
# the keyings of an account without SRTP: pjsua makes an object per call for each keying listed (its
# default lists every keying compiled in), and SRTP off uses none
PLAIN_KEYINGS = ("sdes",)
PROTO_DTLS = getattr(pj, "PJMEDIA_TP_PROTO_DTLS", 1 << 3)  # pjmedia_tp_proto flag of UDP/TLS/RTP/SAVP(F)


def srtp_config(acfg: pj.AccountConfig, mode: str, keyings: tuple[str, ...] | list[str] = ("sdes",)) -> None:
    """SRTP on an account's calls: off, optional or mandatory, with the keyings it offers or accepts,
    in order: ``sdes`` (RFC 4568: the keys travel in the SDP, in clear unless the SIP hop is TLS) and
    ``dtls`` (DTLS-SRTP, RFC 5763/5764: a DTLS handshake on the media path makes the keys; the SDP
    carries the certificate's fingerprint). pjsua's default (refuse SDES unless the signalling is TLS)
    is lifted, so that SRTP over UDP/TCP signalling can be tested too. An answerer with both tries
    them in order: an SDES offer is answered with SDES, a DTLS-SRTP one (UDP/TLS/RTP/SAVP, no
    a=crypto) with DTLS-SRTP."""
    mc = acfg.mediaConfig
    mc.srtpUse = _SRTP_USE[mode]
    mc.srtpSecureSignaling = 0
    kv = pj.IntVector()
    for k in keyings:
        kv.append(_SRTP_KEYING[k])
    mc.srtpOpt.keyings = kv


def srtp_of(call: pj.Call) -> str:
    """The crypto suite of the call's active SRTP session ("" when its audio is not SRTP, or not
    yet: DTLS-SRTP keys come from a handshake that ends after the media starts), from pjsua's call
    dump (pjsua2 has no other view of the media transport's SRTP state)."""
    try:
        text = call.dump(True, "")
    except pj.Error:
        return ""
    for active, suite in _SRTP_STATUS.findall(text):
        if active == "Active":
            return suite or "unknown"
    return ""


def srtp_keying_of(call: pj.Call, med_idx: int) -> str:
    """How the keys of the call's active SRTP were agreed: "dtls" when the negotiated audio stream
    runs the DTLS-SRTP profile (UDP/TLS/RTP/SAVP: pjmedia's answerer keeps one keying and answers
    with its profile, a DTLS-SRTP offerer offers only that profile), else "sdes"; "" when pjsua has
    no stream info."""
    try:
        proto = int(call.getStreamInfo(med_idx).proto)
    except (pj.Error, TypeError, ValueError):
        return ""
    return "dtls" if proto & PROTO_DTLS else "sdes"


PJMEDIA_JB_DISCARD_NONE = 0  # pjmedia_jb_discard_algo (pjmedia/jbuf.h): NONE, STATIC, PROGRESSIVE
_jb_discard_none = None  # one SWIG copy of the enum holding NONE, made once per process (see below)


def fixed_jitter_buffer(si: pj.StreamInfo, ms: int) -> bool:
    """Give the audio stream about to be created (``si``: pjsua2 ``onStreamPreCreate``) a fixed
    jitter buffer: ``ms`` of prefetch at the start and after any underrun (jbInit = jbMinPre =
    jbMaxPre), and no discarding to shrink it (``PJMEDIA_JB_DISCARD_NONE``). pjmedia's default is
    adaptive: it starts with no prefetch, plays a concealed frame whenever the buffer is empty at the
    bridge's tick (audio shifted 10 ms later) and, by its progressive discard, drops a received frame
    whenever the buffer holds more than its burst estimate (audio shifted 10 ms earlier; not counted
    in ``jbuf.discard``). A sender and receiver on one machine share its clock, so a fixed buffer
    neither fills nor drains, and audio that arrived intact leaves it intact (a lost packet is still
    concealed in place, a late one still counts as lost). Returns whether the discard setting could
    be applied (only the prefetch is fixed otherwise).

    pjsua2's SWIG binding knows ``jbDiscardAlgo`` as an opaque enum: its getter returns a copy in
    new memory, its setter copies from one. The copy made here once (from the first stream's own
    value, which must be a known algorithm, so the layout is the C enum's) is set to NONE and then
    reused for every stream: one allocation per process."""
    global _jb_discard_none
    si.jbInit = si.jbMinPre = si.jbMaxPre = int(ms)
    try:
        if _jb_discard_none is None:
            import ctypes

            obj = si.jbDiscardAlgo
            cell = ctypes.c_int.from_address(int(obj))
            if cell.value not in (0, 1, 2):  # not pjmedia_jb_discard_algo as we know it: leave it
                return False
            cell.value = PJMEDIA_JB_DISCARD_NONE
            _jb_discard_none = obj
        si.jbDiscardAlgo = _jb_discard_none
        return True
    except Exception:  # noqa: BLE001 - a binding without the field: the prefetch alone is fixed
        log.warning("jitter buffer: could not turn pjmedia's discarding off", exc_info=True)
        return False


class _LogWriter(pj.LogWriter):
    """pjsua's log, in Python: SIP messages go to a :class:`MessageLog`, entries up to
    ``echo_level`` to stderr (what pjsua's console output did). pjsua2 calls :meth:`write` in the
    thread that polls (``mainThreadOnly``: entries logged by media threads are queued and written
    from ``libHandleEvents``); the wheel's SWIG directors take the GIL themselves. Never raises:
    an exception escaping a director aborts the process."""

    def __init__(self, messages: MessageLog | None, echo_level: int) -> None:
        super().__init__()
        self.messages = messages
        self.echo_level = echo_level
        self.entries = 0
        self.errors = 0

    def write(self, entry: pj.LogEntry) -> None:
        try:
            self.entries += 1
            level = entry.level
            text = None
            if level <= MSG_LOG_LEVEL and self.messages is not None:
                text = entry.msg
                self.messages.feed(text)
            if level <= self.echo_level:
                if text is None:
                    text = entry.msg
                sys.stderr.write(f"{time.strftime('%H:%M:%S')} pjsua[{level}] {text}\n")
            elif level <= 1:
                text = entry.msg if text is None else text
                if "queue full" in text:  # pjsua2 dropped callbacks posted from media threads
                    log.warning("pjsua2: %s", text.strip())
        except BaseException:  # noqa: BLE001 - see the class docstring
            self.errors += 1


class SipEndpoint:
    """One pjsua2 Endpoint with a null audio device, UDP (+TCP) transport and a local account."""

    def __init__(self, opts: EndpointOptions, account_cls: type[pj.Account] = pj.Account) -> None:
        self.opts = opts
        self.ep: pj.Endpoint | None = None
        self.account: pj.Account | None = None
        self.sip_port = 0
        self.has_tcp = False
        self.tls_tids: dict[bool, int] = {}  # TLS transport id by certificate verification (on/off)
        self.codec_ids: list[str] = []
        self._default_prio: dict[str, int] = {}
        self._codec_selected: str | None = None
        self._opus_rate: int | None = None
        self._account_cls = account_cls
        self.messages: MessageLog | None = None  # SIP messages by Call-ID (opts.sip_message_log)
        self._writer: _LogWriter | None = None

    def start(self) -> None:
        o = self.opts
        ep = pj.Endpoint()
        self.ep = ep
        ep.libCreate()
        cfg = pj.EpConfig()
        ua = cfg.uaConfig
        ua.threadCnt = 0
        ua.mainThreadOnly = True
        ua.maxCalls = o.max_calls
        ua.userAgent = o.user_agent
        lc = cfg.logConfig
        lc.level = o.log_level
        lc.consoleLevel = o.log_level
        lc.msgLogging = o.log_level >= MSG_LOG_LEVEL
        if o.sip_message_log:
            # pjlib formats entries up to lc.level only (the filter is in C); pjsua hands entries up
            # to consoleLevel to the writer, which files the SIP messages and echoes the rest
            self.messages = MessageLog()
            lc.level = lc.consoleLevel = max(MSG_LOG_LEVEL, o.log_level)
            lc.msgLogging = True
            lc.decor = PJ_LOG_HAS_SENDER
            writer = _LogWriter(self.messages, o.log_level)
            writer.__disown__()  # the Endpoint deletes its writer in libDestroy (and drops our ref)
            self._writer = writer
            lc.writer = writer
        med = cfg.medConfig
        if o.low_cpu:
            med.clockRate = 8000
            med.sndClockRate = 8000
            med.ecTailLen = 0
            med.quality = 1
        med.noVad = True  # keep RTP flowing in silence: loss and jitter need packets
        # conference bridge slots: a call's stream, its tone or player, a recorder, + the master port;
        # pjsua only raises maxMediaPorts to maxCalls + 2 by itself
        med.maxMediaPorts = min(MAX_CONF_PORTS, 3 * o.max_calls + 2)
        ep.libInit(cfg)
        ep.audDevManager().setNullDev()  # its clock drives the conference bridge

        tc = pj.TransportConfig()
        tc.boundAddress = o.bind_host
        tc.port = o.sip_port
        tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
        self.sip_port = int(ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])
        if o.tcp:
            self.ensure_tcp(self.sip_port)
        ep.libStart()
        codecs = ep.codecEnum2()
        self.codec_ids = [ci.codecId for ci in codecs]
        self._default_prio = {ci.codecId: int(ci.priority) for ci in codecs}

        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{o.contact_user}@{self.host_for_uri}:{self.sip_port}"
        self.media_transport(acfg)
        srtp_config(acfg, o.srtp, o.srtp_keyings if o.srtp != "off" else PLAIN_KEYINGS)
        acc = self._account_cls()
        acc.create(acfg, True)
        self.account = acc

    def media_transport(self, acfg: pj.AccountConfig) -> None:
        """This process's RTP port range on ``acfg`` (every account needs it: pjsua binds each account's RTP from it)."""
        o = self.opts
        mt = acfg.mediaConfig.transportConfig
        mt.port = o.rtp_port
        mt.portRange = o.rtp_port_range
        if o.bind_host not in ("", "0.0.0.0"):
            mt.boundAddress = o.bind_host

    def account_config(self, a: SipAccount, *, register: bool, regexpire: int = 3600,
                       srtp: str = "off", srtp_keyings: tuple[str, ...] = ("sdes",)) -> pj.AccountConfig:
        """A user at a registrar/proxy: digest credentials for any realm, the registrar as outbound
        proxy (loose routing), no NAT tricks (no rport/Contact rewriting, no keep-alives). Over TLS
        the account is bound to the TLS transport of the registrar's ``tls_verify``."""
        acfg = pj.AccountConfig()
        if a.transport == "tls":
            acfg.sipConfig.transportId = self.ensure_tls(a.tls_verify)
        srtp_config(acfg, srtp, srtp_keyings)
        acfg.idUri = a.aor
        rc = acfg.regConfig
        rc.registerOnAdd = register
        if register:
            rc.registrarUri = a.registrar_uri
            rc.timeoutSec = max(1, int(regexpire))
            rc.retryIntervalSec = 0  # a failed registration is reported, not retried
            rc.firstRetryIntervalSec = 0
            rc.dropCallsOnFail = False
            rc.unregWaitMsec = int(UNREGISTER_WAIT_S * 1000)
        sc = acfg.sipConfig
        sc.proxies.append(a.proxy_uri)
        sc.authCreds.append(pj.AuthCredInfo("digest", "*", a.auth_username or a.username, 0, a.password))
        nc = acfg.natConfig
        nc.sipOutboundUse = 0
        nc.contactRewriteUse = 0
        nc.viaRewriteUse = 0
        nc.sdpNatRewriteUse = 0
        nc.udpKaIntervalSec = 0
        self.media_transport(acfg)
        return acfg
    def ensure_tls(self, verify: bool = True) -> int:
        """The id of the TLS transport (a listener and the factory of outgoing TLS connections) that
        checks the far end's certificate (``verify``: chain to the CA bundle, name or IP matching the
        URI's host) or does not. The verifying one is always made first: pjsip gives connections
        of no bound account to the first TLS factory. Raises UserError when TLS cannot be set up."""
        if self.ep is None:
            raise UserError("media worker not started")
        if not verify and False not in self.tls_tids and True not in self.tls_tids:
            try:
                self.ensure_tls(True)
            except UserError:
                pass  # no CA bundle: unverified TLS still works, and nothing falls back to it unasked
        tid = self.tls_tids.get(verify)
        if tid is not None:
            return tid
        files = self.opts.tls
        tc = pj.TransportConfig()
        tc.boundAddress = self.opts.bind_host
        tc.port = 0
        tls = tc.tlsConfig
        tls.CaListFile = files.ca
        if files.cert_file:
            tls.certFile = files.cert_file
            tls.privKeyFile = files.key_file
        tls.verifyServer = verify
        tls.verifyClient = False
        try:
            tid = self.ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, tc)
        except pj.Error as exc:
            log.warning("no TLS transport (CA %r, certificate %r): %s", files.ca, files.cert_file, _error_text(exc))
            if verify and not files.ca:
                raise UserError("no TLS transport: no CA bundle to verify certificates with (set "
                                "CALLGAUGE_MEDIA_TLS_CA_FILE, or the registrar's tls_verify false)") from exc
            raise UserError("no TLS transport in this media worker: its CA bundle or certificate could not "
                            "be loaded (CALLGAUGE_MEDIA_TLS_* settings; details in its log)") from exc
        self.tls_tids[verify] = tid
        return tid

    def ensure_tcp(self, port: int = 0) -> bool:
        """A TCP transport (listener) exists: pjsip needs one to place calls over TCP too."""
        if self.has_tcp or self.ep is None:
            return self.has_tcp
        tcp = pj.TransportConfig()
        tcp.boundAddress = self.opts.bind_host
        tcp.port = port
        try:
            self.ep.transportCreate(pj.PJSIP_TRANSPORT_TCP, tcp)
            self.has_tcp = True
        except pj.Error as exc:
            log.warning("no TCP listener on %s:%s: %s", self.opts.bind_host, port, _error_text(exc))
        return self.has_tcp

    @property
    def host_for_uri(self) -> str:
        h = self.opts.bind_host
        return "127.0.0.1" if h in ("", "0.0.0.0") else h

    def set_opus_rate(self, rate: int) -> None:
        """Opus's audio sample rate for the next offer (global in pjsua, like the priorities): pjmedia
        puts it in the offer's fmtp as maxplaybackrate/sprop-maxcapturerate, which bounds the audio
        bandwidth the far end sends us, and opens the codec at it (8000 narrowband .. 48000 fullband)."""
        if self._opus_rate == rate or self.ep is None:
            return
        cfg = self.ep.getCodecOpusConfig()
        cfg.sample_rate = rate
        self.ep.setCodecOpusConfig(cfg)
        self._opus_rate = rate

    def select_codec(self, codec_id: str) -> None:
        """Give ``codec_id`` the top priority and disable every other codec (global in pjsua; the
        offer is built synchronously inside makeCall, so set this right before it)."""
        if self._codec_selected == codec_id or self.ep is None:
            return
        for cid in self.codec_ids:
            self.ep.codecSetPriority(cid, 255 if cid == codec_id else 0)
        self._codec_selected = codec_id

    def open_codecs(self, preferred: str | None) -> None:
        """Every codec back at its default priority, ``preferred`` first: what an incoming call is
        answered with (pjsua builds the answer from the global priorities when the INVITE arrives,
        before any callback, so a caller's single-codec selection must not be left in place while
        this process also answers calls)."""
        key = f"open:{preferred}"
        if self._codec_selected == key or self.ep is None:
            return
        for cid in self.codec_ids:
            self.ep.codecSetPriority(cid, 255 if cid == preferred else self._default_prio.get(cid, 128))
        self._codec_selected = key

    def handle_events(self, timeout_ms: int) -> None:
        if self.ep is not None:
            self.ep.libHandleEvents(timeout_ms)

    def destroy(self) -> None:
        """Account, then the library. Callers must have dropped every Call and media port first."""
        ep = self.ep
        if ep is None:
            return
        try:
            ep.hangupAllCalls()
            deadline = time.monotonic() + 1.0
            # port 0 is the sound device; anything else is a call or a player still going away
            while time.monotonic() < deadline and ep.mediaActivePorts() > 1:
                ep.libHandleEvents(10)
        except Exception:  # noqa: BLE001
            log.exception("hanging up before destroy")
        if self.account is not None:
            try:
                self.account.shutdown()
            except Exception:  # noqa: BLE001
                log.exception("account shutdown")
            self.account = None
        gc.collect()
        try:
            # calls are gone by now: skip pjsua's fixed 1 s wait for responses
            ep.libDestroy(pj.PJSUA_DESTROY_NO_RX_MSG)
        except Exception:  # noqa: BLE001
            log.exception("libDestroy")
        self.ep = None
        self._writer = None  # deleted by libDestroy: never touch it again
