"""Idempotency-Key on every POST (Stripe's semantics), kept CALLGAUGE_IDEMPOTENCY_TTL_SECONDS (24 h).

- The first request with a key claims it (atomically) and runs; its response is stored when it is
  final — 2xx, or 400/404/422 — and replayed to every later request with the same key and the same
  body: same status, same body, plus `Idempotent-Replayed: true`. Other responses (401, 402, 409,
  429, 5xx) release the key, so a retry runs again.
- The same key with another method, path or body is a 422.
- While the first request runs, a second one with the key gets 409 (retry later): two concurrent
  requests never both take effect. A claim whose request died holds for LOCK_SECONDS at most.
- Keys are scoped per principal: account and mode (`account:live`), so two accounts (or a test and
  a live key) never see each other's keys; requests without credentials share one anonymous scope.
- Credentials are never stored. `/auth/login` and `/auth/refresh` (whose answers are tokens) are not
  tracked at all: each request runs, so a replayed refresh meets the refresh-token reuse detection
  (register answers the new user, no credential, and stays idempotent). An answer that
  carries a secret (`Cache-Control: no-store`: a new API key, a webhook's signing secret) is recorded
  as done without its body: the same key again gets 409 IDEMPOTENT_REPLAY_WITHHELD, never the secret
  and never a second effect.

Store: Redis when CALLGAUGE_REDIS_URL is set (shared by every gateway process), else a SQLite file
under the data dir (shared by the gateway processes of one machine)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from fastapi import Request
from fastapi.responses import Response

from callgauge_gateway.auth import resolve
from callgauge_gateway.errors import ApiError, api_error_from_grpc, render
from callgauge_platform.logs import get_logger
from callgauge_platform.settings import Settings

log = get_logger(__name__)

HEADER = "idempotency-key"
LOCK_SECONDS = 60
STORED_STATUSES = (400, 404, 422)
UNTRACKED_PATHS = frozenset({"/api/v1/auth/login", "/api/v1/auth/refresh"})
WITHHELD = "x-callgauge-withheld"  # stored instead of an answer that carried a secret
MAX_KEY_LENGTH = 255
# printable ASCII, no leading or trailing space (HTTP strips those anyway): the OpenAPI document says the same
KEY_PATTERN_TEXT = r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$"
KEY_PATTERN = re.compile(KEY_PATTERN_TEXT)
_KEPT_HEADERS = ("content-type", "location")


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
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._conn() as c:
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("CREATE TABLE IF NOT EXISTS idempotency (k TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, "
                      "done INTEGER NOT NULL, status INTEGER, headers TEXT, body BLOB, expires REAL NOT NULL)")
        self._last_purge = 0.0

    def _conn(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10, isolation_level=None)

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


def open_store(settings: Settings):
    if settings.redis_url:
        return RedisStore(settings.redis_url)
    return SqliteStore(settings.data_dir / "gateway-idempotency.db")


def _invalid_key(msg: str) -> ApiError:
    return ApiError(422, "The request is not valid: see details",
                    [{"loc": ["header", "Idempotency-Key"], "msg": msg, "type": "value_error.idempotency_key"}])


async def idempotency_middleware(request: Request, call_next):
    key = request.headers.get(HEADER)
    if request.method != "POST" or key is None or request.url.path in UNTRACKED_PATHS:
        return await call_next(request)
    try:
        if len(key) > MAX_KEY_LENGTH or not KEY_PATTERN.fullmatch(key):
            raise _invalid_key(f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters, no leading or trailing "
                               "space (a UUID is a good choice)")
        scope = "anonymous"
        if request.headers.get("authorization"):
            scope = (await resolve(request)).scope
        body = await request.body()
        digest = hashlib.sha256()
        for part in (request.method.encode(), request.url.path.encode(), request.url.query.encode(), body):
            digest.update(len(part).to_bytes(8, "big") + part)
        fingerprint = digest.hexdigest()
        store = request.app.state.idempotency
        ttl = request.app.state.settings.idempotency_ttl_seconds
        full_key = f"{scope}:{hashlib.sha256(key.encode()).hexdigest()}"
        found = await store.claim(full_key, fingerprint, ttl)
    except ApiError as exc:
        return render(exc)
    except grpc.aio.AioRpcError as exc:
        return render(api_error_from_grpc(exc))
    except Exception as exc:  # the store does not answer: refuse rather than risk a double effect
        log.warning("idempotency_store_unavailable", error=repr(exc))
        return render(ApiError(503, "The idempotency store is unavailable; retry shortly",
                               headers={"Retry-After": "1"}))
    if found is not None:
        if found.fingerprint != fingerprint:
            return render(_invalid_key("was already used with another request (method, path or body); "
                                       "use a new key for a new request"))
        if not found.done:
            return render(ApiError(409, "A request with this Idempotency-Key is still in progress; retry shortly",
                                   headers={"Retry-After": "1"}))
        headers = dict(found.headers or {})
        if WITHHELD in headers:
            return render(ApiError(409, f"A request with this Idempotency-Key was already done (status "
                                   f"{found.status}); its answer carried a secret, which is shown once and not "
                                   "kept. Use a new key for a new request.", code="IDEMPOTENT_REPLAY_WITHHELD",
                                   headers={"Idempotent-Replayed": "true"}))
        headers["Idempotent-Replayed"] = "true"
        return Response(found.body, status_code=found.status, headers=headers)
    try:
        response = await call_next(request)
        chunks = [chunk async for chunk in response.body_iterator]
    except BaseException:
        await store.release(full_key, fingerprint)
        raise
    body_out = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)
    try:
        if 200 <= response.status_code < 300 or response.status_code in STORED_STATUSES:
            if "no-store" in response.headers.get("cache-control", ""):  # a credential: keep only that it was done
                await store.complete(full_key, fingerprint, response.status_code, {WITHHELD: "1"}, b"", ttl)
            else:
                kept = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
                await store.complete(full_key, fingerprint, response.status_code, kept, body_out, ttl)
        else:
            await store.release(full_key, fingerprint)
    except Exception as exc:  # the effect happened: answer it; the claim expires after LOCK_SECONDS
        log.warning("idempotency_record_not_saved", error=repr(exc))
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return Response(body_out, status_code=response.status_code, headers=headers, media_type=None)
