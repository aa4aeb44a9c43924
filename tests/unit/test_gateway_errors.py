"""The gateway's error envelope without any backend: an unexpected exception is a 500 in the envelope
(no stack trace, X-Request-Id set), unknown routes and methods, X-Request-Id honoured or replaced,
and the OpenAPI document (3.1, bearer scheme, error envelope on every operation)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from callgauge_gateway.bootstrap import bootstrap
from callgauge_gateway.settings import GatewaySettings


@pytest.fixture
def client(tmp_path):
    app = bootstrap(GatewaySettings(data_dir=tmp_path))

    @app.get("/boom")
    async def boom():
        raise RuntimeError("secret detail that must not leak")

    # no `with`: the lifespan (gRPC channels) does not run; these routes need none
    return TestClient(app, raise_server_exceptions=False)


def test_an_unexpected_exception_is_a_500_envelope_without_trace(client) -> None:
    r = client.get("/boom", headers={"X-Request-Id": "req-1"})
    assert r.status_code == 500
    assert r.json() == {"error": {"code": "INTERNAL_ERROR",
                                  "message": "Internal error; the request id identifies it in our logs",
                                  "details": []}, "meta": {"requestId": "req-1"}}
    assert r.headers["X-Request-Id"] == "req-1"
    assert "secret detail" not in r.text and "Traceback" not in r.text


def test_unknown_route_and_method(client) -> None:
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    r = client.put("/api/v1/auth/login")
    assert r.status_code == 405 and r.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize("sent, kept", [("abc-123", True), ("x" * 128, True), ("x" * 129, False),
                                        ("has space", False), ("", False)])
def test_request_id_is_honoured_when_sane(client, sent, kept) -> None:
    r = client.get("/api/v1/nothing-here", headers={"X-Request-Id": sent})
    rid = r.headers["X-Request-Id"]
    assert (rid == sent) is kept and r.json()["meta"]["requestId"] == rid


def test_missing_credentials_need_no_backend(client) -> None:
    r = client.get("/api/v1/users/me")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert r.json()["error"]["code"] == "UNAUTHORIZED"


def test_openapi_document(client) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "cgk_live_… / cgk_test_… API key, or a login JWT",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"]}
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            ref = op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/ErrorEnvelope", (method, path)
            if method == "post":
                assert any(p["name"] == "Idempotency-Key" for p in op.get("parameters", [])), path
    assert doc["paths"]["/api/v1/users/me"]["get"]["security"] == [{"bearer": []}, {"basic": []}]
    assert doc["components"]["securitySchemes"]["basic"]["scheme"] == "basic"
    for method, path in (("get", "/api/v1/api-keys"), ("post", "/api/v1/api-keys"), ("put", "/api/v1/users/me"),
                         ("delete", "/api/v1/api-keys/{key_id}")):  # login tokens only
        assert doc["paths"][path][method]["security"] == [{"bearer": []}], (method, path)
    assert "security" not in doc["paths"]["/api/v1/auth/login"]["post"]


def test_accounts_service_down_is_a_503_envelope(tmp_path) -> None:
    from callgauge_platform.stack import free_port

    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    app = bootstrap(GatewaySettings(data_dir=tmp_path, accounts_grpc=dead, runs_grpc=dead))
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/v1/projects", headers={"Authorization": "Bearer cgk_live_" + "x" * 43})
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "UNAVAILABLE" and r.headers["Retry-After"] == "1"
        r = client.post("/api/v1/auth/login", json={"email": "a@example.com", "password": "whatever it is"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "UNAVAILABLE"
        r = client.get("/readyz")
        assert r.status_code == 503
