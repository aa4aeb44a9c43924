"""Users, sessions and API keys through the REST API of the running stack (gateway -> gRPC ->
accounts service): every identity endpoint's happy path and error paths, isolation between
accounts, revocation seen at once, the bootstrap key, the error envelope and X-Request-Id."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def anon(stack):
    with httpx.Client(base_url=f"{stack.settings.gateway_url()}/api/v1", timeout=30) as client:
        yield client


def email() -> str:
    return f"u{uuid.uuid4().hex[:12]}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class User:
    def __init__(self, anon: httpx.Client, password: str = PASSWORD) -> None:
        self.anon, self.email, self.password = anon, email(), password
        r = anon.post("/auth/register", json={"email": self.email, "password": password})
        assert r.status_code == 201, r.text
        self.id = r.json()["data"]["id"]
        r = anon.post("/auth/login", json={"email": self.email, "password": password})
        assert r.status_code == 200, r.text
        self.tokens = r.json()["data"]

    @property
    def jwt(self) -> dict[str, str]:
        return bearer(self.tokens["accessToken"])

    def key(self, mode: str = "live", **extra) -> dict:
        r = self.anon.post("/api-keys", json={"name": f"{mode} key", "mode": mode, **extra}, headers=self.jwt)
        assert r.status_code == 201, r.text
        return r.json()["data"]


def assert_error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "meta"} and body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], list) and body["meta"]["requestId"]
    assert "Traceback" not in r.text
    return body["error"]


# ------------------------------------------------------------------ register / login / refresh


def test_register_and_its_errors(anon) -> None:
    e = email()
    r = anon.post("/auth/register", json={"email": e, "password": PASSWORD})
    assert r.status_code == 201
    data = r.json()["data"]
    assert data["email"] == e and data["id"] and data["createdAt"].endswith("Z")
    assert "password" not in r.text.lower()

    assert_error(anon.post("/auth/register", json={"email": e.upper(), "password": PASSWORD}), 409, "CONFLICT")
    err = assert_error(anon.post("/auth/register", json={"email": email(), "password": "short"}), 422,
                       "VALIDATION_ERROR")
    assert err["details"] == [{"loc": ["body", "password"], "msg": "must be at least 10 characters long",
                               "type": "value_error.password.too_short"}]
    err = assert_error(anon.post("/auth/register", json={"email": "nope", "password": PASSWORD}), 422,
                       "VALIDATION_ERROR")
    assert err["details"][0]["loc"] == ["body", "email"]
    err = assert_error(anon.post("/auth/register", json={"email": email()}), 422, "VALIDATION_ERROR")
    assert {"loc": ["body", "password"], "msg": "Field required", "type": "missing"} in err["details"]
    err = assert_error(anon.post("/auth/register", json={"email": email(), "password": PASSWORD, "admin": True}),
                       422, "VALIDATION_ERROR")
    assert err["details"][0]["loc"] == ["body", "admin"]
    assert_error(anon.post("/auth/register", content=b"{not json", headers={"Content-Type": "application/json"}),
                 422, "VALIDATION_ERROR")


def test_wrong_password_and_unknown_email_answer_the_same(anon) -> None:
    user = User(anon)
    wrong = anon.post("/auth/login", json={"email": user.email, "password": "not the password"})
    unknown = anon.post("/auth/login", json={"email": email(), "password": PASSWORD})
    a, b = assert_error(wrong, 401, "UNAUTHORIZED"), assert_error(unknown, 401, "UNAUTHORIZED")
    assert a == b


def test_login_gives_a_one_hour_jwt_and_refresh_rotates(anon) -> None:
    user = User(anon)
    t = user.tokens
    assert t["expiresIn"] == 3600 and t["tokenType"] == "Bearer" and t["accessToken"].count(".") == 2
    me = anon.get("/users/me", headers=user.jwt)
    assert me.status_code == 200 and me.json()["data"]["id"] == user.id

    r = anon.post("/auth/refresh", json={"refreshToken": t["refreshToken"]})
    assert r.status_code == 200, r.text
    new = r.json()["data"]
    assert new["refreshToken"] != t["refreshToken"]
    assert anon.get("/users/me", headers=bearer(new["accessToken"])).status_code == 200
    # the used token fails; presenting it again revokes the whole session (theft detection)
    assert_error(anon.post("/auth/refresh", json={"refreshToken": t["refreshToken"]}), 401, "UNAUTHORIZED")
    assert_error(anon.post("/auth/refresh", json={"refreshToken": new["refreshToken"]}), 401, "UNAUTHORIZED")
    assert_error(anon.get("/users/me", headers=bearer(new["accessToken"])), 401, "UNAUTHORIZED")
    assert_error(anon.post("/auth/refresh", json={"refreshToken": "cgr_garbage"}), 401, "UNAUTHORIZED")
    assert_error(anon.post("/auth/refresh", json={"refreshToken": f"cgr_{uuid.uuid4()}.x"}), 401, "UNAUTHORIZED")
    assert_error(anon.post("/auth/refresh", json={}), 422, "VALIDATION_ERROR")


def test_logout_ends_the_session(anon) -> None:
    user = User(anon)
    second = anon.post("/auth/login", json={"email": user.email, "password": PASSWORD}).json()["data"]
    assert_error(anon.post("/auth/logout", headers=bearer(user.key()["key"])), 403, "FORBIDDEN")
    assert_error(anon.post("/auth/logout"), 401, "UNAUTHORIZED")
    r = anon.post("/auth/logout", headers=user.jwt)
    assert r.status_code == 204
    assert_error(anon.get("/users/me", headers=user.jwt), 401, "UNAUTHORIZED")
    assert_error(anon.post("/auth/refresh", json={"refreshToken": user.tokens["refreshToken"]}), 401,
                 "UNAUTHORIZED")
    assert anon.get("/users/me", headers=bearer(second["accessToken"])).status_code == 200  # other session


# ------------------------------------------------------------------ users/me


def test_users_me_update_and_delete(anon) -> None:
    user = User(anon)
    key = user.key()
    assert_error(anon.get("/users/me"), 401, "UNAUTHORIZED")
    assert anon.get("/users/me", headers=bearer(key["key"])).json()["data"]["email"] == user.email

    assert_error(anon.put("/users/me", json={"email": email(), "currentPassword": PASSWORD},
                          headers=bearer(key["key"])), 403, "FORBIDDEN")
    err = assert_error(anon.put("/users/me", json={"email": email(), "currentPassword": "wrong one!"},
                                headers=user.jwt), 422, "VALIDATION_ERROR")
    assert err["details"][0]["loc"] == ["body", "currentPassword"]
    assert_error(anon.put("/users/me", json={"password": "short", "currentPassword": PASSWORD}, headers=user.jwt),
                 422, "VALIDATION_ERROR")
    assert_error(anon.put("/users/me", json={"email": email()}, headers=user.jwt), 422, "VALIDATION_ERROR")
    taken = User(anon)
    assert_error(anon.put("/users/me", json={"email": taken.email, "currentPassword": PASSWORD}, headers=user.jwt),
                 409, "CONFLICT")

    other_session = anon.post("/auth/login", json={"email": user.email, "password": PASSWORD}).json()["data"]
    new_email = email()
    r = anon.put("/users/me", json={"email": new_email, "password": "a brand new passphrase",
                                    "currentPassword": PASSWORD}, headers=user.jwt)
    assert r.status_code == 200 and r.json()["data"]["email"] == new_email
    assert anon.post("/auth/login", json={"email": new_email, "password": "a brand new passphrase"}).status_code == 200
    assert_error(anon.post("/auth/login", json={"email": user.email, "password": PASSWORD}), 401, "UNAUTHORIZED")
    # the new password ended every other session; this one and the API keys go on
    assert_error(anon.get("/users/me", headers=bearer(other_session["accessToken"])), 401, "UNAUTHORIZED")
    assert_error(anon.post("/auth/refresh", json={"refreshToken": other_session["refreshToken"]}), 401,
                 "UNAUTHORIZED")
    assert anon.get("/users/me", headers=user.jwt).status_code == 200
    assert anon.get("/users/me", headers=bearer(key["key"])).status_code == 200

    assert_error(anon.delete("/users/me", headers=bearer(key["key"])), 403, "FORBIDDEN")
    r = anon.delete("/users/me", headers=user.jwt)
    assert r.status_code == 204 and r.content == b""
    assert_error(anon.get("/users/me", headers=user.jwt), 401, "UNAUTHORIZED")
    assert_error(anon.get("/projects", headers=bearer(key["key"])), 401, "UNAUTHORIZED")
    assert_error(anon.post("/auth/login", json={"email": new_email, "password": "a brand new passphrase"}), 401,
                 "UNAUTHORIZED")


# ------------------------------------------------------------------ API keys


def test_api_keys_are_shown_once_listed_without_secret_and_revoked_at_once(anon) -> None:
    user = User(anon)
    live, test = user.key("live"), user.key("test", rateLimitPerMinute=500)
    assert live["key"].startswith("cgk_live_") and test["key"].startswith("cgk_test_")
    assert len(live["key"]) - len("cgk_live_") >= 22  # >= 128 bits of base64url
    assert live["prefix"] == live["key"][:13] and live["last4"] == live["key"][-4:]
    assert test["mode"] == "test" and test["rateLimitPerMinute"] == 500

    r = anon.get("/api-keys", headers=user.jwt)
    assert r.status_code == 200, r.text
    listed = r.json()
    assert {k["id"] for k in listed["data"]} == {live["id"], test["id"]}
    assert listed["meta"]["pagination"] == {"page": 1, "perPage": 25, "total": 2, "totalPages": 1}
    for k in listed["data"]:
        assert set(k) == {"id", "name", "mode", "prefix", "last4", "createdAt", "lastUsedAt", "rateLimitPerMinute"}
    assert live["key"] not in r.text and test["key"] not in r.text

    # a key works as Bearer; its use shows in lastUsedAt
    assert anon.get("/projects", headers=bearer(live["key"])).status_code == 200
    used = {k["id"]: k for k in anon.get("/api-keys", headers=user.jwt).json()["data"]}
    assert used[live["id"]]["lastUsedAt"] is not None

    # keys are made, listed and revoked with a login token, not with a key (#15 finding 6)
    assert_error(anon.post("/api-keys", json={"name": "x", "mode": "live"}, headers=bearer(live["key"])), 403,
                 "FORBIDDEN")
    assert_error(anon.get("/api-keys", headers=bearer(live["key"])), 403, "FORBIDDEN")
    assert_error(anon.post("/api-keys", json={"name": "x", "mode": "prod"}, headers=user.jwt), 422,
                 "VALIDATION_ERROR")
    assert_error(anon.post("/api-keys", json={"name": "x", "rateLimitPerMinute": 0}, headers=user.jwt), 422,
                 "VALIDATION_ERROR")
    assert_error(anon.post("/api-keys", json={"mode": "live"}, headers=user.jwt), 422, "VALIDATION_ERROR")

    r = anon.delete(f"/api-keys/{live['id']}", headers=user.jwt)
    assert r.status_code == 204
    assert_error(anon.get("/projects", headers=bearer(live["key"])), 401, "UNAUTHORIZED")  # at once
    assert_error(anon.delete(f"/api-keys/{live['id']}", headers=user.jwt), 404, "NOT_FOUND")
    assert_error(anon.delete("/api-keys/no-such-key", headers=user.jwt), 404, "NOT_FOUND")
    assert [k["id"] for k in anon.get("/api-keys", headers=user.jwt).json()["data"]] == [test["id"]]


def test_another_accounts_key_id_is_404(anon) -> None:
    alice, bob = User(anon), User(anon)
    alice_key = alice.key()
    assert_error(anon.delete(f"/api-keys/{alice_key['id']}", headers=bob.jwt), 404, "NOT_FOUND")
    assert anon.get("/api-keys", headers=bob.jwt).json()["data"] == []
    assert anon.get("/projects", headers=bearer(alice_key["key"])).status_code == 200  # untouched


def test_modes_of_keys_and_tokens(anon) -> None:
    user = User(anon)
    test_key = user.key("test")
    # a JWT acts in live mode unless X-Callgauge-Mode says test; a key in its own mode
    assert anon.get("/projects", headers={**user.jwt, "X-Callgauge-Mode": "test"}).status_code == 200
    err = assert_error(anon.get("/projects", headers={**user.jwt, "X-Callgauge-Mode": "prod"}), 422,
                       "VALIDATION_ERROR")
    assert err["details"][0]["loc"] == ["header", "X-Callgauge-Mode"]
    assert anon.get("/projects", headers={**bearer(test_key["key"]), "X-Callgauge-Mode": "test"}).status_code == 200
    assert_error(anon.get("/projects", headers={**bearer(test_key["key"]), "X-Callgauge-Mode": "live"}), 422,
                 "VALIDATION_ERROR")


def test_test_and_live_data_are_invisible_to_each_other_and_to_other_accounts(anon) -> None:
    user = User(anon)
    live, test = bearer(user.key("live")["key"]), bearer(user.key("test")["key"])
    r = anon.post("/projects", json={"name": "made in test mode"}, headers=test)
    assert r.status_code == 201, r.text
    pid = r.json()["data"]["id"]
    assert anon.get(f"/projects/{pid}", headers=test).status_code == 200
    assert_error(anon.get(f"/projects/{pid}", headers=live), 404, "NOT_FOUND")
    assert pid not in [p["id"] for p in anon.get("/projects", headers=live).json()["data"]]
    # a login token acts in live mode, or in test mode with the header
    assert_error(anon.get(f"/projects/{pid}", headers=user.jwt), 404, "NOT_FOUND")
    assert anon.get(f"/projects/{pid}", headers={**user.jwt, "X-Callgauge-Mode": "test"}).status_code == 200
    # another account's id answers 404, whatever the mode
    other = User(anon)
    for headers in (bearer(other.key("test")["key"]), {**other.jwt, "X-Callgauge-Mode": "test"}, other.jwt):
        assert_error(anon.get(f"/projects/{pid}", headers=headers), 404, "NOT_FOUND")


def test_bad_credentials(anon, stack) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, bearer("cgk_live_" + "x" * 43), bearer("a.b.c"),
                    bearer("x" * 5000)):
        r = anon.get("/projects", headers=headers)
        assert_error(r, 401, "UNAUTHORIZED")
        assert r.headers["WWW-Authenticate"] == "Bearer"


def test_the_bootstrap_key_still_works(anon, stack) -> None:
    key = bearer(stack.settings.api_key)
    assert anon.get("/projects", headers=key).status_code == 200
    assert_error(anon.get("/users/me", headers=key), 404, "NOT_FOUND")
    assert_error(anon.get("/api-keys", headers=key), 403, "FORBIDDEN")  # keys are managed by a user's login


# ------------------------------------------------------------------ cross-cutting


def test_request_id_is_honoured_and_echoed(anon) -> None:
    r = anon.get("/projects", headers={"X-Request-Id": "my-trace-42"})
    assert r.headers["X-Request-Id"] == "my-trace-42" and r.json()["meta"]["requestId"] == "my-trace-42"
    r = anon.get("/no-such-route")
    assert_error(r, 404, "NOT_FOUND")
    assert r.headers["X-Request-Id"] == r.json()["meta"]["requestId"]
    assert_error(anon.patch("/auth/login", json={}), 405, "METHOD_NOT_ALLOWED")


def test_openapi_document_and_docs_page(stack) -> None:
    base = stack.settings.gateway_url()
    doc = httpx.get(f"{base}/api/v1/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path in ("/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/users/me",
                 "/api/v1/api-keys", "/api/v1/api-keys/{key_id}"):
        assert path in doc["paths"], path
    post = doc["paths"]["/api/v1/api-keys"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])
    assert post["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorEnvelope")
    page = httpx.get(f"{base}/api/docs", timeout=10)
    assert page.status_code == 200 and "swagger" in page.text.lower()
    # the page's scripts come from the gateway itself (no CDN: the machine may be offline)
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page.text)
    assert assets and all(a.startswith("/api/docs/static/") for a in assets), assets
    for asset in assets:
        got = httpx.get(f"{base}{asset}", timeout=10)
        assert got.status_code == 200 and len(got.content) > 10_000, asset
