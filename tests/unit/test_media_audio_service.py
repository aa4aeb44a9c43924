"""The audio service's verdict on a recording (given recordings made here, no SIP): a matching
one passes with MOS-LQO and delay, a wrong one and a silent one fail expect_audio with a reason
while the packet-based figures are untouched; a full scoring queue leaves the call unscored."""
from __future__ import annotations

import asyncio

import numpy as np

from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2

from callgauge_media.adapters.audio import wavfile
from callgauge_media.adapters.audio.service import AudioService
from callgauge_media.domain.jobs import CallJob

RATE = 8000


def _speechlike(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    x = np.convolve(rng.standard_normal(n), np.ones(4) / 4, mode="same")
    return 0.3 * x * (np.sin(np.arange(n) / RATE * 2 * np.pi * 2.0) > -0.3)


def _verdict(tmp_path, recorded: np.ndarray, service: AudioService | None = None) -> m_pb2.CallMeasurement:
    svc = service or AudioService(tmp_path / "audio")
    (svc.media_dir).mkdir(parents=True, exist_ok=True)
    wavfile.write_pcm16(svc.media_dir / "ref.wav", _speechlike(3.0, 1), RATE)
    rec = tmp_path / "rec.wav"
    wavfile.write_pcm16(rec, recorded, RATE)
    job = CallJob(call_id="c1", destination="sip:x@127.0.0.1", play_file=str(svc.media("ref.wav")),
                  record_path=str(rec))
    call = spec_pb2.CallAction(play_file="ref.wav", record=True, expect_audio="ref.wav")
    m = m_pb2.CallMeasurement(outcome=m_pb2.SUCCESS, mos=4.4)
    try:
        return asyncio.run(svc.assess(m, job, call))
    finally:
        svc.close()


def test_the_expected_audio_passes_with_its_delay(tmp_path) -> None:
    delay = np.zeros(int(0.12 * RATE))
    m = _verdict(tmp_path, np.concatenate([delay, _speechlike(3.0, 1), delay]))
    assert m.outcome == m_pb2.SUCCESS, m.detail
    assert m.HasField("mos_lqo") and m.HasField("audio_match") and m.audio_match > 0.9
    assert abs(m.audio_delay_ms - 120.0) <= 1.0
    assert m.recorded_legs == "caller" and not m.audio_silent and m.HasField("audio_score_cpu_s")


def test_a_wrong_prompt_or_silence_fails_expect_audio_with_a_reason(tmp_path) -> None:
    wrong = _verdict(tmp_path, _speechlike(3.0, 7))
    assert wrong.outcome == m_pb2.CALL_FAILED and "expect_audio ref.wav" in wrong.detail, wrong.detail
    assert wrong.mos == 4.4  # the E-model's view is untouched
    silent = _verdict(tmp_path, np.zeros(3 * RATE))
    assert silent.outcome == m_pb2.CALL_FAILED and "silence" in silent.detail
    assert silent.audio_silent and silent.audio_one_way and not silent.HasField("audio_delay_ms")


def test_a_full_scoring_queue_leaves_the_call_unscored(tmp_path) -> None:
    svc = AudioService(tmp_path / "audio", max_queue=1)
    svc._pending = 1  # one call is being scored
    m = _verdict(tmp_path, _speechlike(3.0, 1), svc)
    assert not m.HasField("mos_lqo") and "scoring queue is full" in m.detail
