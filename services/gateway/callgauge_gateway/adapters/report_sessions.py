"""Server-side sessions of the report pages' browser sign-in.

The cookie holds a random session id (`cgs_` + 256 bits), never the credential. The store (Redis when
CALLGAUGE_REDIS_URL is set, so every gateway replica sees every session; else a SQLite file under the
data dir) keeps, under a hash of the id, the signed-in credential encrypted with a key derived from
the id: the store alone cannot be read (its rows need the cookie), and the cookie alone is no API key
(it opens report pages only, for CALLGAUGE_REPORT_SESSION_TTL_SECONDS at most, and signing out deletes
it on the server). Each request authenticates the credential again exactly as the API does, so a
revoked key or an ended login ends the session at once."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import sqlite3
import time
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from callgauge_gateway.adapters import sqlite_file
from callgauge_gateway.settings import GatewaySettings

PREFIX = "cgs_"


def new_session_id() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def _lookup(sid: str) -> str:
    return hmac.new(sid.encode(), b"callgauge report session id", hashlib.sha256).hexdigest()


def _cipher(sid: str) -> Fernet:
    key = hmac.new(sid.encode(), b"callgauge report session key", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def valid_id(sid: str) -> bool:
    return sid.startswith(PREFIX) and 20 < len(sid) <= 100 and all(c.isalnum() or c in "-_" for c in sid[4:])


class SqliteSessions:
    def __init__(self, path: Path) -> None:
        self.path = path
        sqlite_file.create(path, "CREATE TABLE IF NOT EXISTS report_sessions (k TEXT PRIMARY KEY, "
                           "blob BLOB NOT NULL, expires REAL NOT NULL)")
        self._last_purge = 0.0

    def _conn(self) -> sqlite3.Connection:
        return sqlite_file.connect(self.path)

    def _put(self, k: str, blob: bytes, ttl: int) -> None:
        c = self._conn()
        try:
            now = time.time()
            if now - self._last_purge > 600:
                c.execute("DELETE FROM report_sessions WHERE expires < ?", (now,))
                self._last_purge = now
            c.execute("INSERT OR REPLACE INTO report_sessions (k, blob, expires) VALUES (?, ?, ?)", (k, blob, now + ttl))
        finally:
            c.close()

    def _get(self, k: str) -> bytes | None:
        c = self._conn()
        try:
            row = c.execute("SELECT blob, expires FROM report_sessions WHERE k = ?", (k,)).fetchone()
        finally:
            c.close()
        return row[0] if row is not None and row[1] >= time.time() else None

    def _delete(self, k: str) -> None:
        c = self._conn()
        try:
            c.execute("DELETE FROM report_sessions WHERE k = ?", (k,))
        finally:
            c.close()

    async def put(self, k: str, blob: bytes, ttl: int) -> None:
        await asyncio.to_thread(self._put, k, blob, ttl)

    async def get(self, k: str) -> bytes | None:
        return await asyncio.to_thread(self._get, k)

    async def delete(self, k: str) -> None:
        await asyncio.to_thread(self._delete, k)

    async def close(self) -> None:
        pass


class RedisSessions:
    PREFIX = "callgauge-report-session:"

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self.redis = redis.from_url(url)

    async def put(self, k: str, blob: bytes, ttl: int) -> None:
        await self.redis.set(self.PREFIX + k, blob, ex=ttl)

    async def get(self, k: str) -> bytes | None:
        return await self.redis.get(self.PREFIX + k)

    async def delete(self, k: str) -> None:
        await self.redis.delete(self.PREFIX + k)

    async def close(self) -> None:
        await self.redis.aclose()


class ReportSessions:
    def __init__(self, settings: GatewaySettings) -> None:
        self.ttl = settings.report_session_ttl_seconds
        self.store = (RedisSessions(settings.redis_url) if settings.redis_url
                      else SqliteSessions(settings.data_dir / "gateway-sessions.db"))

    async def start(self, credential: str) -> str:
        sid = new_session_id()
        await self.store.put(_lookup(sid), _cipher(sid).encrypt(credential.encode()), self.ttl)
        return sid

    async def credential(self, sid: str) -> str | None:
        if not valid_id(sid):
            return None
        blob = await self.store.get(_lookup(sid))
        if blob is None:
            return None
        try:
            return _cipher(sid).decrypt(blob).decode()
        except InvalidToken:
            return None

    async def end(self, sid: str) -> None:
        if valid_id(sid):
            await self.store.delete(_lookup(sid))

    async def close(self) -> None:
        await self.store.close()
