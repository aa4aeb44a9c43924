"""Speech prompts into real calls and recordings of what arrives: a pjsua2 worker calls the
built-in responder (which echoes), plays a prompt, records the echo; the recording is aligned
against the prompt and scored with ViSQOL."""
from __future__ import annotations

import asyncio
from pathlib import Path

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
