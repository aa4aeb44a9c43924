"""Authentication and rate limiting of every request that carries credentials.

`Authorization: Bearer <token>` where the token is an API key (`cgk_live_…` / `cgk_test_…`, acts in
the key's mode), an access JWT from POST /auth/login (acts in live mode, or in the mode named by the
`X-Callgauge-Mode: live|test` header), or the bootstrap key of `callgauge up` (CALLGAUGE_API_KEY,
account `default`). Keys and JWTs are checked by the accounts service on every request (no cache
here, so a revoked key is refused at once). The result is cached on the request, so the idempotency
middleware and the route's dependency authenticate (and count against the rate limit) once."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

import grpc
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from callgauge_gateway.errors import ApiError, api_error_from_grpc
from callgauge_proto.callgauge.accounts.v1 import accounts_service_pb2 as apb

KEY_PREFIXES = ("cgk_live_", "cgk_test_")
MODE_HEADER = "x-callgauge-mode"

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


async def resolve(request: Request) -> Principal:
    """The request's principal (authenticated and rate-limited once per request)."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if not header or scheme.lower() != "bearer" or not token:
        raise ApiError(401, "Missing credentials: send Authorization: Bearer <API key or access token>",
                       headers={"WWW-Authenticate": "Bearer"})
    if len(token) > 4096:
        raise ApiError(401, "Invalid or expired API key or token", headers={"WWW-Authenticate": "Bearer"})
    settings = request.app.state.settings
    requested = request.headers.get(MODE_HEADER, "").strip().lower()
    if requested and requested not in ("live", "test"):
        raise ApiError(422, "The request is not valid: see details",
                       [{"loc": ["header", "X-Callgauge-Mode"], "msg": "must be live or test", "type": "enum"}])
    if settings.api_key and hmac.compare_digest(token.encode(), settings.api_key.encode()):
        principal = Principal("default", "test" if token.startswith("cgk_test_") else "live", "bootstrap",
                              "bootstrap")
    else:
        try:
            p = await request.app.state.accounts.Authenticate(
                apb.AuthenticateRequest(token=token, requested_mode=requested), timeout=10)
        except grpc.aio.AioRpcError as exc:
            err = api_error_from_grpc(exc)
            if err.status == 401:
                err.headers = {"WWW-Authenticate": "Bearer"}
            raise err from None
        principal = Principal(p.account_id, p.mode, p.key_id, p.kind, p.rate_limit_per_minute, p.session_id)
    if requested and principal.kind != "jwt" and requested != principal.mode:
        raise ApiError(422, "The request is not valid: see details",
                       [{"loc": ["header", "X-Callgauge-Mode"],
                         "msg": f"this API key is a {principal.mode} key; drop the header or use a {requested} key",
                         "type": "value_error.mode"}])
    await request.app.state.limiter.check(request, principal.limit_key, principal.rate_limit)
    request.state.principal = principal
    return principal


async def authenticate(request: Request,
                       _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None
                       ) -> Principal:
    """The FastAPI dependency of every authenticated route."""
    return await resolve(request)


async def require_login(who: Annotated[Principal, Depends(authenticate)]) -> Principal:
    """Routes that manage the user and their keys take an access token, not an API key."""
    if who.kind != "jwt":
        raise ApiError(403, "This needs a login access token (POST /auth/login), not an API key")
    return who
