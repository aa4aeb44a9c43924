"""The idempotency store behind the Idempotency-Key middleware
(callgauge_gateway.entrypoints.idempotency): Redis when CALLGAUGE_REDIS_URL is set (shared by every
gateway process), else a SQLite file under the data dir (shared by the gateway processes of one
machine). A key is claimed atomically; a claim whose request died holds for LOCK_SECONDS at most."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from callgauge_gateway.adapters import sqlite_file
from callgauge_gateway.settings import GatewaySettings

LOCK_SECONDS = 60


@dataclass(frozen=True)
class Record:
    fingerprint: str
    done: bool
    status: int = 0
    headers: dict | None = None
    body: bytes = b""


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        sqlite_file.create(path, "CREATE TABLE IF NOT EXISTS idempotency (k TEXT PRIMARY KEY, "
                           "fingerprint TEXT NOT NULL, done INTEGER NOT NULL, status INTEGER, headers TEXT, "
                           "body BLOB, expires REAL NOT NULL)")
        self._last_purge = 0.0

    def _conn(self) -> sqlite3.Connection:
        return sqlite_file.connect(self.path)

    def _claim(self, key: str, fingerprint: str, ttl: int) -> Record | None:
        now = time.time()
        c = self._conn()
        try:
            c.execute("BEGIN IMMEDIATE")
            if now - self._last_purge > 600:
                c.execute("DELETE FROM idempotency WHERE expires < ?", (now,))
                self._last_purge = now
            row = c.execute("SELECT fingerprint, done, status, headers, body, expires FROM idempotency WHERE k = ?",
                            (key,)).fetchone()
            if row is not None and row[5] >= now:
                c.execute("COMMIT")
                return Record(row[0], bool(row[1]), row[2] or 0, json.loads(row[3]) if row[3] else None,
                              row[4] or b"")
            c.execute("INSERT OR REPLACE INTO idempotency (k, fingerprint, done, expires) VALUES (?, ?, 0, ?)",
                      (key, fingerprint, now + LOCK_SECONDS))
            c.execute("COMMIT")
            return None
        except BaseException:
            c.execute("ROLLBACK") if c.in_transaction else None
            raise
        finally:
            c.close()

    def _complete(self, key: str, fingerprint: str, status: int, headers: dict, body: bytes, ttl: int) -> None:
        c = self._conn()
        try:
            c.execute("UPDATE idempotency SET done = 1, status = ?, headers = ?, body = ?, expires = ? "
                      "WHERE k = ? AND fingerprint = ?",
                      (status, json.dumps(headers), body, time.time() + ttl, key, fingerprint))
        finally:
            c.close()

    def _release(self, key: str, fingerprint: str) -> None:
        c = self._conn()
        try:
            c.execute("DELETE FROM idempotency WHERE k = ? AND fingerprint = ? AND done = 0", (key, fingerprint))
        finally:
            c.close()

    async def claim(self, key: str, fingerprint: str, ttl: int) -> Record | None:
        return await asyncio.to_thread(self._claim, key, fingerprint, ttl)

    async def complete(self, key: str, fingerprint: str, status: int, headers: dict, body: bytes, ttl: int) -> None:
        await asyncio.to_thread(self._complete, key, fingerprint, status, headers, body, ttl)

    async def release(self, key: str, fingerprint: str) -> None:
        await asyncio.to_thread(self._release, key, fingerprint)

    async def close(self) -> None:
        pass


class RedisStore:
    PREFIX = "callgauge-idem:"

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self.redis = redis.from_url(url)

    async def claim(self, key: str, fingerprint: str, ttl: int) -> Record | None:
        k = self.PREFIX + key
        for _ in range(3):  # a record may expire between the SET and the GET: look again
            if await self.redis.set(k, json.dumps({"fp": fingerprint, "done": False}), nx=True, ex=LOCK_SECONDS):
                return None
            raw = await self.redis.get(k)
            if raw is not None:
                d = json.loads(raw)
                return Record(d["fp"], d["done"], d.get("status", 0), d.get("headers"),
                              base64.b64decode(d.get("body", "")))
        raise ApiError(503, "Idempotency store is busy; retry shortly", headers={"Retry-After": "1"})

    async def complete(self, key: str, fingerprint: str, status: int, headers: dict, body: bytes, ttl: int) -> None:
        value = json.dumps({"fp": fingerprint, "done": True, "status": status, "headers": headers,
                            "body": base64.b64encode(body).decode()})
        await self.redis.set(self.PREFIX + key, value, ex=ttl)

    async def release(self, key: str, fingerprint: str) -> None:
        raw = await self.redis.get(self.PREFIX + key)
        if raw is not None and (d := json.loads(raw))["fp"] == fingerprint and not d["done"]:
            await self.redis.delete(self.PREFIX + key)

    async def close(self) -> None:
        await self.redis.aclose()


def open_store(settings: GatewaySettings):
    if settings.redis_url:
        return RedisStore(settings.redis_url)
    return SqliteStore(settings.data_dir / "gateway-idempotency.db")
