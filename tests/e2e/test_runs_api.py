"""Runs through the REST API of the whole stack: the seed-000 quick start done literally, both
ways of starting a run (CallMeter by id, Sipfront by name, form or JSON) with step overrides,
kiosk links, the Sipfront status, stop, the filtered run list, and isolation between accounts
and modes. Real calls to the built-in responder."""

from __future__ import annotations

import time
import uuid

import grpc
import httpx
import pytest

from callgauge_proto.callgauge.runs.v1 import runs_service_pb2 as pb
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2_grpc as pb_grpc
from service_clients import acl_stub
from tests.e2e.test_walking_skeleton import calls_of
from api_envelope import data
from callgauge_platform.run_states import TERMINAL

pytestmark = pytest.mark.e2e


def details(resp, status=422) -> dict:
    """loc (joined) -> msg of each field error."""
    assert resp.status_code == status, resp.text
    return {".".join(map(str, d["loc"])): d["msg"] for d in resp.json()["error"]["details"]}


def poll(fn, until, what: str, limit_s: float = 60):
    deadline = time.monotonic() + limit_s  # bounds the loop; not a timing assertion
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if until(last):
            return last
        time.sleep(0.2)
    pytest.fail(f"{what}: still {last!r} after {limit_s} s")


@pytest.fixture(scope="module")
def anon(stack):
    with httpx.Client(base_url=f"{stack.settings.gateway_url()}/api/v1", timeout=30) as client:
        yield client


def make_test(api, destination, name=None, **call):
    project = data(api.post("/projects", json={"name": f"runs-{uuid.uuid4().hex[:6]}"}), 201)
    action = {"type": "call", "dial_destination": destination, "duration_ms": 1000, **call}
    test = data(api.post(f"/projects/{project['id']}/tests",
                         json={"name": name or f"t-{uuid.uuid4().hex[:8]}", "steps": [{"actions": [action]}]}), 201)
    return project, test


def test_seed_000_quick_start_literally(stack, api):
    """CallMeter's API Quick Start: list projects, run a test with a single POST, poll the detail."""
    key = stack.settings.api_key
    base = f"{stack.settings.gateway_url()}/api/v1"
    setup_project, setup_test = make_test(api, stack.responder_uri())  # what the dashboard would hold

    # 2. Make your first call: list your projects
    resp = httpx.get(f"{base}/projects", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"data", "meta"} and body["meta"]["requestId"]
    assert set(body["meta"]["pagination"]) == {"page", "perPage", "total", "totalPages"}
    assert body["meta"]["pagination"]["page"] == 1 and body["meta"]["pagination"]["perPage"] == 25
    listed = body["data"][0]
    assert {"id", "slug", "name", "testCount", "probeCount", "registrarCount"} <= set(listed)

    # 3. Run a test: a single POST, no body
    project_id, test_id = setup_project["id"], setup_test["id"]
    resp = httpx.post(f"{base}/projects/{project_id}/tests/{test_id}/run",
                      headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code in (200, 201), resp.text
    started = resp.json()["data"]
    assert started["testRunId"] and started["status"] == "PENDING"
    run = poll(lambda: httpx.get(f"{base}/projects/{project_id}/test-runs/{started['testRunId']}",
                                 headers={"Authorization": f"Bearer {key}"}).json()["data"],
               lambda r: r["status"] in TERMINAL, "the quick-start run")
    assert run["status"] == "COMPLETED", run["resultDescription"]
    [call] = calls_of(api, project_id, run["id"])
    assert call["outcome"] == "SUCCESS" and call["sipCode"] == 200 and call["rxPackets"] > 0

    # 4. Response format: the error envelope
    resp = httpx.get(f"{base}/projects", headers={"Authorization": "Bearer cgk_live_nope"})
    assert resp.status_code == 401
    err = resp.json()
    assert err["error"]["code"] == "UNAUTHORIZED" and err["error"]["message"] and err["meta"]["requestId"]


def test_sipfront_run_by_name_form_encoded_with_overrides_and_kiosk(stack, api):
    name = f"sipfront-{uuid.uuid4().hex[:8]}"
    # the stored test dials nowhere useful; the override points it at the responder
    project, test = make_test(api, "sip:nobody@127.0.0.1:9", name=name, setup_timeout_ms=2000)
    resp = api.post("/tests/run", data={
        "test.name": name, "step.0.0.dial_destination": stack.responder_uri("override"),
        "step.0.0.max_total_calls": "2", "step.0.0.concurrency": "2", "report.mode": "kiosk",
        "tags": "ci,nightly", "metadata.build": "42"})
    started = data(resp, 201)
    base = stack.settings.gateway_url()
    assert started["status"] == "PENDING" and started["session_id"] == started["testRunId"]
    assert started["report_url"] == f"{base}/reports/runs/{started['testRunId']}"
    assert started["status_url"] == f"{base}/api/v1/runs/{started['testRunId']}/status"
    assert started["kiosk_url"].startswith(f"{base}/reports/kiosk/")
    token = started["kiosk_url"].rsplit("/", 1)[1]
    assert len(token) >= 43  # token_urlsafe(32): 256 bits

    status = poll(lambda: data(api.get(f"/runs/{started['testRunId']}/status"))["run"],
                  lambda r: r["is_finished"], "the Sipfront run")
    assert status["status"] == "passed", status["result_description"]
    assert status["has_passed"] is True and status["is_failed"] is False
    assert (status["test_id"], status["test_name"], status["project_id"], status["project_name"]) == (
        test["id"], name, project["id"], project["name"])
    assert status["tags"] == ["ci", "nightly"] and status["started_at"] and status["stopped_at"]
    run = data(api.get(f"/projects/{project['id']}/test-runs/{started['testRunId']}"))
    calls = calls_of(api, project["id"], run["id"])
    assert len(calls) == 2 and {c["destination"] for c in calls} == {stack.responder_uri("override")}
    assert run["metadata"] == {"build": "42"} and run["kioskLinks"] == 1

    # the kiosk token resolves over gRPC (the report pages use it) until revoked
    async def by_token():
        async with acl_stub(stack.settings, "runs", pb_grpc.RunsServiceStub) as stub:
            try:
                return (await stub.GetRunByKioskToken(pb.GetRunByKioskTokenRequest(token=token))).id
            except grpc.aio.AioRpcError as exc:
                return exc.code()

    import asyncio

    assert asyncio.run(by_token()) == started["testRunId"]
    assert api.delete(f"/runs/{started['testRunId']}/kiosk").status_code == 204
    assert asyncio.run(by_token()) == grpc.StatusCode.NOT_FOUND
    assert data(api.get(f"/projects/{project['id']}/test-runs/{started['testRunId']}"))["kioskLinks"] == 0


def test_sipfront_run_by_id_json_and_multipart(stack, api):
    project, test = make_test(api, stack.responder_uri())
    started = data(api.post("/tests/run", json={"test.id": test["id"], "step.0.0.duration_ms": 500,
                                                "tags": ["json"], "metadata": {"k": "v"}}), 201)
    assert started["projectId"] == project["id"] and "kiosk_url" not in started
    multi = data(api.post("/tests/run", files={"test.id": (None, test["id"]),
                                               "step.0.0.tone_hz": (None, "1000")}), 201)
    for run_id in (started["testRunId"], multi["testRunId"]):
        run = poll(lambda rid=run_id: data(api.get(f"/projects/{project['id']}/test-runs/{rid}")),
                   lambda r: r["status"] in TERMINAL, "run by id")
        assert run["status"] == "COMPLETED", run["resultDescription"]


def test_override_errors_name_the_key(stack, api):
    project, test = make_test(api, stack.responder_uri())
    url = f"/projects/{project['id']}/tests/{test['id']}/run"
    errs = details(api.post(url, json={
        "step.3.0.duration_ms": 1, "step.0.2.duration_ms": 1, "step.0.0.duraton_ms": 1,
        "step.0.0.max_total_calls": "many", "step.0.0.dial_destination": "not a uri", "step.x": 1}))
    assert set(errs) == {"step.3.0.duration_ms", "step.0.2.duration_ms", "step.0.0.duraton_ms",
                         "step.0.0.max_total_calls", "step.x"}, errs
    assert "step 3 does not exist" in errs["step.3.0.duration_ms"]
    assert "action 2 does not exist" in errs["step.0.2.duration_ms"]
    assert "no attribute 'duraton_ms'" in errs["step.0.0.duraton_ms"]
    assert "whole number" in errs["step.0.0.max_total_calls"]
    # values are validated like the test, at the override's key
    errs = details(api.post(url, data={"step.0.0.dial_destination": "not a uri", "step.0.0.codec": "MP3"}))
    assert set(errs) == {"step.0.0.dial_destination", "step.0.0.codec"}
    errs = details(api.post(url, json={"step.0.0.target_pool": "nope"}))
    assert "no registrar" in errs["step.0.0.target_pool"]
    assert "report.mode" in details(api.post(url, json={"report.mode": "public"}))
    assert set(details(api.post(url, json={"colour": "red", "step.0.0.codec": ["a"]}))) == {"colour", "step.0.0.codec"}
    assert "test.name" in details(api.post("/tests/run", data={}))
    assert "step.0.0.play_file" in details(api.post(url, files={"step.0.0.play_file": ("a.wav", b"RIFF")}))
    assert api.post("/tests/run", data={"test.name": "no such test"}).status_code == 404
    assert api.post(url, content=b"{", headers={"content-type": "application/json"}).status_code == 400
    assert api.post(url, content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    # nothing was started by any of these
    assert data(api.get(f"/projects/{project['id']}/test-runs")) == []


def test_allow_unattempted_calls_is_a_test_field_kept_until_changed(stack, api):
    project, test = make_test(api, stack.responder_uri())
    assert test["allowUnattemptedCalls"] is False  # the default: planned calls never attempted fail a run
    url = f"/projects/{project['id']}/tests/{test['id']}"
    assert data(api.patch(url, json={"allowUnattemptedCalls": True}))["allowUnattemptedCalls"] is True
    assert data(api.patch(url, json={"name": "renamed"}))["allowUnattemptedCalls"] is True  # left out: kept
    assert data(api.get(url))["allowUnattemptedCalls"] is True
    assert data(api.patch(url, json={"allowUnattemptedCalls": False}))["allowUnattemptedCalls"] is False
    assert "allowUnattemptedCalls" in details(api.patch(url, json={"allowUnattemptedCalls": "sometimes"}))


def test_overrides_resolve_pools_into_the_run(stack, api):
    project, test = make_test(api, stack.responder_uri())
    reg = data(api.post(f"/projects/{project['id']}/registrars",
                        json={"name": "responder", "host": stack.settings.responder_host,
                              "port": stack.settings.responder_port}), 201)
    started = data(api.post(f"/projects/{project['id']}/tests/{test['id']}/run",
                            json={"step.0.0.target_pool": reg["id"], "step.0.0.dial_destination": "echo"}), 201)
    run = poll(lambda: data(api.get(f"/projects/{project['id']}/test-runs/{started['testRunId']}")),
               lambda r: r["status"] in TERMINAL, "a run through a registrar")
    assert calls_of(api, project["id"], run["id"]), run


def test_stop_hangs_up_and_cancels(stack, api):
    project, test = make_test(api, stack.responder_uri(), duration_ms=120_000)
    started = data(api.post(f"/projects/{project['id']}/tests/{test['id']}/run"), 201)
    run_id = started["testRunId"]
    poll(lambda: data(api.get(f"/projects/{project['id']}/test-runs/{run_id}"))["status"],
         lambda s: s == "RUNNING", "waiting for the call to be up")
    time.sleep(1)  # let the call be answered (not asserted on)
    stopping = data(api.post(f"/runs/{run_id}/stop"), 202)
    assert stopping["status"] in ("STOPPING", "CANCELLED") and stopping["stopRequested"] is True
    run = poll(lambda: data(api.get(f"/projects/{project['id']}/test-runs/{run_id}")),
               lambda r: r["status"] in TERMINAL, "the stopped run", limit_s=30)
    assert run["status"] == "CANCELLED", run
    assert "stopped" in run["resultDescription"]
    status = data(api.get(f"/runs/{run_id}/status"))["run"]
    assert (status["status"], status["is_finished"], status["is_failed"]) == ("failed", True, True)
    assert api.post(f"/runs/{run_id}/stop").status_code == 409
    assert api.post("/runs/nope/stop").status_code == 404


def test_stop_before_an_engine_took_it_cancels_at_once(stack, api):
    project, test = make_test(api, stack.responder_uri())
    started = data(api.post(f"/projects/{project['id']}/tests/{test['id']}/run"), 201)
    resp = api.post(f"/runs/{started['testRunId']}/stop")
    if resp.status_code == 409:  # the engine was quicker and the 1-s call already ended
        return
    assert data(resp, 202)["status"] in ("CANCELLED", "STOPPING")
    run = poll(lambda: data(api.get(f"/projects/{project['id']}/test-runs/{started['testRunId']}")),
               lambda r: r["status"] in TERMINAL, "the stopped run", limit_s=30)
    assert run["status"] == "CANCELLED"


def test_run_list_filters_and_pages(stack, api):
    project, test = make_test(api, stack.responder_uri(), duration_ms=200)
    _, other = make_test(api, stack.responder_uri(), duration_ms=200)
    other = data(api.post(f"/projects/{project['id']}/tests", json={
        "name": "other", "steps": [{"actions": [{"type": "call", "dial_destination": stack.responder_uri(),
                                                 "duration_ms": 200}]}]}), 201)
    ids = [data(api.post(f"/projects/{project['id']}/tests/{t['id']}/run"), 201)["testRunId"]
           for t in (test, test, other)]
    for rid in ids:
        poll(lambda rid=rid: data(api.get(f"/projects/{project['id']}/test-runs/{rid}"))["status"],
             lambda s: s in TERMINAL, "list runs")
    url = f"/projects/{project['id']}/test-runs"
    assert [r["testRunId"] for r in data(api.get(url))] == ids[::-1]
    assert {r["testRunId"] for r in data(api.get(url, params={"testId": test["id"]}))} == set(ids[:2])
    assert len(data(api.get(url, params={"status": "COMPLETED"}))) == 3
    assert data(api.get(url, params={"status": "FAILED"})) == []
    page2 = api.get(url, params={"perPage": 2, "page": 2}).json()
    assert [r["testRunId"] for r in page2["data"]] == [ids[0]]
    assert page2["meta"]["pagination"] == {"page": 2, "perPage": 2, "total": 3, "totalPages": 2}
    assert [r["testRunId"] for r in data(api.get(url, params={"limit": 1, "offset": 2}))] == [ids[0]]
    assert data(api.get(url, params={"from": "2999-01-01T00:00:00Z"})) == []
    assert len(data(api.get(url, params={"from": "2000-01-01T00:00:00Z", "to": "2999-01-01T00:00:00Z"}))) == 3
    assert "query.status" in details(api.get(url, params={"status": "DONE"}))
    assert api.get(url, params={"from": "yesterday"}).status_code == 422
    assert api.get("/projects/nope/test-runs").status_code == 404


def _user_key(anon, mode="live") -> dict:
    email = f"u{uuid.uuid4().hex[:12]}@example.com"
    assert anon.post("/auth/register", json={"email": email, "password": "correct horse battery"}).status_code == 201
    tokens = anon.post("/auth/login", json={"email": email, "password": "correct horse battery"}).json()["data"]
    jwt = {"Authorization": f"Bearer {tokens['accessToken']}"}
    keys = {}
    for m in ("live", "test"):
        r = anon.post("/api-keys", json={"name": m, "mode": m}, headers=jwt)
        assert r.status_code == 201, r.text
        keys[m] = {"Authorization": f"Bearer {r.json()['data']['key']}"}
    return keys


def test_another_accounts_or_modes_ids_answer_404(stack, api, anon):
    project, test = make_test(api, stack.responder_uri(), duration_ms=200)
    reg = data(api.post(f"/projects/{project['id']}/registrars", json={"name": "r", "host": "127.0.0.1"}), 201)
    pool = data(api.post(f"/projects/{project['id']}/credential-pools",
                         json={"name": "p", "credentials": [{"username": "u", "password": "pw"}]}), 201)
    run_id = data(api.post(f"/projects/{project['id']}/tests/{test['id']}/run"), 201)["testRunId"]
    p, t = project["id"], test["id"]
    keys = _user_key(anon)
    for headers in (keys["live"], keys["test"]):
        for method, path in [
            ("GET", f"/projects/{p}"), ("PATCH", f"/projects/{p}"), ("DELETE", f"/projects/{p}"),
            ("GET", f"/projects/{p}/tests"), ("GET", f"/projects/{p}/tests/{t}"),
            ("DELETE", f"/projects/{p}/tests/{t}"), ("POST", f"/projects/{p}/tests/{t}/run"),
            ("GET", f"/projects/{p}/registrars/{reg['id']}"), ("GET", f"/projects/{p}/credential-pools/{pool['id']}"),
            ("GET", f"/projects/{p}/test-runs"), ("GET", f"/projects/{p}/test-runs/{run_id}"),
            ("GET", f"/runs/{run_id}/status"), ("POST", f"/runs/{run_id}/stop"), ("DELETE", f"/runs/{run_id}/kiosk"),
        ]:
            resp = anon.request(method, path, headers=headers, json={} if method == "PATCH" else None)
            assert resp.status_code == 404, (method, path, resp.text)
        assert anon.post("/tests/run", headers=headers, data={"test.id": t}).status_code == 404
        assert anon.post("/tests/run", headers=headers, data={"test.name": test["name"]}).status_code == 404
        assert p not in [x["id"] for x in anon.get("/projects", headers=headers).json()["data"]]

    # a test-mode key's data is invisible to the same account's live key and the other way round
    mine = data(anon.post("/projects", headers=keys["test"], json={"name": "test-mode project", "slug": "same"}), 201)
    assert anon.get(f"/projects/{mine['id']}", headers=keys["live"]).status_code == 404
    assert [x["id"] for x in anon.get("/projects", headers=keys["test"]).json()["data"]] == [mine["id"]]
    assert anon.get("/projects", headers=keys["live"]).json()["data"] == []
    # slugs are unique per account and mode: the live space may use the same one
    data(anon.post("/projects", headers=keys["live"], json={"name": "live project", "slug": "same"}), 201)
