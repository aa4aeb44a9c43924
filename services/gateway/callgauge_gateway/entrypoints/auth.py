"""Authentication and rate limiting of every request that carries credentials.

`Authorization: Bearer <token>` (or HTTP Basic with an API key, see `_credential`) where the token
is an API key (`cgk_live_…` / `cgk_test_…`, acts in the key's mode), an access JWT from POST /auth/login (acts in live mode, or in the mode named by the
`X-Callgauge-Mode: live|test` header), or the bootstrap key of `callgauge up` (CALLGAUGE_API_KEY,
account `default`). Keys and JWTs are checked by the accounts service on every request (no cache
here, so a revoked key is refused at once). The result is cached on the request, so the idempotency
middleware and the route's dependency authenticate (and count against the rate limit) once.

A refused credential counts as a failed authentication of the client address (ratelimit.py); an
address over its bound gets 429 before its credential is looked at. Each request counts against its
key's limit (never above the operator's CALLGAUGE_API_KEY_RATE_LIMIT_MAX) and its account's total."""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import Annotated

import grpc
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from callgauge_gateway.entrypoints.deps import gateway_of
from callgauge_gateway.entrypoints.errors import ApiError, api_error_from_grpc
from callgauge_proto.callgauge.accounts.v1 import accounts_service_pb2 as apb

KEY_PREFIXES = ("cgk_live_", "cgk_test_")
MODE_HEADER = "x-callgauge-mode"
CHALLENGE = {"WWW-Authenticate": "Bearer"}

bearer = HTTPBearer(
    auto_error=False, scheme_name="bearer", bearerFormat="cgk_live_… / cgk_test_… API key, or a login JWT",
    description="An API key (POST /api-keys) or an access token (POST /auth/login). API keys act in their "
                "own mode; access tokens act in live mode unless `X-Callgauge-Mode: test` is sent.",
)


@dataclass(frozen=True)
class Principal:
    account_id: str
    mode: str  # live | test
    key_id: str = ""
    kind: str = "api_key"  # api_key | jwt | bootstrap
    rate_limit: int = 0  # requests a minute; 0 = the default (CALLGAUGE_RATE_LIMIT_PER_MINUTE)
    session_id: str = ""

    @property
    def limit_key(self) -> str:
        """What the rate limit counts: one key, or one user across their access tokens."""
        return f"key:{self.key_id}" if self.key_id else f"user:{self.account_id}"

    @property
    def scope(self) -> str:
        """The namespace of idempotency keys."""
        return f"{self.account_id}:{self.mode}"


def _credential(header: str) -> tuple[str, str]:
    """(token, key id the client named) from an Authorization header: `Bearer <token>`, or HTTP
    Basic with an API key as Sipfront's clients send it — the key as user name and an empty password
    (`curl -u "$key:"`, Stripe's convention), or the key's id as user name and the key as password."""
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value, ""
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise _invalid("HTTP Basic credentials are not base64 of user:password") from None
        user, sep, password = decoded.partition(":")
        if not sep:
            raise _invalid("HTTP Basic credentials need user:password (an API key as user and an empty password)")
        if not password:
            return user, ""
        if not user:
            return password, ""
        return password, user
    raise ApiError(401, "Missing credentials: send Authorization: Bearer <API key or access token> "
                   "(or HTTP Basic with the API key as user name)", headers=CHALLENGE)


def _invalid(message: str = "Invalid or expired API key or token") -> ApiError:
    return ApiError(401, message, headers=CHALLENGE)


async def resolve(request: Request, header: str | None = None) -> Principal:
    """The request's principal (authenticated and rate-limited once per request). `header`: an
    Authorization value to check instead of the request's (the report pages' sign-in form)."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    if header is None:
        header = request.headers.get("authorization", "")
    token, named_key = _credential(header)
    gateway = gateway_of(request)
    settings, limiter = gateway.settings, gateway.limiter
    requested = request.headers.get(MODE_HEADER, "").strip().lower()
    if requested and requested not in ("live", "test"):
        raise ApiError(422, "The request is not valid: see details",
                       [{"loc": ["header", "X-Callgauge-Mode"], "msg": "must be live or test", "type": "enum"}])
    await limiter.refuse_if_blocked(request)  # this address used up its failed attempts: 429, nothing checked
    basic = header[:6].lower() == "basic "
    try:
        if len(token) > 4096 or (basic and not token.startswith(KEY_PREFIXES)):
            raise _invalid("Invalid or expired API key or token" if not basic
                           else "HTTP Basic takes an API key (cgk_live_… / cgk_test_…), not a login token")
        if settings.api_key and hmac.compare_digest(token.encode(), settings.api_key.encode()):
            principal = Principal("default", "test" if token.startswith("cgk_test_") else "live", "bootstrap",
                                  "bootstrap")
        else:
            try:
                p = await gateway.services.accounts.Authenticate(
                    apb.AuthenticateRequest(token=token, requested_mode=requested), timeout=10)
            except grpc.aio.AioRpcError as exc:
                err = api_error_from_grpc(exc)
                if err.status == 401:
                    err.headers = CHALLENGE
                raise err from None
            principal = Principal(p.account_id, p.mode, p.key_id, p.kind, p.rate_limit_per_minute, p.session_id)
        if named_key and not hmac.compare_digest(named_key.encode(), principal.key_id.encode()):
            raise _invalid("Invalid API key: the user name is not this key's id")
    except ApiError as exc:
        if exc.status == 401:
            await limiter.count_failure(request)
        raise
    if requested and principal.kind != "jwt" and requested != principal.mode:
        raise ApiError(422, "The request is not valid: see details",
                       [{"loc": ["header", "X-Callgauge-Mode"],
                         "msg": f"this API key is a {principal.mode} key; drop the header or use a {requested} key",
                         "type": "value_error.mode"}])
    await limiter.check(request, principal.limit_key, limiter.key_limit(principal.rate_limit),
                        account=principal.account_id)
    request.state.principal = principal
    return principal


async def authenticate(request: Request,
                       _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None
                       ) -> Principal:
    """The FastAPI dependency of every authenticated route."""
    return await resolve(request)


async def require_login(who: Annotated[Principal, Depends(authenticate)]) -> Principal:
    """Routes that manage the user and their keys (create, list, revoke) take an access token, not an
    API key: a leaked key, or a test-mode key, cannot see or revoke the account's other keys."""
    if who.kind != "jwt":
        raise ApiError(403, "This needs a login access token (POST /auth/login), not an API key: managing "
                       "the account and its keys is for its user")
    return who
