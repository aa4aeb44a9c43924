"""Finding 6 of #15 (modes and roles) and HTTP Basic with an API key.

Before the fix a test-mode key listed the account's live keys and revoked them, a user gave a key
up to 100,000 requests a minute and held 100 keys, each limited apart; HTTP Basic was refused.
The security stack's operator bounds: 10,000 a minute per key at most, 5 keys per account; the edge
gateway counts at most 12 requests a minute per account across its keys."""

from __future__ import annotations

import base64

import httpx

from sec_helpers import bearer, new_key, new_user


def _basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_a_test_key_cannot_list_or_revoke_live_keys(gateway) -> None:
    _, jwt = new_user(gateway)
    live, test = new_key(gateway, jwt, "live"), new_key(gateway, jwt, "test")
    api = f"{gateway}/api/v1"
    for key in (test["key"], live["key"]):  # no API key manages keys: a login does
        listed = httpx.get(f"{api}/api-keys", headers=bearer(key))
        assert listed.status_code == 403 and listed.json()["error"]["code"] == "FORBIDDEN", listed.text
        assert live["prefix"] not in listed.text
    revoked = httpx.delete(f"{api}/api-keys/{live['id']}", headers=bearer(test["key"]))
    assert revoked.status_code == 403, revoked.text
    assert httpx.get(f"{api}/projects", headers=bearer(live["key"])).status_code == 200  # still alive
    # the user's login token does it
    assert {k["id"] for k in httpx.get(f"{api}/api-keys", headers=jwt).json()["data"]} == {live["id"], test["id"]}
    assert httpx.delete(f"{api}/api-keys/{live['id']}", headers=jwt).status_code == 204
    assert httpx.get(f"{api}/projects", headers=bearer(live["key"])).status_code == 401


def test_key_limits_are_the_operators(gateway) -> None:
    _, jwt = new_user(gateway)
    api = f"{gateway}/api/v1"
    too_fast = httpx.post(f"{api}/api-keys", json={"name": "greedy", "mode": "live", "rateLimitPerMinute": 100_000},
                          headers=jwt)
    assert too_fast.status_code == 422, too_fast.text
    (detail,) = too_fast.json()["error"]["details"]
    assert detail["loc"][-1] == "rateLimitPerMinute" and "10000" in detail["msg"], detail
    assert "CALLGAUGE_API_KEY_RATE_LIMIT_MAX" in detail["msg"], detail  # names the setting to raise
    assert new_key(gateway, jwt, rateLimitPerMinute=10_000)["rateLimitPerMinute"] == 10_000  # the maximum is fine
    for _ in range(4):
        new_key(gateway, jwt, "test")
    sixth = httpx.post(f"{api}/api-keys", json={"name": "one too many", "mode": "test"}, headers=jwt)
    assert sixth.status_code == 409 and "at most 5 active API keys" in sixth.json()["error"]["message"], sixth.text


def test_an_accounts_keys_share_one_total(gateway, edge) -> None:
    """Each key may make 10,000 requests a minute; together they stop at the account's 12."""
    _, jwt = new_user(gateway)  # keys made through the main gateway: the edge counts only what follows
    keys = [new_key(gateway, jwt, mode)["key"] for mode in ("live", "test", "live")]
    accepted, refused = 0, None
    with httpx.Client(base_url=f"{edge.url}/api/v1", timeout=60) as c:
        for i in range(40):
            r = c.get("/projects", headers=bearer(keys[i % len(keys)]))
            if r.status_code == 429:
                refused = r
                break
            assert r.status_code == 200, r.text
            accepted += 1
    assert refused is not None, "three keys made 40 requests without meeting the account's total"
    assert accepted == 12, accepted
    err = refused.json()["error"]
    assert err["code"] == "RATE_LIMITED" and err["details"][0]["scope"] == "account", err
    assert "this account's total" in err["message"] and int(refused.headers["Retry-After"]) >= 1


def test_http_basic_with_an_api_key_as_sipfront_clients_send_it(gateway) -> None:
    _, jwt = new_user(gateway)
    live, test = new_key(gateway, jwt, "live"), new_key(gateway, jwt, "test", rateLimitPerMinute=4)
    api = f"{gateway}/api/v1"
    # curl -u "$key:"  (the key as user name, an empty password)
    made = httpx.post(f"{api}/projects", json={"name": "basic"}, headers=_basic(live["key"], ""))
    assert made.status_code == 201, made.text
    pid = made.json()["data"]["id"]
    # curl -u "$key_id:$key"  (the key's id as user name, the key as password)
    assert httpx.get(f"{api}/projects/{pid}", headers=_basic(live["id"], live["key"])).status_code == 200
    assert httpx.get(f"{api}/projects/{pid}", headers=_basic("", live["key"])).status_code == 200
    # the same scoping as Bearer: a test key does not see live data
    assert httpx.get(f"{api}/projects/{pid}", headers=_basic(test["key"], "")).status_code == 404
    # refused: another key's id, a wrong key, a login token, garbage
    for headers in (_basic(test["id"], live["key"]), _basic(live["key"][:-1] + "x", ""),
                    _basic(jwt["Authorization"][7:], ""), {"Authorization": "Basic !!!"},
                    _basic(live["id"], "")):
        r = httpx.get(f"{api}/projects", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED", (headers, r.text)
    # the same limits as Bearer: Basic and Bearer requests of one key share its 4 a minute
    codes = [httpx.get(f"{api}/projects", headers=h).status_code
             for h in (_basic(test["key"], ""), bearer(test["key"]), _basic(test["id"], test["key"]),
                       bearer(test["key"]), _basic(test["key"], ""))]
    assert codes[-1] == 429 and codes.count(200) == 3, codes  # the 404 above was the first of the 4
