"""The response envelope (CallMeter): {"data": …, "meta": {"requestId": …}} with pagination for
lists and {"error": {"code", "message", "details"}} for errors."""

from __future__ import annotations

import math
from contextvars import ContextVar
from typing import Any

from fastapi.responses import JSONResponse
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

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


def to_json(msg: Message) -> dict[str, Any]:
    """A protobuf message as JSON with lowerCamelCase names, enums by name, timestamps as
    RFC 3339, 64-bit integers as numbers (protobuf's own JSON mapping makes them strings) and an
    absent optional field (a value that was not measured) as null."""
    out: dict[str, Any] = {}
    for fd in msg.DESCRIPTOR.fields:
        value = getattr(msg, fd.name)
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            vfd = fd.message_type.fields_by_name["value"]
            out[fd.json_name] = {str(k): _scalar(vfd, v) for k, v in value.items()}
        elif fd.is_repeated:
            out[fd.json_name] = [_scalar(fd, v) for v in value]
        elif fd.type == FieldDescriptor.TYPE_MESSAGE or fd.has_presence:  # absent (not measured): null
            out[fd.json_name] = _scalar(fd, value) if msg.HasField(fd.name) else None
        else:
            out[fd.json_name] = _scalar(fd, value)
    return out


def _scalar(fd: FieldDescriptor, v: Any) -> Any:
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        if fd.message_type.full_name == "google.protobuf.Timestamp":
            return v.ToJsonString()
        return to_json(v)
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return fd.enum_type.values_by_number[v].name if v in fd.enum_type.values_by_number else v
    if isinstance(v, float):
        return round(v, 4)
    return v
