"""The media engine's audio work: where prompts and recordings live, and the scoring pool.

Recordings are WAV files under ``<data dir>/audio/recordings/<run id>/<call id>.<leg>.wav`` (leg
``caller`` or ``callee``; the gateway serves them from there, so it must see the same data dir);
the media directory (user WAVs and the synthesised prompts) is ``<data dir>/audio/media/``. A
run's recordings are capped by count and disk (:mod:`budget`), and :meth:`AudioService.sweep`
deletes those past the retention or beyond the disk cap of all recordings. Scoring (alignment,
flags, ViSQOL) runs in its own process pool — never in the pjsua2 media workers nor on the
event loop — with a bounded queue: a call that finds the queue full is reported unscored
(``mos_lqo`` absent, a note in ``detail``), so analysis can neither delay live calls nor grow
without bound.
"""
from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from callgauge_platform import recordings
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.domain.reasons import internal_error
from callgauge_media.adapters.audio import analysis, budget, prompts
from callgauge_media.domain.jobs import CallJob

BRIDGE_RATE = 8000  # the workers' conference bridge (EndpointOptions.low_cpu): files are made at its rate


def _score_job(recording: str, reference: str | None, with_visqol: bool) -> dict:
    return analysis.score(recording, reference, with_visqol=with_visqol).as_dict()


def _note(m: m_pb2.CallMeasurement, text: str) -> None:
    m.detail = "; ".join(x for x in (m.detail, text) if x)


class AudioService:
    def __init__(self, root: Path, *, scorers: int = 1, max_queue: int = 16, max_recordings_per_run: int = 200,
                 max_run_bytes: int = 200_000_000, max_total_bytes: int = 2_000_000_000,
                 retention_s: float = 7 * 86400.0) -> None:
        self.root = Path(root)
        self.media_dir = self.root / "media"
        self.recordings = self.root / "recordings"
        self.scorers = max(1, scorers)
        self.max_queue = max(1, max_queue)
        self.max_recordings_per_run = max(0, max_recordings_per_run)
        self.max_run_bytes = max(0, max_run_bytes)
        self.max_total_bytes = max(0, max_total_bytes)
        self.retention_s = max(0.0, retention_s)
        self._pool: ProcessPoolExecutor | None = None
        self._pending = 0
        self._budgets: dict[str, budget.RunBudget] = {}

    # ---- files
    def media(self, name: str, rate: int = BRIDGE_RATE) -> Path:
        return prompts.resolve(name, self.media_dir, rate)

    def recording_path(self, run_id: str, call_id: str, leg: str) -> Path:
        return recordings.recording_path(self.recordings, run_id, call_id, leg)

    def run_budget(self, run_id: str) -> budget.RunBudget:
        b = self._budgets.get(run_id)
        if b is None:
            b = self._budgets[run_id] = budget.RunBudget(self.max_recordings_per_run, self.max_run_bytes)
        return b

    def forget(self, run_id: str) -> None:
        """The run ended: its budget is no longer needed (its files stay until the sweep)."""
        self._budgets.pop(run_id, None)

    def sweep(self, now: float | None = None) -> list[str]:
        """Delete the recordings past the retention, then the oldest runs' beyond the total disk cap."""
        return budget.sweep(self.recordings, self.retention_s, self.max_total_bytes, now)

    async def prepare(self, job: CallJob, call, run_id: str, *, action_max: int = 0) -> tuple[CallJob, str]:
        """``job`` with the call action's play_file resolved to a file and its recording path, and a
        note for the measurement ("" when none): a recording the run's caps refused. An
        ``expect_audio`` that cannot be recorded raises LookupError (the call is not placed)."""
        play = record = note = ""
        if call.play_file and call.play_file != prompts.SILENCE:
            play = str(await asyncio.to_thread(self.media, call.play_file))
        if call.record or call.expect_audio:
            why = self.run_budget(run_id).reserve(budget.recording_bytes(job.duration_ms),
                                                  action=(job.step, job.action), action_max=action_max)
            if why is None:
                path = self.recording_path(run_id, job.call_id, "caller")
                path.parent.mkdir(parents=True, exist_ok=True)
                record = str(path)
            elif call.expect_audio:
                raise prompts.MediaNotFound(f"expect_audio cannot be checked: not recorded, {why}")
            else:
                note = f"not recorded: {why}"
        return replace(job, play_file=play, play_loop=not call.play_once, record_path=record), note

    def keep_callee(self, run_id: str, source: str, call_id: str) -> tuple[str, str]:
        """A callee's recording (made by the worker as each call was answered) kept under the call's
        name when the run's caps allow it, else deleted. Returns (path or "", note)."""
        src = Path(source)
        if not src.exists():
            return "", ""
        analysis.wait_complete(src, 3.0)
        why = self.run_budget(run_id).reserve(src.stat().st_size)
        if why is not None:
            src.unlink(missing_ok=True)
            return "", f"callee not recorded: {why}"
        dst = self.recording_path(run_id, call_id, "callee")
        if dst != src:
            os.replace(src, dst)
        return str(dst), ""

    # ---- scoring
    async def _score(self, recording: str, reference: str | None) -> dict | str:
        """The scoring pool's verdict on one recording, or why there is none."""
        if self._pending >= self.max_queue:
            return "the scoring queue is full"
        self._pending += 1
        try:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=self.scorers)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, _score_job, recording, reference, True)
        except Exception as exc:  # noqa: BLE001 - a broken file must not break the run
            logging.getLogger(__name__).warning("scoring %s failed", recording, exc_info=True)
            return internal_error(exc, "the audio scorer")  # the traceback is in the log
        finally:
            self._pending -= 1

    @staticmethod
    def _mismatch(expect: str, need: float, s: dict) -> str | None:
        got = s["correlation"]
        if s["silence"] or got is None or got < need:
            what = "silence" if s["silence"] else f"correlation {got if got is not None else 'none'} < {need}"
            return f"expect_audio {expect}: the received audio does not match ({what})"
        return None

    async def assess(self, m: m_pb2.CallMeasurement, job: CallJob, call) -> m_pb2.CallMeasurement:
        """Score the caller's recording: mos_lqo against the played file (a far end that echoes
        sends it back), the match with expect_audio (a mismatch fails the call), the flags."""
        if not job.record_path or not Path(job.record_path).exists():
            return m
        m.recorded_legs = ",".join(x for x in ("caller", *m.recorded_legs.split(",")) if x)
        if m.outcome != m_pb2.SUCCESS:
            return m
        expect = call.expect_audio
        reference = str(await asyncio.to_thread(self.media, expect)) if expect else (job.play_file or None)
        s = await self._score(job.record_path, reference)
        if isinstance(s, str):
            _note(m, f"audio not scored: {s}")
            return m
        _apply_score(m, s, sent=bool(job.play_file or job.tone_hz))
        if expect:
            bad = self._mismatch(expect, call.expect_audio_min or analysis.MATCH_MIN, s)
            if bad:
                m.outcome = m_pb2.CALL_FAILED
                m.detail = "; ".join(x for x in (bad, m.detail) if x)
        return m

    async def assess_callee(self, m: m_pb2.CallMeasurement, recording: str, *, played: str | None,
                            expect: str = "", expect_min: float = 0.0, joined: bool = True,
                            callee_sent: bool = False) -> m_pb2.CallMeasurement:
        """Score what our callee (wait_for_calls) received: against its ``expect_audio``, else what
        our caller ``played``. On a caller's measurement (``joined``) the figures go to the
        ``callee_*`` fields; on a callee's own measurement (a call from outside the run) to the
        usual ones. An expect_audio mismatch fails the call."""
        m.recorded_legs = ",".join(x for x in (*m.recorded_legs.split(","), "callee") if x)
        if m.outcome != m_pb2.SUCCESS:
            return m
        reference = str(await asyncio.to_thread(self.media, expect)) if expect else played
        s = await self._score(recording, reference)
        if isinstance(s, str):
            _note(m, f"callee audio not scored: {s}")
            return m
        if joined:
            if s["mos_lqo"] is not None:
                m.callee_mos_lqo = s["mos_lqo"]
            if s["correlation"] is not None:
                m.callee_audio_match = s["correlation"]
            m.callee_audio_silent = s["silence"]
        else:
            _apply_score(m, s, sent=callee_sent)
        if expect:
            bad = self._mismatch(expect, expect_min or analysis.MATCH_MIN, s)
            if bad:
                m.outcome = m_pb2.CALL_FAILED
                m.detail = "; ".join(x for x in (f"callee {bad}", m.detail) if x)
        return m

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


@lru_cache(maxsize=1)
def default_service() -> AudioService:
    from callgauge_media.settings import MediaSettings

    s = MediaSettings()
    return AudioService(s.data_dir.resolve() / "audio", scorers=s.audio_scorers, max_queue=s.audio_score_queue,
                        max_recordings_per_run=s.audio_max_recordings_per_run,
                        max_run_bytes=s.audio_max_run_mb * 1_000_000, max_total_bytes=s.audio_max_total_mb * 1_000_000,
                        retention_s=s.audio_retention_days * 86400.0)


def _apply_score(m: m_pb2.CallMeasurement, s: dict, *, sent: bool) -> None:
    """A recording's scores into a measurement's own fields (null stays null: absent, never 0);
    one-way audio is silence where our side sent something."""
    if s["mos_lqo"] is not None:
        m.mos_lqo = s["mos_lqo"]
    if s["delay_ms"] is not None:
        m.audio_delay_ms = s["delay_ms"]
    if s["correlation"] is not None:
        m.audio_match = s["correlation"]
    m.audio_silent, m.audio_clipped = s["silence"], s["clipping"]
    m.audio_one_way = s["silence"] and sent
    m.audio_score_cpu_s = s["cpu_s"]
