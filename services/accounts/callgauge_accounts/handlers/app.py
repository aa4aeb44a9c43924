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
from google.protobuf.message import Message
from prometheus_client import Counter
from uuid6 import uuid7

from callgauge_bus.codec import decode_payload, new_event, registry_of
from callgauge_eventstore import EventStore, NewEvent, StreamState, WrongExpectedVersion
from callgauge_eventstore.aggregate import MAX_ATTEMPTS, decide_and_append, load
from callgauge_platform.aio import cancel_and_wait
from callgauge_platform.logs import get_logger
from callgauge_proto.callgauge.accounts.v1 import events_pb2 as ev

from callgauge_accounts.adapters.passwords import Argon2Passwords, Passwords
from callgauge_accounts.domain import model
from callgauge_accounts.domain.errors import (FieldError, Invalid, NotFound, Unauthenticated,
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
                 refresh_ttl_s: int = 30 * 86400, passwords: Passwords | None = None,
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
        self.passwords = passwords or Argon2Passwords()
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

    async def _decide(self, stream: str, evolve, decide, correlation: str, attempts: int = MAX_ATTEMPTS):
        """The one command loop (callgauge_eventstore.aggregate.decide_and_append): load, decide,
        append at the loaded version; on a concurrent write to the stream, decide again on the new
        state (up to `attempts` times). Then wait until the read model has it. Returns the state
        the decision was made on and the events appended."""
        decided: list[Message] = []

        def new_events(state) -> list[NewEvent]:
            decided[:] = decide(state)
            return [_new_event(e, correlation) for e in decided]

        state, _, _, position = await decide_and_append(self.store, stream, evolve, decode, new_events,
                                                        attempts=attempts)
        if position is None:
            return state, []
        await self.view.wait_for(position)
        return state, list(decided)

    # ------------------------------------------------------------ users

    async def _claim_email(self, email: str, account_id: str) -> None:
        """An email belongs to one account: Conflict (domain) when another account's claim holds."""
        claim, _ = await load(self.store, email_stream(email), model.evolve_email, decode)
        checked, holds = "", False  # whose claim was checked, and whether it holds
        if claim is not None and claim.claimed and claim.account_id != account_id:
            owner, _ = await load(self.store, account_stream(claim.account_id), model.evolve_account, decode)
            checked, holds = claim.account_id, model.claim_holds(claim, owner, datetime.now(UTC))

        def decide(claim: model.EmailClaim | None) -> list[Message]:
            # a claim made since the check is one whose registration is in flight: it holds
            return model.decide_claim_email(claim, holds if claim is None or claim.account_id == checked else True,
                                            model.ClaimEmail(email, account_id))

        await self._decide(email_stream(email), model.evolve_email, decide, account_id)

    async def _release_email(self, email: str, account_id: str) -> None:
        """Nothing when the claim is someone else's meanwhile."""
        await self._decide(email_stream(email), model.evolve_email,
                           lambda claim: model.decide_release_email(claim, account_id), account_id)

    async def register(self, email: str, password: str) -> model.Account:
        email = model.normalize_email(email)
        v = ValidationCollector()
        model.check_email(email, v)
        model.check_password(password, email, v)
        v.raise_if_any()
        password_hash = await self.passwords.hash(password)
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
        state, _ = await load(self.store, account_stream(account_id), model.evolve_account, decode)
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
        if not await self.passwords.verify(account.password_hash, current_password):
            raise Invalid([FieldError(["body", "currentPassword"], "is not your current password",
                                            "value_error.current_password")])
        new_email = email if email and email != account.email else ""
        password_hash = await self.passwords.hash(password) if password else ""

        def decide(state: model.Account | None) -> list[Message]:
            events: list[Message] = []
            if new_email:
                events += model.decide_change_email(state, model.ChangeEmail(account_id, new_email))
            if password_hash:
                events += model.decide_change_password(state, model.ChangePassword(account_id, password_hash))
            return events

        if new_email:
            await self._claim_email(new_email, account_id)
        try:
            decided_on, _ = await self._decide(account_stream(account_id), model.evolve_account, decide, account_id)
        except BaseException:
            if new_email:
                await asyncio.shield(self._release_email(new_email, account_id))
            raise
        old_email = decided_on.email  # as it was when the change was appended (a concurrent change may have moved it)
        if new_email and old_email != new_email:
            await self._release_email(old_email, account_id)
        if password:  # a new password ends every other session (a thief's refresh token dies here)
            for sid in [s.id for s in self.view.sessions.values()
                        if s.account_id == account_id and not s.revoked and s.id != keep_session]:
                await self.end_session(account_id, sid, "password_changed")
        return self.view.accounts[account_id]

    async def delete_account(self, account_id: str) -> None:
        state, _ = await self._decide(account_stream(account_id), model.evolve_account,
                                      lambda s: model.decide_delete_account(s, model.DeleteAccount(account_id)),
                                      account_id)
        await self._release_email(state.email, account_id)  # type: ignore[union-attr]  # live() checked it

    # ------------------------------------------------------------ sessions

    async def login(self, email: str, password: str) -> Tokens:
        email = model.normalize_email(email)
        account = self.view.live_account(self.view.by_email.get(email, ""))
        ok = await self.passwords.verify(account.password_hash if account else self.passwords.dummy_hash, password)
        if account is None or not ok:
            LOGINS.labels("rejected").inc()
            raise Unauthenticated("Invalid email or password")
        sid = new_id()
        refresh = self._refresh_token(sid)
        now = int(time.time())
        await self._decide(session_stream(sid), model.evolve_session, lambda s: model.decide_start_session(
            s, account, model.StartSession(sid, account.id, sha256(refresh), now + self.refresh_ttl_s)), account.id)
        LOGINS.labels("ok").inc()
        return Tokens(self._access_token(account.id, sid, now), refresh, self.access_ttl_s)

    async def refresh(self, token: str) -> Tokens:
        sid = _session_of(token)
        new = self._refresh_token(sid)
        now = int(time.time())
        cmd = model.RefreshSession(sid, sha256(token), sha256(new), now, now + self.refresh_ttl_s)

        def decide(state: model.Session | None) -> list[Message]:
            alive = state is not None and self.view.live_account(state.account_id) is not None
            return model.decide_refresh(state, alive, cmd)

        try:
            # one attempt: a concurrent refresh of the same token spent it first, and this one is
            # refused (deciding again would take it for a stolen token's reuse and end the session)
            state, events = await self._decide(session_stream(sid), model.evolve_session, decide, sid, attempts=1)
        except WrongExpectedVersion as exc:
            raise Unauthenticated("Invalid or expired refresh token") from exc
        if isinstance(events[0], ev.SessionRevoked):
            log.warning("refresh_token_reused", session_id=sid)
            raise Unauthenticated("Invalid or expired refresh token")
        return Tokens(self._access_token(state.account_id, sid, now), new, self.access_ttl_s)  # type: ignore[union-attr]

    async def end_session(self, account_id: str, session_id: str, reason: str = "logout") -> None:
        await self._decide(session_stream(session_id), model.evolve_session,
                           lambda state: model.decide_end_session(state, account_id, session_id, reason), session_id)

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

    async def create_api_key(self, account_id: str, mode: str, name: str, rate_limit: int) -> tuple[KeyInfo, str]:
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
