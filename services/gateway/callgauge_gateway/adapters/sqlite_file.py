"""The SQLite files a gateway keeps under its data dir when no Redis is configured (idempotency
records, report sessions): one way to open them, so every gateway process of the machine shares
them alike (WAL, a writer waits up to 10 s for another's lock, explicit transactions only)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

BUSY_TIMEOUT_S = 10


def connect(path: Path) -> sqlite3.Connection:
    """A new connection in autocommit mode (isolation_level=None: BEGIN is written out)."""
    return sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)


def create(path: Path, ddl: str) -> None:
    """Make the file (and its folder) if missing, in WAL mode, with the table of `ddl`
    (a CREATE TABLE IF NOT EXISTS)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    c = connect(path)
    try:
        c.execute("PRAGMA journal_mode=WAL")
        c.execute(ddl)
    finally:
        c.close()
