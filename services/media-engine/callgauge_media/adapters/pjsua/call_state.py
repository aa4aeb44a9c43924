"""The state of one call in a media worker (:class:`CallRun`) and the pjsua2 Call that forwards
its callbacks to the :class:`~callgauge_media.adapters.pjsua.caller.CallerAgent` (:class:`CallerCall`), for
the calls the agent places and the calls its user agents answer."""

from __future__ import annotations

import logging

from typing import TYPE_CHECKING

import pjsua2 as pj

from callgauge_media.domain.jobs import CallJob
from callgauge_media.domain.measurement import RawCall
from callgauge_media.adapters.impair.media import CallRelays
from callgauge_media.adapters.pjsua.endpoint import user_error

if TYPE_CHECKING:
    from callgauge_media.adapters.pjsua.caller import CallerAgent
    from callgauge_media.adapters.pjsua.registration import UserAgent

log = logging.getLogger(__name__)


class CallerCall(pj.Call):
    """Forwards pjsua2 callbacks to the agent; never lets an exception escape. ``call_id`` is
    pjsua's id of an incoming call (callee side), or -1 for a call we place."""

    def __init__(self, account: pj.Account, agent: CallerAgent, run: CallRun, call_id: int = -1) -> None:
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
            self._run.raw.notes.append(f"received DTMF: {user_error(exc, 'onDtmfDigit')}")

    def onCallTsxState(self, prm: pj.OnCallTsxStateParam) -> None:
        try:
            self._agent._on_tsx(self._run, prm.e)
        except BaseException as exc:  # noqa: BLE001
            self._run.raw.notes.append(f"SIP ladder: {user_error(exc, 'onCallTsxState')}")

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        try:
            self._agent._on_tsx(self._run, prm.e)  # responses: pjsua reports them here, not as tsx states
        except BaseException as exc:  # noqa: BLE001
            self._run.raw.notes.append(f"SIP ladder: {user_error(exc, 'onCallState ladder')}")
        try:
            self._agent._on_call_state(self._run, self)
        except BaseException as exc:  # noqa: BLE001
            self._run.fail(f"engine error: {user_error(exc, 'onCallState')}")

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        try:
            self._agent._on_media_state(self._run, self)
        except BaseException as exc:  # noqa: BLE001
            self._run.fail(f"audio setup: {user_error(exc, 'onCallMediaState')}")

    def onCallSdpCreated(self, prm: pj.OnCallSdpCreatedParam) -> None:
        try:
            self._agent._on_sdp_created(self._run, prm)
        except BaseException as exc:  # noqa: BLE001
            self._run.fail(f"impairment relay: {user_error(exc, 'onCallSdpCreated')}")

    def onStreamPreCreate(self, prm: pj.OnStreamPreCreateParam) -> None:
        try:
            self._agent._on_stream_pre_create(self._run, prm)
        except BaseException as exc:  # noqa: BLE001
            self._run.raw.notes.append(f"impairment relay: {user_error(exc, 'onStreamPreCreate')}")

    def onStreamDestroyed(self, prm: pj.OnStreamDestroyedParam) -> None:
        try:
            self._agent._on_stream_destroyed(self._run, prm.streamIdx)
        except BaseException as exc:  # noqa: BLE001
            self._run.raw.notes.append(f"RTP statistics: {user_error(exc, 'onStreamDestroyed')}")


class CallRun:
    __slots__ = (
        "token", "job", "raw", "call", "source", "tone", "aud", "aud_port", "media_idx",
        "disconnected", "hangup_at", "reported", "error", "setup_deadline", "stats_final",
        "ua", "answer_due", "dtmf_done", "player", "recorder", "relays",
    )

    def __init__(self, token: int, job: CallJob, ua: UserAgent | None = None) -> None:
        self.token = token
        self.job = job
        self.raw = RawCall(job=job)
        self.ua = ua  # the answering UA of an incoming call (callee side), else None
        self.answer_due: float | None = None  # callee: when to send 200
        self.dtmf_done = not job.dtmf
        self.call: CallerCall | None = None
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
