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
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import pjsua2 as pj
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.engine.jobs import (
    TRANSPORTS,
    CallJob,
    normalize_destination,
    pick_codec_id,
    sip_user,
)
from callgauge_media.engine.measurement import (
    RawCall,
    StreamSnapshot,
    build_measurement,
    failed_measurement,
)

log = logging.getLogger(__name__)

MAX_CALLS = 4  # PJSUA_MAX_CALLS of the pjsua2-python wheel
HANGUP_GRACE_S = 5.0  # after our hang-up, report anyway if pjsua has not disconnected by then
SLOT_WAIT_S = 40.0  # how long a job may wait for pjsua to free a call slot (> SIP timer F, 32 s)
PJ_ETOOMANY = 70010
TONE_VOLUME = 0  # 0 = pjmedia default tone amplitude


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
    low_cpu: bool = True  # 8 kHz bridge, no echo canceller, linear resampling (DESIGN.md)
    user_agent: str = "Callgauge media-engine"
    contact_user: str = "callgauge"


class _Endpoint:
    """One pjsua2 Endpoint with a null audio device, UDP (+TCP) transport and a local account."""

    def __init__(self, opts: EndpointOptions, account_cls: type[pj.Account] = pj.Account) -> None:
        self.opts = opts
        self.ep: pj.Endpoint | None = None
        self.account: pj.Account | None = None
        self.sip_port = 0
        self.has_tcp = False
        self.codec_ids: list[str] = []
        self._codec_selected: str | None = None
        self._account_cls = account_cls

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
        lc.msgLogging = o.log_level >= 4
        med = cfg.medConfig
        if o.low_cpu:
            med.clockRate = 8000
            med.sndClockRate = 8000
            med.ecTailLen = 0
            med.quality = 1
        med.noVad = True  # keep RTP flowing in silence: loss and jitter need packets
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
        self.codec_ids = [ci.codecId for ci in ep.codecEnum2()]

        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{o.contact_user}@{self.host_for_uri}:{self.sip_port}"
        mt = acfg.mediaConfig.transportConfig
        mt.port = o.rtp_port
        mt.portRange = o.rtp_port_range
        if o.bind_host not in ("", "0.0.0.0"):
            mt.boundAddress = o.bind_host
        acc = self._account_cls()
        acc.create(acfg, True)
        self.account = acc

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

    def select_codec(self, codec_id: str) -> None:
        """Give ``codec_id`` the top priority and disable every other codec (global in pjsua; the
        offer is built synchronously inside makeCall, so set this right before it)."""
        if self._codec_selected == codec_id or self.ep is None:
            return
        for cid in self.codec_ids:
            self.ep.codecSetPriority(cid, 255 if cid == codec_id else 0)
        self._codec_selected = codec_id

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


# --------------------------------------------------------------------------------------- caller


class _CallerCall(pj.Call):
    """Forwards pjsua2 callbacks to the agent; never lets an exception escape."""

    def __init__(self, account: pj.Account, agent: CallerAgent, run: _CallRun) -> None:
        super().__init__(account)
        self._agent = agent
        self._run = run

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        try:
            self._agent._on_call_state(self._run, self)
        except BaseException as exc:  # noqa: BLE001
            self._run.fail(f"onCallState: {_error_text(exc)}")

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        try:
            self._agent._on_media_state(self._run, self)
        except BaseException as exc:  # noqa: BLE001
            self._run.fail(f"onCallMediaState: {_error_text(exc)}")

    def onStreamDestroyed(self, prm: pj.OnStreamDestroyedParam) -> None:
        try:
            self._agent._on_stream_destroyed(self._run, prm.streamIdx)
        except BaseException as exc:  # noqa: BLE001
            self._run.raw.notes.append(f"onStreamDestroyed: {_error_text(exc)}")


class _CallRun:
    __slots__ = (
        "token", "job", "raw", "call", "source", "tone", "aud", "aud_port", "media_idx",
        "disconnected", "hangup_at", "reported", "error", "setup_deadline", "stats_final",
    )

    def __init__(self, token: int, job: CallJob) -> None:
        self.token = token
        self.job = job
        self.raw = RawCall(job=job)
        self.call: _CallerCall | None = None
        self.source: pj.AudioMedia | None = None  # what we send: tone generator or null capture
        self.tone: pj.ToneGenerator | None = None
        self.aud: pj.AudioMedia | None = None
        self.aud_port = -1
        self.media_idx: int | None = None
        self.disconnected = False
        self.hangup_at: float | None = None
        self.reported = False
        self.error = ""
        self.setup_deadline = 0.0
        self.stats_final = False  # the snapshot taken before our hang-up is the one to keep

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
        self, opts: EndpointOptions, on_result: Callable[[int, m_pb2.CallMeasurement], None],
        on_answer: Callable[[int], None] | None = None,
    ) -> None:
        self._opts = opts
        self._on_result = on_result
        self._on_answer = on_answer  # told once per call, when its 2xx arrives
        self._endpoint = _Endpoint(opts)
        self._runs: dict[int, _CallRun] = {}
        self._lingering: list[_CallRun] = []  # reported, but pjsua still holds the call slot
        # jobs waiting for a pjsua call slot: (token, job, monotonic time of the first try or None)
        self._backlog: deque[tuple[int, CallJob, float | None]] = deque()
        self._slot_retry_at = 0.0
        self._playback: pj.AudioMedia | None = None
        self._capture: pj.AudioMedia | None = None
        self._started = False

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
                continue
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
            self._report_failed(token, job, f"unsupported transport {job.transport!r} (udp, tcp)")
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
            ep.select_codec(codec_id)
            call = _CallerCall(ep.account, self, run)
            run.call = call
            prm = pj.CallOpParam(True)
            prm.txOption.localUri = f"sip:{sip_user(job.from_user)}@{ep.host_for_uri}:{ep.sip_port}"
            self._runs[token] = run  # callbacks may fire inside makeCall
            run.raw.started_wall = time.time()
            run.raw.t_invite = time.monotonic()
            run.setup_deadline = run.raw.t_invite + max(0, job.setup_timeout_ms) / 1000.0
            call.makeCall(dest, prm)
        except Exception as exc:  # noqa: BLE001
            self._runs.pop(token, None)
            started = run.raw.started_wall
            self._drop_media(run)
            run.call = None
            if isinstance(exc, pj.Error) and exc.status == PJ_ETOOMANY:
                return False
            self._deliver(
                token, failed_measurement(job, f"INVITE not sent: {_error_text(exc)}", started_wall=started)
            )
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
                if self._on_answer is not None:
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
                run.raw.codec = call.getStreamInfo(idx).codecName
            except pj.Error:
                pass
            port = aud.getPortId()
            if port == run.aud_port:
                return
            run.aud = aud
            run.aud_port = port
            if run.source is None:
                if run.job.tone_hz > 0:
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
                else:
                    run.source = self._capture  # null device capture: continuous silence
            run.source.startTransmit(aud)
            aud.startTransmit(self._playback)  # so the jitter buffer is drained like a real phone
            return

    def sample_stats(self) -> list[tuple[int, int, int, float]]:
        """``(token, rx_packets, rx_lost, jitter_ms)`` of every answered call whose audio is up
        (RTCP receive statistics so far), for per-second statistics."""
        out = []
        for run in self._runs.values():
            if run.raw.t_answer is None or run.media_idx is None or run.disconnected or run.hangup_at is not None:
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
                due = run.setup_deadline
            else:
                due = run.raw.t_answer + max(0, run.job.duration_ms) / 1000.0
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
                run.fail(f"engine error: {_error_text(exc)}")
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
            if raw.t_answer is None:
                if now >= run.setup_deadline:
                    raw.timed_out = True
                    self._hangup(run, "timeout")
            elif now >= raw.t_answer + max(0, run.job.duration_ms) / 1000.0:
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
                run.raw.notes.append(f"hangup: {_error_text(exc)}")

    def _finish(self, run: _CallRun) -> None:
        """Report the call once; release its media ports now or when pjsua lets the call go."""
        if run.reported:
            return
        run.reported = True
        self._runs.pop(run.token, None)
        if run.raw.ended_wall is None:
            run.raw.ended_wall = time.time()
        try:
            m = build_measurement(run.raw)
            if run.error and m.outcome == m_pb2.SUCCESS:
                m.outcome = m_pb2.CALL_FAILED  # the engine, not the far end, broke this call
            if run.error and run.error not in m.detail:
                m.detail = "; ".join(x for x in (run.error, m.detail) if x)
        except Exception as exc:  # noqa: BLE001
            m = failed_measurement(run.job, f"engine error building the measurement: {_error_text(exc)}",
                                   started_wall=run.raw.started_wall)
        if run.disconnected:
            self._drop_media(run)
            run.call = None
        else:
            self._lingering.append(run)
        self._deliver(run.token, m)

    def _drop_media(self, run: _CallRun) -> None:
        src, aud = run.source, run.aud
        run.source = None
        run.aud = None
        if src is not None and aud is not None and not run.disconnected:
            try:
                src.stopTransmit(aud)
            except pj.Error:
                pass
        run.tone = None  # destroys the tone generator's conference port

    # ---- shutdown
    def shutdown(self, reason: str = "media engine stopping", timeout_s: float = 3.0) -> None:
        """Report queued and live calls, hang up, release every port and destroy the library."""
        if not self._started:
            return
        while self._backlog:
            token, job, _ = self._backlog.popleft()
            self._report_failed(token, job, f"not placed: {reason}")
        for run in list(self._runs.values()):
            if run.hangup_at is None:
                try:
                    self._hangup(run, reason)
                except Exception as exc:  # noqa: BLE001
                    run.fail(f"hangup: {_error_text(exc)}")
        deadline = time.monotonic() + timeout_s
        while (self._runs or self._lingering) and time.monotonic() < deadline:
            self._endpoint.handle_events(10)
            for run in list(self._runs.values()):
                if run.disconnected:
                    self._finish(run)
            self._lingering = [r for r in self._lingering if not r.disconnected]
        for run in list(self._runs.values()):
            self._finish(run)
        for run in self._lingering:
            self._drop_media(run)
            run.call = None
        self._lingering.clear()
        self._playback = None
        self._capture = None
        self._started = False
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
        self, opts: EndpointOptions, *, answer_delay_ms: int = 0, code: int = 200, hangup_after_ms: int = 0
    ) -> None:
        if not (code == 200 or 300 <= code <= 699):
            raise ValueError(f"final code must be 200 or 300..699, got {code}")
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
