"""Finding 2 of #15: the idempotency store never keeps credentials, and the data directory is its
owner's only. Before the fix, the same Idempotency-Key replayed a refresh's rotated tokens (and so
skipped reuse detection) and a created API key in full, and gateway-idempotency.db was 0644."""

from __future__ import annotations

import os
import sqlite3
import stat
import uuid

import httpx


def _register_and_login(gateway: str) -> tuple[str, dict]:
    email, password = f"idem-{uuid.uuid4().hex[:8]}@example.com", "correct horse battery staple"
    base = f"{gateway}/api/v1"
    assert httpx.post(f"{base}/auth/register", json={"email": email, "password": password}).status_code == 201
    r = httpx.post(f"{base}/auth/login", json={"email": email, "password": password},
                   headers={"Idempotency-Key": "login-1"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    again = httpx.post(f"{base}/auth/login", json={"email": email, "password": password},
                       headers={"Idempotency-Key": "login-1"})
    assert again.status_code == 200 and "idempotent-replayed" not in again.headers
    assert again.json()["data"]["accessToken"] != r.json()["data"]["accessToken"]  # a new login, not a copy
    return email, r.json()["data"]


def test_a_replayed_refresh_meets_reuse_detection_never_the_rotated_tokens(gateway) -> None:
    _, tokens = _register_and_login(gateway)
    base = f"{gateway}/api/v1"
    body = {"refreshToken": tokens["refreshToken"]}
    first = httpx.post(f"{base}/auth/refresh", json=body, headers={"Idempotency-Key": "refresh-1"})
    assert first.status_code == 200
    rotated = first.json()["data"]
    replay = httpx.post(f"{base}/auth/refresh", json=body, headers={"Idempotency-Key": "refresh-1"})
    assert replay.status_code == 401, replay.text
    assert rotated["refreshToken"] not in replay.text and rotated["accessToken"] not in replay.text
    # the reuse ended the session: the rotated refresh token is dead too
    assert httpx.post(f"{base}/auth/refresh", json={"refreshToken": rotated["refreshToken"]}).status_code == 401


def test_a_created_key_or_webhook_secret_is_shown_once_and_never_replayed(gateway, sec_stack) -> None:
    _, tokens = _register_and_login(gateway)
    base = f"{gateway}/api/v1"
    auth = {"Authorization": f"Bearer {tokens['accessToken']}"}
    body = {"name": "ci", "mode": "live"}
    created = httpx.post(f"{base}/api-keys", json=body, headers={**auth, "Idempotency-Key": "key-1"})
    assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
    secret = created.json()["data"]["key"]
    replay = httpx.post(f"{base}/api-keys", json=body, headers={**auth, "Idempotency-Key": "key-1"})
    assert replay.status_code == 409 and replay.json()["error"]["code"] == "IDEMPOTENT_REPLAY_WITHHELD"
    assert secret not in replay.text and replay.headers["idempotent-replayed"] == "true"
    keys = httpx.get(f"{base}/api-keys", headers=auth).json()["data"]
    assert [k["name"] for k in keys].count("ci") == 1, "the replay must not create a second key"

    key_auth = {"Authorization": f"Bearer {secret}"}
    hook = {"url": "https://93.184.215.14/hooks/callgauge"}
    w = httpx.post(f"{base}/webhooks", json=hook, headers={**key_auth, "Idempotency-Key": "hook-1"})
    assert w.status_code == 201, w.text
    signing = w.json()["data"]["secret"]
    again = httpx.post(f"{base}/webhooks", json=hook, headers={**key_auth, "Idempotency-Key": "hook-1"})
    assert again.status_code == 409 and signing not in again.text

    # nothing of it is in the store: not the key, not the tokens, not the signing secret
    db = sec_stack.settings.data_dir / "gateway-idempotency.db"
    with sqlite3.connect(db) as c:
        stored = b"".join((row[0] or b"") + (row[1] or "").encode()
                          for row in c.execute("SELECT body, headers FROM idempotency"))
    for s in (secret, signing, tokens["accessToken"], tokens["refreshToken"]):
        assert s.encode() not in stored


def test_every_file_in_the_data_dir_is_the_owners_only(sec_stack, api) -> None:
    assert api.get("/projects").status_code == 200  # the stores exist and have been written
    root = sec_stack.settings.data_dir
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    loose = []
    for dirpath, dirs, files in os.walk(root):
        for name in dirs:
            if stat.S_IMODE(os.lstat(os.path.join(dirpath, name)).st_mode) != 0o700:
                loose.append(os.path.join(dirpath, name))
        for name in files:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p) and stat.S_IMODE(os.lstat(p).st_mode) & 0o077:
                loose.append(f"{p} {oct(stat.S_IMODE(os.lstat(p).st_mode))}")
    assert not loose, loose
    assert (root / "gateway-idempotency.db").exists()


def test_an_old_data_dir_is_tightened(tmp_path) -> None:
    from callgauge_platform.datadir import make_private

    d = tmp_path / "data"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "f.db").write_text("x")
    os.chmod(d, 0o755)
    os.chmod(d / "sub", 0o755)
    os.chmod(d / "sub" / "f.db", 0o644)
    make_private(d)
    assert [oct(stat.S_IMODE(p.stat().st_mode)) for p in (d, d / "sub", d / "sub" / "f.db")] == \
        ["0o700", "0o700", "0o600"]
