"""The OpenAPI 3.1 document at /api/v1/openapi.json, made to match what the gateway answers: every
operation lists the error envelope for the errors it can give (FastAPI's own 422 schema is not what
we send), the rate-limit headers, the Idempotency-Key header on POSTs, the bearer scheme and HTTP
Basic with an API key (not on the routes that take a login token only)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

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
                   "(with `Idempotent-Replayed: true`); another body is a 422; while the first runs, 409.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "example": "2f0c8a53-5a5e-4b7b-9d7a-8e2f1c3b4d5e",
}


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
            if secured:
                codes += ["401", "403", "404", "429"]
            if method in ("post", "put", "delete") or "{" in path:
                codes += ["404", "409"]
            if path.startswith("/api/v1/auth/"):
                codes += ["401", "409", "429"]
            for code in sorted(set(codes)):
                existing = responses.get(code, {})
                responses[code] = {"description": existing.get("description") or _ERRORS[code],
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
    return doc


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
