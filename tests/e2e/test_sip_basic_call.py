"""Sipfront's basic call through the REST API of the whole stack, against Kamailio (Debian) as
registrar and digest-auth proxy: step 0 registers the caller and a callee that waits for calls,
step 1 calls the callee through the proxy with digest auth and sends DTMF (RFC 2833), which the
callee verifies. Passwords go in through the credential-pool API and reach the media-engine over
the runs service's GetRunCredentials, never over Kafka."""

from __future__ import annotations

import time
import uuid

import pytest

from callgauge_platform.kamailio import Kamailio
from callgauge_platform.run_states import TERMINAL
from tests.e2e.test_walking_skeleton import calls_of
from api_envelope import data

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.kamailio,
]

USERS = {"alice": "alice-e2e-secret", "bob": "bob:e2e\\secret"}


@pytest.fixture(scope="module")
def kamailio(start_kamailio) -> Kamailio:
    return start_kamailio(USERS)




def _setup(api, k: Kamailio, *, alice_password: str = USERS["alice"], dtmf: str = "2580#"):
    p = data(api.post("/projects", json={"name": f"sip-{uuid.uuid4().hex[:8]}"}), 201)
    reg = data(api.post(f"/projects/{p['id']}/registrars",
                        json={"name": "kamailio", "host": k.host, "port": k.port, "transport": "udp"}), 201)
    callers = data(api.post(f"/projects/{p['id']}/credential-pools", json={
        "name": "callers", "credentials": [{"username": "alice", "password": alice_password}]}), 201)
    callees = data(api.post(f"/projects/{p['id']}/credential-pools", json={
        "name": "callees", "credentials": [{"username": "bob", "password": USERS["bob"]}]}), 201)
    steps = [
        {"actions": [
            {"type": "register", "target_pool": reg["id"], "credential_pool": callers["id"], "regexpire": 120},
            {"type": "wait_for_calls", "target_pool": reg["id"], "credential_pool": callees["id"],
             "answer_delay_ms": 250, "expect_dtmf": dtmf}]},
        {"actions": [
            {"type": "call", "dial_destination": "bob", "target_pool": reg["id"], "credential_pool": callers["id"],
             "duration_ms": 2500, "tone_hz": 440, "dtmf": dtmf, "dtmf_delay_ms": 300}]},
    ]
    t = data(api.post(f"/projects/{p['id']}/tests", json={"name": "basic call", "steps": steps}), 201)
    return p, t


def _run_to_end(api, p, t, limit_s=120):
    started = data(api.post(f"/projects/{p['id']}/tests/{t['id']}/run"), 201)
    deadline = time.monotonic() + limit_s  # bounds the poll loop, not a timing assertion
    while time.monotonic() < deadline:
        run = data(api.get(f"/projects/{p['id']}/test-runs/{started['testRunId']}"))
        if run["status"] in TERMINAL:
            return run
        time.sleep(0.3)
    pytest.fail(f"run {started['testRunId']} did not end within {limit_s} s")


def test_basic_call_through_kamailio_with_digest_auth_and_dtmf(api, stack, kamailio):
    p, t = _setup(api, kamailio)
    run = _run_to_end(api, p, t)
    calls = calls_of(api, p["id"], run["id"])
    assert run["status"] == "COMPLETED", (run["resultDescription"], calls)
    [call] = calls
    assert call["outcome"] == "SUCCESS" and call["sipCode"] == 200, call
    assert call["destination"] == f"sip:bob@{kamailio.domain}"
    assert call["dtmfSent"] == "2580#" and call["dtmfReceived"] == "2580#" and call["dtmfOk"] is True, call
    assert call["rxPackets"] > 0 and call["txPackets"] > 0
    assert not call.get("sipLadder"), "a successful call keeps no ladder"


def test_a_wrong_caller_password_fails_the_run_with_the_sip_codes(api, stack, kamailio):
    p, t = _setup(api, kamailio, alice_password="not-alice")
    run = _run_to_end(api, p, t)
    assert run["status"] == "FAILED"
    calls = calls_of(api, p["id"], run["id"])
    outcomes = sorted((c["role"], c["outcome"], c["sipCode"]) for c in calls)
    assert outcomes == [("caller", "CALL_FAILED", 407), ("register", "REGISTRATION_FAILED", 401)], calls
    assert all(c.get("sipLadder") for c in calls), calls
