"""Where Sipfront's clients start, through the REST API of the whole stack: `GET /api/v1/` (the index)
and `GET /api/v1/tests` (every test of the account across projects, with its overridable
parameters, paginated); and a real gRPC message-size limit answered honestly (not a 429, no gRPC
text)."""

from __future__ import annotations

import pytest

from tests.e2e.test_billing_metering import client, new_api_key
from tests.e2e.test_walking_skeleton import data

pytestmark = pytest.mark.e2e


def test_the_index_names_the_version_the_callers_account_and_mode_and_links(stack, api) -> None:
    d = data(api.get("/"))
    assert d["version"] == "v1" and d["account"]["mode"] == "live" and d["account"]["id"]
    assert d["links"]["tests"].endswith("/api/v1/tests") and d["links"]["runTest"].endswith("/api/v1/tests/run")
    assert "{runId}" in d["links"]["runCalls"]
    with client(stack, new_api_key(stack, "test")) as other:
        o = data(other.get("/"))
        assert o["account"]["mode"] == "test" and o["account"]["id"] != d["account"]["id"]
        assert other.get("/", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_every_test_of_the_account_across_projects_with_parameters_paginated(stack) -> None:
    with client(stack, new_api_key(stack, "test")) as api:
        made = []
        for p in range(3):
            project = data(api.post("/projects", json={"name": f"index {p}"}), 201)
            for t in range(2):
                made.append(data(api.post(f"/projects/{project['id']}/tests", json={
                    "name": f"t{p}{t}", "steps": [
                        {"actions": [{"type": "call", "dial_destination": f"sip:{p}{t}@127.0.0.1", "duration_ms": 1000}]},
                        {"actions": [{"type": "load", "dial_destination": "sip:x@127.0.0.1", "cps": 2, "hold_s": 1}]},
                    ]}), 201))
        body = api.get("/tests", params={"perPage": 4}).json()
        assert body["meta"]["pagination"] == {"page": 1, "perPage": 4, "total": 6, "totalPages": 2}
        second = api.get("/tests", params={"perPage": 4, "page": 2}).json()
        got = body["data"] + second["data"]
        assert sorted(t["id"] for t in got) == sorted(t["id"] for t in made)
        assert [(t["projectId"], t["id"]) for t in got] == sorted((t["projectId"], t["id"]) for t in got)
        first = next(t for t in got if t["name"] == "t00")
        params = {p["name"]: p for p in first["parameters"]}
        assert params["step.0.0.dial_destination"] == {"name": "step.0.0.dial_destination", "action": "call",
                                                       "type": "string", "value": "sip:00@127.0.0.1"}
        assert params["step.1.0.cps"]["type"] == "number" and params["step.1.0.cps"]["value"] == 2
        assert params["step.1.0.max_total_calls"]["type"] == "integer"
        assert first["steps"][0]["actions"][0]["type"] == "call"
        # what it lists is what a run accepts
        started = data(api.post("/tests/run", json={"test.id": first["id"], "step.0.0.max_total_calls": 1,
                                                      "step.1.0.hold_s": 0, "step.1.0.max_total_calls": 1}), 201)
        assert started["testRunId"]
        # another account sees none of them
        with client(stack, new_api_key(stack, "test")) as other:
            assert other.get("/tests").json()["meta"]["pagination"]["total"] == 0
        bad = api.get("/tests", params={"perPage": 0})
        assert bad.status_code == 422 and bad.json()["error"]["details"][0]["loc"] == ["query", "perPage"]


def test_an_answer_over_grpcs_size_limit_is_a_clear_error_without_grpc_text(stack) -> None:
    """A project with tests whose specs add up to more than gRPC's 4 MiB per message: listing them
    in one page used to answer 429 RATE_LIMITED with gRPC's 'Received message larger than max'."""
    with client(stack, new_api_key(stack, "test")) as api:
        project = data(api.post("/projects", json={"name": "big specs"}), 201)
        action = {"type": "call", "dial_destination": "sip:" + "a" * 480 + "@127.0.0.1", "duration_ms": 1000}
        spec = {"steps": [{"actions": [action] * 50}] * 20}  # ~0.5 MB of protobuf per test
        for i in range(10):
            data(api.post(f"/projects/{project['id']}/tests", json={"name": f"big {i}", **spec}), 201)
        r = api.get(f"/projects/{project['id']}/tests", params={"perPage": 100})
        assert r.status_code == 500, r.text[:300]
        err = r.json()["error"]
        assert err["code"] == "RESPONSE_TOO_LARGE" and "Ask for less" in err["message"]
        for leak in ("Stream removed", "larger than max", "4194304", "RATE_LIMITED"):
            assert leak not in r.text
        # a smaller page of the same tests is fine
        assert len(data(api.get(f"/projects/{project['id']}/tests", params={"perPage": 2}))) == 2
