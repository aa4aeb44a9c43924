"""Stateful schemathesis over the live gateway (#15): schemathesis' state machine follows the OpenAPI
document's links (services/gateway/callgauge_gateway/entrypoints/openapi.py LINKS) through the auth, API-key,
project, test and run flows — register -> login -> refresh / users/me / api-keys -> revoke; project ->
get / patch / delete / tests / runs; test -> get / put / patch / delete / run; run -> get / status /
calls / stop — with generated (valid and invalid) data. Every answer: no 5xx, status code, content type
and body as documented, and the stateful checks (a created resource can be read; a deleted one is gone).

The run flow must be reached: the test counts the operations hit and fails unless a run was started
(POST …/tests/{testId}/run answered 201) and then read. What it takes (measured on 2 loaded cores):
schemathesis 4 also starts scenarios at every POST with outgoing links, with generated path ids (only
404s under a project): those random roots are removed for operations below a path id, so they are
reached through links; and because its chains still rarely reach a run start through the test link
within the step bound, a run start or run read drawn with generated ids is pointed at the latest
test / run the flows made (counted and printed as "ids pointed at made resources"); the calls keep
their generated headers and query, and every answer is checked as any other.

Bounded: at most BATCHES state-machine runs of SCENARIOS scenarios of STEPS steps each, and no new
batch after BUDGET_S seconds; no shrinking, no example database. Safety on the shared stack: the
steps of every test written (POST/PUT/PATCH tests) are replaced by one short call to the discard
port on loopback, so no generated test makes the engine dial a random host or place a big plan; a
run's requests and the other fields of the test body stay generated. Operations outside these flows
(billing, monitoring, pools, registrars) and those that would end the session the run authenticates
with (DELETE/PUT /users/me, /auth/logout) are left out; the stateless test covers the rest."""

from __future__ import annotations

import collections
import time
import uuid

import httpx
import pytest

pytestmark = pytest.mark.e2e
SCENARIOS, STEPS, BATCHES, BUDGET_S = 8, 10, 10, 300
SAFE_STEPS = [{"actions": [{"type": "call", "dial_destination": "sip:nobody@127.0.0.1:9", "duration_ms": 500,
                            "setup_timeout_ms": 2000}]}]
RUN_START = "run_test_api_v1_projects__project_id__tests__test_id__run_post"
TEST_WRITES = ("create_test_api_v1_projects__project_id__tests_post",
               "replace_test_api_v1_projects__project_id__tests__test_id__put",
               "update_test_api_v1_projects__project_id__tests__test_id__patch")
INCLUDED = (
    "register_api_v1_auth_register_post", "login_api_v1_auth_login_post", "refresh_api_v1_auth_refresh_post",
    "get_me_api_v1_users_me_get",
    "create_key_api_v1_api_keys_post", "list_keys_api_v1_api_keys_get", "revoke_key_api_v1_api_keys__key_id__delete",
    "create_project_api_v1_projects_post", "list_projects_api_v1_projects_get",
    "get_project_api_v1_projects__project_id__get", "update_project_api_v1_projects__project_id__patch",
    "delete_project_api_v1_projects__project_id__delete",
    *TEST_WRITES, "list_tests_api_v1_projects__project_id__tests_get",
    "get_test_api_v1_projects__project_id__tests__test_id__get",
    "delete_test_api_v1_projects__project_id__tests__test_id__delete",
    RUN_START, "get_run_api_v1_projects__project_id__test_runs__run_id__get",
    "list_runs_api_v1_projects__project_id__test_runs_get", "run_status_api_v1_runs__run_id__status_get",
    "list_calls_api_v1_projects__project_id__test_runs__run_id__calls_get", "stop_run_api_v1_runs__run_id__stop_post",
)
RUN_READS = ("get_run_api_v1_projects__project_id__test_runs__run_id__get", "run_status_api_v1_runs__run_id__status_get",
             "list_calls_api_v1_projects__project_id__test_runs__run_id__calls_get",
             "stop_run_api_v1_runs__run_id__stop_post")


def test_stateful_links_reach_the_runs_flow(stack) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.errors import FlakyStrategyDefinition
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (content_type_conformance, ensure_resource_availability,
                                                   response_schema_conformance, status_code_conformance,
                                                   use_after_free)

    base = stack.settings.gateway_url()
    email, password = f"state{uuid.uuid4().hex[:10]}@example.com", "correct horse battery staple"
    with httpx.Client(base_url=f"{base}/api/v1", timeout=30) as c:
        assert c.post("/auth/register", json={"email": email, "password": password}).status_code == 201
        login = c.post("/auth/login", json={"email": email, "password": password}).json()["data"]["accessToken"]
        created = c.post("/api-keys", json={"name": "stateful", "mode": "test"},
                         headers={"Authorization": f"Bearer {login}"})
        assert created.status_code == 201, created.text
        test_key = created.json()["data"]["key"]  # runs in test mode: free on the prepaid stack
        doc = c.get("/openapi.json").json()

    # The test's copy of the document (the served one is unchanged) also gives the project -> test link
    # a whole valid test body (x-schemathesis merge_body false: it replaces the generated one when
    # followed), so the chain reaches a run often enough; other test writes stay generated.
    create_project = doc["paths"]["/api/v1/projects"]["post"]["responses"]["201"]["links"]
    create_project["CreateTest"] = {**create_project["CreateTest"], "x-schemathesis": {"merge_body": False},
                                    "requestBody": {"name": "stateful", "steps": SAFE_STEPS}}
    # and the test -> run link a plain start (generated override keys are mostly unknown steps: 422)
    create_test = doc["paths"]["/api/v1/projects/{project_id}/tests"]["post"]["responses"]["201"]["links"]
    create_test["RunTest"] = {**create_test["RunTest"], "x-schemathesis": {"merge_body": False}, "requestBody": {}}
    login_only = {op["operationId"] for item in doc["paths"].values() for op in item.values()
                  if isinstance(op, dict) and op.get("x-login-token-only")}
    schema = schemathesis.openapi.from_dict(doc).include(operation_id=list(INCLUDED))
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
              use_after_free, ensure_resource_availability]
    hits: collections.Counter = collections.Counter()
    samples: list[str] = []
    made_tests: list[tuple[str, str]] = []  # (project id, test id) of every test the flows made
    made_runs: list[tuple[str, str]] = []  # (project id, run id) of every run started
    substituted: collections.Counter = collections.Counter()
    issued: set[str] = set()  # access tokens the flows obtained (login, refresh): a link's Bearer keeps them
    # who made what: a project (and what lies under it) or a run is used with the credential that made
    # it — another account or mode (a flow's own login is live, the test key test mode) rightly gets 404,
    # which schemathesis' availability check would take for a created resource gone missing
    owner: dict[str, str] = {}

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case) -> None:
            op_id = case.operation.definition.raw.get("operationId")
            case.headers = dict(case.headers or {})
            given = {k: v for k, v in case.headers.items() if k.lower() == "authorization"}
            if not any(str(v).removeprefix("Bearer ") in issued for v in given.values()):
                # not a token a link carried over: schemathesis generates random credentials for the
                # documented security schemes; those would only ever meet 401
                for k in given:
                    del case.headers[k]
                case.headers["Authorization"] = f"Bearer {login if op_id in login_only else test_key}"
            params = case.path_parameters or {}
            if op_id == RUN_START and made_tests and (params.get("project_id"), params.get("test_id")) not in made_tests:
                # a start schemathesis drew with generated ids (not through the link): point it at the latest
                # test the flows made, as a plain start, so the run flow is reached every batch
                case.path_parameters = {**params, "project_id": made_tests[-1][0], "test_id": made_tests[-1][1]}
                case.body = {}
                substituted["run_start"] += 1
            elif op_id in RUN_READS and made_runs and params.get("run_id") not in {r for _p, r in made_runs}:
                project_id, run_id = made_runs[-1]
                case.path_parameters = {**params, "run_id": run_id,
                                        **({"project_id": project_id} if "project_id" in params else {})}
                substituted["run_read"] += 1
            params = case.path_parameters or {}
            made_by = owner.get(params.get("project_id", "")) or owner.get(params.get("run_id", ""))
            if made_by is not None:
                case.headers = {k: v for k, v in case.headers.items() if k.lower() != "authorization"}
                case.headers["Authorization"] = made_by
            if op_id in TEST_WRITES and isinstance(case.body, dict) and (
                    op_id != TEST_WRITES[2] or "steps" in case.body):
                case.body = {**case.body, "steps": SAFE_STEPS}

        def get_call_kwargs(self, case) -> dict:
            return {"base_url": base, "timeout": 30}

        def after_call(self, response, case) -> None:
            super().after_call(response, case)
            op_id = case.operation.definition.raw.get("operationId")
            hits[(op_id, response.status_code)] += 1
            if op_id in (RUN_START, TEST_WRITES[0]) and response.status_code >= 400 and len(samples) < 8:
                samples.append(f"{case.method} {case.formatted_path} {case.path_parameters} {response.status_code} "
                               f"{response.text[:300]}")
            auth = next((v for k, v in (case.headers or {}).items() if k.lower() == "authorization"), None)
            if op_id == "create_project_api_v1_projects_post" and response.status_code == 201 and auth:
                owner[response.json()["data"]["id"]] = auth
            if op_id == RUN_START and response.status_code == 201 and auth:
                owner[response.json()["data"]["testRunId"]] = auth
            if op_id == TEST_WRITES[0] and response.status_code == 201:
                made_tests.append((response.json()["data"]["projectId"], response.json()["data"]["id"]))
            if op_id == RUN_START and response.status_code == 201:
                made_runs.append((response.json()["data"]["projectId"], response.json()["data"]["testRunId"]))
            if op_id in ("login_api_v1_auth_login_post", "refresh_api_v1_auth_refresh_post") and \
                    response.status_code == 200:
                issued.add(response.json()["data"]["accessToken"])

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            case.validate_response(response, checks=checks, transport_kwargs=kwargs or None, recorder=self.recorder)

    # Schemathesis also starts scenarios at any operation with outgoing links (a POST that makes
    # something), with generated path ids: those under a project only meet 404s. Operations below a
    # path id are reached through the links only, so the chains reach tests and runs.
    under_an_id = {name for name in Workflow.root_rules if "_id" in name}  # rule names: {project_id} -> _project_id_
    for name in under_an_id:
        setattr(Workflow, name, None)
    Workflow.root_rules = frozenset(Workflow.root_rules - under_an_id)
    run_settings = settings(max_examples=SCENARIOS, stateful_step_count=STEPS, deadline=None, database=None,
                            phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    started, flaky = time.monotonic(), 0
    for _batch in range(BATCHES):
        try:
            Workflow.run(settings=run_settings)
        except FlakyStrategyDefinition:
            # hypothesis replays a scenario and the live API answered differently the second time (a
            # stateful API does): not a finding about the API; the calls made were still checked
            flaky += 1
        runs_started = sum(n for (op, status), n in hits.items() if op == RUN_START and status == 201)
        runs_read = sum(n for (op, status), n in hits.items() if op in RUN_READS and status < 300)
        if (runs_started and runs_read) or time.monotonic() - started > BUDGET_S:
            break
    by_op = collections.Counter()
    for (op, _status), n in hits.items():
        by_op[op] += n
    summary = ", ".join(f"{op.split('_api_v1')[0]}={n}" for op, n in sorted(by_op.items()))
    print(f"stateful: {flaky} batches cut by hypothesis' replay check; {sum(hits.values())} calls, {len(by_op)} operations: {summary}")
    print("ids pointed at made resources:", dict(substituted), "tests made:", len(made_tests),
          "runs started:", len(made_runs))
    print("refusals:", *samples, sep="\n  ")
    print("statuses:", dict(sorted(((op.split('_api_v1')[0], s), n) for (op, s), n in hits.items())))
    assert by_op[RUN_START], f"the run-start operation was never called: {summary}"
    assert runs_started, f"no run was started (POST …/run 201): {dict(hits)}"
    assert runs_read, f"no started run was read through the links: {dict(hits)}"
    for needed in ("login_api_v1_auth_login_post", "create_project_api_v1_projects_post",
                   "create_test_api_v1_projects__project_id__tests_post"):
        assert by_op[needed], f"{needed} never called: {summary}"
