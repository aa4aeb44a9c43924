"""How domain errors cross gRPC: a status code plus, for validation errors, the list of field
errors as JSON in the trailing metadata key `callgauge-field-errors`."""

from __future__ import annotations

import errno
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from callgauge_platform.logs import get_logger

log = get_logger(__name__)
FIELD_ERRORS_KEY = "callgauge-field-errors"
ERROR_CODE_KEY = "callgauge-error-code"
STORE_UNAVAILABLE = "STORE_UNAVAILABLE"


def store_unavailable(exc: BaseException) -> str | None:
    """Why the service's store cannot take a request now (disk full, I/O error, database down), or
    None when `exc` is something else. Such a failure is temporary for the caller: UNAVAILABLE."""
    from callgauge_eventstore.port import StoreUnavailable

    for e in _chain(exc):
        if isinstance(e, StoreUnavailable):
            return str(e)
        mod = type(e).__module__
        if mod.startswith("asyncpg") and (
            type(e).__name__ in ("ConnectionDoesNotExistError", "CannotConnectNowError", "DiskFullError",
                                 "InsufficientResourcesError", "OutOfMemoryError", "TooManyConnectionsError",
                                 "AdminShutdownError", "InterfaceError")
            or "Connection" in type(e).__name__):
            return f"PostgreSQL: {e}"
        if isinstance(e, (ConnectionRefusedError, ConnectionResetError)) or (
                isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO)):
            return f"store: {e}"
    return None


def _chain(exc: BaseException):
    seen = 0
    while exc is not None and seen < 8:
        yield exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1


def domain_status(exc: Exception) -> tuple[grpc.StatusCode, str, list[dict]] | None:
    """The one mapping of the shared domain errors (callgauge_platform.domain_errors) to a gRPC
    status, used by every service: NotFound -> NOT_FOUND, Invalid -> INVALID_ARGUMENT with its
    field errors, Conflict and a write conflict the command loop gave up on -> ABORTED (the gateway
    answers 409 for it). A service's own errors map before it (see grpc_errors); None: not a domain
    error."""
    from callgauge_eventstore.port import WrongExpectedVersion
    from callgauge_platform.domain_errors import Conflict, Invalid, NotFound

    if isinstance(exc, NotFound):
        return grpc.StatusCode.NOT_FOUND, str(exc), []
    if isinstance(exc, Invalid):
        return grpc.StatusCode.INVALID_ARGUMENT, "invalid request", [
            {"loc": e.loc, "msg": e.msg, "type": e.type} for e in exc.errors
        ]
    if isinstance(exc, Conflict):
        return grpc.StatusCode.ABORTED, str(exc), []
    if isinstance(exc, WrongExpectedVersion):  # internal stream names stay in the log
        return grpc.StatusCode.ABORTED, "changed concurrently; retry", []
    return None


def grpc_errors(mapping: Callable[[Exception], tuple[grpc.StatusCode, str, list[dict]] | None] | None = None):
    """Decorate a servicer method: known errors abort with their code (`mapping` for a service's
    own errors, then the shared `domain_status`); anything else is logged and answered INTERNAL
    without details (no stack trace ever crosses the wire)."""

    def deco(fn: Callable[..., Awaitable[Any]]):
        @functools.wraps(fn)
        async def wrapper(self, request, context: grpc.aio.ServicerContext):
            try:
                return await fn(self, request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                cause = store_unavailable(exc)
                if cause is not None:  # the real cause in the log, a clear 503 for the client
                    log.error("store_unavailable", method=fn.__name__, cause=cause)
                    await context.abort(grpc.StatusCode.UNAVAILABLE, _unavailable_message(cause),
                                        trailing_metadata=((ERROR_CODE_KEY, STORE_UNAVAILABLE),))
                mapped = (mapping(exc) if mapping is not None else None) or domain_status(exc)
                if mapped is None:
                    log.exception("rpc_failed", method=fn.__name__)
                    await context.abort(grpc.StatusCode.INTERNAL, "internal error")
                code, message, fields = mapped
                md = ((FIELD_ERRORS_KEY, json.dumps(fields)),) if fields else ()
                await context.abort(code, message, trailing_metadata=md)

        return wrapper

    return deco


def _unavailable_message(cause: str) -> str:
    low = cause.lower()
    if "full" in low or "no space" in low:
        return "the service's event store cannot write: its disk is full"
    return "the service's event store is unavailable"


def field_errors_from(exc: grpc.aio.AioRpcError) -> list[dict]:
    for key, value in exc.trailing_metadata() or ():
        if key == FIELD_ERRORS_KEY:
            try:
                return json.loads(value)
            except (ValueError, TypeError):
                return []
    return []
