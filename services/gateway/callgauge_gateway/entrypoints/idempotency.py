"""Idempotency-Key on every POST (Stripe's semantics), kept CALLGAUGE_IDEMPOTENCY_TTL_SECONDS (24 h).

- The first request with a key claims it (atomically) and runs; its response is stored when it is
  final — 2xx, or 400/404/422 — and replayed to every later request with the same key and the same
  body: same status, same body, plus `Idempotent-Replayed: true`. Other responses (401, 402, 409,
  429, 5xx) release the key, so a retry runs again.
- The same key with another method, path or body is a 422.
- While the first request runs, a second one with the key gets 409 (retry later): two concurrent
  requests never both take effect. A claim whose request died holds for a minute at most (the store's LOCK_SECONDS).
- Keys are scoped per principal: account and mode (`account:live`), so two accounts (or a test and
  a live key) never see each other's keys; requests without credentials share one anonymous scope.
- Credentials are never stored. `/auth/login` and `/auth/refresh` (whose answers are tokens) are not
  tracked at all: each request runs, so a replayed refresh meets the refresh-token reuse detection
  (register answers the new user, no credential, and stays idempotent). An answer that
  carries a secret (`Cache-Control: no-store`: a new API key, a webhook's signing secret) is recorded
  as done without its body: the same key again gets 409 IDEMPOTENT_REPLAY_WITHHELD, never the secret
  and never a second effect.

Store: callgauge_gateway.adapters.idempotency_store (Redis when CALLGAUGE_REDIS_URL is set, else a
SQLite file under the data dir), opened by bootstrap."""

from __future__ import annotations

import hashlib
import re

import grpc
from fastapi import Request
from fastapi.responses import Response

from callgauge_gateway.entrypoints.auth import resolve
from callgauge_gateway.entrypoints.deps import gateway_of
from callgauge_gateway.entrypoints.errors import ApiError, api_error_from_grpc, render
from callgauge_platform.logs import get_logger

log = get_logger(__name__)

HEADER = "idempotency-key"
STORED_STATUSES = (400, 404, 422)
UNTRACKED_PATHS = frozenset({"/api/v1/auth/login", "/api/v1/auth/refresh"})
WITHHELD = "x-callgauge-withheld"  # stored instead of an answer that carried a secret
MAX_KEY_LENGTH = 255
# printable ASCII, no leading or trailing space (HTTP strips those anyway): the OpenAPI document says the same
KEY_PATTERN_TEXT = r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$"
KEY_PATTERN = re.compile(KEY_PATTERN_TEXT)
_KEPT_HEADERS = ("content-type", "location")


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
        gateway = gateway_of(request)
        store, ttl = gateway.idempotency, gateway.settings.idempotency_ttl_seconds
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
    except Exception as exc:  # the effect happened: answer it; the claim expires after the store's LOCK_SECONDS
        log.warning("idempotency_record_not_saved", error=repr(exc))
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return Response(body_out, status_code=response.status_code, headers=headers, media_type=None)
