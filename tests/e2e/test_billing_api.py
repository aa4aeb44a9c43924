"""Billing through the REST API of the whole stack: the wallet, top-ups, auto top-up, usage and
history in the envelope; bad input is a 422 that records nothing; a run the wallet cannot pay for
is a 402 with the needed and available amounts."""

from __future__ import annotations

import pytest


def wallet(api) -> dict:
    r = api.get("/billing/wallet")
    assert r.status_code == 200, r.text
    return r.json()["data"]


def history_total(api) -> int:
    r = api.get("/billing/history", params={"perPage": 1})
    assert r.status_code == 200, r.text
    return r.json()["meta"]["pagination"]["total"]


def test_the_wallet_starts_with_the_welcome_credit_in_the_envelope(api) -> None:
    r = api.get("/billing/wallet")
    assert r.status_code == 200
    body = r.json()
    assert body["meta"]["requestId"]
    w = body["data"]
    assert w["currency"] == "EUR" and w["mode"] == "live"
    assert isinstance(w["balanceMinor"], int) and w["balanceMinor"] > 0
    assert w["availableMinor"] == w["balanceMinor"] - w["reservedMinor"]


def test_a_top_up_adds_to_the_balance_and_shows_in_the_history(api) -> None:
    before = wallet(api)["balanceMinor"]
    r = api.post("/billing/top-ups", json={"amount_minor": 2500, "currency": "EUR"})
    assert r.status_code == 201, r.text
    assert r.json()["data"]["balanceMinor"] == before + 2500
    assert wallet(api)["balanceMinor"] == before + 2500
    h = api.get("/billing/history").json()
    first = h["data"][0]
    assert first["type"] == "credit" and first["amountMinor"] == 2500 and first["kind"] == "top_up"
    assert h["meta"]["pagination"]["page"] == 1


@pytest.mark.parametrize("body", [
    {"amount_minor": 0}, {"amount_minor": -100}, {"amount_minor": 10**15}, {"amount_minor": 1.5},
    {"amount_minor": "100"}, {"amount_minor": 100, "currency": "XYZ"}, {"amount_minor": 100, "currency": "USD"},
    {"amount_minor": 100, "currency": "eur"}, {}, {"amount_minor": 100, "extra": 1}, {"amount_minor": 100_000_000},
])
def test_bad_top_ups_are_422_and_record_nothing(api, body) -> None:
    before, entries = wallet(api)["balanceMinor"], history_total(api)
    r = api.post("/billing/top-ups", json=body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "VALIDATION_ERROR" and err["details"], err
    assert wallet(api)["balanceMinor"] == before
    assert history_total(api) == entries


def test_auto_top_up_is_set_and_validated(api) -> None:
    r = api.put("/billing/auto-top-up", json={"enabled": True, "threshold_minor": 100, "amount_minor": 5000})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["autoTopUp"] == {"enabled": True, "thresholdMinor": 100, "amountMinor": 5000}
    bad = api.put("/billing/auto-top-up", json={"enabled": True, "threshold_minor": 0, "amount_minor": 5000})
    assert bad.status_code == 422
    assert wallet(api)["autoTopUp"]["thresholdMinor"] == 100
    off = api.put("/billing/auto-top-up", json={"enabled": False, "threshold_minor": 0, "amount_minor": 0})
    assert off.status_code == 200 and off.json()["data"]["autoTopUp"]["enabled"] is False


def test_usage_validates_its_query_and_groups(api) -> None:
    r = api.get("/billing/usage", params={"from": "2020-01-01", "to": "2100-01-01", "groupBy": "project"})
    assert r.status_code == 200, r.text
    d = r.json()["data"]
    assert d["groupBy"] == "project" and d["currency"] == "EUR" and isinstance(d["totalMinor"], int)
    assert api.get("/billing/usage", params={"groupBy": "week"}).status_code == 422
    assert api.get("/billing/usage", params={"from": "yesterday"}).status_code == 422
    assert api.get("/billing/usage", params={"from": "2030-01-01", "to": "2020-01-01"}).status_code == 422


def test_a_run_the_wallet_cannot_pay_for_is_402_and_not_started(api, stack) -> None:
    p = api.post("/projects", json={"name": "billing 402"}).json()["data"]
    t = api.post(f"/projects/{p['id']}/tests", json={"name": "too big", "steps": [{"actions": [{
        "type": "call", "dial_destination": stack.responder_uri(), "duration_ms": 3_600_000,
        "max_total_calls": 100_000, "concurrency": 1}]}]}).json()["data"]
    available = wallet(api)["availableMinor"]
    r = api.post(f"/projects/{p['id']}/tests/{t['id']}/run")
    assert r.status_code == 402, r.text
    err = r.json()["error"]
    assert err["code"] == "INSUFFICIENT_BALANCE"
    [d] = err["details"]
    assert d["needed"] > d["available"] and d["available"] == available and d["currency"] == "EUR"
    runs = api.get(f"/projects/{p['id']}/test-runs").json()
    assert runs["meta"]["pagination"]["total"] == 0
    assert wallet(api)["availableMinor"] == available
