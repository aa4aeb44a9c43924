"""Accounts, sessions and API keys as deciders: `evolve(state, event) -> state` folds a stream,
`decide_*(state, command) -> [events]` checks a command against the state. Pure: no I/O, no clock,
no randomness — hashes, ids, secrets and times come in with the command."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from google.protobuf.message import Message

from callgauge_proto.callgauge.accounts.v1 import events_pb2 as ev

from callgauge_accounts.domain.errors import Conflict, Invalid, NotFound, Unauthenticated, ValidationCollector

MODES = ("live", "test")
REFRESH_REFUSED = "Invalid or expired refresh token"
KEY_PREFIX = {"live": "cgk_live_", "test": "cgk_test_"}
MAX_KEYS_PER_ACCOUNT = 100
RATE_LIMIT_MIN, RATE_LIMIT_MAX = 1, 100_000
PASSWORD_MIN, PASSWORD_MAX = 10, 256
EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


# ---------------------------------------------------------------- validation (pure)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def check_email(email: str, v: ValidationCollector, loc: str = "email") -> None:
    if len(email) > 254 or not EMAIL_RE.match(email):
        v.add(["body", loc], "must be an email address like name@example.com", "value_error.email")


def check_password(password: str, email: str, v: ValidationCollector, loc: str = "password") -> None:
    """NIST SP 800-63B style: length over composition rules; no trivially guessable values."""
    if len(password) < PASSWORD_MIN:
        v.add(["body", loc], f"must be at least {PASSWORD_MIN} characters long", "value_error.password.too_short")
    elif len(password) > PASSWORD_MAX:
        v.add(["body", loc], f"must be at most {PASSWORD_MAX} characters long", "value_error.password.too_long")
    elif len(set(password)) < 4:
        v.add(["body", loc], "must use at least 4 different characters", "value_error.password.too_simple")
    elif email and (password.lower() == email or password.lower() == email.split("@")[0]):
        v.add(["body", loc], "must not be your email address", "value_error.password.is_email")


# ---------------------------------------------------------------- commands (plain data)


@dataclass(frozen=True)
class ClaimEmail:
    email: str
    account_id: str


@dataclass(frozen=True)
class Register:
    account_id: str
    email: str
    password_hash: str


@dataclass(frozen=True)
class ChangeEmail:
    account_id: str
    email: str


@dataclass(frozen=True)
class ChangePassword:
    account_id: str
    password_hash: str


@dataclass(frozen=True)
class DeleteAccount:
    account_id: str


@dataclass(frozen=True)
class CreateApiKey:
    account_id: str
    key_id: str
    name: str
    mode: str
    prefix: str
    last4: str
    key_hash: str
    rate_limit_per_minute: int = 0
    rate_limit_max: int = RATE_LIMIT_MAX  # the operator's bound (CALLGAUGE_API_KEY_RATE_LIMIT_MAX)
    max_keys: int = MAX_KEYS_PER_ACCOUNT  # the operator's bound (CALLGAUGE_MAX_API_KEYS_PER_ACCOUNT)


@dataclass(frozen=True)
class RevokeApiKey:
    account_id: str
    key_id: str


@dataclass(frozen=True)
class StartSession:
    session_id: str
    account_id: str
    refresh_hash: str
    expires_at: int


@dataclass(frozen=True)
class RefreshSession:
    session_id: str
    presented_hash: str
    new_hash: str
    now: int
    expires_at: int


# ---------------------------------------------------------------- states


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    mode: str
    prefix: str
    last4: str
    key_hash: str
    rate_limit_per_minute: int
    created_at: datetime | None
    revoked: bool = False


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    password_hash: str
    created_at: datetime | None
    updated_at: datetime | None
    deleted: bool = False
    keys: dict[str, ApiKey] = field(default_factory=dict)


@dataclass(frozen=True)
class EmailClaim:
    email: str
    account_id: str
    claimed: bool
    claimed_at: datetime | None = None


@dataclass(frozen=True)
class Session:
    id: str
    account_id: str
    refresh_hash: str
    expires_at: int
    spent: frozenset[str] = frozenset()
    revoked: bool = False


# ---------------------------------------------------------------- evolve


def evolve_account(state: Account | None, event: Message, at: datetime | None = None) -> Account | None:
    if isinstance(event, ev.AccountRegistered):
        return Account(event.account_id, event.email, event.password_hash, at, at)
    if state is None:
        return None
    if isinstance(event, ev.AccountEmailChanged):
        return replace(state, email=event.email, updated_at=at)
    if isinstance(event, ev.AccountPasswordChanged):
        return replace(state, password_hash=event.password_hash, updated_at=at)
    if isinstance(event, ev.AccountDeleted):
        return replace(state, deleted=True, password_hash="", updated_at=at)
    if isinstance(event, ev.ApiKeyCreated):
        key = ApiKey(event.key_id, event.name, event.mode, event.prefix, event.last4, event.key_hash,
                     event.rate_limit_per_minute, at)
        return replace(state, keys={**state.keys, key.id: key})
    if isinstance(event, ev.ApiKeyRevoked) and event.key_id in state.keys:
        return replace(state, keys={**state.keys, event.key_id: replace(state.keys[event.key_id], revoked=True)})
    return state


def evolve_email(state: EmailClaim | None, event: Message, at: datetime | None = None) -> EmailClaim | None:
    if isinstance(event, ev.EmailClaimed):
        return EmailClaim(event.email, event.account_id, True, at)
    if isinstance(event, ev.EmailReleased) and state is not None:
        return replace(state, claimed=False)
    return state


def evolve_session(state: Session | None, event: Message, at: datetime | None = None) -> Session | None:
    if isinstance(event, ev.SessionStarted):
        return Session(event.session_id, event.account_id, event.refresh_hash, event.expires_at)
    if state is None:
        return None
    if isinstance(event, ev.SessionRefreshed):
        return replace(state, refresh_hash=event.refresh_hash, expires_at=event.expires_at,
                       spent=state.spent | {state.refresh_hash})
    if isinstance(event, ev.SessionRevoked):
        return replace(state, revoked=True)
    return state


# ---------------------------------------------------------------- decide


def live(account: Account | None, account_id: str) -> Account:
    if account is None or account.deleted:
        raise NotFound("account", account_id)
    return account


def claim_holds(claim: EmailClaim, owner: Account | None, now: datetime, grace_s: int = 300) -> bool:
    """Does a claim still bind? Yes while its account lives, and for `grace_s` after the claim when
    the account is not registered yet (its registration is in flight). A claim of a deleted account,
    or one whose registration never came (a crash in between), is free to take over."""
    if owner is not None:
        return not owner.deleted
    return claim.claimed_at is None or (now - claim.claimed_at).total_seconds() < grace_s


def decide_claim_email(claim: EmailClaim | None, holds: bool, cmd: ClaimEmail) -> list[Message]:
    """An email belongs to one account (see claim_holds)."""
    if claim is not None and claim.claimed and claim.account_id != cmd.account_id and holds:
        raise Conflict("an account with this email already exists")
    if claim is not None and claim.claimed and claim.account_id == cmd.account_id:
        return []
    return [ev.EmailClaimed(email=cmd.email, account_id=cmd.account_id)]


def decide_release_email(claim: EmailClaim | None, account_id: str) -> list[Message]:
    if claim is None or not claim.claimed or claim.account_id != account_id:
        return []
    return [ev.EmailReleased(email=claim.email, account_id=account_id)]


def decide_register(state: Account | None, cmd: Register) -> list[Message]:
    if state is not None:
        raise Conflict(f"account {cmd.account_id} already exists")
    v = ValidationCollector()
    check_email(cmd.email, v)
    v.raise_if_any()
    return [ev.AccountRegistered(account_id=cmd.account_id, email=cmd.email, password_hash=cmd.password_hash)]


def decide_change_email(state: Account | None, cmd: ChangeEmail) -> list[Message]:
    account = live(state, cmd.account_id)
    if account.email == cmd.email:
        return []
    v = ValidationCollector()
    check_email(cmd.email, v)
    v.raise_if_any()
    return [ev.AccountEmailChanged(account_id=cmd.account_id, email=cmd.email)]


def decide_change_password(state: Account | None, cmd: ChangePassword) -> list[Message]:
    live(state, cmd.account_id)
    return [ev.AccountPasswordChanged(account_id=cmd.account_id, password_hash=cmd.password_hash)]


def decide_delete_account(state: Account | None, cmd: DeleteAccount) -> list[Message]:
    account = live(state, cmd.account_id)
    revoked = [ev.ApiKeyRevoked(account_id=cmd.account_id, key_id=k.id) for k in account.keys.values() if not k.revoked]
    return [*revoked, ev.AccountDeleted(account_id=cmd.account_id)]


def decide_create_api_key(state: Account | None, cmd: CreateApiKey) -> list[Message]:
    account = live(state, cmd.account_id)
    v = ValidationCollector()
    if not cmd.name.strip() or len(cmd.name) > 100:
        v.add(["body", "name"], "must be 1 to 100 characters", "value_error.name")
    if cmd.mode not in MODES:
        v.add(["body", "mode"], "must be live or test", "value_error.mode")
    highest = min(cmd.rate_limit_max, RATE_LIMIT_MAX)
    if cmd.rate_limit_per_minute and not RATE_LIMIT_MIN <= cmd.rate_limit_per_minute <= highest:
        v.add(["body", "rateLimitPerMinute"], f"must be between {RATE_LIMIT_MIN} and {highest} (the operator's "
              "maximum for one key, CALLGAUGE_API_KEY_RATE_LIMIT_MAX)", "value_error.rate_limit")
    v.raise_if_any()
    if cmd.key_id in account.keys:
        raise Conflict(f"API key {cmd.key_id} already exists")
    if sum(1 for k in account.keys.values() if not k.revoked) >= cmd.max_keys:
        raise Conflict(f"an account holds at most {cmd.max_keys} active API keys; revoke one first")
    return [ev.ApiKeyCreated(account_id=cmd.account_id, key_id=cmd.key_id, name=cmd.name.strip(), mode=cmd.mode,
                             prefix=cmd.prefix, last4=cmd.last4, key_hash=cmd.key_hash,
                             rate_limit_per_minute=cmd.rate_limit_per_minute)]


def decide_revoke_api_key(state: Account | None, cmd: RevokeApiKey) -> list[Message]:
    account = live(state, cmd.account_id)
    key = account.keys.get(cmd.key_id)
    if key is None or key.revoked:
        raise NotFound("API key", cmd.key_id)
    return [ev.ApiKeyRevoked(account_id=cmd.account_id, key_id=cmd.key_id)]


def decide_start_session(state: Session | None, account: Account | None, cmd: StartSession) -> list[Message]:
    live(account, cmd.account_id)
    if state is not None:
        raise Conflict(f"session {cmd.session_id} already exists")
    return [ev.SessionStarted(session_id=cmd.session_id, account_id=cmd.account_id, refresh_hash=cmd.refresh_hash,
                              expires_at=cmd.expires_at)]


def decide_refresh(state: Session | None, account_alive: bool, cmd: RefreshSession) -> list[Message]:
    """Rotate the refresh token. Presenting a spent token is a sign it was stolen: the whole
    session is revoked (RFC 6819 5.2.2.3, refresh token rotation with reuse detection)."""
    if state is None or state.revoked or not account_alive:
        raise Unauthenticated(REFRESH_REFUSED)
    if cmd.presented_hash in state.spent:
        return [ev.SessionRevoked(session_id=cmd.session_id, reason="reuse")]
    if cmd.presented_hash != state.refresh_hash or cmd.now >= state.expires_at:
        raise Unauthenticated(REFRESH_REFUSED)
    return [ev.SessionRefreshed(session_id=cmd.session_id, refresh_hash=cmd.new_hash, expires_at=cmd.expires_at)]


def decide_end_session(state: Session | None, account_id: str, session_id: str, reason: str) -> list[Message]:
    if state is None or state.account_id != account_id:
        raise NotFound("session", session_id)
    if state.revoked:
        return []
    return [ev.SessionRevoked(session_id=session_id, reason=reason)]
