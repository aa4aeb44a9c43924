"""The data directory holds secrets (keys, the JWT secret, the SIP-password key, stores): only its
owner may read it. Every file in it is 0600, every directory 0700."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_UMASK = 0o077


def make_private(path: Path) -> None:
    """Create `path` (0700) if needed and take group/other permissions off it and everything under
    it (a data dir made by an older version, or by hand, with 0644 files)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    for root, dirs, files in os.walk(path):
        for d in dirs:
            _tighten(Path(root) / d, 0o700)
        for f in files:
            _tighten(Path(root) / f, 0o600)


def _tighten(p: Path, mode: int) -> None:
    try:
        st = p.lstat()
    except FileNotFoundError:  # gone meanwhile (a WAL file)
        return
    if not os.path.islink(p) and st.st_mode & 0o077:
        os.chmod(p, (st.st_mode & 0o777 & ~0o077) | (mode & 0o700))


def private_process() -> None:
    """Files and directories this process creates are its owner's only (umask 077)."""
    os.umask(PRIVATE_UMASK)
