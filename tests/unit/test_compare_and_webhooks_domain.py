"""Run comparison (pure) and the webhook deciders: HMAC signature, retry schedule over 24 h,
receiver address policy, delivery attempts with leases."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as m_pb2
from callgauge_runs.domain import compare
from callgauge_runs.domain import webhooks
from callgauge_runs.domain.errors import Invalid, NotFound, ValidationCollector

T0 = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)


# ------------------------------------------------------------ compare


def test_compare_flags_only_changes_beyond_tolerance_in_the_bad_direction():
    base = m_pb2.RunSummary(asr=1.0, mos_mean=4.3, mos_min=4.2, setup_p95_ms=100, jitter_ms_max=5)
    run = m_pb2.RunSummary(asr=1.0, mos_mean=4.25, mos_min=3.5, setup_p95_ms=50, jitter_ms_max=40)
    rows = {r.metric: r for r in compare.compare(base, run)}
    assert not rows["mos_mean"].regression and rows["mos_mean"].delta == pytest.approx(-0.05)
    assert rows["mos_min"].regression
    assert not rows["setup_p95_ms"].regression and rows["setup_p95_ms"].delta == -50  # better
    assert rows["jitter_ms_max"].regression and rows["jitter_ms_max"].better == "lower"
    assert not rows["asr"].regression


def test_compare_tolerances_are_configurable_and_validated():
    base, run = m_pb2.RunSummary(jitter_ms_max=5), m_pb2.RunSummary(jitter_ms_max=40)
    rows = {r.metric: r for r in compare.compare(base, run, {"jitter_ms_max": 50.0})}
    assert not rows["jitter_ms_max"].regression and rows["jitter_ms_max"].tolerance == 50.0
    v = ValidationCollector()
    compare.validate_tolerances({"nope": 1.0, "asr": -1.0}, v)
    assert [e.loc for e in v.errors] == [["tolerances", "nope"], ["tolerances", "asr"]]


# ------------------------------------------------------------ signing


def test_signature_is_hmac_sha256_over_timestamp_dot_body():
    body = b'{"a":1}'
    expected = hmac.new(b"whsec_k", b"1764120000." + body, hashlib.sha256).hexdigest()
    assert webhooks.sign("whsec_k", 1764120000, body) == f"v1={expected}"
    h = webhooks.signed_headers("whsec_k", 1764120000, body, "run.finished", "d1")
    assert webhooks.verify("whsec_k", h[webhooks.TIMESTAMP_HEADER], body, h[webhooks.SIGNATURE_HEADER], now=1764120010)
    assert not webhooks.verify("whsec_other", h[webhooks.TIMESTAMP_HEADER], body, h[webhooks.SIGNATURE_HEADER], now=1764120010)
    assert not webhooks.verify("whsec_k", h[webhooks.TIMESTAMP_HEADER], body + b" ", h[webhooks.SIGNATURE_HEADER], now=1764120010)
    assert not webhooks.verify("whsec_k", h[webhooks.TIMESTAMP_HEADER], body, h[webhooks.SIGNATURE_HEADER], now=1764120000 + 3600)
    assert webhooks.new_secret().startswith("whsec_") and webhooks.new_secret() != webhooks.new_secret()


# ------------------------------------------------------------ retry schedule


def test_backoff_doubles_caps_and_stops_after_24_hours():
    policy = webhooks.RetryPolicy()
    offsets = webhooks.schedule(policy, T0, 100)
    assert offsets[:4] == [timedelta(0), timedelta(seconds=30), timedelta(seconds=90), timedelta(seconds=210)]
    gaps = [b - a for a, b in zip(offsets, offsets[1:])]
    assert max(gaps) == policy.cap
    assert offsets[-1] <= timedelta(hours=24) and offsets[-1] + policy.cap > timedelta(hours=24) - policy.cap
    assert 10 < len(offsets) < 20


# ------------------------------------------------------------ receivers


@pytest.mark.parametrize("url,refused", [
    ("https://hooks.example.com/x", False), ("http://127.0.0.1:8080/x", True), ("http://localhost/x", True),
    ("http://10.1.2.3/x", True), ("http://192.168.0.5/x", True), ("http://169.254.169.254/latest", True),
    ("http://[::1]/x", True), ("http://[::ffff:127.0.0.1]/x", True), ("http://8.8.8.8/x", False),
])
def test_private_receivers_are_refused_unless_allowed(url, refused):
    v = ValidationCollector()
    webhooks.validate_url(url, False, v, ["url"])
    assert bool(v.errors) == refused
    v = ValidationCollector()
    webhooks.validate_url(url, True, v, ["url"])
    assert not v.errors


def test_endpoint_validation_and_scoping():
    with pytest.raises(Invalid) as err:
        webhooks.decide_create_endpoint(None, webhooks.CreateEndpoint("w1", "a1", "live", "ftp://x", events=("nope",)), False)
    assert [e.loc for e in err.value.errors] == [["url"], ["events", 0]]
    [e] = webhooks.decide_create_endpoint(None, webhooks.CreateEndpoint("w1", "a1", "live", "https://h.example/x"), False)
    ep = webhooks.evolve_endpoint(None, e)
    assert ep.wants("run.finished", "a1", "live") and not ep.wants("run.finished", "a1", "test")
    with pytest.raises(NotFound):
        webhooks.decide_delete_endpoint(ep, "a2", "live", "w1")


# ------------------------------------------------------------ deliveries


def _delivery():
    ep = webhooks.Endpoint("w1", "a1", "live", "https://h.example/x", webhooks.EVENTS, "", "", None)
    [e] = webhooks.decide_schedule_delivery(None, "d1", ep, "run.finished", "{}", T0, "ev1")
    return webhooks.evolve_delivery(None, e)


def _apply(state, events):
    for e in events:
        state = webhooks.evolve_delivery(state, e)
    return state


def test_a_500_retries_on_schedule_and_a_2xx_delivers():
    d = _delivery()
    assert webhooks.due(d, T0)
    d = _apply(d, webhooks.decide_start_attempt(d, T0, "w-a"))
    assert not webhooks.due(d, T0 + timedelta(seconds=1))  # in flight, lease running
    d = _apply(d, webhooks.decide_attempt_result(d, 1, 500, "HTTP 500", T0 + timedelta(seconds=1)))
    assert (d.status, d.next_attempt_at) == (webhooks.RETRYING, T0 + timedelta(seconds=31))
    assert not webhooks.due(d, T0 + timedelta(seconds=30))
    assert webhooks.decide_attempt_result(d, 1, 200, "", T0) == []  # attempt 1 is recorded already
    d = _apply(d, webhooks.decide_start_attempt(d, T0 + timedelta(seconds=31), "w-b"))
    d = _apply(d, webhooks.decide_attempt_result(d, 2, 204, "", T0 + timedelta(seconds=32)))
    assert d.status == webhooks.DELIVERED and [a.status_code for a in d.attempts] == [500, 204]
    assert not webhooks.due(d, T0 + timedelta(days=1))


def test_an_abandoned_attempt_is_taken_over_after_its_lease():
    d = _apply(_delivery(), webhooks.decide_start_attempt(_delivery(), T0, "w-a"))
    assert webhooks.decide_start_attempt(d, T0 + timedelta(seconds=59), "w-b") == []
    [e] = webhooks.decide_start_attempt(d, T0 + timedelta(seconds=61), "w-b")
    assert (e.attempt, e.worker_id) == (1, "w-b")


def test_delivery_fails_after_24_hours():
    d = _delivery()
    late = T0 + timedelta(hours=23, minutes=59, seconds=45)  # + 30 s is past 24 h
    [e] = webhooks.decide_attempt_result(_apply(d, webhooks.decide_start_attempt(d, T0, "w")), 1, 0, "connection refused", late)
    assert e.outcome == webhooks.FAILED and not e.HasField("next_attempt_at")
