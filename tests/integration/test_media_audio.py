"""Speech prompts into real calls and recordings of what arrives: a pjsua2 worker calls the
built-in responder (which echoes), plays a prompt, records the echo; the recording is aligned
against the prompt and scored with ViSQOL."""
from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.adapters.audio import analysis, prompts
from callgauge_media.domain.jobs import CallJob
from callgauge_media.adapters.pool import WorkerPool

pytest.importorskip("pjsua2", reason="pjsua2-python (extra 'media') is not installed")

from test_media_worker import HOST, _explain  # noqa: E402

CALL_BOUND_S = 60.0


@pytest.fixture
async def pool(start_pool) -> WorkerPool:
    return await start_pool(rtp_port_base=47000)


async def test_prompt_played_into_a_call_comes_back_in_the_recording(pool, start_responder, tmp_path: Path) -> None:
    r = start_responder()
    ref = prompts.resolve("prompt:reference", tmp_path / "media", rate=16000)
    rec = tmp_path / "rec" / "caller.wav"
    rec.parent.mkdir()
    dur_ms = 1000 * int(analysis.read_mono(ref)[0].size / 16000) + 3000
    m = await asyncio.wait_for(pool.run_call(CallJob(
        call_id="audio-1", destination=r.uri, duration_ms=dur_ms, codec="PCMU", setup_timeout_ms=10_000,
        play_file=str(ref), play_loop=False, record_path=str(rec))), CALL_BOUND_S)
    assert m.outcome == m_pb2.SUCCESS, _explain(m)
    assert rec.stat().st_size > 44
    s = analysis.score(str(rec), str(ref))
    assert not s.silence and not s.clipping
    assert s.correlation is not None and s.correlation > analysis.MATCH_MIN
    assert s.delay_ms is not None and 0 <= s.delay_ms < 1000  # the echo's round trip over loopback
    assert s.mos_lqo is not None and s.mos_lqo >= 3.5
    # the wrong prompt does not match what came back
    other = prompts.resolve("prompt:greeting", tmp_path / "media", rate=16000)
    w = analysis.score(str(rec), str(other), with_visqol=False)
    assert w.correlation is not None and w.correlation < analysis.MATCH_MIN


def _altered_frames(reference: np.ndarray, recording: np.ndarray, rate: int) -> tuple[int, list[int]]:
    """The reference's voiced 20 ms frames, and those the recording does not hold at the single
    offset where the reference starts in it (normalised error of 5 % or more: G.711's own
    quantisation stays near 1-3 %). A frame the far end's or our jitter buffer concealed, dropped
    or shifted by 10 ms is altered; so is every voiced frame after a shift."""
    base = int(round(analysis.align(reference, recording, rate, max_lag_s=5.0).offset_s * rate))
    n = rate // 50
    floor = 0.05 * float(np.sqrt(np.mean(reference * reference)))
    voiced, altered = 0, []
    for j in range(0, reference.size - n + 1, n):
        seg = reference[j:j + n]
        level = float(np.sqrt(np.mean(seg * seg)))
        if level < floor:
            continue
        voiced += 1
        got = recording[base + j:base + j + n] if base + j >= 0 else np.zeros(0)
        if got.size < n or float(np.sqrt(np.mean((got - seg) ** 2))) / level >= 0.05:
            altered.append(j // n)
    return voiced, altered


async def test_the_echo_of_a_clean_call_is_the_prompt_frame_for_frame(pool, start_responder, tmp_path: Path) -> None:
    """Clean PCMU calls to the built-in responder bring the prompt back unaltered: every voiced frame
    at one offset. This is what makes a clean call's MOS-LQO a constant (4.973 for PCMU) rather than
    noise, and the loss table of docs/quality.md readable. It rests on the responder's fixed jitter
    buffer (``--jitter-buffer-ms``, default 60) and the recorded call's
    (``recorded_jitter_buffer_ms``, default 60): with pjmedia's adaptive buffers this test failed
    (114 of 421 voiced frames altered in the first call), and clean calls came back with 10 ms shifts
    (a concealed frame where a buffer ran empty at the bridge's tick, a frame dropped by its
    progressive discard) and MOS-LQO 4.907-4.939 (docs/quality.md, the measurement path's own noise)."""
    r = start_responder()
    ref = prompts.resolve("prompt:reference", tmp_path / "media", rate=8000)  # the workers' bridge rate
    reference, rate = analysis.read_mono(ref)
    dur_ms = int(1000 * reference.size / rate) + 2000
    recs = [tmp_path / "rec" / f"caller-{i}.wav" for i in range(4)]
    recs[0].parent.mkdir()
    ms = await asyncio.wait_for(asyncio.gather(*(pool.run_call(CallJob(
        call_id=f"echo-{i}", destination=r.uri, duration_ms=dur_ms, codec="PCMU", setup_timeout_ms=10_000,
        play_file=str(ref), play_loop=False, record_path=str(rec))) for i, rec in enumerate(recs))), CALL_BOUND_S)
    for m, rec in zip(ms, recs):
        assert m.outcome == m_pb2.SUCCESS, _explain(m)
        analysis.wait_complete(rec)
        recording, got_rate = analysis.read_mono(rec)
        assert got_rate == rate
        voiced, altered = _altered_frames(reference, recording, rate)
        assert voiced > 300 and altered == [], \
            f"{rec.name}: {len(altered)} of {voiced} voiced frames altered: {altered[:20]}"
