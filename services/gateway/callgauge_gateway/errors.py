"""Every error leaves the gateway in the envelope with the right status code; gRPC status codes
from the services are translated HERE, in one place (`api_error_from_grpc`, used by the API, the
auth and idempotency layers and the report pages); nothing unexpected leaks a stack trace.

What a client sees of a gRPC error:
- the message a service chose (`context.abort(code, message)` in its servicer) for the codes our
  services use on purpose: NOT_FOUND 404, INVALID_ARGUMENT 422 (with field errors), ABORTED /
  ALREADY_EXISTS / FAILED_PRECONDITION 409, PERMISSION_DENIED 403, UNAUTHENTICATED 401;
- never text that gRPC itself wrote ("Stream removed", "Received message larger than max (…)",
  "Socket closed", "failed to connect to all addresses", …): that is logged with the request id
  and the client gets a fixed message of ours;
- RESOURCE_EXHAUSTED is not a rate limit unless the service says so (trailing metadata
  `callgauge-error-code: RATE_LIMITED` → 429). gRPC raises it for its message-size limits: an
  answer larger than the gateway may receive is **500 RESPONSE_TOO_LARGE** (the request was
  fine; the server could not carry the answer — a person narrows the request or pages it), a
  request larger than the service may receive is **413 PAYLOAD_TOO_LARGE**; any other exhaustion
  (a server out of capacity) is 503 with Retry-After."""

from __future__ import annotations

import json
import re

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from callgauge_gateway.envelope import error
from callgauge_platform.errors import ERROR_CODE_KEY, STORE_UNAVAILABLE, field_errors_from
from callgauge_platform.logs import get_logger

log = get_logger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, details: list | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details, self.code, self.headers = status, message, details, code, headers


_GRPC_STATUS = {
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def insufficient_balance(exc: grpc.aio.AioRpcError) -> dict | None:
    """FAILED_PRECONDITION with `callgauge-error-code: INSUFFICIENT_BALANCE` is a 402; the needed and
    available amounts come as JSON in `callgauge-error-details`."""
    if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
        return None
    md = dict(exc.trailing_metadata() or ())
    if md.get("callgauge-error-code") != "INSUFFICIENT_BALANCE":
        return None
    try:
        details = json.loads(md.get("callgauge-error-details", "{}"))
    except ValueError:
        details = {}
    return {"type": "insufficient_balance", "msg": "top up the wallet (POST /api/v1/billing/top-ups)",
            "needed": details.get("needed"), "available": details.get("available"),
            "currency": details.get("currency")}


# Text gRPC's runtime writes (never a service's own message): it must not reach a client.
_GRPC_INTERNAL_TEXT = re.compile(
    r"stream removed|message larger than max|socket closed|failed to connect|connection reset|"
    r"rst_stream|goaway|end of tcp stream|exception calling application|exception deserializing|"
    r"deadline exceeded|too_many_pings|keepalive|http2|handshake|unexpected eof|connect failed|"
    r"channel (?:is )?closed|errno|ipv[46]:|dns resolution", re.IGNORECASE)
_SIZE_LIMIT = re.compile(r"(sent|received) message larger than max", re.IGNORECASE)
TOO_LARGE_MESSAGE = ("The answer is too large to send in one response. Ask for less: page through a "
                     "run's calls with GET /api/v1/projects/{projectId}/test-runs/{runId}/calls "
                     "(or export them as …/calls.csv / …/calls.parquet)")


def _service_code(exc: grpc.aio.AioRpcError) -> str:
    return str(dict(exc.trailing_metadata() or ()).get("callgauge-error-code", ""))


def _resource_exhausted(exc: grpc.aio.AioRpcError) -> ApiError:
    details = exc.details() or ""
    if _service_code(exc) == "RATE_LIMITED":
        return ApiError(429, "Rate limit exceeded; retry later", headers={"Retry-After": "1"})
    if _service_code(exc) == "QUOTA_EXCEEDED":  # an account quota that frees up when a run ends
        return ApiError(429, details or "Quota exceeded", [{"loc": [], "type": "quota_exceeded", "msg": details}],
                        code="QUOTA_EXCEEDED", headers={"Retry-After": "10"})
    size = _SIZE_LIMIT.search(details)
    log.error("upstream_resource_exhausted", details=details, size_limit=bool(size))
    if size is not None and size.group(1).lower() == "sent":
        return ApiError(413, "The request is too large for the service behind the gateway; send less "
                             "(fewer items or a smaller body)")
    if size is not None:
        return ApiError(500, TOO_LARGE_MESSAGE, code="RESPONSE_TOO_LARGE")
    return ApiError(503, "A backend service is out of capacity; retry shortly", headers={"Retry-After": "1"})


def api_error_from_grpc(exc: grpc.aio.AioRpcError) -> ApiError:
    """A service's gRPC status as the HTTP error the client sees (the one mapping: see the module
    docstring)."""
    if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return _resource_exhausted(exc)
    status = _GRPC_STATUS.get(exc.code(), 500)
    insufficient = insufficient_balance(exc)
    if insufficient is not None:
        return ApiError(402, exc.details() or "Insufficient balance", [insufficient])
    if exc.code() == grpc.StatusCode.FAILED_PRECONDITION and _service_code(exc) == "PAYMENT_DECLINED":
        return ApiError(402, f"The top-up was not paid, nothing was credited: {exc.details()}",
                        code="PAYMENT_DECLINED")
    if status == 500:
        log.error("upstream_error", code=str(exc.code()), details=exc.details())
        return ApiError(500, "Internal error; the request id identifies it in our logs")
    if status in (503, 504):
        log.warning("upstream_unavailable", code=str(exc.code()), details=exc.details())
    if status == 503:
        md = dict(exc.trailing_metadata() or ())
        if md.get(ERROR_CODE_KEY) == STORE_UNAVAILABLE:  # the service's own words: disk full, store down
            log.warning("upstream_store_unavailable", details=exc.details())
            return ApiError(503, f"Temporarily unavailable: {exc.details()}; retry shortly",
                            code="STORE_UNAVAILABLE", headers={"Retry-After": "5"})
        return ApiError(503, "A backend service is unavailable; retry shortly", headers={"Retry-After": "1"})
    if status == 504:
        return ApiError(504, "A backend service did not answer in time; retry shortly")
    if status == 422:
        return ApiError(422, "The request is not valid: see details", field_errors_from(exc))
    details = exc.details() or ""
    if _GRPC_INTERNAL_TEXT.search(details):  # gRPC's words under a code our services also use
        log.error("upstream_error", code=str(exc.code()), details=details)
        return ApiError(status, _FIXED.get(status, "request failed"))
    return ApiError(status, details or _FIXED.get(status, "request failed"))


_FIXED = {404: "Not found", 409: "The request conflicts with the current state; reload and retry",
          403: "Not allowed", 401: "Not authenticated"}


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
