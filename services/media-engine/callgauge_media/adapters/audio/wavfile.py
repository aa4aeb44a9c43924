"""WAV in and out: any rate and channel count in, 16-bit PCM mono at a chosen rate out (what
pjsua's file player wants). Uses soundfile (libsndfile) to read and scipy's polyphase resampler."""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly


class AudioFileError(ValueError):
    """A file that is not readable audio."""


def read_mono(path: str | os.PathLike, rate: int | None = None) -> tuple[np.ndarray, int]:
    """The file's samples as float64 mono in [-1, 1] (channels averaged), resampled to ``rate``
    when given; returns ``(samples, rate)``."""
    try:
        data, sr = sf.read(os.fspath(path), dtype="float64", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioFileError(f"{Path(path).name}: not a readable audio file ({exc})") from None
    x = data.mean(axis=1)
    if rate is not None and rate != sr:
        x = resample(x, sr, rate)
        sr = rate
    return x, int(sr)


def resample(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    if src_rate == dst_rate:
        return x
    g = math.gcd(int(src_rate), int(dst_rate))
    return resample_poly(x, dst_rate // g, src_rate // g)


def write_pcm16(path: str | os.PathLike, x: np.ndarray, rate: int) -> None:
    """Write mono 16-bit PCM atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".wav")
    os.close(fd)
    try:
        sf.write(tmp, np.clip(x, -1.0, 1.0), rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def convert_for_pjsua(src: str | os.PathLike, dst: str | os.PathLike, rate: int = 16000) -> Path:
    """``src`` (any WAV/FLAC/… that libsndfile reads, any rate, mono or not) as 16-bit PCM mono at
    ``rate`` in ``dst``."""
    x, _ = read_mono(src, rate)
    if x.size == 0:
        raise AudioFileError(f"{Path(src).name}: no samples")
    write_pcm16(dst, x, rate)
    return Path(dst)


def is_pjsua_ready(path: str | os.PathLike, rate: int) -> bool:
    try:
        info = sf.info(os.fspath(path))
    except (RuntimeError, sf.LibsndfileError):
        return False
    return info.format == "WAV" and info.subtype == "PCM_16" and info.channels == 1 and info.samplerate == rate


def wav_complete(path: str | os.PathLike) -> bool:
    """True when a WAV file's RIFF header counts every byte of the file. pjmedia's recorder writes
    its sizes when the port is destroyed, which since pjproject 2.14 happens on the conference
    bridge's next clock tick, shortly after the call's measurement is reported."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False
    return len(head) == 12 and head[:4] == b"RIFF" and int.from_bytes(head[4:8], "little") + 8 == size


def wait_complete(path: str | os.PathLike, timeout_s: float = 3.0) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while not wav_complete(path):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True
