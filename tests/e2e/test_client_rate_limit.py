"""The Python client against the gateway's real rate limiter (a fixed one-minute window per key):
a key limited to 2 requests a minute gets a 429 on its third; with a short patience the client
raises RateLimited carrying Retry-After; with enough patience it waits the window out, retries the
POST with the same Idempotency-Key, and the project is created exactly once. This test waits for
one rate-limit window (up to a minute) on purpose."""

from __future__ import annotations

import uuid

import pytest

from callgauge_client import Client, RateLimited, RetryPolicy

pytestmark = pytest.mark.e2e


def test_client_honours_retry_after_from_the_real_limiter(stack):
    url = stack.settings.gateway_url()
    email, password = f"ratelimit-{uuid.uuid4().hex[:8]}@example.org", "correct horse battery staple"
    with Client(url, "") as anon:
        anon.register(email, password)
        tokens = anon.login(email, password)
    with Client(url, tokens.access_token) as user:
        key = user.create_api_key("limited", "test", rate_limit_per_minute=2)
    assert key.key and key.key.startswith("cgk_test_") and key.rate_limit_per_minute == 2

    with Client(url, key.key, retry=RetryPolicy(max_retries=3, max_wait=1)) as impatient:
        impatient.create_project("one")
        impatient.create_project("two")
        with pytest.raises(RateLimited) as exc:
            impatient.create_project("three")
        assert impatient.retries_done == 0  # the limiter asked for more than 1 s: surfaced, not slept
    assert exc.value.code == "RATE_LIMITED" and exc.value.retry_after and exc.value.retry_after > 1
    assert exc.value.headers["x-ratelimit-limit"] == "2"

    with Client(url, key.key, retry=RetryPolicy(max_retries=2, max_wait=75)) as patient:
        project = patient.create_project("three")  # 429, wait Retry-After, same Idempotency-Key, 201
        assert patient.retries_done >= 1
        names = sorted(p.name for p in patient.list_projects().items)
    assert project.name == "three"
    assert names == ["one", "three", "two"]  # "three" exactly once
