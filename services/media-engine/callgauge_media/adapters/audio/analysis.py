"""What a recording says about a call, judged from the audio itself.

- ``align``: where the reference starts in the recording, by FFT cross-correlation of the two
  signals (normalised, so the peak is a correlation coefficient in [-1, 1]). In the caller's
  recording of a far end that echoes, that offset is the mouth-to-ear round trip.
- ``audio_flags``: silence (level below ``SILENCE_DBFS``), clipping (share of samples at full
  scale above ``CLIP_SHARE``).
- ``visqol_mos``: ViSQOL v3 speech mode (visqol-python, Apache-2.0) on 16 kHz signals, after the
  recording is cut to the aligned stretch the reference covers.
- ``score``: all of the above for one recording, the unit of work of the scoring pool.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
from scipy.signal import butter, fftconvolve, sosfiltfilt

from callgauge_media.adapters.audio.wavfile import read_mono, wait_complete

SCORE_RATE = 16000  # ViSQOL speech mode works on 16 kHz
SILENCE_DBFS = -50.0
CLIP_LEVEL = 0.999
CLIP_SHARE = 0.001
SILENT_MOS = 1.0  # MOS-LQO given to a silent recording of a call that had a reference to carry
MATCH_MIN = 0.6  # default chunk correlation an expected prompt must reach (clean PCMU ~0.97, another prompt ~0.3)


@dataclass(frozen=True, slots=True)
class Alignment:
    offset_s: float  # the reference starts this long after the recording does (negative: before)
    correlation: float  # normalised correlation at that offset


def _envelope_free(x: np.ndarray) -> np.ndarray:
    x = x - x.mean() if x.size else x
    return x


def align(reference: np.ndarray, recording: np.ndarray, rate: int, max_lag_s: float | None = None) -> Alignment:
    """The lag of ``reference`` inside ``recording`` that maximises their correlation, with the
    correlation normalised by the energy of the reference and of the overlapping recording."""
    ref = _envelope_free(np.asarray(reference, dtype=np.float64))
    rec = _envelope_free(np.asarray(recording, dtype=np.float64))
    if ref.size == 0 or rec.size == 0:
        return Alignment(0.0, 0.0)
    # c[k] = sum_n rec[n + lag] * ref[n], lag = k - (len(ref) - 1)
    c = fftconvolve(rec, ref[::-1], mode="full")
    lags = np.arange(c.size) - (ref.size - 1)
    # energy of the recording under the reference at each lag (running sum of squares)
    sq = np.concatenate(([0.0], np.cumsum(rec * rec)))
    start = np.clip(lags, 0, rec.size)
    end = np.clip(lags + ref.size, 0, rec.size)
    rec_energy = sq[end] - sq[start]
    ref_energy = float(np.dot(ref, ref))
    denom = np.sqrt(np.maximum(rec_energy, 1e-12) * max(ref_energy, 1e-12))
    norm = c / denom
    # only lags where at least half of the reference overlaps the recording count
    ok = (end - start) >= ref.size // 2
    if max_lag_s is not None:
        ok &= np.abs(lags) <= max_lag_s * rate
    if not ok.any():
        return Alignment(0.0, 0.0)
    norm = np.where(ok, norm, -np.inf)
    k = int(np.argmax(norm))
    return Alignment(lags[k] / rate, float(norm[k]))


_TELEPHONE_BAND = butter(6, [300.0, 3400.0], btype="bandpass", fs=SCORE_RATE, output="sos")


def telephone_band(x: np.ndarray) -> np.ndarray:
    """``x`` (at SCORE_RATE) band-limited to 300..3400 Hz: what every codec carries, so a wideband
    reference and a narrowband recording are compared on the same band."""
    return sosfiltfilt(_TELEPHONE_BAND, x) if x.size > 64 else x


def match(reference: np.ndarray, recording: np.ndarray, rate: int, offset_s: float,
          chunk_s: float = 0.5, search_s: float = 0.1) -> float | None:
    """How well ``recording`` carries ``reference`` from ``offset_s`` on: the median normalised
    correlation of the reference's voiced 0.5 s chunks, each aligned again within ±``search_s``.
    Chunks, because a jitter buffer shifts the audio by whole 10-20 ms frames as it adapts, which
    lowers one correlation over the whole prompt though every stretch of it arrived intact.
    None when the reference has no voiced chunk."""
    n, pad = int(chunk_s * rate), int(search_s * rate)
    base = int(round(offset_s * rate))
    floor = 0.1 * float(np.sqrt(np.mean(reference * reference))) if reference.size else 0.0
    scores = []
    for i in range(0, reference.size - n + 1, n):
        seg = reference[i:i + n]
        if float(np.sqrt(np.mean(seg * seg))) < floor:
            continue  # a pause in the prompt says nothing
        lo = max(0, base + i - pad)
        win = recording[lo:base + i + n + pad]
        scores.append(align(seg, win, rate).correlation if win.size >= n // 2 else 0.0)
    return float(np.median(scores)) if scores else None


@dataclass(frozen=True, slots=True)
class AudioFlags:
    level_dbfs: float | None  # RMS level; None for no samples
    silence: bool
    clipping: bool
    clipped_share: float


def audio_flags(x: np.ndarray) -> AudioFlags:
    if x.size == 0:
        return AudioFlags(None, True, False, 0.0)
    rms = float(np.sqrt(np.mean(x * x)))
    level = 20.0 * math.log10(rms) if rms > 0 else -200.0
    clipped = float(np.mean(np.abs(x) >= CLIP_LEVEL))
    return AudioFlags(round(level, 1), level < SILENCE_DBFS, clipped > CLIP_SHARE, clipped)


_visqol_api = None


def visqol_mos(reference: np.ndarray, degraded: np.ndarray) -> float:
    """ViSQOL speech-mode MOS-LQO of ``degraded`` against ``reference`` (both 16 kHz, same
    length). One API object per process, made on first use."""
    global _visqol_api
    if _visqol_api is None:
        import logging

        from visqol import VisqolApi

        logging.getLogger("visqol").setLevel(logging.ERROR)
        api = VisqolApi()
        api.create(mode="speech")
        _visqol_api = api
    n = min(reference.size, degraded.size)
    return float(_visqol_api.measure_from_arrays(reference[:n], degraded[:n], SCORE_RATE).moslqo)


@dataclass(frozen=True, slots=True)
class Score:
    mos_lqo: float | None  # None: not scored (no reference, or the reference was not found)
    delay_ms: float | None  # where the reference starts in the recording
    correlation: float | None
    level_dbfs: float | None
    silence: bool
    clipping: bool
    cpu_s: float  # CPU time this scoring took

    def as_dict(self) -> dict:
        return asdict(self)


def score(recording_path: str, reference_path: str | None, *, with_visqol: bool = True,
          max_lag_s: float = 5.0) -> Score:
    """Align ``reference`` in the recording, flag the audio and (``with_visqol``) score it."""
    t0 = time.process_time()
    wait_complete(recording_path)
    rec, _ = read_mono(recording_path, SCORE_RATE)
    flags = audio_flags(rec)
    mos = delay = corr = None
    if reference_path and rec.size:
        ref, _ = read_mono(reference_path, SCORE_RATE)
        start = 0
        if not flags.silence:  # silence has no offset to find
            band_ref, band_rec = telephone_band(ref), telephone_band(rec)
            al = align(band_ref, band_rec, SCORE_RATE, max_lag_s=max_lag_s)
            m = match(band_ref, band_rec, SCORE_RATE, al.offset_s)
            corr = round(m, 4) if m is not None and math.isfinite(m) else None
            delay = round(float(al.offset_s) * 1000.0, 1)
            start = max(0, int(round(al.offset_s * SCORE_RATE)))
        if with_visqol and flags.silence:
            mos = SILENT_MOS  # ViSQOL gives no number for silence (NaN): the scale's floor
        elif with_visqol:
            seg = rec[start:start + ref.size]
            if seg.size < ref.size:  # the call ended before the prompt did: what is missing is silence
                seg = np.concatenate([seg, np.zeros(ref.size - seg.size)])
            v = visqol_mos(ref, seg)
            mos = round(v, 3) if math.isfinite(v) else None
    return Score(mos, delay, corr, flags.level_dbfs, flags.silence, flags.clipping,
                 round(time.process_time() - t0, 3))
