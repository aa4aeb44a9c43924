"""Finding 7 of #15: failed authentications are counted per client address and per account, and
X-Forwarded-For is believed only from configured proxies.

Before the fix 300 invalid tokens got 300 401s, and 130 logins with a rotating X-Forwarded-For got no
429 (uvicorn believed the header from 127.0.0.1). The edge gateway allows 5 failed authentications
per client address and 3 failed logins per account (in 10 minutes) and trusts 127.0.9.1 as a proxy.
Each test connects from its own loopback address, so it has counters of its own."""

from __future__ import annotations

import uuid

from sec_helpers import PASSWORD, bearer, client_from, new_key, new_user


def _bad_token() -> dict:
    return bearer("cgk_live_" + uuid.uuid4().hex + uuid.uuid4().hex[:11])


def test_failed_tokens_from_one_address_end_in_429_even_for_a_good_key(gateway, edge) -> None:
    _, jwt = new_user(gateway)
    good = bearer(new_key(gateway, jwt)["key"])
    with client_from("127.0.7.1", f"{edge.url}/api/v1") as attacker, \
            client_from("127.0.7.2", f"{edge.url}/api/v1") as bystander:
        codes = [attacker.get("/projects", headers=_bad_token()).status_code for _ in range(8)]
        assert codes == [401] * 5 + [429] * 3, codes
        blocked = attacker.get("/projects", headers=good)
        assert blocked.status_code == 429, blocked.text  # a right guess is not told apart while blocked
        assert blocked.json()["error"]["details"][0]["scope"] == "failed_authentications"
        assert 1 <= int(blocked.headers["Retry-After"]) <= 600
        # JWT, refresh and report sign-in failures are blocked alike
        assert attacker.get("/projects", headers=bearer("a.b.c")).status_code == 429
        assert attacker.post("/auth/refresh", json={"refreshToken": "cgr_x.y"}).status_code == 429
        # another address is not affected
        assert bystander.get("/projects", headers=good).status_code == 200


def test_a_rotating_x_forwarded_for_from_an_untrusted_peer_does_not_help(edge) -> None:
    with client_from("127.0.7.3", f"{edge.url}/api/v1") as attacker:
        codes = [attacker.get("/projects", headers={**_bad_token(), "X-Forwarded-For": f"203.0.113.{i}"}).status_code
                 for i in range(8)]
        assert codes == [401] * 5 + [429] * 3, codes
        # login: rotating the header is the dodge the review used (130 logins, no 429)
        r = attacker.post("/auth/login", json={"email": "nobody@example.com", "password": "wrong password 1"},
                          headers={"X-Forwarded-For": "198.51.100.99"})
        assert r.status_code == 429, r.text


def test_failed_logins_are_counted_per_account_from_any_address(gateway, edge) -> None:
    email, _ = new_user(gateway)
    for i in range(3):  # three addresses, one wrong password each: no address reaches its own bound
        with client_from(f"127.0.8.{i + 1}", f"{edge.url}/api/v1") as c:
            r = c.post("/auth/login", json={"email": email, "password": f"wrong password {i}"})
            assert r.status_code == 401, r.text
    with client_from("127.0.8.9", f"{edge.url}/api/v1") as c:
        r = c.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 429, r.text  # the account is locked for the window, right password or not
        assert "for this account" in r.json()["error"]["message"]
        other, _ = new_user(gateway)
        assert c.post("/auth/login", json={"email": other, "password": PASSWORD}).status_code == 200


def test_a_trusted_proxys_forwarded_clients_are_counted_apart(gateway, edge) -> None:
    _, jwt = new_user(gateway)
    good = bearer(new_key(gateway, jwt)["key"])
    with client_from(edge.trusted_proxy, f"{edge.url}/api/v1") as proxy:
        # the right-most address the proxy did not add is the client; what the client wrote is not believed
        for i in range(5):
            xff = f"10.9.9.{i}, 198.51.100.7"
            assert proxy.get("/projects", headers={**_bad_token(), "X-Forwarded-For": xff}).status_code == 401
        assert proxy.get("/projects", headers={**good, "X-Forwarded-For": "198.51.100.7"}).status_code == 429
        # another client behind the same proxy, and the proxy's own address, are not blocked
        assert proxy.get("/projects", headers={**good, "X-Forwarded-For": "198.51.100.8"}).status_code == 200
        assert proxy.get("/projects", headers=good).status_code == 200
