"""How domain errors cross gRPC: a status code plus, for validation errors, the list of field
errors as JSON in the trailing metadata key `callgauge-field-errors`."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from callgauge_platform.logs import get_logger

log = get_logger(__name__)
FIELD_ERRORS_KEY = "callgauge-field-errors"


def grpc_errors(mapping: Callable[[Exception], tuple[grpc.StatusCode, str, list[dict]] | None]):
    """Decorate a servicer method: known errors abort with their code; anything else is logged
    and answered INTERNAL without details (no stack trace ever crosses the wire)."""

    def deco(fn: Callable[..., Awaitable[Any]]):
        @functools.wraps(fn)
        async def wrapper(self, request, context: grpc.aio.ServicerContext):
            try:
                return await fn(self, request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                mapped = mapping(exc)
                if mapped is None:
                    log.exception("rpc_failed", method=fn.__name__)
                    await context.abort(grpc.StatusCode.INTERNAL, "internal error")
                code, message, fields = mapped
                md = ((FIELD_ERRORS_KEY, json.dumps(fields)),) if fields else ()
                await context.abort(code, message, trailing_metadata=md)

        return wrapper

    return deco


def field_errors_from(exc: grpc.aio.AioRpcError) -> list[dict]:
    for key, value in exc.trailing_metadata() or ():
        if key == FIELD_ERRORS_KEY:
            try:
                return json.loads(value)
            except (ValueError, TypeError):
                return []
    return []
