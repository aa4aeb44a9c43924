"""A user's first day, through the REST API of the whole stack: real calls, real RTP."""

from __future__ import annotations

import socket
import time

import pytest

from callgauge_platform.stack import free_port
from callgauge_platform.run_states import TERMINAL
from api_envelope import data

pytestmark = pytest.mark.e2e


def make_test(api, destination, **call):
    project = data(api.post("/projects", json={"name": "e2e", "metadata": {"suite": "skeleton"}}), 201)
    action = {"type": "call", "dial_destination": destination, "duration_ms": 3000, "tone_hz": 440, **call}
    test = data(api.post(f"/projects/{project['id']}/tests",
                         json={"name": "call", "steps": [{"actions": [action]}]}), 201)
    return project, test


def calls_of(api, project_id: str, run_id: str, **query) -> list[dict]:
    """Every call of a run, page after page of GET …/calls (the run JSON carries none)."""
    out, params = [], {"perPage": 1000, **query}
    while True:
        body = api.get(f"/projects/{project_id}/test-runs/{run_id}/calls", params=params)
        page = data(body)
        out.extend(page)
        nxt = body.json()["meta"]["pagination"]["nextCursor"]
        if not nxt:
            return out
        params = {**params, "cursor": nxt}


def run_to_end(api, project, test, limit_s=90):
    started = data(api.post(f"/projects/{project['id']}/tests/{test['id']}/run"), 201)
    assert started["status"] == "PENDING"
    seen = ["PENDING"]
    deadline = time.monotonic() + limit_s  # a bound on the poll loop, not a timing assertion
    while time.monotonic() < deadline:
        run = data(api.get(f"/projects/{project['id']}/test-runs/{started['testRunId']}"))
        if run["status"] != seen[-1]:
            seen.append(run["status"])
        if run["status"] in TERMINAL:
            return run, seen
        time.sleep(0.2)
    pytest.fail(f"run still {seen[-1]} after {limit_s} s (states seen: {seen})")


def test_a_call_to_the_builtin_responder_completes_with_real_rtp(api, stack):
    project, test = make_test(api, stack.responder_uri())
    run, seen = run_to_end(api, project, test)
    assert run["status"] == "COMPLETED", run["resultDescription"]
    assert seen[-1] == "COMPLETED" and set(seen) <= {"PENDING", "QUEUED", "RUNNING", "COMPLETED"}
    assert run["passed"] is True and "calls" not in run
    [call] = calls_of(api, project["id"], run["id"])
    assert call["outcome"] == "SUCCESS" and call["sipCode"] == 200
    assert call["rxPackets"] > 0 and call["txPackets"] > 0
    assert call["lossPct"] == 0 and call["rxLostPackets"] == 0
    assert call["codec"] == "PCMU" and call["mos"] > 4.0
    assert call["setupTimeMs"] > 0
    assert run["summary"]["callsAnswered"] == 1 and run["summary"]["asr"] == 1
    assert run["startedAt"] and run["stoppedAt"]


def test_a_call_to_sipp_completes_with_echoed_rtp(api, sipp_uas):
    project, test = make_test(api, sipp_uas)
    run, _ = run_to_end(api, project, test)
    assert run["status"] == "COMPLETED", run["resultDescription"]
    [call] = calls_of(api, project["id"], run["id"])
    assert call["outcome"] == "SUCCESS" and call["rxPackets"] > 0 and call["lossPct"] == 0


def test_a_target_that_never_answers_fails_the_run_with_an_outcome(api):
    port = free_port(kind=socket.SOCK_DGRAM)  # nothing listens here
    project, test = make_test(api, f"sip:nobody@127.0.0.1:{port}", setup_timeout_ms=3000)
    run, _ = run_to_end(api, project, test)
    assert run["status"] == "FAILED"
    [call] = calls_of(api, project["id"], run["id"])
    assert call["outcome"] in ("TIMEOUT", "CALL_FAILED")
    assert call["sipCode"] >= 400
    assert call["outcome"] in run["resultDescription"]


def test_unknown_project_is_404_in_the_envelope(api):
    resp = api.get("/projects/00000000-0000-0000-0000-000000000000")
    assert resp.status_code == 404
    body = resp.json()
    assert body["error"]["code"] == "NOT_FOUND" and "not found" in body["error"]["message"]
    assert body["meta"]["requestId"]


def test_unknown_test_is_404(api, stack):
    project, _ = make_test(api, stack.responder_uri())
    resp = api.post(f"/projects/{project['id']}/tests/nope/run")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "NOT_FOUND"


def test_unknown_run_is_404(api, stack):
    project, _ = make_test(api, stack.responder_uri())
    resp = api.get(f"/projects/{project['id']}/test-runs/nope")
    assert resp.status_code == 404


def test_a_bad_destination_is_422_naming_the_field(api):
    project = data(api.post("/projects", json={"name": "bad input"}), 201)
    resp = api.post(f"/projects/{project['id']}/tests", json={
        "name": "x", "steps": [{"actions": [{"type": "call", "dial_destination": "not a uri"}]}]})
    assert resp.status_code == 422
    [detail] = resp.json()["error"]["details"]
    assert detail["loc"] == ["steps", 0, "actions", 0, "dial_destination"]


def test_an_unknown_attribute_is_422(api):
    project = data(api.post("/projects", json={"name": "typo"}), 201)
    resp = api.post(f"/projects/{project['id']}/tests", json={
        "name": "x", "steps": [{"actions": [{"type": "call", "dial_destination": "sip:a@127.0.0.1", "duraton": 5}]}]})
    assert resp.status_code == 422
    assert any("duraton" in d["loc"] for d in resp.json()["error"]["details"])


def test_without_a_key_is_401_and_a_wrong_key_too(stack):
    import httpx

    base = f"{stack.settings.gateway_url()}/api/v1/projects"
    assert httpx.get(base).status_code == 401
    resp = httpx.get(base, headers={"Authorization": "Bearer cgk_live_wrong"})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "UNAUTHORIZED"


def test_projects_list_is_paginated_and_counts_tests(api, stack):
    project, _ = make_test(api, stack.responder_uri())
    listing = api.get("/projects", params={"perPage": 100}).json()
    mine = [p for p in listing["data"] if p["id"] == project["id"]]
    assert mine and mine[0]["testCount"] == 1 and mine[0]["metadata"] == {"suite": "skeleton"}
    assert listing["meta"]["pagination"]["perPage"] == 100
    assert listing["meta"]["pagination"]["total"] >= 1


def test_every_service_answers_health_and_metrics(stack):
    import httpx

    s = stack.settings
    for port in (s.runs_http_port, s.billing_http_port, s.media_http_port, s.gateway_port):
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        assert "# TYPE" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
