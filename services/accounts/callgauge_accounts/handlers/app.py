"""Command and query handlers of the accounts service: load a decider's state from its stream,
decide, append at the loaded version; queries read the read model. Secrets (password hashes,
key hashes, JWTs, refresh tokens) are made here, never in the deciders."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from google.protobuf.message import Message
from prometheus_client import Counter
from uuid6 import uuid7

from callgauge_bus.codec import decode_payload, new_event, registry_of
from callgauge_eventstore import EventStore, NewEvent, StreamState, WrongExpectedVersion
from callgauge_eventstore.aggregate import decide_and_append, load, save
from callgauge_platform.aio import cancel_and_wait
from callgauge_platform.logs import get_logger
from callgauge_proto.callgauge.accounts.v1 import events_pb2 as ev

from callgauge_accounts.domain import model
from callgauge_accounts.domain.errors import (Conflict, FieldError, Invalid, NotFound, Unauthenticated,
                                              ValidationCollector)
from callgauge_accounts.handlers.views import ReadModel

log = get_logger(__name__)
SOURCE = "accounts"
AUTH_RESULTS = Counter("callgauge_accounts_authentications_total", "Authenticate calls by result",
                       ["kind", "result"])
LOGINS = Counter("callgauge_accounts_logins_total", "logins by result", ["result"])
KEY_USE_RESOLUTION_S = 60  # ApiKeyUsed is recorded at most once a minute per key
JWT_ALGORITHM = "HS256"
JWT_ISSUER = "callgauge"

REGISTRY: dict[str, type[Message]] = registry_of(ev)  # the service's own (private) events


def decode(type_: str, data: bytes) -> Message | None:
    return decode_payload(type_, data, REGISTRY)


def new_id() -> str:
    return str(uuid7())


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def account_stream(aid: str) -> str:
    return f"account-{aid}"


def email_stream(email: str) -> str:
    return f"email-{sha256(email)}"


def session_stream(sid: str) -> str:
    return f"session-{sid}"


def key_use_stream(kid: str) -> str:
    return f"keyuse-{kid}"


TOKEN_EXPIRED = ("Access token expired: get a new one with POST /api/v1/auth/refresh "
                 "{\"refreshToken\": \"…\"} (or log in again at POST /api/v1/auth/login)")


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True)
class AuthResult:
    account_id: str
    mode: str
    kind: str  # api_key | jwt
    key_id: str = ""
    rate_limit_per_minute: int = 0
    session_id: str = ""


@dataclass(frozen=True)
class KeyInfo:
    key: model.ApiKey
    last_used_at: datetime | None


class AccountsApp:
    def __init__(self, store: EventStore, jwt_secret: str, access_ttl_s: int = 3600,
                 refresh_ttl_s: int = 30 * 86400, hasher: PasswordHasher | None = None,
                 key_rate_limit_max: int = model.RATE_LIMIT_MAX, max_keys: int = model.MAX_KEYS_PER_ACCOUNT) -> None:
        if len(jwt_secret) < 32:
            raise ValueError("the JWT secret must be at least 32 characters")
        self.store = store
        self.view = ReadModel()
        self._secret = jwt_secret
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self.key_rate_limit_max = key_rate_limit_max
        self.max_keys = max_keys
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))  # evens out unknown-email logins
        self._projector: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._projector = asyncio.create_task(self._project(), name="accounts-projector")
        await self.view.wait_for(await self.store.last_position(), timeout=120)

    async def stop(self) -> None:
        for t in list(self._background):
            await cancel_and_wait(t)
        await cancel_and_wait(self._projector)

    async def _project(self) -> None:
        async for e in self.store.subscribe_all(0):
            payload = decode(e.type, e.data)
            if payload is not None:
                self.view.apply(payload, e.recorded_at)
            await self.view.advanced_to(e.position)

    async def _append(self, stream: str, version: int, events: list[Message], correlation: str) -> int:
        new = [_new_event(e, correlation) for e in events]
        position = await save(self.store, stream, version, new)
        await self.view.wait_for(position)
        return position

    async def _decide(self, stream: str, evolve, decide, correlation: str):
        """The shared command loop (callgauge_eventstore.aggregate.decide_and_append): load, decide,
        append at the loaded version; on a concurrent write to the stream, decide again on the new
        state. Then wait until the read model has it. Returns the state the decision was made on."""
        state, _, _, position = await decide_and_append(
            self.store, stream, evolve, decode, lambda s: [_new_event(e, correlation) for e in decide(s)])
        if position is not None:
            await self.view.wait_for(position)
        return state

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        def check() -> bool:
            try:
                return self.hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False
        return await asyncio.to_thread(check)

    # ------------------------------------------------------------ users

    async def _claim_email(self, email: str, account_id: str) -> None:
        claim, version = await load(self.store, email_stream(email), model.evolve_email, decode)
        holds = False
        if claim is not None and claim.claimed and claim.account_id != account_id:
            owner, _ = await load(self.store, account_stream(claim.account_id), model.evolve_account, decode)
            holds = model.claim_holds(claim, owner, datetime.now(UTC))
        events = model.decide_claim_email(claim, holds, model.ClaimEmail(email, account_id))
        try:
            await self._append(email_stream(email), version, events, account_id)
        except WrongExpectedVersion as exc:  # someone claimed it in between
            raise Conflict("an account with this email already exists") from exc

    async def _release_email(self, email: str, account_id: str) -> None:
        claim, version = await load(self.store, email_stream(email), model.evolve_email, decode)
        events = model.decide_release_email(claim, account_id)
        try:
            await self._append(email_stream(email), version, events, account_id)
        except WrongExpectedVersion:  # claimed by someone else meanwhile: nothing of ours to release
            log.info("email_release_skipped", account_id=account_id)

    async def register(self, email: str, password: str) -> model.Account:
        email = model.normalize_email(email)
        v = ValidationCollector()
        model.check_email(email, v)
        model.check_password(password, email, v)
        v.raise_if_any()
        password_hash = await self._hash(password)
        account_id = new_id()
        await self._claim_email(email, account_id)
        await self._decide(account_stream(account_id), model.evolve_account,
                           lambda s: model.decide_register(s, model.Register(account_id, email, password_hash)),
                           account_id)
        return self.view.accounts[account_id]

    def get_account(self, account_id: str) -> model.Account:
        account = self.view.live_account(account_id)
        if account is None:
            raise NotFound("account", account_id)
        return account

    async def update_account(self, account_id: str, email: str, password: str, current_password: str,
                             keep_session: str = "") -> model.Account:
        state, version = await load(self.store, account_stream(account_id), model.evolve_account, decode)
        account = model.live(state, account_id)
        email = model.normalize_email(email) if email else ""
        v = ValidationCollector()
        if not email and not password:
            v.add(["body"], "give email and/or password to change", "value_error.missing")
        if email:
            model.check_email(email, v)
        if password:
            model.check_password(password, email or account.email, v)
        v.raise_if_any()
        if not await self._verify(account.password_hash, current_password):
            raise Invalid([FieldError(["body", "currentPassword"], "is not your current password",
                                            "value_error.current_password")])
        events: list[Message] = []
        if email and email != account.email:
            await self._claim_email(email, account_id)
            events += model.decide_change_email(state, model.ChangeEmail(account_id, email))
        if password:
            events += model.decide_change_password(state, model.ChangePassword(account_id, await self._hash(password)))
        try:
            await self._append(account_stream(account_id), version, events, account_id)
        except WrongExpectedVersion:
            if email and email != account.email:
                await self._release_email(email, account_id)
            raise
        if email and email != account.email:
            await self._release_email(account.email, account_id)
        if password:  # a new password ends every other session (a thief's refresh token dies here)
            for sid in [s.id for s in self.view.sessions.values()
                        if s.account_id == account_id and not s.revoked and s.id != keep_session]:
                await self.end_session(account_id, sid, "password_changed")
        return self.view.accounts[account_id]

    async def delete_account(self, account_id: str) -> None:
        state = await self._decide(account_stream(account_id), model.evolve_account,
                                   lambda s: model.decide_delete_account(s, model.DeleteAccount(account_id)),
                                   account_id)
        await self._release_email(state.email, account_id)  # type: ignore[union-attr]  # live() checked it

    # ------------------------------------------------------------ sessions

    async def login(self, email: str, password: str) -> Tokens:
        email = model.normalize_email(email)
        account = self.view.live_account(self.view.by_email.get(email, ""))
        ok = await self._verify(account.password_hash if account else self._dummy_hash, password)
        if account is None or not ok:
            LOGINS.labels("rejected").inc()
            raise Unauthenticated("Invalid email or password")
        sid = new_id()
        refresh = self._refresh_token(sid)
        now = int(time.time())
        events = model.decide_start_session(None, account, model.StartSession(
            sid, account.id, sha256(refresh), now + self.refresh_ttl_s))
        await self._append(session_stream(sid), StreamState.NO_STREAM, events, account.id)
        LOGINS.labels("ok").inc()
        return Tokens(self._access_token(account.id, sid, now), refresh, self.access_ttl_s)

    async def refresh(self, token: str) -> Tokens:
        sid = _session_of(token)
        state, version = await load(self.store, session_stream(sid), model.evolve_session, decode)
        alive = state is not None and self.view.live_account(state.account_id) is not None
        new = self._refresh_token(sid)
        now = int(time.time())
        events = model.decide_refresh(state, alive, model.RefreshSession(
            sid, sha256(token), sha256(new), now, now + self.refresh_ttl_s))
        try:
            await self._append(session_stream(sid), version, events, sid)
        except WrongExpectedVersion as exc:  # a concurrent refresh spent this token first
            raise Unauthenticated("Invalid or expired refresh token") from exc
        if isinstance(events[0], ev.SessionRevoked):
            log.warning("refresh_token_reused", session_id=sid)
            raise Unauthenticated("Invalid or expired refresh token")
        return Tokens(self._access_token(state.account_id, sid, now), new, self.access_ttl_s)  # type: ignore[union-attr]

    async def end_session(self, account_id: str, session_id: str, reason: str = "logout") -> None:
        for _attempt in range(3):
            state, version = await load(self.store, session_stream(session_id), model.evolve_session, decode)
            events = model.decide_end_session(state, account_id, session_id, reason)
            try:
                await self._append(session_stream(session_id), version, events, session_id)
                return
            except WrongExpectedVersion:  # refreshed meanwhile: decide again
                continue
        raise Conflict("the session changed concurrently; retry")

    def _refresh_token(self, sid: str) -> str:
        return f"cgr_{sid}.{secrets.token_urlsafe(32)}"

    def _access_token(self, account_id: str, sid: str, now: int) -> str:
        claims = {"iss": JWT_ISSUER, "sub": account_id, "sid": sid, "typ": "access", "iat": now,
                  "exp": now + self.access_ttl_s, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self._secret, algorithm=JWT_ALGORITHM)

    # ------------------------------------------------------------ authentication

    async def authenticate(self, token: str, requested_mode: str = "") -> AuthResult:
        if token.startswith(tuple(model.KEY_PREFIX.values())):
            return self._authenticate_key(token)
        try:
            claims = jwt.decode(token, self._secret, algorithms=[JWT_ALGORITHM], issuer=JWT_ISSUER,
                                options={"require": ["exp", "iat", "sub", "sid"]})
        except jwt.ExpiredSignatureError as exc:
            AUTH_RESULTS.labels("jwt", "expired").inc()
            raise Unauthenticated(TOKEN_EXPIRED) from exc
        except jwt.PyJWTError as exc:
            AUTH_RESULTS.labels("jwt", "rejected").inc()
            raise Unauthenticated("Invalid or expired API key or token") from exc
        session = self.view.sessions.get(str(claims["sid"]))
        account = self.view.live_account(str(claims["sub"]))
        if claims.get("typ") != "access" or account is None or session is None or session.revoked \
                or session.account_id != account.id:
            AUTH_RESULTS.labels("jwt", "rejected").inc()
            raise Unauthenticated("Invalid or expired API key or token")
        mode = requested_mode or "live"
        if mode not in model.MODES:
            raise Invalid([FieldError(["header", "X-Callgauge-Mode"], "must be live or test",
                                            "value_error.mode")])
        AUTH_RESULTS.labels("jwt", "ok").inc()
        return AuthResult(account.id, mode, "jwt", session_id=session.id)

    def _authenticate_key(self, token: str) -> AuthResult:
        found = self.view.key_by_hash.get(sha256(token))
        account = self.view.live_account(found[0]) if found else None
        key = account.keys.get(found[1]) if account and found else None
        if key is None or key.revoked:
            AUTH_RESULTS.labels("api_key", "rejected").inc()
            raise Unauthenticated("Invalid or revoked API key")
        AUTH_RESULTS.labels("api_key", "ok").inc()
        self._note_use(account.id, key.id)  # type: ignore[union-attr]
        return AuthResult(account.id, key.mode, "api_key", key.id, key.rate_limit_per_minute)  # type: ignore[union-attr]

    def _note_use(self, account_id: str, key_id: str) -> None:
        last = self.view.last_used.get(key_id)
        now = datetime.now(UTC)
        if last is not None and now - last < timedelta(seconds=KEY_USE_RESOLUTION_S):
            return
        self.view.last_used[key_id] = now  # provisional, so concurrent requests record one use

        async def record() -> None:
            try:
                await self.store.append_to_stream(key_use_stream(key_id), StreamState.ANY, [
                    _new_event(ev.ApiKeyUsed(account_id=account_id, key_id=key_id), account_id)])
            except Exception:  # last-used is informational: never fail a request for it
                log.exception("key_use_not_recorded", key_id=key_id)

        task = asyncio.create_task(record())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------ API keys

    async def create_api_key(self, account_id: str, name: str, mode: str, rate_limit: int) -> tuple[KeyInfo, str]:
        secret = secrets.token_urlsafe(32)  # 256 bits
        prefix = model.KEY_PREFIX.get(mode, "")
        full = prefix + secret
        key_id = new_id()
        await self._decide(account_stream(account_id), model.evolve_account, lambda s: model.decide_create_api_key(
            s, model.CreateApiKey(account_id, key_id, name, mode, prefix + secret[:4], full[-4:], sha256(full),
                                  rate_limit, self.key_rate_limit_max, self.max_keys)), account_id)
        return KeyInfo(self.view.accounts[account_id].keys[key_id], None), full

    def list_api_keys(self, account_id: str) -> list[KeyInfo]:
        account = self.view.live_account(account_id)
        if account is None:
            return []
        return [KeyInfo(k, self.view.last_used.get(k.id)) for k in sorted(account.keys.values(), key=lambda k: k.id)
                if not k.revoked]

    async def revoke_api_key(self, account_id: str, key_id: str) -> None:
        await self._decide(account_stream(account_id), model.evolve_account,
                           lambda s: model.decide_revoke_api_key(s, model.RevokeApiKey(account_id, key_id)), account_id)


def _session_of(token: str) -> str:
    if not token.startswith("cgr_") or "." not in token or len(token) > 200:
        raise Unauthenticated("Invalid or expired refresh token")
    sid = token[4:].split(".", 1)[0]
    try:
        uuid.UUID(sid)
    except ValueError as exc:
        raise Unauthenticated("Invalid or expired refresh token") from exc
    return sid


def _new_event(msg: Message, correlation: str) -> NewEvent:
    return new_event(msg, correlation, source=SOURCE)  # the envelope metadata every stored event carries
