"""The response envelope (CallMeter): {"data": …, "meta": {"requestId": …}} with pagination for
lists and {"error": {"code", "message", "details"}} for errors. A protobuf answer becomes its
`data` with callgauge_gateway.domain.proto_json.to_json."""

from __future__ import annotations

import math
from contextvars import ContextVar
from typing import Any

from fastapi.responses import JSONResponse

request_id_var: ContextVar[str] = ContextVar("request_id", default="")

ERROR_CODES = {
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 402: "INSUFFICIENT_BALANCE", 403: "FORBIDDEN", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR", 429: "RATE_LIMITED", 500: "INTERNAL_ERROR", 503: "UNAVAILABLE",
    504: "UPSTREAM_TIMEOUT",
}


def meta(**extra: Any) -> dict[str, Any]:
    return {"requestId": request_id_var.get(), **extra}


# Marks an answer that carries a credential (tokens, a new API key, a signing secret): no cache keeps
# it, and the idempotency store never does (it keeps that the request was done, not the answer).
SECRET_HEADERS = {"Cache-Control": "no-store"}


def ok(data: Any, status: int = 200, secret: bool = False) -> JSONResponse:
    return JSONResponse({"data": data, "meta": meta()}, status_code=status,
                        headers=SECRET_HEADERS if secret else None)


def page(items: list, page_no: int, per_page: int, total: int) -> JSONResponse:
    pagination = {"page": page_no, "perPage": per_page, "total": total,
                  "totalPages": math.ceil(total / per_page) if per_page else 0}
    return JSONResponse({"data": items, "meta": meta(pagination=pagination)})


def cursor_page(items: list, per_page: int, total: int, cursor: str | None, next_cursor: str | None,
                next_url: str | None) -> JSONResponse:
    """A page of a keyset-paginated list: CallMeter's envelope, with the cursor in place of page numbers."""
    pagination = {"perPage": per_page, "total": total, "cursor": cursor, "nextCursor": next_cursor}
    return JSONResponse({"data": items, "meta": meta(pagination=pagination, links={"next": next_url})})


def error(status: int, message: str, details: list | None = None, code: str | None = None,
          headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code or ERROR_CODES.get(status, "ERROR"), "message": message, "details": details or []},
            "meta": meta()}
    return JSONResponse(body, status_code=status, headers=headers)
