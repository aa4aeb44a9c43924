"""How many recordings a run may keep, which calls of a load are recorded, and when recordings go.

Pure (no I/O but :func:`sweep`, which deletes what :func:`expired_runs` names):

- ``sampled``: whether call ``index`` of a load action is one of the ``fraction`` recorded. The
  choice is a hash of the run, the action and the index, so replicas sharing a run (each placing
  its own indexes) and a rerun of the same plan pick the same calls, spread over the whole load
  rather than its first calls.
- :class:`RunBudget`: a run's recordings are capped, like its calls, by count and by disk (bytes
  reserved from each call's talk time before the call is placed, at the recorder's 16-bit 8 kHz
  mono: 16,000 bytes a second). A call over either cap is placed unrecorded (``detail`` says so).
  Recordings are not billed: the caps bound them instead.
- ``expired_runs``: the run directories to delete, the ones older than the retention first, then
  the oldest while the whole recordings directory is above its disk cap.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

BYTES_PER_SECOND = 16_000  # 16-bit PCM mono at the bridge's 8 kHz
WAV_HEADER = 44
SLACK_S = 2.0  # a call's recording lasts its talk time plus setup and teardown


def sampled(run_id: str, step: int, action: int, index: int, fraction: float) -> bool:
    """True for about ``fraction`` (0..1) of the indexes, the same ones every time."""
    if fraction <= 0:
        return False
    if fraction >= 1:
        return True
    h = hashlib.blake2b(f"{run_id}:{step}.{action}.{index}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64 < fraction


def recording_bytes(duration_ms: int, legs: int = 1) -> int:
    """Bytes reserved for a call's recording(s) of this talk time."""
    return legs * (WAV_HEADER + int((max(0, duration_ms) / 1000.0 + SLACK_S) * BYTES_PER_SECOND))


@dataclass
class RunBudget:
    """One run's recordings so far against its caps (``max_count`` recordings, ``max_bytes``)."""

    max_count: int
    max_bytes: int
    count: int = 0
    bytes: int = 0
    refused: int = 0
    per_action: dict[tuple[int, int], int] = field(default_factory=dict)

    def reserve(self, nbytes: int, *, action: tuple[int, int] | None = None, action_max: int = 0) -> str | None:
        """Take room for one more recording; None when granted, else why not (nothing is taken)."""
        if action is not None and action_max and self.per_action.get(action, 0) >= action_max:
            why = f"the action's record_max ({action_max}) is reached"
        elif self.count >= self.max_count:
            why = f"the run's cap of {self.max_count} recordings is reached"
        elif self.bytes + nbytes > self.max_bytes:
            why = f"the run's cap of {self.max_bytes // 1_000_000} MB of recordings is reached"
        else:
            self.count += 1
            self.bytes += nbytes
            if action is not None:
                self.per_action[action] = self.per_action.get(action, 0) + 1
            return None
        self.refused += 1
        return why


@dataclass(frozen=True, slots=True)
class RunDir:
    name: str
    mtime: float  # the newest file in it (a run still recording is never the oldest)
    size: int


def expired_runs(dirs: list[RunDir], now: float, retention_s: float, max_total_bytes: int) -> list[str]:
    """Names of the run directories to delete: older than ``retention_s`` (0: no age limit), then
    the oldest until what remains fits ``max_total_bytes`` (0: no disk limit)."""
    out = [d.name for d in dirs if retention_s > 0 and now - d.mtime > retention_s]
    gone = set(out)
    if max_total_bytes > 0:
        kept = sorted((d for d in dirs if d.name not in gone), key=lambda d: d.mtime)
        total = sum(d.size for d in kept)
        for d in kept:
            if total <= max_total_bytes:
                break
            out.append(d.name)
            total -= d.size
    return out


def scan(root: Path) -> list[RunDir]:
    out = []
    if not root.is_dir():
        return out
    for d in root.iterdir():
        if not d.is_dir():
            continue
        size, newest = 0, 0.0
        for f in d.iterdir():
            try:
                st = f.stat()
            except OSError:
                continue
            size += st.st_size
            newest = max(newest, st.st_mtime)
        out.append(RunDir(d.name, newest or d.stat().st_mtime, size))
    return out


def sweep(root: Path, retention_s: float, max_total_bytes: int, now: float | None = None) -> list[str]:
    """Delete the recordings :func:`expired_runs` names under ``root``; returns their run dirs."""
    names = expired_runs(scan(root), time.time() if now is None else now, retention_s, max_total_bytes)
    for name in names:
        shutil.rmtree(root / name, ignore_errors=True)
    return names


def dir_bytes(path: Path) -> int:
    try:
        return sum(os.stat(p).st_size for p in Path(path).iterdir())
    except OSError:
        return 0
