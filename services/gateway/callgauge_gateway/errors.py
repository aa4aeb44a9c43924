"""Every error leaves the gateway in the envelope with the right status code; gRPC status codes
from the services are translated; nothing unexpected leaks a stack trace."""

from __future__ import annotations

import json

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
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
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


def api_error_from_grpc(exc: grpc.aio.AioRpcError) -> ApiError:
    """A service's gRPC status as the HTTP error the client sees."""
    status = _GRPC_STATUS.get(exc.code(), 500)
    insufficient = insufficient_balance(exc)
    if insufficient is not None:
        return ApiError(402, exc.details() or "Insufficient balance", [insufficient])
    if status == 500:
        log.error("upstream_error", code=str(exc.code()), details=exc.details())
        return ApiError(500, "Internal error; the request id identifies it in our logs")
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
    return ApiError(status, exc.details() or "request failed")


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
