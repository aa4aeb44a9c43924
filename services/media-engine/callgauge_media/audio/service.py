"""The media engine's audio work: where prompts and recordings live, and the scoring pool.

Recordings are WAV files under ``<data dir>/audio/recordings/<run id>/``; the media directory
(user WAVs and the synthesised prompts) is ``<data dir>/audio/media/``. Scoring (alignment,
flags, ViSQOL) runs in its own process pool — never in the pjsua2 media workers nor on the
event loop — with a bounded queue: a call that finds the queue full is reported unscored
(``mos_lqo`` absent, a note in ``detail``), so analysis can neither delay live calls nor grow
without bound.
"""
from __future__ import annotations

import asyncio
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.audio import analysis, prompts
from callgauge_media.engine.jobs import CallJob

BRIDGE_RATE = 8000  # the workers' conference bridge (EndpointOptions.low_cpu): files are made at its rate
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def _score_job(recording: str, reference: str | None, with_visqol: bool) -> dict:
    return analysis.score(recording, reference, with_visqol=with_visqol).as_dict()


class AudioService:
    def __init__(self, root: Path, *, scorers: int = 1, max_queue: int = 16) -> None:
        self.root = Path(root)
        self.media_dir = self.root / "media"
        self.recordings = self.root / "recordings"
        self.scorers = max(1, scorers)
        self.max_queue = max(1, max_queue)
        self._pool: ProcessPoolExecutor | None = None
        self._pending = 0

    # ---- files
    def media(self, name: str, rate: int = BRIDGE_RATE) -> Path:
        return prompts.resolve(name, self.media_dir, rate)

    def recording_path(self, run_id: str, call_id: str, leg: str) -> Path:
        return self.recordings / _SAFE.sub("_", run_id) / f"{_SAFE.sub('_', call_id)}.{leg}.wav"

    async def prepare(self, job: CallJob, call, run_id: str) -> CallJob:
        """``job`` with the call action's play_file resolved to a file and its recording path."""
        play = record = ""
        if call.play_file:
            play = str(await asyncio.to_thread(self.media, call.play_file))
        if call.record or call.expect_audio:
            path = self.recording_path(run_id, job.call_id, "caller")
            path.parent.mkdir(parents=True, exist_ok=True)
            record = str(path)
        return replace(job, play_file=play, play_loop=not call.play_once, record_path=record)

    # ---- scoring
    async def assess(self, m: m_pb2.CallMeasurement, job: CallJob, call) -> m_pb2.CallMeasurement:
        """Score the caller's recording: mos_lqo against the played file (a far end that echoes
        sends it back), the match with expect_audio (a mismatch fails the call), the flags."""
        if not job.record_path or not Path(job.record_path).exists():
            return m
        m.recorded_legs = "caller"
        if m.outcome != m_pb2.SUCCESS:
            return m
        expect = call.expect_audio
        reference = str(await asyncio.to_thread(self.media, expect)) if expect else (job.play_file or None)
        if self._pending >= self.max_queue:
            m.detail = "; ".join(x for x in (m.detail, "audio not scored: the scoring queue is full") if x)
            return m
        self._pending += 1
        try:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=self.scorers)
            loop = asyncio.get_running_loop()
            s = await loop.run_in_executor(self._pool, _score_job, job.record_path, reference, True)
        except Exception as exc:  # noqa: BLE001 - a broken file must not break the run
            m.detail = "; ".join(x for x in (m.detail, f"audio not scored: {type(exc).__name__}: {exc}") if x)
            return m
        finally:
            self._pending -= 1
        if s["mos_lqo"] is not None:
            m.mos_lqo = s["mos_lqo"]
        if s["delay_ms"] is not None:
            m.audio_delay_ms = s["delay_ms"]
        if s["correlation"] is not None:
            m.audio_match = s["correlation"]
        m.audio_silent, m.audio_clipped = s["silence"], s["clipping"]
        m.audio_one_way = s["silence"] and bool(job.play_file or job.tone_hz)
        m.audio_score_cpu_s = s["cpu_s"]
        if expect:
            need = call.expect_audio_min or analysis.MATCH_MIN
            got = s["correlation"]
            if s["silence"] or got is None or got < need:
                what = "silence" if s["silence"] else f"correlation {got if got is not None else 'none'} < {need}"
                m.outcome = m_pb2.CALL_FAILED
                m.detail = "; ".join(x for x in (f"expect_audio {expect}: the received audio does not match ({what})",
                                                 m.detail) if x)
        return m

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


@lru_cache(maxsize=1)
def default_service() -> AudioService:
    from callgauge_platform.settings import Settings

    s = Settings()
    return AudioService(s.data_dir.resolve() / "audio", scorers=int(os.environ.get("CALLGAUGE_AUDIO_SCORERS", "1")))
