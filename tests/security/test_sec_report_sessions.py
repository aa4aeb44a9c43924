"""Finding 12 of #15: the report pages' sign-in.

Before the fix the sign-in form took `Origin: null` (login CSRF: a sandboxed frame on any site
could sign a victim's browser into the attacker's account), the cookie held the raw API key, and it
was `Secure` only when the request itself was https — never behind a proxy that ends TLS. The edge
gateway's public URL is https://callgauge.example.test."""

from __future__ import annotations

import sqlite3
import uuid

import httpx

from sec_helpers import client_from, new_key, new_user

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
COOKIE = "callgauge_report_session"


def _sign_in(url: str, key: str, **headers) -> httpx.Response:
    return httpx.post(f"{url}/reports/login", content=f"key={key}&next=/reports/runs/x", headers={**FORM, **headers})


def _report(url: str, sid: str) -> httpx.Response:
    run = str(uuid.uuid4())  # no such run: 404 once signed in, 401 when not
    return httpx.get(f"{url}/reports/runs/{run}", cookies={COOKIE: sid})


def test_sign_in_refuses_foreign_and_null_origins(gateway, edge) -> None:
    _, jwt = new_user(gateway)
    key = new_key(gateway, jwt)["key"]
    for headers in ({"Origin": "null"}, {"Origin": "https://evil.example"}, {"Origin": edge.url + ".evil.example"},
                    {"Referer": "https://evil.example/page"}, {"Origin": "http://callgauge.example.test"}):
        r = _sign_in(edge.url, key, **headers)
        assert r.status_code == 403 and "set-cookie" not in r.headers, (headers, r.status_code)
    # stop and sign-out forms too
    assert httpx.post(f"{edge.url}/reports/logout", headers={"Origin": "null"}).status_code == 403
    # our own origins: the address it was reached at, and the public URL (behind a TLS proxy)
    for origin in (edge.url, "https://callgauge.example.test"):
        r = _sign_in(edge.url, key, Origin=origin)
        assert r.status_code == 303 and r.headers["location"] == "/reports/runs/x", (origin, r.text)


def test_the_cookie_is_a_server_side_session_not_the_key(gateway, edge, sec_stack) -> None:
    _, jwt = new_user(gateway)
    created = new_key(gateway, jwt)
    key = created["key"]
    r = _sign_in(edge.url, key, Origin=edge.url)
    assert r.status_code == 303, r.text
    set_cookie = r.headers["set-cookie"]
    sid = r.cookies[COOKIE]
    assert sid.startswith("cgs_") and key not in set_cookie and key[9:] not in set_cookie
    attrs = {a.strip().split("=")[0].lower() for a in set_cookie.split(";")}
    assert {"httponly", "secure", "path"} <= attrs and "samesite=strict" in set_cookie.lower()
    assert _report(edge.url, sid).status_code == 404  # signed in: the (missing) run, not the sign-in page
    assert _report(edge.url, "cgs_" + sid[4:][::-1]).status_code == 401
    assert _report(edge.url, key).status_code == 401  # the key itself is no session
    # the store keeps no readable credential
    db = sec_stack.settings.data_dir / "gateway-sessions.db"
    with sqlite3.connect(db) as c:
        stored = b"".join(str(k).encode() + bytes(blob) for k, blob in c.execute("SELECT k, blob FROM report_sessions"))
    assert stored and key.encode() not in stored and sid.encode() not in stored
    # signing out ends the session on the server: the cookie's value is dead even if kept
    out = httpx.post(f"{edge.url}/reports/logout", cookies={COOKIE: sid}, headers={"Origin": edge.url})
    assert out.status_code == 303
    assert _report(edge.url, sid).status_code == 401
    # a revoked key ends its sessions at once
    sid2 = _sign_in(edge.url, key, Origin=edge.url).cookies[COOKIE]
    assert _report(edge.url, sid2).status_code == 404
    assert httpx.delete(f"{gateway}/api/v1/api-keys/{created['id']}", headers=jwt).status_code == 204
    assert _report(edge.url, sid2).status_code == 401


def test_a_wrong_key_gets_no_session_and_counts_as_a_failed_authentication(edge) -> None:
    with client_from("127.0.7.20", edge.url) as c:
        for _ in range(5):
            r = c.post("/reports/login", content=f"key=cgk_live_{uuid.uuid4().hex}", headers={**FORM, "Origin": edge.url})
            assert r.status_code == 401 and "set-cookie" not in r.headers, r.text
        r = c.post("/reports/login", content=f"key=cgk_live_{uuid.uuid4().hex}", headers={**FORM, "Origin": edge.url})
        assert r.status_code == 429 and "set-cookie" not in r.headers
