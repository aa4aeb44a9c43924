"""Metering end to end, on a stack of its own whose wallet holds only a few seconds of calls
(`billing_reservation=minimum`: Call2Me's model, a minimum balance to start and calls cut when
the money runs out): a real call is charged per second while it is up, hung up within 2 s of
BalanceExhausted, and its run ends FAILED "balance exhausted". Then a test-mode key's run is
recorded with mode test and charges nothing."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import httpx
import pytest

from callgauge_platform.stack import Stack
from callgauge_platform.run_states import TERMINAL
from tests.e2e.test_walking_skeleton import calls_of
from api_envelope import data

pytestmark = pytest.mark.e2e

WELCOME = 3  # minor units = 3 answered seconds at the default price of 1 per second


@pytest.fixture(scope="module")
def poor_stack(tmp_path_factory):
    s = Stack.on_free_ports(tmp_path_factory.mktemp("billing-stack") / "data", billing_mode="prepaid", billing_reservation="minimum",
                            billing_welcome_credit_minor=WELCOME, media_progress_interval_s=1.0)
    s.start(timeout=90)
    yield s
    s.stop()


def client(stack: Stack, key: str) -> httpx.Client:
    return httpx.Client(base_url=f"{stack.settings.gateway_url()}/api/v1",
                        headers={"Authorization": f"Bearer {key}"}, timeout=30)


def run_to_end(api, pid, tid, limit_s=90) -> dict:
    started = data(api.post(f"/projects/{pid}/tests/{tid}/run"), 201)
    deadline = time.monotonic() + limit_s  # bounds the poll, not a timing assertion
    while time.monotonic() < deadline:
        run = data(api.get(f"/projects/{pid}/test-runs/{started['testRunId']}"))
        if run["status"] in TERMINAL:
            return run
        time.sleep(0.2)
    pytest.fail(f"run not finished after {limit_s} s")


def long_call_test(api, stack) -> tuple[str, str]:
    p = data(api.post("/projects", json={"name": "metering"}), 201)
    t = data(api.post(f"/projects/{p['id']}/tests", json={"name": "long call", "steps": [{"actions": [{
        "type": "call", "dial_destination": stack.responder_uri(), "duration_ms": 30_000}]}]}), 201)
    return p["id"], t["id"]


def _at(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def test_a_call_is_hung_up_when_the_balance_runs_out_and_the_run_fails(poor_stack) -> None:
    with client(poor_stack, poor_stack.settings.api_key) as api:
        pid, tid = long_call_test(api, poor_stack)
        run = run_to_end(api, pid, tid)
        assert run["status"] == "FAILED" and run["resultDescription"] == "balance exhausted", run
        [call] = calls_of(api, pid, run["id"])
        assert call["durationMs"] < 30_000, "the call was not cut short"

        wallet = data(api.get("/billing/wallet"))
        assert wallet["balanceMinor"] == 0 and wallet["exhausted"] is True
        history = api.get("/billing/history", params={"perPage": 100}).json()["data"]
        [exhausted] = [e for e in history if e["type"] == "exhausted"]
        charges = [e for e in history if e["type"] == "charge"]
        assert sum(-e["amountMinor"] for e in charges) == WELCOME  # never more than there was
        lag_s = (_at(call["endedAt"]) - _at(exhausted["at"])).total_seconds()
        print(f"call ended {lag_s:.3f} s after BalanceExhausted; talk time {call['durationMs']:.0f} ms")
        assert lag_s <= 2.0, f"the call ended {lag_s:.2f} s after BalanceExhausted"

        again = api.post(f"/projects/{pid}/tests/{tid}/run")
        assert again.status_code == 402 and again.json()["error"]["code"] == "INSUFFICIENT_BALANCE"


def new_api_key(stack: Stack, mode: str = "test") -> str:
    """A new user's API key of ``mode`` (register, log in, create the key): a fresh account with its
    own wallet (the welcome credit only)."""
    with httpx.Client(base_url=f"{stack.settings.gateway_url()}/api/v1", timeout=30) as anon:
        email, password = f"u{uuid.uuid4().hex[:12]}@example.com", "correct horse battery"
        data(anon.post("/auth/register", json={"email": email, "password": password}), 201)
        tokens = data(anon.post("/auth/login", json={"email": email, "password": password}))
        key = data(anon.post("/api-keys", json={"name": f"{mode} key", "mode": mode},
                             headers={"Authorization": f"Bearer {tokens['accessToken']}"}), 201)
    token = key.get("key") or key.get("token") or key.get("apiKey")
    assert token and token.startswith(f"cgk_{mode}_"), key
    return token


def test_a_test_key_run_is_metered_at_zero_with_mode_test(poor_stack) -> None:
    with client(poor_stack, new_api_key(poor_stack)) as api:
        p = data(api.post("/projects", json={"name": "test mode"}), 201)
        t = data(api.post(f"/projects/{p['id']}/tests", json={"name": "short", "steps": [{"actions": [{
            "type": "call", "dial_destination": poor_stack.responder_uri(), "duration_ms": 5000}]}]}), 201)
        run = run_to_end(api, p["id"], t["id"])
        assert run["status"] == "COMPLETED", run["resultDescription"]
        w = data(api.get("/billing/wallet"))
        assert w["mode"] == "test" and w["balanceMinor"] == WELCOME

        def charges():
            return [e for e in api.get("/billing/history").json()["data"] if e["type"] == "charge"]

        deadline = time.monotonic() + 20  # bounds the poll: the final CallMeasured may come after the run ends
        while sum(e["quantity"] for e in charges()) < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        found = charges()
        assert sum(e["quantity"] for e in found) >= 5, found  # the 5 s call, recorded in test mode
        assert all(e["amountMinor"] == 0 for e in found), found
        usage = data(api.get("/billing/usage", params={"groupBy": "test"}))
        assert usage["mode"] == "test" and usage["totalMinor"] == 0
        assert [g["key"] for g in usage["groups"]] == [t["id"]] and usage["groups"][0]["callSeconds"] >= 5
