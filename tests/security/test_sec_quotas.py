"""Finding 3 (part): per-account quotas checked when a run starts — planned calls per run (422) and
unfinished runs at once (429) — each answer naming the quota."""

from __future__ import annotations

import uuid


def _test(api, sec_stack, action: dict) -> tuple[str, str]:
    r = api.post("/projects", json={"name": f"quota-{uuid.uuid4().hex[:6]}"})
    assert r.status_code == 201, r.text
    pid = r.json()["data"]["id"]
    r = api.post(f"/projects/{pid}/tests", json={"name": f"t-{uuid.uuid4().hex[:6]}",
                                                 "steps": [{"actions": [action]}]})
    assert r.status_code == 201, r.text
    return pid, r.json()["data"]["id"]


def test_a_run_planning_more_calls_than_the_quota_is_422(api, sec_stack):
    pid, tid = _test(api, sec_stack, {"type": "load", "dial_destination": sec_stack.responder_uri(),
                                      "cps": 1000, "hold_s": 10000, "max_concurrency": 1})  # 10 million calls
    r = api.post(f"/projects/{pid}/tests/{tid}/run", json={})
    assert r.status_code == 422, r.text
    detail = r.json()["error"]["details"][0]
    assert detail["type"] == "quota_exceeded" and "QUOTA_PLANNED_CALLS_PER_RUN" in detail["msg"]
    assert "10000000" in detail["msg"]


def test_runs_beyond_the_concurrent_runs_quota_are_429(api, sec_stack):
    pid, tid = _test(api, sec_stack, {"type": "call", "dial_destination": sec_stack.responder_uri(),
                                      "duration_ms": 60_000})
    started = []
    try:
        for _ in range(3):
            r = api.post(f"/projects/{pid}/tests/{tid}/run", json={})
            assert r.status_code == 201, r.text
            started.append(r.json()["data"]["testRunId"])
        r = api.post(f"/projects/{pid}/tests/{tid}/run", json={})
        assert r.status_code == 429, r.text
        body = r.json()
        assert body["error"]["code"] == "QUOTA_EXCEEDED" and "CALLGAUGE_QUOTA_CONCURRENT_RUNS" in body["error"]["message"]
        assert r.headers["Retry-After"]
    finally:
        for run_id in started:
            api.post(f"/runs/{run_id}/stop")
