"""Audio analysis on signals made here: alignment finds a known offset within 1 ms, flags for
silence and clipping, media names, WAV conversion of any rate to what pjsua plays."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from callgauge_media.adapters.audio import analysis, prompts, wavfile

RATE = 16000


def _speechlike(seconds: float, seed: int = 1) -> np.ndarray:
    """Band-limited noise bursts with pauses: no periodicity for the correlation to lock onto wrongly."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    x = rng.standard_normal(n)
    x = np.convolve(x, np.ones(8) / 8, mode="same")
    gate = (np.sin(np.arange(n) / RATE * 2 * np.pi * 3.0) > -0.3).astype(float)
    return 0.3 * x * gate


@pytest.mark.parametrize("offset_ms", [0.0, 37.5, 212.0, 1234.0])
def test_alignment_finds_a_known_offset_within_one_millisecond(offset_ms: float) -> None:
    ref = _speechlike(2.0)
    k = int(round(offset_ms * RATE / 1000))
    noise = np.random.default_rng(9).standard_normal(k + ref.size + 4000) * 0.01
    rec = noise.copy()
    rec[k:k + ref.size] += 0.5 * ref
    al = analysis.align(ref, rec, RATE)
    assert abs(al.offset_s * 1000 - offset_ms) <= 1.0
    assert al.correlation > 0.9


def test_alignment_of_an_unrelated_signal_has_a_low_correlation() -> None:
    al = analysis.align(_speechlike(2.0, seed=1), _speechlike(3.0, seed=2), RATE)
    assert al.correlation < analysis.MATCH_MIN


def test_flags_for_silence_and_clipping() -> None:
    quiet = analysis.audio_flags(np.zeros(RATE))
    assert quiet.silence and not quiet.clipping
    loud = analysis.audio_flags(np.clip(3 * np.sin(np.arange(RATE) / 5.0), -1, 1))
    assert loud.clipping and not loud.silence
    normal = analysis.audio_flags(_speechlike(1.0))
    assert not normal.silence and not normal.clipping
    assert analysis.audio_flags(np.zeros(0)).level_dbfs is None


def test_media_names_are_prompts_or_bare_wav_file_names() -> None:
    assert prompts.check_media_name("prompt:reference") is None
    assert prompts.check_media_name("greeting.wav") is None
    assert "unknown prompt" in prompts.check_media_name("prompt:nope")
    for bad in ("../etc/passwd", "/tmp/a.wav", "a/b.wav", "x.mp3", ".hidden.wav"):
        assert prompts.check_media_name(bad), bad


def test_any_rate_and_channels_become_16_bit_mono_at_the_bridge_rate(tmp_path) -> None:
    t = np.arange(22050) / 22050
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 440 * t)], axis=1)
    src = tmp_path / "in.wav"
    sf.write(src, stereo, 22050, subtype="FLOAT")
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "in.wav").write_bytes(src.read_bytes())
    out = prompts.resolve("in.wav", tmp_path / "media", rate=8000)
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
    assert abs(info.duration - 1.0) < 0.01
    assert wavfile.wav_complete(out)
    with pytest.raises(prompts.MediaNotFound):
        prompts.resolve("missing.wav", tmp_path / "media")
    (tmp_path / "media" / "junk.wav").write_bytes(b"RIFF not really")
    with pytest.raises(prompts.MediaNotFound):
        prompts.resolve("junk.wav", tmp_path / "media")


def test_the_reference_prompt_is_synthesised_once(tmp_path) -> None:
    if not prompts.shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed (install.sh installs it)")
    a = prompts.resolve("prompt:reference", tmp_path, rate=16000)
    mtime = a.stat().st_mtime_ns
    assert prompts.resolve("prompt:reference", tmp_path, rate=16000) == a
    assert a.stat().st_mtime_ns == mtime
    x, rate = wavfile.read_mono(a)
    assert rate == 16000 and x.size > 3 * rate and not analysis.audio_flags(x).silence
