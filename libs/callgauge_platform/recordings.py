"""Where a call's recordings live, shared by the media engine (which writes them) and the gateway
(which serves them): ``<data dir>/audio/recordings/<run id>/<call id>.<leg>.wav``, every name made
safe for a file system (anything but letters, digits, ``._-`` becomes ``_``). The gateway and the
media engine must therefore see the same data directory (one machine, or a shared volume)."""
from __future__ import annotations

import re
from pathlib import Path

LEGS = ("caller", "callee")
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(value: str) -> str:
    return _SAFE.sub("_", value)


def recordings_dir(data_dir: Path) -> Path:
    return Path(data_dir).resolve() / "audio" / "recordings"


def recording_path(recordings: Path, run_id: str, call_id: str, leg: str) -> Path:
    if leg not in LEGS:
        raise ValueError(f"leg must be one of {', '.join(LEGS)}")
    return Path(recordings) / safe_name(run_id) / f"{safe_name(call_id)}.{leg}.wav"


def find_recording(data_dir: Path, run_id: str, call_id: str, leg: str) -> Path | None:
    """The recording of one leg of a call of ``run_id``, or None. A call id names its run
    (``<run id>:…``), so a call of another run is never found under this one."""
    if not call_id.startswith(f"{run_id}:") or len(call_id) > 300:
        return None
    path = recording_path(recordings_dir(data_dir), run_id, call_id, leg)
    return path if path.is_file() else None
