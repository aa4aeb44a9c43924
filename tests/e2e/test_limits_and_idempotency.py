"""Rate limits and Idempotency-Key through real gateway processes: the stack's gateway (memory
limits, SQLite idempotency store) and pairs of extra gateway processes sharing one store — the
stack's SQLite file, or Redis at 127.0.0.1:6379 — to show the limit and the keys hold across them."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from callgauge_platform.stack import free_port, stop_process
from test_identity_api import User, assert_error, bearer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def anon(stack):
    with httpx.Client(base_url=f"{stack.settings.gateway_url()}/api/v1", timeout=30) as client:
        yield client


def start_gateways(stack, n: int, **env) -> tuple[list[subprocess.Popen], list[str]]:
    procs, urls = [], []
    for _ in range(n):
        port = free_port()
        e = {**stack.env(), "CALLGAUGE_GATEWAY_PORT": str(port), "CALLGAUGE_LOG_LEVEL": "WARNING", **env}
        procs.append(subprocess.Popen([sys.executable, "-m", "callgauge_gateway"], env=e,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        urls.append(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    for proc, url in zip(procs, urls, strict=True):
        while True:
            assert proc.poll() is None, f"gateway exited with {proc.returncode}"
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                for p in procs:
                    stop_process(p)
                pytest.fail(f"gateway {url} not ready after 60 s")
            time.sleep(0.1)
    return procs, urls


@pytest.fixture(params=["sqlite", "redis"])
def gateway_pair(request, stack):
    """Two more gateway processes sharing one store with each other and with nobody else's test."""
    if request.param == "redis":
        env = {"CALLGAUGE_REDIS_URL": request.getfixturevalue("redis_url")}
    else:
        env = {}  # the stack's data dir: its gateway-idempotency.db file is shared
    procs, urls = start_gateways(stack, 2, **env)
    yield request.param, urls
    for p in procs:
        stop_process(p)


# ------------------------------------------------------------------ rate limits


def test_a_keys_own_limit_gives_headers_then_429(anon) -> None:
    user = User(anon)
    key = user.key(rateLimitPerMinute=3)
    seen = []
    for _ in range(3):
        r = anon.get("/projects", headers=bearer(key["key"]))
        assert r.status_code == 200, r.text
        assert r.headers["X-RateLimit-Limit"] == "3"
        seen.append(int(r.headers["X-RateLimit-Remaining"]))
        assert int(r.headers["X-RateLimit-Reset"]) > time.time() - 1
    assert seen == [2, 1, 0]
    r = anon.get("/projects", headers=bearer(key["key"]))
    err = assert_error(r, 429, "RATE_LIMITED")
    assert 1 <= int(r.headers["Retry-After"]) <= 60 and r.headers["X-RateLimit-Remaining"] == "0"
    assert err["details"][0]["limit"] == 3
    # another key of the same account has its own budget
    assert anon.get("/projects", headers=bearer(user.key()["key"])).status_code == 200
    # errors are counted responses too: they carry the headers
    r = anon.get("/projects/does-not-exist", headers=bearer(user.key()["key"]))
    assert r.status_code == 404 and r.headers["X-RateLimit-Limit"]


def test_the_default_limit_applies_to_keys_without_their_own(anon, stack) -> None:
    user = User(anon)
    r = anon.get("/projects", headers=bearer(user.key()["key"]))
    assert r.headers["X-RateLimit-Limit"] == str(stack.settings.rate_limit_per_minute)
    r = anon.get("/users/me", headers=user.jwt)
    assert r.headers["X-RateLimit-Limit"] == str(stack.settings.rate_limit_per_minute)


def test_redis_limit_is_shared_by_two_gateway_processes(stack, anon, redis_url) -> None:
    procs, urls = start_gateways(stack, 2, CALLGAUGE_REDIS_URL=redis_url)
    try:
        key = User(anon).key(rateLimitPerMinute=4)["key"]
        codes = [httpx.get(f"{urls[i % 2]}/api/v1/projects", headers=bearer(key), timeout=10).status_code
                 for i in range(6)]
        assert codes == [200, 200, 200, 200, 429, 429], codes
    finally:
        for p in procs:
            stop_process(p)


# ------------------------------------------------------------------ idempotency


def test_a_repeat_replays_the_first_response(anon) -> None:
    user = User(anon)
    key = bearer(user.key()["key"])
    idem = {"Idempotency-Key": str(uuid.uuid4())}
    first = anon.post("/projects", json={"name": "Idempotent"}, headers={**key, **idem})
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    again = anon.post("/projects", json={"name": "Idempotent"}, headers={**key, **idem})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert anon.get("/projects", headers=key).json()["meta"]["pagination"]["total"] == 1

    err = assert_error(anon.post("/projects", json={"name": "Other"}, headers={**key, **idem}), 422,
                       "VALIDATION_ERROR")
    assert err["details"][0]["loc"] == ["header", "Idempotency-Key"]

    # a validation error is final too: replayed, not re-run
    bad = {"Idempotency-Key": str(uuid.uuid4())}
    r1 = anon.post("/projects", json={"nom": "x"}, headers={**key, **bad})
    r2 = anon.post("/projects", json={"nom": "x"}, headers={**key, **bad})
    assert r1.status_code == r2.status_code == 422 and r2.headers["Idempotent-Replayed"] == "true"

    # keys are scoped per account: another account's request with the same key runs on its own
    other = bearer(User(anon).key()["key"])
    r = anon.post("/projects", json={"name": "Idempotent"}, headers={**other, **idem})
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    assert r.json()["data"]["id"] != first.json()["data"]["id"]

    # and per mode: the same account's test key does not see its live key's idempotency keys
    test_key = bearer(user.key("test")["key"])
    r = anon.post("/projects", json={"name": "Idempotent"}, headers={**test_key, **idem})
    assert "Idempotent-Replayed" not in r.headers

    assert_error(anon.post("/projects", json={"name": "x"}, headers={**key, "Idempotency-Key": "k" * 300}), 422,
                 "VALIDATION_ERROR")


def test_register_is_idempotent_without_credentials(anon) -> None:
    body = {"email": f"idem{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse battery staple"}
    idem = {"Idempotency-Key": str(uuid.uuid4())}
    r1 = anon.post("/auth/register", json=body, headers=idem)
    r2 = anon.post("/auth/register", json=body, headers=idem)
    assert r1.status_code == r2.status_code == 201 and r2.headers["Idempotent-Replayed"] == "true"
    assert r1.content == r2.content


def test_concurrent_requests_with_one_key_across_gateways_have_one_effect(gateway_pair, anon) -> None:
    kind, urls = gateway_pair
    key = bearer(User(anon).key()["key"])
    idem = {"Idempotency-Key": str(uuid.uuid4())}

    def post(i: int) -> httpx.Response:
        return httpx.post(f"{urls[i % 2]}/api/v1/projects", json={"name": "Once"}, headers={**key, **idem},
                          timeout=30)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, range(8)))
    codes = sorted(r.status_code for r in responses)
    assert set(codes) <= {201, 409}, codes
    created = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
    assert len(created) == 1, codes
    for r in responses:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "CONFLICT" and r.headers["Retry-After"] == "1"
    # the effect happened once; a late retry on either gateway replays it
    total = httpx.get(f"{urls[0]}/api/v1/projects", headers=key, timeout=10).json()["meta"]["pagination"]["total"]
    assert total == 1, kind
    for url in urls:
        r = httpx.post(f"{url}/api/v1/projects", json={"name": "Once"}, headers={**key, **idem}, timeout=10)
        assert r.status_code == 201 and r.headers["Idempotent-Replayed"] == "true"
        assert r.json()["data"]["id"] == created[0].json()["data"]["id"]
