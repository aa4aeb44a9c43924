"""The caller side of a media worker: :class:`CallerAgent` places calls
(:class:`~callgauge_media.domain.jobs.CallJob`) on one pjsua2 Endpoint and reports a
CallMeasurement for each, through the ``on_result`` callback, exactly once; it also carries the
user agents of register / wait_for_calls actions (:mod:`registration`) and the media of its calls
(:mod:`call_media`)."""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable

import pjsua2 as pj
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.jobs import (
    OPUS_DEFAULT_RATE,
    OPUS_RATES,
    SRTP_KEYINGS,
    SRTP_MODES,
    TRANSPORTS,
    CallJob,
    call_transport,
    normalize_destination,
    pick_codec_id,
    sip_user,
)
from callgauge_media.domain.measurement import (
    LADDER_TAIL,
    add_ladder,
    build_measurement,
    failed_measurement,
    keeps_ladder,
    ladder_entry,
)
from callgauge_media.adapters.impair.media import RelayHost
from callgauge_media.adapters.pjsua.message_log import MessageLog
from callgauge_media.adapters.pjsua.call_media import CallMedia
from callgauge_media.adapters.pjsua.call_state import CallRun, CallerCall
from callgauge_media.adapters.pjsua.endpoint import (
    HANGUP_GRACE_S,
    UNREGISTER_WAIT_S,
    EndpointOptions,
    SipEndpoint,
    user_error,
)
from callgauge_media.adapters.pjsua.registration import Registration, UserAgent

log = logging.getLogger(__name__)

SLOT_WAIT_S = 40.0  # how long a job may wait for pjsua to free a call slot (> SIP timer F, 32 s)
PJ_ETOOMANY = 70010
PLACE_INTERVAL_S = 0.025  # at most 40 new calls per second per worker (see _place_backlog)
DTMF_DIGIT_S = 0.3  # time one RFC 2833 digit takes to send (pjmedia: 200 ms tone + gap), with margin
DTMF_TAIL_S = 0.7  # after the last digit, before a hang-up: the far side's end-of-event packets


class CallerAgent(Registration, CallMedia):
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
        self._uas: dict[int, UserAgent] = {}
        self._caller_accounts: dict[tuple, pj.Account] = {}
        self._callee_keys = 0
        self._rejected: list[pj.Call] = []
        self._answer_codec: str | None = None
        self._endpoint = SipEndpoint(opts)
        self._runs: dict[int, CallRun] = {}
        self._lingering: list[CallRun] = []  # reported, but pjsua still holds the call slot
        # jobs waiting for a pjsua call slot: (token, job, monotonic time of the first try or None)
        self._backlog: deque[tuple[int, CallJob, float | None]] = deque()
        self._slot_retry_at = 0.0
        self._playback: pj.AudioMedia | None = None
        self._capture: pj.AudioMedia | None = None
        self._started = False
        self._creating: UserAgent | None = None  # the UA whose account is being created (its REGISTER goes out)
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
        if (job.srtp_keying or "sdes") not in SRTP_KEYINGS:
            self._report_failed(token, job,
                                f"unknown srtp_keying {job.srtp_keying!r} ({', '.join(SRTP_KEYINGS)})")
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
        run = CallRun(token, job)
        try:
            account = self._caller_account(job)
            ep.select_codec(codec_id)
            if codec_id.lower().startswith("opus/"):
                ep.set_opus_rate(OPUS_RATES.get(job.audio_bandwidth, OPUS_DEFAULT_RATE))
            call = CallerCall(account, self, run)
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
            why = user_error(exc, f"INVITE to {dest} not sent", where=where,
                              transport=job.account.transport if job.account is not None else transport)
            m = failed_measurement(job, f"INVITE not sent: {why}", started_wall=started)
            m.transport = call_transport(job)
            self._deliver(token, m)
            return True
        if first_try is not None:
            run.raw.notes.append(f"waited {1000 * (run.raw.t_invite - first_try):.0f} ms for a pjsua call slot")
        return True

    # ---- callbacks (run inside libHandleEvents / makeCall)
    def _on_call_state(self, run: CallRun, call: CallerCall) -> None:
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
                run.fail(f"engine error: {user_error(exc, 'call timer')}")
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

    def _advance(self, run: CallRun, now: float) -> None:
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

    def _hangup(self, run: CallRun, reason: str) -> None:
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
                run.raw.notes.append(f"hangup: {user_error(exc, 'hangup')}")

    @staticmethod
    def _hangup_due(run: CallRun) -> float:
        t = run.raw.t_answer
        if t is None:
            return math.inf
        due = t + max(0, run.job.duration_ms) / 1000.0
        if run.job.dtmf:  # let every digit go out (and its end packets arrive) before the BYE
            due = max(due, t + run.job.dtmf_delay_ms / 1000.0 + len(run.job.dtmf) * DTMF_DIGIT_S + DTMF_TAIL_S)
        return due

    def _send_dtmf(self, run: CallRun) -> None:
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
            run.raw.notes.append(f"DTMF not sent: {user_error(exc, 'sendDtmf')}")

    @staticmethod
    def _call_active(call: pj.Call) -> bool:
        try:
            return bool(call.isActive())
        except Exception:  # noqa: BLE001
            return False

    def _on_tsx(self, run: CallRun, e: pj.SipEvent) -> None:
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

    def _finish(self, run: CallRun) -> None:
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
            run.raw.notes.append(f"impairment relays: {user_error(exc, 'closing the relays')}")
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

    def _measure(self, run: CallRun, ladder: list[tuple] | None = None, *,
                 complete: bool = True) -> m_pb2.CallMeasurement:
        try:
            m = build_measurement(run.raw, ladder, ladder_complete=ladder is not None and complete)
            if run.error and m.outcome == m_pb2.SUCCESS:
                m.outcome = m_pb2.CALL_FAILED  # the engine, not the far end, broke this call
            if run.error and run.error not in m.detail:
                m.detail = "; ".join(x for x in (run.error, m.detail) if x)
        except Exception as exc:  # noqa: BLE001
            m = failed_measurement(run.job, f"engine error building the measurement: {user_error(exc, 'measurement')}",
                                   started_wall=run.raw.started_wall)
        return m

    def _take_ladder(self, run: CallRun, keep: bool) -> tuple[list[tuple] | None, int]:
        """With the message log: let the call's Call-ID go, and return its SIP messages when it
        keeps a ladder (failures; DTMF calls until the far side's check), else (None, 0)."""
        raw = run.raw
        try:
            entries, left_out = self._endpoint.messages.release(raw.sip_call_id, t0=raw.t_invite, keep=keep,
                                                                side=raw.role)
        except Exception as exc:  # noqa: BLE001 - the ladder is a nicety
            raw.notes.append(f"SIP ladder: {user_error(exc, 'SIP ladder')}")
            return None, -1  # measured again, with this note
        return (entries, left_out) if keep else (None, 0)

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
                    run.fail(f"hangup: {user_error(exc, 'hangup at shutdown')}")
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
