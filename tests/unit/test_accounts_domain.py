"""The accounts deciders: given events, when a command, then events (or an error)."""

from __future__ import annotations

import pytest

from callgauge_accounts.domain import model
from callgauge_accounts.domain.errors import Conflict, Invalid, NotFound, Unauthenticated, ValidationCollector
from callgauge_proto.callgauge.accounts.v1 import events_pb2 as ev

AID = "acc-1"


def given(evolve, *events):
    state = None
    for e in events:
        state = evolve(state, e, None)
    return state


REGISTERED = ev.AccountRegistered(account_id=AID, email="a@example.com", password_hash="$argon2id$h")
KEY = ev.ApiKeyCreated(account_id=AID, key_id="k1", name="ci", mode="test", prefix="cgk_test_abcd", last4="wxyz",
                       key_hash="h1")


def create_key(**kw) -> model.CreateApiKey:
    args = dict(account_id=AID, key_id="k2", name="ci", mode="live", prefix="cgk_live_abcd", last4="wxyz",
                key_hash="h2")
    return model.CreateApiKey(**{**args, **kw})


# ---------------------------------------------------------------- registration and email claims


def test_register_a_new_account() -> None:
    events = model.decide_register(None, model.Register(AID, "a@example.com", "$argon2id$h"))
    assert events == [REGISTERED]


def test_register_twice_is_a_conflict() -> None:
    with pytest.raises(Conflict):
        model.decide_register(given(model.evolve_account, REGISTERED), model.Register(AID, "a@example.com", "x"))


def test_register_with_a_bad_email_is_invalid() -> None:
    with pytest.raises(Invalid) as e:
        model.decide_register(None, model.Register(AID, "not-an-email", "x"))
    assert e.value.errors[0].loc == ["body", "email"]


@pytest.mark.parametrize("bad", ["nope", "a@b", "a b@example.com", "\x00@example.com", "a@-x.com", "x" * 65 + "@a.io"])
def test_email_rules(bad: str) -> None:
    v = ValidationCollector()
    model.check_email(bad, v)
    assert [e.loc for e in v.errors] == [["body", "email"]]


def test_an_unclaimed_email_is_claimed() -> None:
    assert model.decide_claim_email(None, False, model.ClaimEmail("a@example.com", AID)) == [
        ev.EmailClaimed(email="a@example.com", account_id=AID)]


def test_an_email_of_a_live_account_cannot_be_claimed() -> None:
    claim = given(model.evolve_email, ev.EmailClaimed(email="a@example.com", account_id="other"))
    with pytest.raises(Conflict):
        model.decide_claim_email(claim, True, model.ClaimEmail("a@example.com", AID))


def test_an_email_of_a_dead_or_never_registered_account_can_be_taken_over() -> None:
    claim = given(model.evolve_email, ev.EmailClaimed(email="a@example.com", account_id="other"))
    assert model.decide_claim_email(claim, False, model.ClaimEmail("a@example.com", AID)) == [
        ev.EmailClaimed(email="a@example.com", account_id=AID)]


def test_a_claim_holds_while_its_account_lives_or_its_registration_is_in_flight() -> None:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    claim = model.evolve_email(None, ev.EmailClaimed(email="a@example.com", account_id=AID), t0)
    alive = given(model.evolve_account, REGISTERED)
    dead = given(model.evolve_account, REGISTERED, ev.AccountDeleted(account_id=AID))
    assert model.claim_holds(claim, alive, t0 + timedelta(days=9))
    assert not model.claim_holds(claim, dead, t0)
    assert model.claim_holds(claim, None, t0 + timedelta(seconds=10))       # registering right now
    assert not model.claim_holds(claim, None, t0 + timedelta(seconds=301))  # never registered


def test_a_released_email_can_be_claimed_again() -> None:
    claim = given(model.evolve_email, ev.EmailClaimed(email="a@example.com", account_id="other"),
                  ev.EmailReleased(email="a@example.com", account_id="other"))
    assert model.decide_claim_email(claim, True, model.ClaimEmail("a@example.com", AID))


def test_release_only_releases_ones_own_claim() -> None:
    claim = given(model.evolve_email, ev.EmailClaimed(email="a@example.com", account_id="other"))
    assert model.decide_release_email(claim, AID) == []
    assert model.decide_release_email(claim, "other") == [ev.EmailReleased(email="a@example.com", account_id="other")]


@pytest.mark.parametrize("password, kind", [
    ("short", "too_short"), ("a" * 257, "too_long"), ("aaaaabbbbbb", "too_simple"),
    ("a@example.com", "is_email"),
])
def test_password_rules(password: str, kind: str) -> None:
    v = ValidationCollector()
    model.check_password(password, "a@example.com", v)
    assert [e.type for e in v.errors] == [f"value_error.password.{kind}"]


def test_a_good_password_passes() -> None:
    v = ValidationCollector()
    model.check_password("correct horse battery staple", "a@example.com", v)
    assert v.errors == []


# ---------------------------------------------------------------- account changes


def test_change_email_and_password() -> None:
    state = given(model.evolve_account, REGISTERED)
    assert model.decide_change_email(state, model.ChangeEmail(AID, "b@example.com")) == [
        ev.AccountEmailChanged(account_id=AID, email="b@example.com")]
    assert model.decide_change_email(state, model.ChangeEmail(AID, "a@example.com")) == []
    assert model.decide_change_password(state, model.ChangePassword(AID, "new")) == [
        ev.AccountPasswordChanged(account_id=AID, password_hash="new")]


def test_delete_revokes_every_active_key_then_deletes() -> None:
    state = given(model.evolve_account, REGISTERED, KEY)
    assert model.decide_delete_account(state, model.DeleteAccount(AID)) == [
        ev.ApiKeyRevoked(account_id=AID, key_id="k1"), ev.AccountDeleted(account_id=AID)]


def test_a_deleted_account_takes_no_command() -> None:
    state = given(model.evolve_account, REGISTERED, ev.AccountDeleted(account_id=AID))
    assert state.password_hash == ""
    for decide, cmd in ((model.decide_delete_account, model.DeleteAccount(AID)),
                        (model.decide_create_api_key, create_key()),
                        (model.decide_change_password, model.ChangePassword(AID, "x"))):
        with pytest.raises(NotFound):
            decide(state, cmd)


# ---------------------------------------------------------------- API keys


def test_create_an_api_key() -> None:
    state = given(model.evolve_account, REGISTERED)
    [created] = model.decide_create_api_key(state, create_key(rate_limit_per_minute=30))
    assert created.key_id == "k2" and created.mode == "live" and created.rate_limit_per_minute == 30
    assert given(model.evolve_account, REGISTERED, created).keys["k2"].key_hash == "h2"


@pytest.mark.parametrize("kw, loc", [({"mode": "prod"}, "mode"), ({"name": " "}, "name"),
                                     ({"rate_limit_per_minute": 100_001}, "rateLimitPerMinute")])
def test_bad_api_key_fields(kw, loc) -> None:
    with pytest.raises(Invalid) as e:
        model.decide_create_api_key(given(model.evolve_account, REGISTERED), create_key(**kw))
    assert e.value.errors[0].loc == ["body", loc]


def test_key_count_is_bounded() -> None:
    events = [REGISTERED] + [ev.ApiKeyCreated(account_id=AID, key_id=f"k{i}", name="n", mode="live", key_hash=f"h{i}")
                             for i in range(model.MAX_KEYS_PER_ACCOUNT)]
    with pytest.raises(Conflict):
        model.decide_create_api_key(given(model.evolve_account, *events), create_key(key_id="new"))


def test_revoke_a_key_once() -> None:
    state = given(model.evolve_account, REGISTERED, KEY)
    assert model.decide_revoke_api_key(state, model.RevokeApiKey(AID, "k1")) == [
        ev.ApiKeyRevoked(account_id=AID, key_id="k1")]
    revoked = given(model.evolve_account, REGISTERED, KEY, ev.ApiKeyRevoked(account_id=AID, key_id="k1"))
    assert revoked.keys["k1"].revoked
    with pytest.raises(NotFound):
        model.decide_revoke_api_key(revoked, model.RevokeApiKey(AID, "k1"))
    with pytest.raises(NotFound):
        model.decide_revoke_api_key(state, model.RevokeApiKey(AID, "someone-elses"))


# ---------------------------------------------------------------- sessions (refresh-token rotation)

STARTED = ev.SessionStarted(session_id="s1", account_id=AID, refresh_hash="r1", expires_at=1000)


def refresh(presented: str, now: int = 10) -> model.RefreshSession:
    return model.RefreshSession("s1", presented, "r-new", now, now + 1000)


def test_start_a_session_for_a_live_account() -> None:
    account = given(model.evolve_account, REGISTERED)
    assert model.decide_start_session(None, account, model.StartSession("s1", AID, "r1", 1000)) == [STARTED]


def test_refresh_rotates_the_token() -> None:
    state = given(model.evolve_session, STARTED)
    assert model.decide_refresh(state, True, refresh("r1")) == [
        ev.SessionRefreshed(session_id="s1", refresh_hash="r-new", expires_at=1010)]


def test_a_spent_refresh_token_revokes_the_session() -> None:
    state = given(model.evolve_session, STARTED, ev.SessionRefreshed(session_id="s1", refresh_hash="r2",
                                                                     expires_at=2000))
    assert model.decide_refresh(state, True, refresh("r1")) == [ev.SessionRevoked(session_id="s1", reason="reuse")]
    revoked = given(model.evolve_session, STARTED, ev.SessionRevoked(session_id="s1", reason="reuse"))
    with pytest.raises(Unauthenticated):
        model.decide_refresh(revoked, True, refresh("r1"))


@pytest.mark.parametrize("state_events, alive, presented, now", [
    ((), True, "r1", 10),                # no such session
    ((STARTED,), True, "other", 10),     # a token it never issued
    ((STARTED,), True, "r1", 1000),      # expired
    ((STARTED,), False, "r1", 10),       # the account is gone
])
def test_refresh_refusals(state_events, alive, presented, now) -> None:
    with pytest.raises(Unauthenticated):
        model.decide_refresh(given(model.evolve_session, *state_events), alive, refresh(presented, now))


def test_end_a_session_once_and_only_ones_own() -> None:
    state = given(model.evolve_session, STARTED)
    assert model.decide_end_session(state, AID, "s1", "logout") == [ev.SessionRevoked(session_id="s1",
                                                                                      reason="logout")]
    with pytest.raises(NotFound):
        model.decide_end_session(state, "someone-else", "s1", "logout")
    with pytest.raises(NotFound):
        model.decide_end_session(None, AID, "s1", "logout")
    ended = given(model.evolve_session, STARTED, ev.SessionRevoked(session_id="s1", reason="logout"))
    assert model.decide_end_session(ended, AID, "s1", "logout") == []
