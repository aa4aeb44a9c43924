"""The gateway's SQLite state files (idempotency records, report sessions) open one way."""

from __future__ import annotations

from callgauge_gateway.adapters import sqlite_file


def test_create_makes_the_folder_a_wal_file_and_the_table_once(tmp_path):
    path = tmp_path / "deep" / "state.db"
    ddl = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)"
    sqlite_file.create(path, ddl)
    sqlite_file.create(path, ddl)  # again: nothing changes
    c = sqlite_file.connect(path)
    try:
        assert c.isolation_level is None  # autocommit: transactions are written out
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert c.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == [("t",)]
    finally:
        c.close()
