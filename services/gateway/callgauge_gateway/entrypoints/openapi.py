"""The OpenAPI 3.1 document at /api/v1/openapi.json, made to match what the gateway answers: every
operation lists the error envelope for the errors it can give (FastAPI's own 422 schema is not what
we send), the rate-limit headers, the Idempotency-Key header on POSTs, the bearer scheme and HTTP
Basic with an API key (not on the routes that take a login token only)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from callgauge_gateway.entrypoints.idempotency import KEY_PATTERN_TEXT, MAX_KEY_LENGTH

ERROR_ENVELOPE = {
    "type": "object",
    "required": ["error", "meta"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "examples": ["VALIDATION_ERROR"]},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"},
                            "description": "for 422: one entry per bad field, {loc, msg, type}"},
            },
        },
        "meta": {"type": "object", "required": ["requestId"], "properties": {"requestId": {"type": "string"}}},
    },
    "example": {"error": {"code": "VALIDATION_ERROR", "message": "The request is not valid: see details",
                          "details": [{"loc": ["body", "name"], "msg": "Field required", "type": "missing"}]},
                "meta": {"requestId": "6b1f9c4e-3d0a-4b7e-9a51-2f8c0d7e1a22"}},
}

_ERRORS = {
    "400": "Bad request",
    "401": "Missing, invalid or revoked credentials",
    "403": "Not allowed with these credentials",
    "404": "Not found (or another account's)",
    "405": "Method not allowed",
    "409": "Conflict (concurrent change, duplicate, or an Idempotency-Key still in flight)",
    "402": "INSUFFICIENT_BALANCE: the wallet cannot hold the run's worst-case cost (prepaid billing); `details` "
           "carries `needed`, `available` and `currency`. Top up (POST /api/v1/billing/top-ups) and retry",
    "413": "Payload too large",
    "415": "Unsupported media type",
    "422": "Validation error: `details` lists each bad field with `loc`, `msg`, `type`",
    "429": "Rate limit reached: see Retry-After",
    "500": "Internal error (never with a stack trace); code RESPONSE_TOO_LARGE when the answer would exceed "
           "the services' message size: ask for less (a smaller page)",
    "503": "A backend service is unavailable: retry",
    "504": "A backend service did not answer in time",
}

_RATE_HEADERS = {
    "X-RateLimit-Limit": {"description": "requests allowed a minute", "schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"description": "requests left in this window", "schema": {"type": "integer"}},
    "X-RateLimit-Reset": {"description": "unix time (s) when the window resets", "schema": {"type": "integer"}},
    "X-Request-Id": {"description": "the request's id (yours if you sent X-Request-Id)", "schema": {"type": "string"}},
}

IDEMPOTENCY_PARAM = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Makes a POST safe to retry for 24 h: the same key and body replay the first answer "
                   "(with `Idempotent-Replayed: true`); another body is a 422; while the first runs, 409. 1 to "
                   f"{MAX_KEY_LENGTH} printable ASCII characters, no leading or trailing space; another key is a 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": KEY_PATTERN_TEXT},
    "example": "2f0c8a53-5a5e-4b7b-9d7a-8e2f1c3b4d5e",
}


# What starting a run can answer besides the common errors (POST …/tests/{testId}/run and POST /tests/run).
RUN_START_ERRORS = {
    "402": _ERRORS["402"],
    "422": "Validation error, or a per-run quota: more planned calls than CALLGAUGE_QUOTA_PLANNED_CALLS_PER_RUN "
           "or an action asking more concurrency than CALLGAUGE_QUOTA_CONCURRENT_CALLS (test mode too); `details` "
           "names the field and the quota",
    "429": "RATE_LIMITED (see Retry-After), or QUOTA_EXCEEDED: the account already has "
           "CALLGAUGE_QUOTA_CONCURRENT_RUNS runs in flight; retry when one ends (Retry-After)",
}


def _expr(pointer: str) -> str:
    return f"$response.body#/data/{pointer}"


_PROJECT = {"project_id": _expr("id")}
_TEST = {"project_id": _expr("projectId"), "test_id": _expr("id")}
_RUN = {"project_id": _expr("projectId"), "run_id": _expr("testRunId")}
_BEARER = {"header.Authorization": "Bearer {$response.body#/data/accessToken}"}
# OpenAPI links: which value of one answer feeds which later request (schemathesis' stateful runs follow
# them: tests/e2e/test_openapi_stateful.py). Keyed by (operationId, status); FastAPI names operations
# <function>_<path>_<method>.
LINKS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("register_api_v1_auth_register_post", "201"): {
        "LogIn": {"operationId": "login_api_v1_auth_login_post",
                  "requestBody": {"email": "$request.body#/email", "password": "$request.body#/password"},
                  "description": "log in with the account just registered"}},
    ("login_api_v1_auth_login_post", "200"): {
        "Refresh": {"operationId": "refresh_api_v1_auth_refresh_post",
                    "requestBody": {"refreshToken": _expr("refreshToken")},
                    "description": "trade the refresh token for new tokens"},
        "GetMe": {"operationId": "get_me_api_v1_users_me_get", "parameters": _BEARER,
                  "description": "the access token as Bearer"},
        "CreateApiKey": {"operationId": "create_key_api_v1_api_keys_post", "parameters": _BEARER,
                         "description": "key management needs a login token"},
        "ListApiKeys": {"operationId": "list_keys_api_v1_api_keys_get", "parameters": _BEARER,
                        "description": "key management needs a login token"}},
    ("refresh_api_v1_auth_refresh_post", "200"): {
        "GetMe": {"operationId": "get_me_api_v1_users_me_get", "parameters": _BEARER,
                  "description": "the new access token as Bearer"}},
    ("create_key_api_v1_api_keys_post", "201"): {
        "RevokeApiKey": {"operationId": "revoke_key_api_v1_api_keys__key_id__delete",
                         "parameters": {"key_id": _expr("id"), "header.Authorization": "$request.header.Authorization"},
                         "description": "revoke the key just made, with the same login"}},
    ("create_project_api_v1_projects_post", "201"): {
        "GetProject": {"operationId": "get_project_api_v1_projects__project_id__get", "parameters": _PROJECT},
        "UpdateProject": {"operationId": "update_project_api_v1_projects__project_id__patch", "parameters": _PROJECT},
        "DeleteProject": {"operationId": "delete_project_api_v1_projects__project_id__delete",
                          "parameters": _PROJECT},
        "CreateTest": {"operationId": "create_test_api_v1_projects__project_id__tests_post", "parameters": _PROJECT},
        "ListTests": {"operationId": "list_tests_api_v1_projects__project_id__tests_get", "parameters": _PROJECT},
        "ListRuns": {"operationId": "list_runs_api_v1_projects__project_id__test_runs_get", "parameters": _PROJECT}},
    ("create_test_api_v1_projects__project_id__tests_post", "201"): {
        "GetTest": {"operationId": "get_test_api_v1_projects__project_id__tests__test_id__get", "parameters": _TEST},
        "ReplaceTest": {"operationId": "replace_test_api_v1_projects__project_id__tests__test_id__put",
                        "parameters": _TEST},
        "UpdateTest": {"operationId": "update_test_api_v1_projects__project_id__tests__test_id__patch",
                       "parameters": _TEST},
        "DeleteTest": {"operationId": "delete_test_api_v1_projects__project_id__tests__test_id__delete",
                       "parameters": _TEST},
        "RunTest": {"operationId": "run_test_api_v1_projects__project_id__tests__test_id__run_post",
                    "parameters": _TEST, "description": "start a run of the test just made"}},
    ("run_test_api_v1_projects__project_id__tests__test_id__run_post", "201"): {
        "GetRun": {"operationId": "get_run_api_v1_projects__project_id__test_runs__run_id__get", "parameters": _RUN},
        "RunStatus": {"operationId": "run_status_api_v1_runs__run_id__status_get",
                      "parameters": {"run_id": _expr("testRunId")}},
        "ListCalls": {"operationId": "list_calls_api_v1_projects__project_id__test_runs__run_id__calls_get",
                      "parameters": _RUN},
        "StopRun": {"operationId": "stop_run_api_v1_runs__run_id__stop_post",
                    "parameters": {"run_id": _expr("testRunId")}}},
}
RUN_START_PATHS = ("/api/v1/projects/{project_id}/tests/{test_id}/run", "/api/v1/tests/run")


def _error_ref() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}


LOGIN_ONLY = "x-login-token-only"  # set on the routes of require_login (openapi_extra)
BASIC_SCHEME = {
    "type": "http", "scheme": "basic",
    "description": "An API key over HTTP Basic, as Sipfront's clients send it: the key as user name and an empty "
                   "password (`curl -u \"$KEY:\"`), or the key's id as user name and the key as password. Same "
                   "scoping and limits as Bearer. Not for login tokens.",
}


def build(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, openapi_version="3.1.0",
                      description=app.description, routes=app.routes, tags=app.openapi_tags)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorEnvelope"] = ERROR_ENVELOPE
    doc["components"].setdefault("securitySchemes", {})["basic"] = BASIC_SCHEME
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = op.setdefault("responses", {})
            secured = bool(op.get("security"))
            if secured and not op.get(LOGIN_ONLY):  # routes that take a login token only: no Basic
                op["security"] = [*op["security"], {"basic": []}]
            codes = ["400", "422", "500", "503", "504"]
            run_start = method == "post" and path in RUN_START_PATHS
            if run_start:
                codes += ["402", "429"]
            if secured:
                codes += ["401", "403", "404", "429"]
            if method in ("post", "put", "delete") or "{" in path:
                codes += ["404", "409"]
            if path.startswith("/api/v1/auth/"):
                codes += ["401", "409", "429"]
            for code in sorted(set(codes)):
                existing = responses.get(code, {})
                description = RUN_START_ERRORS.get(code) if run_start else None
                responses[code] = {"description": description or existing.get("description") or _ERRORS[code],
                                   "content": _error_ref()}
            responses["default"] = {"description": "Any other error, in the error envelope", "content": _error_ref()}
            for code, resp in responses.items():
                headers = resp.setdefault("headers", {})
                headers.update(_RATE_HEADERS if secured else {"X-Request-Id": _RATE_HEADERS["X-Request-Id"]})
                if code in ("429", "503"):
                    headers["Retry-After"] = {"description": "seconds to wait before retrying",
                                              "schema": {"type": "integer"}}
            if method == "post":
                op.setdefault("parameters", []).append(IDEMPOTENCY_PARAM)
            for (op_id, code), links in LINKS.items():
                if op.get("operationId") == op_id:
                    responses[code]["links"] = links
    return doc


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
