"""Every error leaves the gateway in the envelope with the right status code; gRPC status codes
from the services are translated HERE, in one place (the table `GRPC_TO_HTTP`, applied by
`api_error_from_grpc`, used by the API, the auth and idempotency layers and the report pages);
nothing unexpected leaks a stack trace.

What a client sees of a gRPC error:
- the message a service chose (its domain error, mapped by callgauge_platform.errors.status_of)
  for the codes our services use on purpose: NOT_FOUND 404, INVALID_ARGUMENT 422 (with field
  errors), ABORTED / ALREADY_EXISTS / FAILED_PRECONDITION 409, PERMISSION_DENIED 403,
  UNAUTHENTICATED 401, and the refusals a client acts on (402 INSUFFICIENT_BALANCE with the
  amounts, 402 PAYMENT_DECLINED, 429 QUOTA_EXCEEDED, 503 STORE_UNAVAILABLE);
- never text that gRPC itself wrote ("Stream removed", "Received message larger than max (…)",
  "Socket closed", "failed to connect to all addresses", …): that is logged with the request id
  and the client gets a fixed message of ours;
- RESOURCE_EXHAUSTED is a 429 only for a service's QUOTA_EXCEEDED. gRPC raises it for its
  message-size limits: an answer larger than the gateway may receive is **500
  RESPONSE_TOO_LARGE**, a request larger than the service may receive is **413
  PAYLOAD_TOO_LARGE**; any other exhaustion (a server out of capacity) is 503 with Retry-After."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from callgauge_gateway.entrypoints.envelope import error
from callgauge_platform.errors import (ERROR_CODE_KEY, ERROR_DETAILS_KEY, QUOTA_EXCEEDED, STORE_UNAVAILABLE,
                                       field_errors_from)
from callgauge_platform.logs import get_logger

log = get_logger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, details: list | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details, self.code, self.headers = status, message, details, code, headers


@dataclass(frozen=True)
class Answer:
    """How the gateway answers one kind of gRPC error. `message`: a fixed message of ours (None:
    the service's own message, unless it is gRPC's runtime text); `code`: the envelope's error code
    (None: the one of the HTTP status); `details`: the envelope's details, from the error."""

    status: int
    message: str | None = None
    code: str | None = None
    retry_after: str | None = None
    details: Callable[[grpc.aio.AioRpcError], list] | None = None
    log: str | None = None  # "warning" | "error": what gRPC said goes to the log at that level


def _insufficient_balance(exc: grpc.aio.AioRpcError) -> list:
    """The needed and available amounts come as JSON in `callgauge-error-details`."""
    details = _error_details(exc)
    return [{"type": "insufficient_balance", "msg": "top up the wallet (POST /api/v1/billing/top-ups)",
             "needed": details.get("needed"), "available": details.get("available"),
             "currency": details.get("currency")}]


def _quota(exc: grpc.aio.AioRpcError) -> list:
    return [{"loc": [], "type": "quota_exceeded", "msg": exc.details() or ""}]


TOO_LARGE_MESSAGE = ("The answer is too large to send in one response. Ask for less: page through a "
                     "run's calls with GET /api/v1/projects/{projectId}/test-runs/{runId}/calls "
                     "(or export them as …/calls.csv / …/calls.parquet)")
SENT_TOO_LARGE, RECEIVED_TOO_LARGE = "SENT_TOO_LARGE", "RECEIVED_TOO_LARGE"
INTERNAL = Answer(500, "Internal error; the request id identifies it in our logs", log="error")
_C = grpc.StatusCode

# THE mapping: (gRPC code, reason) -> answer. The reason is the service's `callgauge-error-code`
# (see callgauge_platform.errors.status_of), or for RESOURCE_EXHAUSTED without one, which limit of
# gRPC's own was hit; "" for neither. A pair not here answers as (code, ""), a code not here 500.
GRPC_TO_HTTP: dict[tuple[grpc.StatusCode, str], Answer] = {
    (_C.NOT_FOUND, ""): Answer(404),
    (_C.INVALID_ARGUMENT, ""): Answer(422, "The request is not valid: see details", details=field_errors_from),
    (_C.ABORTED, ""): Answer(409),
    (_C.ALREADY_EXISTS, ""): Answer(409),
    (_C.FAILED_PRECONDITION, ""): Answer(409),
    (_C.FAILED_PRECONDITION, "INSUFFICIENT_BALANCE"): Answer(402, details=_insufficient_balance),
    (_C.FAILED_PRECONDITION, "PAYMENT_DECLINED"): Answer(
        402, "The top-up was not paid, nothing was credited: {details}", code="PAYMENT_DECLINED"),
    (_C.PERMISSION_DENIED, ""): Answer(403),
    (_C.UNAUTHENTICATED, ""): Answer(401),
    # an account quota that frees up when a run ends: the one RESOURCE_EXHAUSTED that is a 429
    (_C.RESOURCE_EXHAUSTED, QUOTA_EXCEEDED): Answer(429, code=QUOTA_EXCEEDED, retry_after="10", details=_quota),
    # gRPC's message-size limits: the request was fine, the server could not carry the answer (a person
    # narrows the request or pages it) / the request is larger than the service takes
    (_C.RESOURCE_EXHAUSTED, RECEIVED_TOO_LARGE): Answer(500, TOO_LARGE_MESSAGE, code="RESPONSE_TOO_LARGE",
                                                        log="error"),
    (_C.RESOURCE_EXHAUSTED, SENT_TOO_LARGE): Answer(
        413, "The request is too large for the service behind the gateway; send less (fewer items or a "
             "smaller body)", log="error"),
    (_C.RESOURCE_EXHAUSTED, ""): Answer(503, "A backend service is out of capacity; retry shortly",
                                        retry_after="1", log="error"),
    (_C.UNAVAILABLE, STORE_UNAVAILABLE): Answer(  # the service's own words: disk full, store down
        503, "Temporarily unavailable: {details}; retry shortly", code=STORE_UNAVAILABLE, retry_after="5",
        log="warning"),
    (_C.UNAVAILABLE, ""): Answer(503, "A backend service is unavailable; retry shortly", retry_after="1",
                                 log="warning"),
    (_C.DEADLINE_EXCEEDED, ""): Answer(504, "A backend service did not answer in time; retry shortly",
                                       log="warning"),
}

# Text gRPC's runtime writes (never a service's own message): it must not reach a client.
_GRPC_INTERNAL_TEXT = re.compile(
    r"stream removed|message larger than max|socket closed|failed to connect|connection reset|"
    r"rst_stream|goaway|end of tcp stream|exception calling application|exception deserializing|"
    r"deadline exceeded|too_many_pings|keepalive|http2|handshake|unexpected eof|connect failed|"
    r"channel (?:is )?closed|errno|ipv[46]:|dns resolution", re.IGNORECASE)
_SIZE_LIMIT = re.compile(r"(sent|received) message larger than max", re.IGNORECASE)
_FIXED = {404: "Not found", 409: "The request conflicts with the current state; reload and retry",
          403: "Not allowed", 401: "Not authenticated", 402: "Insufficient balance", 429: "Quota exceeded"}


def _trailing(exc: grpc.aio.AioRpcError) -> dict:
    return dict(exc.trailing_metadata() or ())


def _error_details(exc: grpc.aio.AioRpcError) -> dict:
    try:
        details = json.loads(_trailing(exc).get(ERROR_DETAILS_KEY) or "{}")
    except (ValueError, TypeError):
        return {}
    return details if isinstance(details, dict) else {}


def reason_of(exc: grpc.aio.AioRpcError) -> str:
    """The second half of the mapping's key: the service's error code, else which of gRPC's size
    limits a RESOURCE_EXHAUSTED without one hit, else ""."""
    code = str(_trailing(exc).get(ERROR_CODE_KEY, ""))
    if code or exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return code
    size = _SIZE_LIMIT.search(exc.details() or "")
    if size is None:
        return ""
    return SENT_TOO_LARGE if size.group(1).lower() == "sent" else RECEIVED_TOO_LARGE


def answer_for(exc: grpc.aio.AioRpcError) -> Answer:
    return GRPC_TO_HTTP.get((exc.code(), reason_of(exc))) or GRPC_TO_HTTP.get((exc.code(), ""), INTERNAL)


def api_error_from_grpc(exc: grpc.aio.AioRpcError) -> ApiError:
    """A service's gRPC status as the HTTP error the client sees: GRPC_TO_HTTP, the one mapping."""
    answer = answer_for(exc)
    text = exc.details() or ""
    if answer.log is not None:
        getattr(log, answer.log)("upstream_error", code=exc.code().name, reason=reason_of(exc), details=text)
    if answer.message is not None:
        message = answer.message.replace("{details}", text)
    elif _GRPC_INTERNAL_TEXT.search(text):  # gRPC's words under a code our services also use
        log.error("upstream_error", code=exc.code().name, details=text)
        message = _FIXED.get(answer.status, "request failed")
    else:
        message = text or _FIXED.get(answer.status, "request failed")
    return ApiError(answer.status, message, answer.details(exc) if answer.details else None, answer.code,
                    {"Retry-After": answer.retry_after} if answer.retry_after else None)


def render(exc: ApiError):
    return error(exc.status, exc.message, exc.details, exc.code, exc.headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_req: Request, exc: ApiError):
        return error(exc.status, exc.message, exc.details, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError):
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                   for e in exc.errors()]
        return error(422, "The request is not valid: see details", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException):
        msg = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and msg == "Not Found":
            msg = "No such endpoint"
        return error(exc.status_code, msg, headers=getattr(exc, "headers", None))

    @app.exception_handler(grpc.aio.AioRpcError)
    async def _grpc(_req: Request, exc: grpc.aio.AioRpcError):
        return render(api_error_from_grpc(exc))

    @app.exception_handler(Exception)
    async def _any(_req: Request, exc: Exception):
        log.exception("unhandled_error")
        return error(500, "Internal error; the request id identifies it in our logs")
