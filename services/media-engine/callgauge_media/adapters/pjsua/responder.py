"""The answering side: :class:`ResponderAgent` answers every INVITE (180, then the final code after
a delay) and echoes the audio back (the built-in SIP target, ``python -m callgauge_media.responder``)."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace

import pjsua2 as pj

from callgauge_media.adapters.pjsua.endpoint import EndpointOptions, SipEndpoint, fixed_jitter_buffer

log = logging.getLogger(__name__)


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

    def onStreamPreCreate(self, prm: pj.OnStreamPreCreateParam) -> None:
        try:
            ms = self._agent._jitter_buffer_ms
            if ms > 0 and prm.streamInfo.type == pj.PJMEDIA_TYPE_AUDIO:
                fixed_jitter_buffer(prm.streamInfo, ms)
        except BaseException:  # noqa: BLE001
            log.exception("responder onStreamPreCreate")

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
        play_file: str = "", silent: bool = False, jitter_buffer_ms: int = 0,
    ) -> None:
        """``play_file`` (a 16-bit mono WAV at the bridge's rate): played, looped, to every caller
        instead of the echo; ``silent``: nothing is sent back but silence (RTP still flows);
        ``jitter_buffer_ms`` > 0: each call's jitter buffer is fixed at that prefetch, without
        discarding (:func:`~callgauge_media.adapters.pjsua.endpoint.fixed_jitter_buffer`), so the
        echo returns what arrived, frame for frame; 0: pjmedia's adaptive buffer."""
        if not (code == 200 or 300 <= code <= 699):
            raise ValueError(f"final code must be 200 or 300..699, got {code}")
        self._play_file = play_file
        self._silent = silent
        self._jitter_buffer_ms = max(0, int(jitter_buffer_ms))
        opts = replace(opts, sip_message_log=False)  # no ladders here
        self._opts = opts
        self._delay_s = max(0, answer_delay_ms) / 1000.0
        self._code = code
        self._hangup_after_s = max(0, hangup_after_ms) / 1000.0
        self._endpoint = SipEndpoint(opts, _ResponderAccount)
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
