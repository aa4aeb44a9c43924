"""The pjsua2 adapter: the only Callgauge module that imports pjsua2.

Import it only inside a process that is dedicated to SIP/RTP (a media worker, the responder): the
pjsua2 Endpoint is a process singleton, its callbacks run in the thread that polls it, and it must
never live in an asyncio event-loop process. Nothing is created at import time.

Threading model: ``uaConfig.threadCnt = 0`` and ``mainThreadOnly = True``; the owner calls
:meth:`poll` in a loop (``libHandleEvents``), every pjsua2 callback runs inside that call, in the
owner's thread. Media (RTP, the conference bridge clock of the null audio device) runs in pjmedia's
own C threads. Every callback body is wrapped in try/except: a Python exception escaping a SWIG
director callback can abort the process.

Two agents:
* :class:`CallerAgent` places calls (:class:`~callgauge_media.engine.jobs.CallJob`) and reports a
  CallMeasurement for each, through the ``on_result`` callback, exactly once.
* :class:`ResponderAgent` answers every INVITE (180, then the final code after a delay) and echoes
  the audio back.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import re
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TextIO

import pjsua2 as pj
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_platform.recordings import safe_name

from callgauge_media.engine.jobs import (
    OPUS_DEFAULT_RATE,
    OPUS_RATES,
    SRTP_MODES,
    TRANSPORTS,
    CallJob,
    SipAccount,
    TlsFiles,
    UaJob,
    call_transport,
    normalize_destination,
    pick_codec_id,
    sip_user,
)
from callgauge_media.engine.measurement import (
    LADDER_TAIL,
    RawCall,
    StreamSnapshot,
    add_ladder,
    build_measurement,
    failed_measurement,
    keeps_ladder,
    ladder_entry,
)
from callgauge_media.engine.reasons import UserError, is_internal, short_reason, where_of
from callgauge_media.impair.media import CallRelays, RelayHost, rewrite_offer, sdp_ssrc
from callgauge_media.sip.message_log import MessageLog, call_id_of

log = logging.getLogger(__name__)

MAX_CALLS = 4  # default calls of one Endpoint (the pool sets its own; PJSUA_MAX_CALLS of our build is 256)
# PJSUA_MAX_ACC of our build (third_party/pjproject/config_site.h): one account more is an assert()
# in pjsua_acc_add that aborts the process, so the agent counts its accounts (the local one, UA
# jobs, cached caller identities)
MAX_ACCOUNTS = 64
MAX_CONF_PORTS = 1024  # PJSUA_MAX_CONF_PORTS of our build
HANGUP_GRACE_S = 5.0  # after our hang-up, report anyway if pjsua has not disconnected by then
SLOT_WAIT_S = 40.0  # how long a job may wait for pjsua to free a call slot (> SIP timer F, 32 s)
PJ_ETOOMANY = 70010
PJSIP_EBUSY = 171001  # pjsip_regc_send: "regc has another transaction pending"
PLACE_INTERVAL_S = 0.025  # at most 40 new calls per second per worker (see _place_backlog)
TONE_VOLUME = 0  # 0 = pjmedia default tone amplitude
DTMF_DIGIT_S = 0.3  # time one RFC 2833 digit takes to send (pjmedia: 200 ms tone + gap), with margin
DTMF_TAIL_S = 0.7  # after the last digit, before a hang-up: the far side's end-of-event packets
UA_LADDER_MAX = 10  # responses to a UA's REGISTERs kept for its measurement
UNREGISTER_WAIT_S = 5.0  # how long closing a UA waits for the answer to its un-REGISTER
CALLEE_SETUP_S = 40.0  # an incoming call not confirmed (ACK) this long after answering is dropped
FOREVER_MS = 24 * 3600 * 1000
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


def _user_error(exc: BaseException, doing: str, *, where: str = "", transport: str = "") -> str:
    """A short reason for what a user reads (a call's detail, a registration's reason): pjlib's
    error mapped by :func:`~callgauge_media.engine.reasons.short_reason` (``where``: the URI or
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


def _user_reason(code: int, reason: str, where: str, transport: str = "") -> str:
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
    low_cpu: bool = True  # 8 kHz bridge, no echo canceller, linear resampling (README "Performance": CPU per call)
    # connect each call's received audio to the null playback device, so the bridge drains (and
    # decodes) its jitter buffer like a phone; off: RTP and RTCP statistics still flow, less CPU
    drain_rx: bool = True
    user_agent: str = "Callgauge media-engine"
    contact_user: str = "callgauge"
    # SIP ladders from pjsip's message log (every message on the wire: the 401/407 challenges pjsip
    # answers itself and retransmissions too); off: only what pjsua2's callbacks show
    sip_message_log: bool = True
    tls: TlsFiles = TlsFiles()  # SIP over TLS: CA bundle (verification), our certificate and key
    srtp: str = "off"  # SRTP (SDES) of the local account: off | optional | mandatory (the responder's --srtp)


_SRTP_USE = {"off": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL,
             "mandatory": pj.PJMEDIA_SRTP_MANDATORY}
_SRTP_STATUS = re.compile(r"SRTP status: (Active|Not active) Crypto-suite: (\S*)")


def srtp_config(acfg: pj.AccountConfig, mode: str) -> None:
    """SRTP with SDES keys (RFC 4568) on an account's calls: off, optional or mandatory. The keys
    travel in the SDP, in clear unless the SIP hop is TLS; pjsua's default (refuse SRTP unless the
    signalling is TLS) is lifted, so that SRTP over UDP/TCP signalling can be tested too."""
    mc = acfg.mediaConfig
    mc.srtpUse = _SRTP_USE[mode]
    mc.srtpSecureSignaling = 0
    keyings = pj.IntVector()
    keyings.append(pj.PJMEDIA_SRTP_KEYING_SDES)
    mc.srtpOpt.keyings = keyings


def srtp_of(call: pj.Call) -> str:
    """The crypto suite of the call's active SRTP session ("" when its audio is not SRTP), from
    pjsua's call dump (pjsua2 has no other view of the media transport's SRTP state)."""
    try:
        text = call.dump(True, "")
    except pj.Error:
        return ""
    for active, suite in _SRTP_STATUS.findall(text):
        if active == "Active":
            return suite or "unknown"
    return ""


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


class _Endpoint:
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
        if o.srtp != "off":
            srtp_config(acfg, o.srtp)
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
                       srtp: str = "off") -> pj.AccountConfig:
        """A user at a registrar/proxy: digest credentials for any realm, the registrar as outbound
        proxy (loose routing), no NAT tricks (no rport/Contact rewriting, no keep-alives). Over TLS
        the account is bound to the TLS transport of the registrar's ``tls_verify``."""
        acfg = pj.AccountConfig()
        if a.transport == "tls":
            acfg.sipConfig.transportId = self.ensure_tls(a.tls_verify)
        srtp_config(acfg, srtp)
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


# --------------------------------------------------------------------------------------- caller


class _CallerCall(pj.Call):
    """Forwards pjsua2 callbacks to the agent; never lets an exception escape. ``call_id`` is
    pjsua's id of an incoming call (callee side), or -1 for a call we place."""

    def __init__(self, account: pj.Account, agent: CallerAgent, run: _CallRun, call_id: int = -1) -> None:
        if call_id >= 0:
            super().__init__(account, call_id)
        else:
            super().__init__(account)
        self._agent = agent
        self._run = run

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        try:
            if self._run.ua is not None:  # callee: what it received is checked against expect_dtmf
                self._run.raw.dtmf_received += str(prm.digit)
        except BaseException as exc:  # noqa: BLE001
            self._run.raw.notes.append(f"received DTMF: {_user_error(exc, 'onDtmfDigit')}")

    def onCallTsxState(self, prm: pj.OnCallTsxStateParam) -> None:
        try:
            self._agent._on_tsx(self._run, prm.e)
        except BaseException as exc:  # noqa: BLE001
            self._run.raw.notes.append(f"SIP ladder: {_user_error(exc, 'onCallTsxState')}")

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        try:
            self._agent._on_tsx(self._run, prm.e)  # responses: pjsua reports them here, not as tsx states
        except BaseException as exc:  # noqa: BLE001
            self._run.raw.notes.append(f"SIP ladder: {_user_error(exc, 'onCallState ladder')}")
        try:
            self._agent._on_call_state(self._run, self)
        except BaseException as exc:  # noqa: BLE001
            self._run.fail(f"engine error: {_user_error(exc, 'onCallState')}")

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        try:
            self._agent._on_media_state(self._run, self)
        except BaseException as exc:  # noqa: BLE001
            self._run.fail(f"audio setup: {_user_error(exc, 'onCallMediaState')}")

    def onCallSdpCreated(self, prm: pj.OnCallSdpCreatedParam) -> None:
        try:
            self._agent._on_sdp_created(self._run, prm)
        except BaseException as exc:  # noqa: BLE001
            self._run.fail(f"impairment relay: {_user_error(exc, 'onCallSdpCreated')}")

    def onStreamDestroyed(self, prm: pj.OnStreamDestroyedParam) -> None:
        try:
            self._agent._on_stream_destroyed(self._run, prm.streamIdx)
        except BaseException as exc:  # noqa: BLE001
            self._run.raw.notes.append(f"RTP statistics: {_user_error(exc, 'onStreamDestroyed')}")


class _UaAccount(pj.Account):
    """An account of a UA job: forwards registration state and incoming calls to the agent."""

    def __init__(self, agent: CallerAgent, ua: _Ua) -> None:
        super().__init__()
        self._agent = agent
        self._ua = ua

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        try:
            self._agent._on_reg_state(self._ua, prm)
        except BaseException:  # noqa: BLE001
            log.exception("onRegState")

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        try:
            self._agent._on_incoming(self._ua, prm)
        except BaseException:  # noqa: BLE001
            log.exception("onIncomingCall")


class _Ua:
    """A UA job's state in the worker."""

    def __init__(self, token: int, job: UaJob) -> None:
        self.token = token
        self.job = job
        self.account: _UaAccount | None = None
        self.t0 = time.monotonic()  # the first REGISTER goes out inside Account.create, right after
        self.started_wall = time.time()
        self.t_registered: float | None = None  # first 2xx to a REGISTER (after any digest challenge)
        self.sip_call_id = ""
        self.reg_reported = False
        self.registered = False
        self.registrations = 0  # successful REGISTER transactions (the first and every refresh)
        self.refresh_failures = 0
        self.expires = 0
        self.last_code = 0
        self.last_reason = ""
        self.closing = False
        self.close_at = 0.0
        self.unreg_sent = False
        self.unreg_busy = False  # the un-REGISTER met a pending refresh (PJSIP_EBUSY): try again
        self.unreg_code: int | None = None
        self.unreg_reason = ""
        self.kept = False  # keep_registered: a last refresh went out and the account went without un-REGISTER
        self.answered = 0
        self.rejected = 0
        self.seq = 0
        self.ladder: list[tuple] = []  # without the message log: the responses onRegState showed
        self.reg_held = False  # sip_call_id is held in the message log (until the UA ends)

    def report(self) -> dict:
        return {
            "registered": self.registered, "registrations": self.registrations,
            "refresh_failures": self.refresh_failures, "expires": self.expires,
            "code": self.last_code, "reason": self.last_reason,
            "unregistered": self.unreg_code is not None and 200 <= self.unreg_code < 300,
            "unregister_code": self.unreg_code or 0, "unregister_reason": self.unreg_reason,
            "kept": self.kept,
            "register_time_ms": (round((self.t_registered - self.t0) * 1000.0, 3)
                                 if self.t_registered is not None else 0.0),
            "sip_call_id": self.sip_call_id, "started_wall": self.started_wall, "ended_wall": time.time(),
            "ladder": list(self.ladder),
            "answered": self.answered, "rejected": self.rejected,
        }


class _CallRun:
    __slots__ = (
        "token", "job", "raw", "call", "source", "tone", "aud", "aud_port", "media_idx",
        "disconnected", "hangup_at", "reported", "error", "setup_deadline", "stats_final",
        "ua", "answer_due", "dtmf_done", "player", "recorder", "relays",
    )

    def __init__(self, token: int, job: CallJob, ua: _Ua | None = None) -> None:
        self.token = token
        self.job = job
        self.raw = RawCall(job=job)
        self.ua = ua  # the answering UA of an incoming call (callee side), else None
        self.answer_due: float | None = None  # callee: when to send 200
        self.dtmf_done = not job.dtmf
        self.call: _CallerCall | None = None
        self.source: pj.AudioMedia | None = None  # what we send: tone generator or null capture
        self.tone: pj.ToneGenerator | None = None
        self.player: pj.AudioMediaPlayer | None = None  # job.play_file, in place of the tone
        self.recorder: pj.AudioMediaRecorder | None = None  # job.record_path: what this side receives
        self.aud: pj.AudioMedia | None = None
        self.aud_port = -1
        self.media_idx: int | None = None
        self.disconnected = False
        self.hangup_at: float | None = None
        self.reported = False
        self.error = ""
        self.setup_deadline = 0.0
        self.stats_final = False  # the snapshot taken before our hang-up is the one to keep
        self.relays: CallRelays | None = None  # job.impairment: the relays in front of our RTP/RTCP

    def fail(self, text: str) -> None:
        if not self.error:
            self.error = text
        self.raw.notes.append(text)


class CallerAgent:
    """Places calls on one pjsua2 Endpoint and measures them.

    Not thread-safe: construct, :meth:`start`, :meth:`submit`, :meth:`poll` and :meth:`shutdown`
    from one thread. Each submitted job produces exactly one ``on_result(token, measurement)``,
    from inside :meth:`submit`, :meth:`poll` or :meth:`shutdown`.
    """

    def __init__(
        self,
        opts: EndpointOptions,
        on_result: Callable[[int, m_pb2.CallMeasurement], None],
        on_answer: Callable[[int], None] | None = None,
        on_event: Callable[[str, int, object], None] | None = None,
    ) -> None:
        self._opts = opts
        self._on_result = on_result
        self._on_answer = on_answer  # told once per call, when its 2xx arrives
        # UA jobs: on_event("ua_event", token, dict) for registration outcomes,
        # ("ua_call", token, CallMeasurement) per answered call, ("ua_done", token, dict) once at the end
        self._on_event = on_event or (lambda kind, token, payload: None)
        self._uas: dict[int, _Ua] = {}
        self._caller_accounts: dict[tuple, pj.Account] = {}
        self._callee_keys = 0
        self._rejected: list[pj.Call] = []
        self._answer_codec: str | None = None
        self._endpoint = _Endpoint(opts)
        self._runs: dict[int, _CallRun] = {}
        self._lingering: list[_CallRun] = []  # reported, but pjsua still holds the call slot
        # jobs waiting for a pjsua call slot: (token, job, monotonic time of the first try or None)
        self._backlog: deque[tuple[int, CallJob, float | None]] = deque()
        self._slot_retry_at = 0.0
        self._playback: pj.AudioMedia | None = None
        self._capture: pj.AudioMedia | None = None
        self._started = False
        self._creating: _Ua | None = None  # the UA whose account is being created (its REGISTER goes out)
        self._relay_host: RelayHost | None = None  # impaired calls' relays (a thread), made on first use

    # ---- lifecycle
    def start(self) -> str:
        """Create the Endpoint; returns the SIP address ``host:port`` it listens on."""
        self._endpoint.start()
        adm = self._endpoint.ep.audDevManager()
        self._playback = adm.getPlaybackDevMedia()
        self._capture = adm.getCaptureDevMedia()
        self._started = True
        return f"{self._endpoint.host_for_uri}:{self._endpoint.sip_port}"

    @property
    def codec_ids(self) -> list[str]:
        return list(self._endpoint.codec_ids)

    @property
    def messages(self) -> MessageLog | None:
        """pjsip's SIP messages by Call-ID (None when ``sip_message_log`` is off)."""
        return self._endpoint.messages

    @property
    def load(self) -> int:
        """Jobs not reported yet (placed or waiting for a pjsua call slot)."""
        return len(self._runs) + len(self._backlog)

    def _slots_used(self) -> int:
        return len(self._runs) + len(self._lingering)

    # ---- jobs
    def submit(self, token: int, job: CallJob) -> None:
        if not self._started:
            self._report_failed(token, job, "media worker not started")
            return
        self._backlog.append((token, job, None))
        self._place_backlog()

    def request_hangup(self, token: int, reason: str = "hung up on request") -> bool:
        for i, (tok, job, _) in enumerate(self._backlog):
            if tok == token:
                del self._backlog[i]
                self._report_failed(token, job, f"not placed: {reason}")
                return True
        run = self._runs.get(token)
        if run is None or run.hangup_at is not None:
            return False
        self._hangup(run, reason)
        return True

    # ---- UA jobs (register / wait_for_calls)
    def submit_ua(self, token: int, job: UaJob) -> None:
        """Create the UA's account (which sends the first REGISTER). Exactly one
        ("ua_event", token, {"event": "registered" | "ready" | "failed", ...}) follows, later
        ("ua_call", ...) per answered call, and ("ua_done", token, report) after :meth:`close_ua`."""
        ua = _Ua(token, job)
        if not self._started:
            self._ua_failed(ua, 0, "media worker not started", done=True)
            return
        a = job.account
        if a.transport not in TRANSPORTS:
            self._ua_failed(ua, 0, f"unsupported transport {a.transport!r} (udp, tcp, tls)", done=True)
            return
        if (job.srtp or "off") not in SRTP_MODES:
            self._ua_failed(ua, 0, f"unknown srtp mode {job.srtp!r} ({', '.join(SRTP_MODES)})", done=True)
            return
        if a.transport == "tcp" and not self._endpoint.ensure_tcp():
            self._ua_failed(ua, 0, "no TCP transport in this media worker", done=True)
            return
        if not self._make_account_room():
            self._ua_failed(ua, 0, f"this media worker has no room for another SIP user (pjsua allows "
                                   f"{MAX_ACCOUNTS} accounts per process)", done=True)
            return
        try:
            acfg = self._endpoint.account_config(a, register=job.register, regexpire=job.regexpire,
                                                 srtp=job.srtp or "off")
            acc = _UaAccount(self, ua)
            ua.account = acc
            self._uas[token] = ua
            if job.answer:
                self._answer_codec = pick_codec_id(self._endpoint.codec_ids, job.codec) if job.codec else None
                self._endpoint.open_codecs(self._answer_codec)
            ua.t0 = time.monotonic()
            ua.started_wall = time.time()
            msgs = self._endpoint.messages
            if msgs is not None:
                msgs.last_register = ""
            self._creating = ua
            try:
                acc.create(acfg, True)  # sends the first REGISTER; onRegState may already fire in here
            finally:
                self._creating = None
            if msgs is not None and job.register and msgs.last_register:
                self._hold_registration(ua, msgs.last_register)
        except Exception as exc:  # noqa: BLE001
            self._uas.pop(token, None)
            self._release_registration(ua)
            ua.account = None
            self._ua_failed(ua, 0, _user_error(exc, "account not created", where=job.account.registrar,
                                               transport=job.account.transport), done=True)
            return
        if not job.register and not ua.reg_reported:
            ua.reg_reported = True
            self._emit("ua_event", token, {"event": "ready", "code": 0, "reason": "not registering"})

    def close_ua(self, token: int, reason: str = "the action ended") -> None:
        """Hang up the UA's calls, unregister (or, for a job with ``unregister`` false, keep the
        binding: see :meth:`_shutdown_keeping_binding`); ("ua_done", ...) follows."""
        ua = self._uas.get(token)
        if ua is None or ua.closing:
            return
        ua.closing = True
        ua.close_at = time.monotonic()
        for run in list(self._runs.values()):
            if run.ua is ua and run.hangup_at is None and not run.disconnected:
                self._hangup(run, reason)
        if ua.registered and ua.job.unregister and ua.account is not None:
            self._unregister(ua)
        self._try_close(ua, time.monotonic())

    def _unregister(self, ua: _Ua) -> None:
        """Send the un-REGISTER; when a refresh is in flight (PJSIP_EBUSY) :meth:`_try_close` tries
        again, since deleting the account then would leave the binding in place."""
        try:
            ua.account.setRegistration(False)
            ua.unreg_sent = True
            ua.unreg_reason = ""
        except pj.Error as exc:
            ua.unreg_busy = int(getattr(exc, "status", 0) or 0) == PJSIP_EBUSY
            ua.unreg_reason = f"un-REGISTER not sent: {_user_error(exc, 'un-REGISTER', where=ua.job.account.registrar, transport=ua.job.account.transport)}"

    def _try_close(self, ua: _Ua, now: float) -> None:
        if ua.unreg_busy and not ua.unreg_sent and ua.account is not None and now - ua.close_at < UNREGISTER_WAIT_S:
            ua.unreg_busy = False
            self._unregister(ua)
        calls_left = any(r.ua is ua for r in self._runs.values()) or any(r.ua is ua for r in self._lingering)
        waiting_unreg = ((ua.unreg_sent and ua.unreg_code is None) or ua.unreg_busy) and now - ua.close_at < UNREGISTER_WAIT_S
        if (calls_left or waiting_unreg) and now - ua.close_at < UNREGISTER_WAIT_S + HANGUP_GRACE_S:
            return
        self._uas.pop(ua.token, None)
        if ua.unreg_sent and ua.unreg_code is None:
            ua.unreg_reason = ua.unreg_reason or f"no answer to the un-REGISTER within {UNREGISTER_WAIT_S:.0f} s"
        acc, ua.account = ua.account, None
        if acc is not None:
            if ua.registered and not ua.job.unregister and not ua.unreg_sent:
                self._shutdown_keeping_binding(ua, acc)
            else:
                try:
                    acc.shutdown()
                except Exception:  # noqa: BLE001
                    log.exception("UA account shutdown")
        if not self._answering():
            self._answer_codec = None
        report = ua.report()
        if self._endpoint.messages is not None and (ua.refresh_failures or not ua.registrations):
            report["ladder"] = self._reg_ladder(ua)[0]  # for its RegistrationMeasurement: it failed
        self._release_registration(ua)
        self._emit("ua_done", ua.token, report)

    def _shutdown_keeping_binding(self, ua: _Ua, acc: pj.Account) -> None:
        """Delete the account without un-REGISTERing (``keep_registered``).

        pjsua_acc_del always tries an un-REGISTER, but pjsip_regc sends nothing while another
        REGISTER transaction of the same client is pending (PJSIP_EBUSY), and pjsua_acc_del then
        destroys the client anyway. So: a last refresh (``setRegistration(True)``), and the account
        deleted in the same turn, before any answer can arrive. The refresh renews the binding for
        ``regexpire`` seconds; its answer is not seen (the client's callback is gone); the registrar
        drops the binding when it expires. Checked against Kamailio in
        tests/integration/test_media_sip.py."""
        note, status = "", 0
        try:
            acc.setRegistration(True)
        except pj.Error as exc:
            # EBUSY: a refresh is in flight already, which blocks the un-REGISTER just the same
            note, status = _user_error(exc, "last refresh", where=ua.job.account.registrar,
                                       transport=ua.job.account.transport), int(getattr(exc, "status", 0) or 0)
        busy = not note or status == PJSIP_EBUSY
        try:
            acc.shutdown()
        except Exception:  # noqa: BLE001
            log.exception("UA account shutdown")
        if busy:
            ua.kept = True
            ua.unreg_reason = (f"binding kept until it expires (a last refresh asked for {ua.job.regexpire} s; "
                               f"no un-REGISTER sent)")
        else:
            ua.unreg_reason = f"refresh not sent ({note}): pjsua sent its un-REGISTER on delete, answer not seen"

    def _answering(self) -> bool:
        return any(ua.job.answer and not ua.closing for ua in self._uas.values())

    def _hold_registration(self, ua: _Ua, call_id: str) -> None:
        msgs = self._endpoint.messages
        if msgs is not None and call_id and not ua.reg_held:
            ua.sip_call_id = ua.sip_call_id or call_id
            ua.reg_held = True
            msgs.hold(call_id)

    def _release_registration(self, ua: _Ua) -> None:
        msgs = self._endpoint.messages
        if msgs is not None and ua.reg_held:
            msgs.release(ua.sip_call_id)
        ua.reg_held = False

    def _reg_ladder(self, ua: _Ua) -> tuple[list[tuple], int]:
        """The registration's SIP messages so far (REGISTER, challenge, REGISTER with credentials,
        the answer; refreshes), or what onRegState showed when the message log is off."""
        msgs = self._endpoint.messages
        if msgs is None:
            return list(ua.ladder), 0
        try:
            return msgs.ladder(ua.sip_call_id, t0=ua.t0) if ua.reg_held else ([], 0)
        except Exception:  # noqa: BLE001 - the ladder is a nicety
            log.exception("registration ladder")
            return [], 0

    def _ua_failed(self, ua: _Ua, code: int, reason: str, *, done: bool = False) -> None:
        ua.last_code, ua.last_reason = code, reason
        if not ua.reg_reported:
            ua.reg_reported = True
            ladder, left_out = self._reg_ladder(ua)
            self._emit("ua_event", ua.token, {"event": "failed", "code": code, "reason": reason,
                                               "ladder": ladder, "ladder_left_out": left_out,
                                               "call_id": ua.sip_call_id})
        if done:
            self._emit("ua_done", ua.token, ua.report())

    def _on_reg_state(self, ua: _Ua, prm: pj.OnRegStateParam) -> None:
        code, reason, expires = int(prm.code), str(prm.reason), int(prm.expiration)
        try:
            msgs = self._endpoint.messages
            if msgs is not None and not ua.reg_held:
                if self._creating is ua and msgs.last_register:  # failed at once, inside acc.create
                    self._hold_registration(ua, msgs.last_register)
            text = prm.rdata.wholeMsg
            if text:
                if msgs is not None:
                    if not ua.reg_held:  # the REGISTER went out after acc.create returned
                        self._hold_registration(ua, call_id_of(text))
                else:  # the registrar's last responses (pjsip answers 401/407 challenges unseen)
                    ua.ladder.append(ladder_entry((time.monotonic() - ua.t0) * 1000.0, "in", text,
                                                  str(prm.rdata.srcAddress)))
                    del ua.ladder[:-UA_LADDER_MAX]
        except Exception:  # noqa: BLE001 - the ladder is a nicety
            pass
        if not ua.sip_call_id:
            try:
                ua.sip_call_id = call_id_of(prm.rdata.wholeMsg or "")
            except Exception:  # noqa: BLE001
                pass
        if ua.closing and ua.unreg_sent:  # the answer to our un-REGISTER
            ua.unreg_code = code
            ua.unreg_reason = _user_reason(code, reason, ua.job.account.registrar, ua.job.account.transport)
            ua.registered = False
            return
        if 200 <= code < 300 and expires > 0:
            if ua.t_registered is None:
                ua.t_registered = time.monotonic()
            ua.registrations += 1
            ua.expires = expires
            ua.last_code, ua.last_reason = code, reason
            ua.registered = True
            if not ua.reg_reported:
                ua.reg_reported = True
                self._emit("ua_event", ua.token, {"event": "registered", "code": code, "reason": reason,
                                                   "expires": expires})
            return
        if is_internal(reason) or (code == 0 and prm.status != 0):  # the SIP stack's own error, not the registrar's
            log.warning("registration of %s: %s %s (pjsip status %s)", ua.job.account.aor, code, reason, prm.status)
            a = ua.job.account
            host, port, t = where_of(a.registrar, a.transport)
            reason = short_reason(reason, int(prm.status), host=host, port=port, transport=t)
        if ua.reg_reported:
            ua.refresh_failures += 1
            ua.registered = False
            ua.last_code, ua.last_reason = code, reason
            ladder, left_out = self._reg_ladder(ua) if ua.refresh_failures == 1 else ([], 0)
            self._emit("ua_event", ua.token, {"event": "lost", "code": code, "reason": reason,
                                               "ladder": ladder, "ladder_left_out": left_out,
                                               "call_id": ua.sip_call_id})
        else:
            self._ua_failed(ua, code, reason)

    def _on_incoming(self, ua: _Ua, prm: pj.OnIncomingCallParam) -> None:
        now = time.monotonic()
        if not ua.job.answer:
            # pjsua gives the call to the first account of that user: when a wait_for_calls of the
            # same user lives here too, it answers
            for other in self._uas.values():
                o = other.job
                if (o.answer and not other.closing and o.account.username == ua.job.account.username
                        and o.account.domain == ua.job.account.domain):
                    ua = other
                    break
        job = ua.job
        ua.seq += 1
        self._callee_keys -= 1
        hangup_ms = job.duration_ms if job.hangup_by == "callee" and job.duration_ms > 0 else FOREVER_MS
        cjob = CallJob(
            call_id=f"{job.ua_id}:in{ua.seq}", destination="", duration_ms=hangup_ms, tone_hz=job.tone_hz,
            codec=job.codec, setup_timeout_ms=int(CALLEE_SETUP_S * 1000) + job.answer_delay_ms,
            from_user=job.account.username, transport=job.account.transport,
            step=job.step, action=job.action, index=job.index,
            play_file=job.play_file, play_loop=job.play_loop, srtp=job.srtp or "off",
            record_path=f"{job.record_dir}/{safe_name(f'{job.ua_id}:in{ua.seq}')}.callee.wav"
            if job.record_dir else "",
        )
        run = _CallRun(self._callee_keys, cjob, ua)
        raw = run.raw
        raw.role = "callee"
        raw.expect_dtmf = job.expect_dtmf
        raw.started_wall = time.time()
        raw.t_invite = now
        msgs = self._endpoint.messages
        if msgs is None:
            try:
                add_ladder(raw, ladder_entry(0.0, "in", prm.rdata.wholeMsg, str(prm.rdata.srcAddress)))
            except Exception:  # noqa: BLE001
                pass
        call = _CallerCall(ua.account, self, run, prm.callId)
        run.call = call
        try:
            ci = call.getInfo()
            raw.sip_call_id = ci.callIdString
            run.job = raw.job = replace(cjob, destination=ci.remoteUri)
        except pj.Error:
            pass
        busy = ua.closing or not job.answer or (job.max_calls and ua.answered >= job.max_calls)
        if msgs is not None and not busy:
            msgs.hold(raw.sip_call_id)  # released in _finish
        if busy:
            ua.rejected += 1
            op = pj.CallOpParam()
            op.statusCode = 486
            try:
                call.hangup(op)
            except pj.Error:
                pass
            self._rejected.append(call)  # keep the object until pjsua lets the call go
            return
        self._runs[run.token] = run
        run.setup_deadline = now + job.answer_delay_ms / 1000.0 + CALLEE_SETUP_S
        op = pj.CallOpParam()
        op.statusCode = 180
        call.answer(op)
        run.answer_due = now + max(0, job.answer_delay_ms) / 1000.0

    @staticmethod
    def _account_key(a: SipAccount, srtp: str = "off") -> tuple:
        return (a.username, a.domain, a.registrar, a.transport, a.auth_username, a.password, a.tls_verify, srtp)

    @classmethod
    def _job_key(cls, job: CallJob) -> tuple:
        """The cached account a caller job uses: its SIP user's, or a local one per (transport
        class, srtp) for direct dials that need TLS or SRTP."""
        srtp = job.srtp or "off"
        if job.account is not None:
            return cls._account_key(job.account, srtp)
        return ("local", call_transport(job) == "tls", srtp)

    def _accounts_used(self) -> int:
        return 1 + sum(1 for ua in self._uas.values() if ua.account is not None) + len(self._caller_accounts)

    def _make_account_room(self) -> bool:
        """True when one more pjsua account may be created; drops idle cached caller accounts
        (no live call uses them) to make room."""
        if self._accounts_used() < MAX_ACCOUNTS:
            return True
        busy = {self._job_key(r.job) for r in (*self._runs.values(), *self._lingering) if r.ua is None}
        for key in list(self._caller_accounts):
            if key in busy:
                continue
            acc = self._caller_accounts.pop(key)
            try:
                acc.shutdown()
            except Exception:  # noqa: BLE001
                log.exception("caller account shutdown")
            if self._accounts_used() < MAX_ACCOUNTS:
                return True
        return False

    def _caller_account(self, job: CallJob) -> pj.Account:
        """A non-registering account per caller identity (digest credentials, outbound proxy) and
        srtp mode, created on first use and cached (idle ones are dropped when pjsua's account
        table is full). Direct dials use the local account, or for TLS or SRTP a local one bound to
        the verifying TLS transport and/or with SRTP on."""
        a, srtp = job.account, job.srtp or "off"
        ep = self._endpoint
        key = self._job_key(job)
        if a is None and key == ("local", False, "off"):
            return ep.account
        acc = self._caller_accounts.get(key)
        if acc is None:
            if a is not None and a.transport == "tcp" and not ep.ensure_tcp():
                raise UserError("no TCP transport in this media worker")
            if not self._make_account_room():
                raise UserError(f"this media worker has no room for another SIP identity (pjsua allows "
                                   f"{MAX_ACCOUNTS} accounts per process, all in use)")
            if a is not None:
                acfg = ep.account_config(a, register=False, srtp=srtp)
            else:
                acfg = pj.AccountConfig()
                acfg.idUri = f"sip:{self._opts.contact_user}@{ep.host_for_uri}:{ep.sip_port}"
                if key[1]:  # TLS: the transport that checks certificates (sips: and ;transport=tls dials)
                    acfg.sipConfig.transportId = ep.ensure_tls(True)
                srtp_config(acfg, srtp)
                ep.media_transport(acfg)
            acc = pj.Account()
            acc.create(acfg, False)
            self._caller_accounts[key] = acc
        return acc

    def _emit(self, kind: str, token: int, payload: object) -> None:
        try:
            self._on_event(kind, token, payload)
        except Exception:  # noqa: BLE001 - a broken consumer must not kill the worker
            log.exception("delivering %s of UA %s", kind, token)

    def _report_failed(self, token: int, job: CallJob, detail: str, outcome: int = m_pb2.CALL_FAILED) -> None:
        self._deliver(token, failed_measurement(job, detail, outcome=outcome))

    def _deliver(self, token: int, m: m_pb2.CallMeasurement) -> None:
        try:
            self._on_result(token, m)
        except Exception:  # noqa: BLE001 - a broken consumer must not kill the worker
            log.exception("delivering the result of call %s", m.call_id)

    def _place_backlog(self) -> None:
        now = time.monotonic()
        if now < self._slot_retry_at:
            return
        while self._backlog and self._slots_used() < self._opts.max_calls:
            token, job, first_try = self._backlog.popleft()
            if self._place(token, job, first_try):
                # pace new calls: each one registers RTP/RTCP sockets in pjmedia's select ioqueue
                # (64 handles), whose unregistered keys come back only after 500 ms; hundreds of
                # calls per second on one worker exhaust it and pjlib asserts (abort)
                self._slot_retry_at = time.monotonic() + PLACE_INTERVAL_S
                return
            # pjsua frees a slot a few ms after the disconnect (when the BYE transaction ends)
            first_try = first_try if first_try is not None else now
            if now - first_try > SLOT_WAIT_S:
                self._report_failed(token, job, f"no free pjsua call slot for {SLOT_WAIT_S:.0f} s")
                continue
            self._backlog.appendleft((token, job, first_try))
            self._slot_retry_at = now + 0.005
            return

    def _place(self, token: int, job: CallJob, first_try: float | None = None) -> bool:
        """Place the call or report why not; False when pjsua has no free call slot yet."""
        ep = self._endpoint
        transport = (job.transport or "udp").lower()
        if transport not in TRANSPORTS:
            self._report_failed(token, job, f"unsupported transport {job.transport!r} (udp, tcp, tls)")
            return True
        if (job.srtp or "off") not in SRTP_MODES:
            self._report_failed(token, job, f"unknown srtp mode {job.srtp!r} ({', '.join(SRTP_MODES)})")
            return True
        if transport == "tcp" and not ep.ensure_tcp():
            self._report_failed(token, job, "no TCP transport in this media worker")
            return True
        codec_id = pick_codec_id(ep.codec_ids, job.codec)
        if codec_id is None:
            names = sorted({c.split("/", 1)[0] for c in ep.codec_ids})
            self._report_failed(
                token, job, f"codec {job.codec!r} is not available; this engine has {', '.join(names)}",
                outcome=m_pb2.NEGOTIATION_FAILED,
            )
            return True
        dest = normalize_destination(job.destination, transport)
        if ep.ep.utilVerifySipUri(dest) != 0:
            self._report_failed(token, job, f"invalid SIP URI {dest!r}")
            return True
        run = _CallRun(token, job)
        try:
            account = self._caller_account(job)
            ep.select_codec(codec_id)
            if codec_id.lower().startswith("opus/"):
                ep.set_opus_rate(OPUS_RATES.get(job.audio_bandwidth, OPUS_DEFAULT_RATE))
            call = _CallerCall(account, self, run)
            run.call = call
            prm = pj.CallOpParam(True)
            if job.account is None:
                prm.txOption.localUri = f"sip:{sip_user(job.from_user)}@{ep.host_for_uri}:{ep.sip_port}"
            self._runs[token] = run  # callbacks may fire inside makeCall
            run.raw.started_wall = time.time()
            run.raw.t_invite = time.monotonic()
            run.setup_deadline = run.raw.t_invite + max(0, job.setup_timeout_ms) / 1000.0
            try:
                call.makeCall(dest, prm)
            finally:
                if self._answering():
                    ep.open_codecs(self._answer_codec)
            try:
                run.raw.sip_call_id = call.getInfo().callIdString
            except pj.Error:
                pass
            if ep.messages is not None:
                ep.messages.hold(run.raw.sip_call_id)  # released in _finish
        except Exception as exc:  # noqa: BLE001
            self._runs.pop(token, None)
            started = run.raw.started_wall
            self._drop_media(run)
            run.call = None
            if isinstance(exc, pj.Error) and exc.status == PJ_ETOOMANY:
                return False
            where = job.account.registrar if job.account is not None else dest
            why = _user_error(exc, f"INVITE to {dest} not sent", where=where,
                              transport=job.account.transport if job.account is not None else transport)
            m = failed_measurement(job, f"INVITE not sent: {why}", started_wall=started)
            m.transport = call_transport(job)
            self._deliver(token, m)
            return True
        if first_try is not None:
            run.raw.notes.append(f"waited {1000 * (run.raw.t_invite - first_try):.0f} ms for a pjsua call slot")
        return True

    # ---- callbacks (run inside libHandleEvents / makeCall)
    def _on_call_state(self, run: _CallRun, call: _CallerCall) -> None:
        ci = call.getInfo()
        now = time.monotonic()
        raw = run.raw
        st = ci.state
        if st == pj.PJSIP_INV_STATE_EARLY:
            if raw.t_first_response is None:
                raw.t_first_response = now
                raw.first_code = ci.lastStatusCode
                raw.first_reason = ci.lastReason
            elif raw.first_code < 180 <= ci.lastStatusCode:
                raw.first_code, raw.first_reason = ci.lastStatusCode, ci.lastReason
        elif st in (pj.PJSIP_INV_STATE_CONNECTING, pj.PJSIP_INV_STATE_CONFIRMED):
            if raw.t_answer is None and not run.disconnected:
                raw.t_answer = now
                raw.answer_code = ci.lastStatusCode or 200
                raw.answer_reason = ci.lastReason
                if raw.t_first_response is None:
                    raw.t_first_response = now
                if self._on_answer is not None and run.ua is None:  # our callees' calls are not metered
                    try:
                        self._on_answer(run.token)
                    except Exception:  # noqa: BLE001 - a broken listener must not break the call
                        log.exception("on_answer")
        elif st == pj.PJSIP_INV_STATE_DISCONNECTED:
            if run.disconnected:
                return
            run.disconnected = True
            raw.final_code = ci.lastStatusCode
            raw.final_reason = ci.lastReason
            raw.ended_wall = time.time()
            if raw.t_end is None:
                raw.t_end = now
            if run.hangup_at is None:
                raw.remote_hangup = raw.t_answer is not None
                if raw.t_first_response is None and ci.lastStatusCode >= 200:
                    raw.t_first_response = now
            if not run.stats_final:
                self._snapshot(run)  # the stream may still be up here; onStreamDestroyed also tries

    def _on_media_state(self, run: _CallRun, call: _CallerCall) -> None:
        if run.relays is not None and self._relay_host is not None and not run.relays.primed:
            self._prime_relays(run, call)  # first thing: both ends learn the relay's address
        ci = call.getInfo()
        for idx, mi in enumerate(ci.media):
            if mi.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            if mi.status not in (
                pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_LOCAL_HOLD, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD
            ):
                continue
            aud = call.getAudioMedia(idx)
            run.media_idx = idx
            run.raw.media_active = True
            try:
                si = call.getStreamInfo(idx)
                run.raw.codec = si.codecName
                run.raw.codec_clock_hz = int(si.audCodecParam.info.clockRate or si.codecClockRate or 0)
            except pj.Error:
                pass
            if (run.job.srtp or "off") != "off" and not run.raw.srtp_suite:
                run.raw.srtp_suite = srtp_of(call)
                run.raw.srtp_keying = "sdes" if run.raw.srtp_suite else ""
            port = aud.getPortId()
            if port == run.aud_port:
                return
            run.aud = aud
            run.aud_port = port
            self._attach_audio_files(run, aud)
            if run.source is None:
                if run.player is not None:
                    run.source = run.player
                elif run.job.tone_hz > 0:
                    tone = pj.ToneGenerator()
                    tone.createToneGenerator(8000 if self._opts.low_cpu else 16000, 1)
                    desc = pj.ToneDesc()
                    desc.freq1 = int(run.job.tone_hz)
                    desc.freq2 = 0
                    desc.on_msec = 1000
                    desc.off_msec = 0
                    desc.volume = TONE_VOLUME
                    tones = pj.ToneDescVector()
                    tones.append(desc)
                    tone.play(tones, True)
                    run.tone = tone
                    run.source = tone
                elif run.ua is None or run.ua.job.silent:
                    run.source = self._capture  # null device capture: continuous silence
            if run.ua is not None and run.tone is None and run.player is None and not run.ua.job.silent:
                run.source = aud  # callee without a tone: echo what arrives
                aud.startTransmit(aud)
                return
            run.source.startTransmit(aud)
            if self._opts.drain_rx:
                aud.startTransmit(self._playback)  # so the jitter buffer is drained like a real phone
            return

    def _on_sdp_created(self, run: _CallRun, prm: pj.OnCallSdpCreatedParam) -> None:
        """An impaired call's offer (and any later SDP of ours) names its relays' ports instead of
        our RTP/RTCP ports; the relays are opened on the first one (impair/media.py)."""
        imp = run.job.impairment
        if imp is None or run.ua is not None:
            return
        sdp = prm.sdp.wholeSdp
        if run.relays is None:
            probe = rewrite_offer(sdp, 0, 0)
            if probe is None:
                return
            _, rtp, rtcp = probe
            if self._relay_host is None:
                self._relay_host = RelayHost()
            host = self._endpoint.host_for_uri  # where our RTP socket is; the relays listen where it does
            run.relays = self._relay_host.open(self._opts.bind_host or "0.0.0.0", (host, rtp), (host, rtcp), imp)
        if run.relays.ssrc is None:
            run.relays.ssrc = sdp_ssrc(sdp)
        out = rewrite_offer(sdp, run.relays.rtp_port, run.relays.rtcp_port)
        if out is not None:
            prm.sdp.wholeSdp = out[0]

    def _prime_relays(self, run: _CallRun, call: _CallerCall) -> None:
        far_end = None
        ci = call.getInfo()  # kept: its media vector lives in it
        for idx, mi in enumerate(ci.media):
            if mi.type == pj.PJMEDIA_TYPE_AUDIO:
                try:
                    host, _, port = call.getStreamInfo(idx).remoteRtpAddress.rpartition(":")
                    far_end = (host.strip("[]"), int(port))
                except (pj.Error, ValueError):
                    pass  # no greeting to the far end; the replay to us still helps
                break
        run.relays.primed = True
        self._relay_host.prime(run.relays, far_end)

    def _close_relays(self, run: _CallRun) -> None:
        """Stop the call's relays and put what they did into its RawCall."""
        relays = run.relays
        if relays is None or relays.closed or self._relay_host is None:
            return
        rx, tx = relays.counts()
        self._relay_host.close(relays)
        run.raw.impairment = {"rx_packets": rx.received, "rx_dropped": rx.lost, "rx_forwarded": rx.forwarded,
                              "tx_packets": tx.received, "tx_dropped": tx.lost}

    def _attach_audio_files(self, run: _CallRun, aud: pj.AudioMedia) -> None:
        """The job's WAV player (made once per call) and its recorder of what arrives."""
        job = run.job
        try:
            if job.play_file and run.player is None:
                player = pj.AudioMediaPlayer()
                player.createPlayer(job.play_file, 0 if job.play_loop else pj.PJMEDIA_FILE_NO_LOOP)
                run.player = player
            if job.record_path:
                if run.recorder is None:
                    rec = pj.AudioMediaRecorder()
                    rec.createRecorder(job.record_path)
                    run.recorder = rec
                aud.startTransmit(run.recorder)
        except pj.Error as exc:
            run.fail(f"audio file: {_user_error(exc, 'audio file')}")

    def sample_stats(self) -> list[tuple[int, int, int, float]]:
        """``(token, rx_packets, rx_lost, jitter_ms)`` of every answered call whose audio is up
        (RTCP receive statistics so far), for per-second statistics."""
        out = []
        for run in self._runs.values():
            if run.raw.t_answer is None or run.media_idx is None or run.disconnected or run.hangup_at is not None:
                continue
            if run.ua is not None:  # our callee's side of a call: not one of the pool's jobs
                continue
            try:
                rx = run.call.getStreamStat(run.media_idx).rtcp.rxStat
            except Exception:  # noqa: BLE001 - the stream may be going away
                continue
            out.append((run.token, int(rx.pkt), int(rx.loss), float(rx.jitterUsec.mean) / 1000.0))
        return out

    def _on_stream_destroyed(self, run: _CallRun, idx: int) -> None:
        if not run.stats_final and (run.media_idx is None or idx == run.media_idx):
            self._snapshot(run)

    def _snapshot(self, run: _CallRun) -> None:
        if run.call is None or run.media_idx is None:
            return
        try:
            ss = run.call.getStreamStat(run.media_idx)
        except pj.Error:
            return
        r = ss.rtcp
        rtt = r.rttUsec
        run.raw.stats = StreamSnapshot(
            tx_packets=int(r.txStat.pkt),
            rx_packets=int(r.rxStat.pkt),
            rx_lost=int(r.rxStat.loss),
            tx_lost=int(r.txStat.loss),
            jitter_us=float(r.rxStat.jitterUsec.mean),
            rtt_us=float(rtt.mean) if rtt.n > 0 else 0.0,
            jb_avg_delay_ms=float(ss.jbuf.avgDelayMsec),
        )

    # ---- the loop
    def poll(self, max_wait_ms: int = 50) -> None:
        """Handle pjsua events for up to ``max_wait_ms`` (less when a call's timer is due sooner;
        ``libHandleEvents`` also returns as soon as it has handled an event), then run timers.

        Each pass costs ~0.15-0.2 ms of CPU on these machines whatever the wait, so an idle
        worker must not spin (10 ms polling cost 2 % of a core per idle worker); per-call timers
        stay exact because the wait is cut to the next deadline. Anything arriving on a SIP or
        media socket (including a CRLF keep-alive used as a doorbell) ends the wait at once."""
        wait_ms = max_wait_ms
        deadline = self._next_deadline()
        if deadline is not None:
            wait_ms = max(0, min(max_wait_ms, math.ceil((deadline - time.monotonic()) * 1000)))
        self._endpoint.handle_events(wait_ms)
        self._tick()

    def _next_deadline(self) -> float | None:
        best: float | None = None
        for run in self._runs.values():
            if run.disconnected or run.error:
                return 0.0
            if run.hangup_at is not None:
                due = run.hangup_at + HANGUP_GRACE_S
            elif run.raw.t_answer is None:
                due = run.setup_deadline if run.answer_due is None else min(run.answer_due, run.setup_deadline)
            else:
                due = self._hangup_due(run)
                if not run.dtmf_done:
                    due = min(due, run.raw.t_answer + run.job.dtmf_delay_ms / 1000.0)
            if best is None or due < best:
                best = due
        if any(ua.closing for ua in self._uas.values()):
            due = time.monotonic() + 0.05
            if best is None or due < best:
                best = due
        if self._backlog and self._slots_used() < self._opts.max_calls:
            due = self._slot_retry_at
            if best is None or due < best:
                best = due
        return best

    def _tick(self) -> None:
        now = time.monotonic()
        for run in list(self._runs.values()):
            try:
                self._advance(run, now)
            except Exception as exc:  # noqa: BLE001
                run.fail(f"engine error: {_user_error(exc, 'call timer')}")
                if run.call is not None and not run.disconnected and run.hangup_at is None:
                    try:
                        run.call.hangup(pj.CallOpParam())
                    except Exception:  # noqa: BLE001
                        pass
                self._finish(run)
        if self._lingering:
            still = []
            for run in self._lingering:
                if run.disconnected:
                    self._drop_media(run)
                    run.call = None
                else:
                    still.append(run)
            self._lingering = still
        if self._rejected:
            self._rejected = [c for c in self._rejected if self._call_active(c)]
        for ua in list(self._uas.values()):
            if ua.closing:
                self._try_close(ua, now)
        self._place_backlog()

    def _advance(self, run: _CallRun, now: float) -> None:
        if run.disconnected or (run.error and run.hangup_at is not None):
            self._finish(run)
            return
        if run.error and run.hangup_at is None:
            self._hangup(run, "engine error")
            return
        if run.hangup_at is None:
            raw = run.raw
            if run.answer_due is not None and now >= run.answer_due and raw.t_answer is None:
                run.answer_due = None
                prm = pj.CallOpParam()
                prm.statusCode = 200
                run.call.answer(prm)
                if run.ua is not None:
                    run.ua.answered += 1
            if raw.t_answer is None:
                if now >= run.setup_deadline:
                    raw.timed_out = True
                    self._hangup(run, "timeout")
                return
            if not run.dtmf_done and now >= raw.t_answer + run.job.dtmf_delay_ms / 1000.0:
                self._send_dtmf(run)
            if now >= self._hangup_due(run):
                self._hangup(run, "duration")
        elif now - run.hangup_at > HANGUP_GRACE_S:
            run.raw.notes.append(f"pjsua had not disconnected {HANGUP_GRACE_S:.0f} s after the hang-up")
            self._finish(run)

    def _hangup(self, run: _CallRun, reason: str) -> None:
        now = time.monotonic()
        if run.raw.t_answer is not None and not run.disconnected:
            self._snapshot(run)  # the measurement's statistics: read just before hanging up
            run.stats_final = run.raw.stats is not None
        run.hangup_at = now
        if not run.raw.hangup_reason:
            run.raw.hangup_reason = reason
        if run.raw.t_end is None:
            run.raw.t_end = now
        if run.call is not None and not run.disconnected:
            try:
                run.call.hangup(pj.CallOpParam())
            except pj.Error as exc:
                run.raw.notes.append(f"hangup: {_user_error(exc, 'hangup')}")

    @staticmethod
    def _hangup_due(run: _CallRun) -> float:
        t = run.raw.t_answer
        if t is None:
            return math.inf
        due = t + max(0, run.job.duration_ms) / 1000.0
        if run.job.dtmf:  # let every digit go out (and its end packets arrive) before the BYE
            due = max(due, t + run.job.dtmf_delay_ms / 1000.0 + len(run.job.dtmf) * DTMF_DIGIT_S + DTMF_TAIL_S)
        return due

    def _send_dtmf(self, run: _CallRun) -> None:
        run.dtmf_done = True
        if run.call is None or run.disconnected:
            return
        prm = pj.CallSendDtmfParam()
        prm.digits = run.job.dtmf
        prm.method = pj.PJSUA_DTMF_METHOD_RFC2833
        try:
            run.call.sendDtmf(prm)
            run.raw.dtmf_sent = run.job.dtmf
        except pj.Error as exc:
            run.raw.notes.append(f"DTMF not sent: {_user_error(exc, 'sendDtmf')}")

    @staticmethod
    def _call_active(call: pj.Call) -> bool:
        try:
            return bool(call.isActive())
        except Exception:  # noqa: BLE001
            return False

    def _on_tsx(self, run: _CallRun, e: pj.SipEvent) -> None:
        """Record the SIP messages pjsua shows us: requests we send (transaction state events) and
        the responses that change the call's state (18x, 2xx, the final error). Not shown by pjsua:
        retransmissions and the 401/407 challenges pjsip answers itself (the repeated request with
        credentials is shown). Not used with the message log, which has every message."""
        if e.type != pj.PJSIP_EVENT_TSX_STATE or self._endpoint.messages is not None:
            return
        ts = e.body.tsxState
        if ts.type == pj.PJSIP_EVENT_RX_MSG:
            text, peer, direction = ts.src.rdata.wholeMsg, ts.src.rdata.srcAddress, "in"
        elif ts.type == pj.PJSIP_EVENT_TX_MSG:
            text, peer, direction = ts.src.tdata.wholeMsg, ts.src.tdata.dstAddress, "out"
        else:
            return
        if text and not any(entry[4] == text[: len(entry[4])] for entry in run.raw.ladder[-4:]):
            t0 = run.raw.t_invite if run.raw.t_invite is not None else time.monotonic()
            add_ladder(run.raw, ladder_entry((time.monotonic() - t0) * 1000.0, direction, text, str(peer)))

    def _finish(self, run: _CallRun) -> None:
        """Report the call once; release its media ports now or when pjsua lets the call go."""
        if run.reported:
            return
        run.reported = True
        self._runs.pop(run.token, None)
        if run.raw.ended_wall is None:
            run.raw.ended_wall = time.time()
        try:
            self._close_relays(run)
        except Exception as exc:  # noqa: BLE001
            run.raw.notes.append(f"impairment relays: {_user_error(exc, 'closing the relays')}")
        m = self._measure(run)
        if self._endpoint.messages is not None and run.raw.sip_call_id:
            # the ladder from the message log, when the call keeps one: its measurement is then
            # built again from it, so that the detail says what the ladder shows (never a CANCEL
            # that was not sent); calls that keep none let their messages go unparsed
            entries, left_out = self._take_ladder(run, keeps_ladder(m.outcome, run.raw))
            if entries is not None or left_out < 0:
                m = self._measure(run, entries, complete=left_out == 0)  # a cut ladder may miss messages
                if left_out > 0:
                    note = f"SIP ladder: {left_out} messages before the last {LADDER_TAIL} not kept"
                    m.detail = "; ".join(x for x in (m.detail, note) if x)
        self._close_recorder(run)  # the WAV is complete before anyone hears of the call
        if run.disconnected:
            self._drop_media(run)
            run.call = None
        else:
            self._lingering.append(run)
        if run.ua is not None:
            self._emit("ua_call", run.ua.token, m)
        else:
            self._deliver(run.token, m)

    def _measure(self, run: _CallRun, ladder: list[tuple] | None = None, *,
                 complete: bool = True) -> m_pb2.CallMeasurement:
        try:
            m = build_measurement(run.raw, ladder, ladder_complete=ladder is not None and complete)
            if run.error and m.outcome == m_pb2.SUCCESS:
                m.outcome = m_pb2.CALL_FAILED  # the engine, not the far end, broke this call
            if run.error and run.error not in m.detail:
                m.detail = "; ".join(x for x in (run.error, m.detail) if x)
        except Exception as exc:  # noqa: BLE001
            m = failed_measurement(run.job, f"engine error building the measurement: {_user_error(exc, 'measurement')}",
                                   started_wall=run.raw.started_wall)
        return m

    def _take_ladder(self, run: _CallRun, keep: bool) -> tuple[list[tuple] | None, int]:
        """With the message log: let the call's Call-ID go, and return its SIP messages when it
        keeps a ladder (failures; DTMF calls until the far side's check), else (None, 0)."""
        raw = run.raw
        try:
            entries, left_out = self._endpoint.messages.release(raw.sip_call_id, t0=raw.t_invite, keep=keep,
                                                                side=raw.role)
        except Exception as exc:  # noqa: BLE001 - the ladder is a nicety
            raw.notes.append(f"SIP ladder: {_user_error(exc, 'SIP ladder')}")
            return None, -1  # measured again, with this note
        return (entries, left_out) if keep else (None, 0)

    def _drop_media(self, run: _CallRun) -> None:
        src, aud = run.source, run.aud
        run.source = None
        run.aud = None
        if src is not None and aud is not None and not run.disconnected:
            try:
                src.stopTransmit(aud)
            except pj.Error:
                pass
        self._close_recorder(run, aud)
        run.tone = None  # destroys the tone generator's conference port
        run.player = None
        if run.relays is not None and not run.relays.closed and self._relay_host is not None:
            self._relay_host.close(run.relays)

    @staticmethod
    def _close_recorder(run: _CallRun, aud: pj.AudioMedia | None = None) -> None:
        rec, aud = run.recorder, aud or run.aud
        if rec is None:
            return
        run.recorder = None
        if aud is not None and not run.disconnected:
            try:
                aud.stopTransmit(rec)
            except pj.Error:
                pass
        del rec  # destroys the recorder: pjmedia writes the WAV header's sizes then

    # ---- shutdown
    def shutdown(self, reason: str = "media engine stopping", timeout_s: float = 3.0) -> None:
        """Report queued and live calls, hang up, release every port and destroy the library."""
        if not self._started:
            return
        while self._backlog:
            token, job, _ = self._backlog.popleft()
            self._report_failed(token, job, f"not placed: {reason}")
        for token in list(self._uas):
            try:
                self.close_ua(token, reason)
            except Exception:  # noqa: BLE001
                log.exception("closing UA %s", token)
        for run in list(self._runs.values()):
            if run.hangup_at is None:
                try:
                    self._hangup(run, reason)
                except Exception as exc:  # noqa: BLE001
                    run.fail(f"hangup: {_user_error(exc, 'hangup at shutdown')}")
        deadline = time.monotonic() + max(timeout_s, UNREGISTER_WAIT_S if self._uas else 0.0)
        while (self._runs or self._lingering or self._uas) and time.monotonic() < deadline:
            self._endpoint.handle_events(10)
            for run in list(self._runs.values()):
                if run.disconnected:
                    self._finish(run)
            self._lingering = [r for r in self._lingering if not r.disconnected]
            now = time.monotonic()
            for ua in list(self._uas.values()):
                self._try_close(ua, now)
        for run in list(self._runs.values()):
            self._finish(run)
        for run in self._lingering:
            self._drop_media(run)
            run.call = None
        self._lingering.clear()
        for ua in list(self._uas.values()):
            ua.close_at = -math.inf  # give up waiting
            self._try_close(ua, time.monotonic())
        for acc in self._caller_accounts.values():
            try:
                acc.shutdown()
            except Exception:  # noqa: BLE001
                log.exception("caller account shutdown")
        self._caller_accounts.clear()
        self._rejected.clear()
        self._playback = None
        self._capture = None
        self._started = False
        if self._relay_host is not None:
            self._relay_host.shutdown()
        self._endpoint.destroy()


# ------------------------------------------------------------------------------------ responder


class _ResponderCall(pj.Call):
    def __init__(self, account: pj.Account, call_id: int, agent: ResponderAgent) -> None:
        super().__init__(account, call_id)
        self._agent = agent
        self.disconnected = False
        self.final_due: float | None = None
        self.bye_due: float | None = None
        self.aud: pj.AudioMedia | None = None
        self.player: pj.AudioMediaPlayer | None = None  # the agent's play_file, looped

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        try:
            if self.getInfo().state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self.disconnected = True
        except BaseException:  # noqa: BLE001
            log.exception("responder onCallState")

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        try:
            ci = self.getInfo()
            for idx, mi in enumerate(ci.media):
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    aud = self.getAudioMedia(idx)
                    if self.aud is None or self.aud.getPortId() != aud.getPortId():
                        play = self._agent._play_file
                        if play:  # a prompt instead of the echo
                            if self.player is None:
                                self.player = pj.AudioMediaPlayer()
                                self.player.createPlayer(play, 0)
                            self.player.startTransmit(aud)
                        elif self._agent._silent:  # the null device's capture: continuous silence, RTP flowing
                            pj.Endpoint.instance().audDevManager().getCaptureDevMedia().startTransmit(aud)
                        else:
                            aud.startTransmit(aud)  # echo: the call's port feeds itself
                        self.aud = aud
                    return
        except BaseException:  # noqa: BLE001
            log.exception("responder onCallMediaState")


class _ResponderAccount(pj.Account):
    agent: ResponderAgent | None = None

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        try:
            if self.agent is not None:
                self.agent._on_incoming(self, prm.callId)
        except BaseException:  # noqa: BLE001
            log.exception("responder onIncomingCall")


class ResponderAgent:
    """Answers every INVITE: 180 at once, then ``code`` after ``answer_delay_ms``; echoes audio.

    Beyond ``max_calls`` concurrent calls it answers 486 Busy Here (pjsua itself rejects with 486
    once its PJSUA_MAX_CALLS slots are taken). The caller's BYE ends the call, or the responder
    sends BYE ``hangup_after_ms`` after answering (0: never).
    """

    def __init__(
        self, opts: EndpointOptions, *, answer_delay_ms: int = 0, code: int = 200, hangup_after_ms: int = 0,
        play_file: str = "", silent: bool = False,
    ) -> None:
        """``play_file`` (a 16-bit mono WAV at the bridge's rate): played, looped, to every caller
        instead of the echo; ``silent``: nothing is sent back but silence (RTP still flows)."""
        if not (code == 200 or 300 <= code <= 699):
            raise ValueError(f"final code must be 200 or 300..699, got {code}")
        self._play_file = play_file
        self._silent = silent
        opts = replace(opts, sip_message_log=False)  # no ladders here
        self._opts = opts
        self._delay_s = max(0, answer_delay_ms) / 1000.0
        self._code = code
        self._hangup_after_s = max(0, hangup_after_ms) / 1000.0
        self._endpoint = _Endpoint(opts, _ResponderAccount)
        self._calls: dict[int, _ResponderCall] = {}
        self.answered = 0
        self.rejected_busy = 0

    def start(self) -> str:
        """Start listening; returns the SIP URI to call."""
        self._endpoint.start()
        acc = self._endpoint.account
        assert isinstance(acc, _ResponderAccount)
        acc.agent = self
        return f"sip:responder@{self._endpoint.host_for_uri}:{self._endpoint.sip_port}"

    @property
    def sip_port(self) -> int:
        return self._endpoint.sip_port

    @property
    def active_calls(self) -> int:
        return sum(1 for c in self._calls.values() if not c.disconnected)

    def _on_incoming(self, acc: pj.Account, call_id: int) -> None:
        busy = self.active_calls >= self._opts.max_calls
        call = _ResponderCall(acc, call_id, self)
        self._calls[call_id] = call
        prm = pj.CallOpParam()
        if busy:
            self.rejected_busy += 1
            prm.statusCode = 486
            call.hangup(prm)
            return
        prm.statusCode = 180
        call.answer(prm)
        call.final_due = time.monotonic() + self._delay_s

    def poll(self, max_wait_ms: int = 50) -> None:
        wait_ms = max_wait_ms
        dues = [d for c in self._calls.values() for d in (c.final_due, c.bye_due) if d is not None]
        if dues:
            wait_ms = max(0, min(max_wait_ms, math.ceil((min(dues) - time.monotonic()) * 1000)))
        self._endpoint.handle_events(wait_ms)
        now = time.monotonic()
        for cid, call in list(self._calls.items()):
            try:
                if call.disconnected:
                    call.aud = None
                    call.player = None
                    del self._calls[cid]
                elif call.final_due is not None and now >= call.final_due:
                    call.final_due = None
                    prm = pj.CallOpParam()
                    prm.statusCode = self._code
                    if self._code == 200:
                        call.answer(prm)
                        self.answered += 1
                        if self._hangup_after_s > 0:
                            call.bye_due = now + self._hangup_after_s
                    else:
                        call.hangup(prm)
                elif call.bye_due is not None and now >= call.bye_due:
                    call.bye_due = None
                    call.hangup(pj.CallOpParam())
            except Exception:  # noqa: BLE001 - one odd call must not stop the responder
                log.exception("responder call %s", cid)
                call.final_due = None

    def shutdown(self, timeout_s: float = 2.0) -> None:
        ep = self._endpoint.ep
        if ep is None:
            return
        try:
            ep.hangupAllCalls()
        except pj.Error:
            pass
        deadline = time.monotonic() + timeout_s
        while self._calls and time.monotonic() < deadline:
            self.poll(10)
        for call in self._calls.values():
            call.aud = None
        self._calls.clear()
        acc = self._endpoint.account
        if isinstance(acc, _ResponderAccount):
            acc.agent = None
        self._endpoint.destroy()
