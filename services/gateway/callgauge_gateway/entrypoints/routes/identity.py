"""Auth (register, login, refresh), the user (users/me) and API keys (Call2Me / CallCov)."""

from __future__ import annotations

from typing import Annotated

import grpc
from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response

from callgauge_gateway.entrypoints.auth import Principal, authenticate, require_login
from callgauge_gateway.entrypoints.deps import Accounts, GatewayDep
from callgauge_gateway.entrypoints.envelope import ok, page
from callgauge_gateway.entrypoints.errors import ApiError, answer_for
from callgauge_gateway.domain.identity_schemas import (ApiKeyIn, ApiKeyOut, CreatedApiKeyOut, Credentials, Envelope,
                                                ListEnvelope, RefreshIn, TokensOut, UserOut, UserUpdate)
from callgauge_gateway.entrypoints.ratelimit import limit_anonymous
from callgauge_proto.callgauge.accounts.v1 import accounts_service_pb2 as pb
from callgauge_platform.timestamps import iso_field

router = APIRouter(prefix="/api/v1")
Auth = Annotated[Principal, Depends(authenticate)]
Login = Annotated[Principal, Depends(require_login)]
LOGIN_ONLY_DOC = {"x-login-token-only": True}  # the OpenAPI document offers no HTTP Basic here
CredentialsBody = Annotated[Credentials, Body(openapi_examples={
    "user": {"summary": "email and password",
             "value": {"email": "ops@example.com", "password": "correct horse battery staple"}}})]
ApiKeyBody = Annotated[ApiKeyIn, Body(openapi_examples={
    "ci": {"summary": "a test-mode key for CI", "value": {"name": "CI pipeline", "mode": "test"}},
    "limited": {"summary": "a live key with its own limit",
                "value": {"name": "NOC dashboard", "mode": "live", "rateLimitPerMinute": 60}}})]
PageNo = Annotated[int, Query(alias="page", ge=1, le=100_000)]
PerPage = Annotated[int, Query(alias="perPage", ge=1, le=100)]



def _user(a: pb.Account) -> dict:
    return {"id": a.id, "email": a.email, "createdAt": iso_field(a, "created_at"), "updatedAt": iso_field(a, "updated_at")}


def _tokens(t: pb.Tokens) -> dict:
    return {"accessToken": t.access_token, "refreshToken": t.refresh_token, "expiresIn": t.expires_in,
            "tokenType": "Bearer"}


def _key(k: pb.ApiKey) -> dict:
    return {"id": k.id, "name": k.name, "mode": k.mode, "prefix": k.prefix, "last4": k.last4,
            "createdAt": iso_field(k, "created_at"), "lastUsedAt": iso_field(k, "last_used_at"),
            "rateLimitPerMinute": k.rate_limit_per_minute or None}


def _no_user(who: Principal) -> None:
    if who.kind == "bootstrap":
        raise ApiError(404, "The bootstrap key (CALLGAUGE_API_KEY) belongs to no user account")


# ------------------------------------------------------------------ auth

@router.post("/auth/register", status_code=201, tags=["auth"], summary="Create a user account",
             response_model=Envelope[UserOut], dependencies=[Depends(limit_anonymous)],
             responses={409: {"description": "An account with this email exists"}})
async def register(accounts: Accounts, body: CredentialsBody):
    a = await accounts.Register(pb.RegisterRequest(email=body.email, password=body.password), timeout=30)
    return ok(_user(a), 201)


@router.post("/auth/login", tags=["auth"], summary="Log in: a 1-hour access token and a refresh token",
             response_model=Envelope[TokensOut], dependencies=[Depends(limit_anonymous)],
             responses={401: {"description": "Wrong email or password (one answer for both)"}})
async def login(accounts: Accounts, gateway: GatewayDep, body: CredentialsBody, request: Request):
    limiter = gateway.limiter
    await limiter.refuse_if_blocked(request, body.email)  # the address or the account used up its attempts
    try:
        t = await accounts.Login(pb.LoginRequest(email=body.email, password=body.password), timeout=30)
    except grpc.aio.AioRpcError as exc:
        if answer_for(exc).status == 401:  # wrong email or password (the gateway's one mapping)
            await limiter.count_failure(request, body.email)
        raise
    return ok(_tokens(t), secret=True)


@router.post("/auth/refresh", tags=["auth"], summary="Trade a refresh token for new tokens (it rotates: each "
             "refresh token works once)", response_model=Envelope[TokensOut], dependencies=[Depends(limit_anonymous)],
             responses={401: {"description": "Unknown, expired or already used refresh token"}})
async def refresh(accounts: Accounts, gateway: GatewayDep, body: RefreshIn, request: Request):
    limiter = gateway.limiter
    await limiter.refuse_if_blocked(request)
    try:
        t = await accounts.Refresh(pb.RefreshRequest(refresh_token=body.refreshToken), timeout=30)
    except grpc.aio.AioRpcError as exc:
        if answer_for(exc).status == 401:  # unknown, expired or spent refresh token
            await limiter.count_failure(request)
        raise
    return ok(_tokens(t), secret=True)


@router.post("/auth/logout", status_code=204, tags=["auth"], response_class=Response,
             summary="End this login session: its access and refresh tokens stop working",
             openapi_extra=LOGIN_ONLY_DOC)
async def logout(who: Login, accounts: Accounts):
    await accounts.Logout(pb.LogoutRequest(account_id=who.account_id, session_id=who.session_id),
                                    timeout=10)
    return Response(status_code=204)


# ------------------------------------------------------------------ users/me

@router.get("/users/me", tags=["users"], summary="The signed-in user", response_model=Envelope[UserOut])
async def get_me(who: Auth, accounts: Accounts):
    _no_user(who)
    return ok(_user(await accounts.GetAccount(pb.AccountRef(account_id=who.account_id), timeout=10)))


@router.put("/users/me", tags=["users"], summary="Change email and/or password (needs currentPassword); "
            "a new password ends every other login session",
            response_model=Envelope[UserOut],
            openapi_extra=LOGIN_ONLY_DOC)
async def update_me(body: UserUpdate, who: Login, accounts: Accounts):
    a = await accounts.UpdateAccount(pb.UpdateAccountRequest(
        account_id=who.account_id, email=body.email or "", password=body.password or "",
        current_password=body.currentPassword, session_id=who.session_id), timeout=60)
    return ok(_user(a))


@router.delete("/users/me", status_code=204, tags=["users"], summary="Delete the account; its keys stop at once",
               response_class=Response,
               openapi_extra=LOGIN_ONLY_DOC)
async def delete_me(who: Login, accounts: Accounts):
    await accounts.DeleteAccount(pb.AccountRef(account_id=who.account_id), timeout=30)
    return Response(status_code=204)


# ------------------------------------------------------------------ API keys

@router.post("/api-keys", status_code=201, tags=["api-keys"],
             summary="Create an API key (shown once); needs a login token",
             response_model=Envelope[CreatedApiKeyOut],
             openapi_extra=LOGIN_ONLY_DOC)
async def create_key(body: ApiKeyBody, who: Login, accounts: Accounts):
    created = await accounts.CreateApiKey(pb.CreateApiKeyRequest(
        account_id=who.account_id, name=body.name, mode=body.mode,
        rate_limit_per_minute=body.rateLimitPerMinute or 0), timeout=10)
    return ok({**_key(created.key), "key": created.secret}, 201, secret=True)


@router.get("/api-keys", tags=["api-keys"], summary="List API keys (never the key itself); needs a login token",
            response_model=ListEnvelope[ApiKeyOut],
            openapi_extra=LOGIN_ONLY_DOC)
async def list_keys(who: Login, accounts: Accounts, page_no: PageNo = 1, per_page: PerPage = 25):
    resp = await accounts.ListApiKeys(pb.AccountRef(account_id=who.account_id), timeout=10)
    keys = [_key(k) for k in resp.keys]
    return page(keys[(page_no - 1) * per_page: page_no * per_page], page_no, per_page, len(keys))


@router.delete("/api-keys/{key_id}", status_code=204, tags=["api-keys"],
               summary="Revoke an API key, at once; needs a login token",
               response_class=Response,
               openapi_extra=LOGIN_ONLY_DOC)
async def revoke_key(key_id: str, who: Login, accounts: Accounts):
    if len(key_id) > 64:
        raise ApiError(404, f"API key {key_id[:64]!r}… not found")
    await accounts.RevokeApiKey(pb.RevokeApiKeyRequest(account_id=who.account_id, key_id=key_id),
                                          timeout=10)
    return Response(status_code=204)
