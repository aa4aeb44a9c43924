"""How domain errors cross gRPC: one mapping (`status_of`) applied by one server interceptor
(`DomainErrorInterceptor`) in every service. A status code, plus in the trailing metadata the
list of field errors of a validation error as JSON (`callgauge-field-errors`) and, for the answers
a client acts on, the reason (`callgauge-error-code`) and its facts as JSON
(`callgauge-error-details`)."""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass

import grpc

from callgauge_eventstore.port import StoreUnavailable, WrongExpectedVersion
from callgauge_platform.domain_errors import (Conflict, Forbidden, Invalid, NotFound, QuotaExceeded, Refused,
                                              Unauthenticated, Unavailable)
from callgauge_platform.logs import get_logger

log = get_logger(__name__)
FIELD_ERRORS_KEY = "callgauge-field-errors"
ERROR_CODE_KEY = "callgauge-error-code"
ERROR_DETAILS_KEY = "callgauge-error-details"
STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
QUOTA_EXCEEDED = "QUOTA_EXCEEDED"


def store_unavailable(exc: BaseException) -> str | None:
    """Why the service's store cannot take a request now (disk full, I/O error, database down), or
    None when `exc` is something else. Such a failure is temporary for the caller: UNAVAILABLE."""
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


@dataclass(frozen=True)
class Status:
    """What a call that failed answers: the gRPC code, the message the client may see, and the
    trailing metadata (`callgauge-error-code` and friends) that tells the gateway which answer it is."""

    code: grpc.StatusCode
    message: str
    metadata: tuple[tuple[str, str], ...] = ()


INTERNAL_MESSAGE = "internal error"


def status_of(exc: BaseException) -> Status | None:
    """The one mapping of domain errors to gRPC status, used by every service (through
    DomainErrorInterceptor); None: not an error we know (INTERNAL, logged with its trace).

    | error (callgauge_platform.domain_errors)  | code                | metadata                          |
    |-------------------------------------------|---------------------|-----------------------------------|
    | the store cannot take it (disk, database) | UNAVAILABLE         | error-code STORE_UNAVAILABLE      |
    | NotFound                                  | NOT_FOUND           |                                   |
    | Invalid                                   | INVALID_ARGUMENT    | field-errors (JSON list)          |
    | Conflict                                  | ABORTED             |                                   |
    | WrongExpectedVersion (the loop gave up)   | ABORTED             | (the stream name stays in the log)|
    | Unauthenticated                           | UNAUTHENTICATED     |                                   |
    | Forbidden                                 | PERMISSION_DENIED   |                                   |
    | QuotaExceeded                             | RESOURCE_EXHAUSTED  | error-code QUOTA_EXCEEDED         |
    | Refused (InsufficientBalance, …)          | FAILED_PRECONDITION | error-code its code, error-details|
    | Unavailable (a dependency did not answer) | UNAVAILABLE         |                                   |

    RESOURCE_EXHAUSTED from a service always carries an error code: without one it is gRPC's own
    (a message larger than the limit), which the gateway answers differently."""
    cause = store_unavailable(exc)
    if cause is not None:
        return Status(grpc.StatusCode.UNAVAILABLE, _unavailable_message(cause), ((ERROR_CODE_KEY, STORE_UNAVAILABLE),))
    if isinstance(exc, NotFound):
        return Status(grpc.StatusCode.NOT_FOUND, str(exc))
    if isinstance(exc, Invalid):
        fields = [{"loc": e.loc, "msg": e.msg, "type": e.type} for e in exc.errors]
        return Status(grpc.StatusCode.INVALID_ARGUMENT, "invalid request", ((FIELD_ERRORS_KEY, json.dumps(fields)),))
    if isinstance(exc, Conflict):
        return Status(grpc.StatusCode.ABORTED, str(exc))
    if isinstance(exc, WrongExpectedVersion):
        return Status(grpc.StatusCode.ABORTED, "changed concurrently; retry")
    if isinstance(exc, Unauthenticated):
        return Status(grpc.StatusCode.UNAUTHENTICATED, str(exc))
    if isinstance(exc, Forbidden):
        return Status(grpc.StatusCode.PERMISSION_DENIED, str(exc))
    if isinstance(exc, QuotaExceeded):
        return Status(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), ((ERROR_CODE_KEY, QUOTA_EXCEEDED),))
    if isinstance(exc, Refused):
        md = ((ERROR_CODE_KEY, exc.code),)
        if exc.details:
            md += ((ERROR_DETAILS_KEY, json.dumps(exc.details)),)
        return Status(grpc.StatusCode.FAILED_PRECONDITION, str(exc), md)
    if isinstance(exc, Unavailable):
        return Status(grpc.StatusCode.UNAVAILABLE, str(exc))
    return None


class DomainErrorInterceptor(grpc.aio.ServerInterceptor):
    """Every server's one error mapping (GrpcServer installs it): a handler that raises a domain
    error is answered with its status (status_of); anything else is logged with its trace and
    answered INTERNAL "internal error" (no exception text or stack trace crosses the wire). A
    handler that aborted itself keeps its status."""

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _unary(handler.unary_unary, method), request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _unary(handler.stream_unary, method), request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _streaming(handler.unary_stream, method), request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return grpc.stream_stream_rpc_method_handler(
            _streaming(handler.stream_stream, method), request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)


async def _abort_with(context: grpc.aio.ServicerContext, exc: Exception, method: str) -> None:
    status = status_of(exc)
    if status is None:
        log.exception("rpc_failed", method=method)
        return await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)
    if status.code == grpc.StatusCode.UNAVAILABLE:  # the real cause in the log, a clear 503 for the client
        log.error("rpc_unavailable", method=method, cause=str(exc))
    await context.abort(status.code, status.message, trailing_metadata=status.metadata)


def _unary(inner, method: str):
    async def handle(request, context: grpc.aio.ServicerContext):
        try:
            return await inner(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort_with(context, exc, method)

    return handle


def _streaming(inner, method: str):
    async def handle(request, context: grpc.aio.ServicerContext):
        try:
            result = inner(request, context)
            if hasattr(result, "__aiter__"):
                async for item in result:
                    yield item
            else:  # writes through context.write
                await result
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort_with(context, exc, method)

    return handle


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
