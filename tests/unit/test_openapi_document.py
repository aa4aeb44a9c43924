"""What the gateway's OpenAPI document says must be what the gateway does (#15): the Idempotency-Key
header's pattern is the middleware's own check, metadata bounds are the runs service's, a run start
lists 402 INSUFFICIENT_BALANCE and the quota answers, and every link points at an operation that
exists with parameters that exist (a renamed route would silently drop the stateful run's flows)."""

from __future__ import annotations

import re

import pytest

from callgauge_gateway.entrypoints import idempotency
from callgauge_gateway.bootstrap import bootstrap
from callgauge_runs.domain.common import validate_metadata
from callgauge_runs.domain.errors import ValidationCollector


@pytest.fixture(scope="module")
def doc() -> dict:
    return bootstrap().openapi()


def _ops(doc: dict):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "responses" in op:
                yield path, method, op


def test_idempotency_key_pattern_is_the_middlewares_check(doc) -> None:
    params = [p for _path, method, op in _ops(doc) if method == "post"
              for p in op.get("parameters", []) if p["name"] == "Idempotency-Key"]
    assert params and all(p["schema"] == params[0]["schema"] for p in params)
    schema = params[0]["schema"]
    assert schema["maxLength"] == idempotency.MAX_KEY_LENGTH and schema["minLength"] == 1
    documented = re.compile(schema["pattern"])
    samples = ["2f0c8a53-5a5e-4b7b-9d7a-8e2f1c3b4d5e", "a", "a b", " a", "a ", "a\tb", "caf\u00e9", "x" * 255,
               "\x7f", "!~", ""]
    for key in samples:
        accepted = len(key) <= idempotency.MAX_KEY_LENGTH and bool(idempotency.KEY_PATTERN.fullmatch(key))
        assert bool(documented.search(key)) == accepted, key


def test_metadata_bounds_are_the_runs_services(doc) -> None:
    md = doc["components"]["schemas"]["ProjectIn"]["properties"]["metadata"]
    keys, key_max, value_max = md["maxProperties"], md["propertyNames"]["maxLength"], \
        md["additionalProperties"]["maxLength"]

    def refused(metadata: dict[str, str]) -> bool:
        v = ValidationCollector()
        validate_metadata(metadata, v)
        return bool(v.errors)

    assert not refused({f"k{i}": "v" * value_max for i in range(keys)})
    assert refused({f"k{i}": "v" for i in range(keys + 1)})
    assert not refused({"k" * key_max: "v"}) and refused({"k" * (key_max + 1): "v"})
    assert refused({"k": "v" * (value_max + 1)})
    run_md = doc["paths"]["/api/v1/tests/run"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "properties"]["metadata"]
    assert run_md["maxProperties"] == keys and run_md["additionalProperties"]["maxLength"] == value_max


def test_run_start_documents_402_and_quotas(doc) -> None:
    for path in ("/api/v1/projects/{project_id}/tests/{test_id}/run", "/api/v1/tests/run"):
        responses = doc["paths"][path]["post"]["responses"]
        assert "INSUFFICIENT_BALANCE" in responses["402"]["description"]
        assert "CALLGAUGE_QUOTA_PLANNED_CALLS_PER_RUN" in responses["422"]["description"]
        assert "CALLGAUGE_QUOTA_CONCURRENT_CALLS" in responses["422"]["description"]
        assert "QUOTA_EXCEEDED" in responses["429"]["description"]
        assert responses["402"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorEnvelope")


def test_every_link_targets_a_real_operation_and_parameter(doc) -> None:
    ops = {op["operationId"]: op for _p, _m, op in _ops(doc)}
    links = [(op["operationId"], code, name, link) for _p, _m, op in _ops(doc)
             for code, resp in op["responses"].items() for name, link in resp.get("links", {}).items()]
    assert len(links) >= 20
    for source, code, name, link in links:
        assert link["operationId"] in ops, (source, name)
        target = ops[link["operationId"]]
        names = {p["name"] for p in target.get("parameters", [])}
        for param in link.get("parameters", {}):
            plain = param.split(".", 1)[1] if param.startswith(("header.", "path.", "query.")) else param
            assert plain in names or param.startswith("header."), (source, name, param)
        assert link.get("requestBody") is None or "requestBody" in target, (source, name)
    reached = {link["operationId"] for *_x, link in links}
    for needed in ("login_api_v1_auth_login_post", "revoke_key_api_v1_api_keys__key_id__delete",
                   "create_test_api_v1_projects__project_id__tests_post",
                   "run_test_api_v1_projects__project_id__tests__test_id__run_post",
                   "run_status_api_v1_runs__run_id__status_get",
                   "list_calls_api_v1_projects__project_id__test_runs__run_id__calls_get"):
        assert needed in reached, needed
