"""One error mapping (domain errors -> gRPC status): callgauge_platform.errors.DomainErrorInterceptor,
a grpc.aio server interceptor every service's GrpcServer carries. Each domain error a handler raises
reaches a real gRPC client with its one status code (and the metadata the gateway reads); an unknown
exception is INTERNAL with a generic message and its trace in the log."""

from __future__ import annotations

import json

import grpc
import pytest
from structlog.testing import capture_logs

from callgauge_accounts.domain import errors as accounts_errors
from callgauge_billing.domain import errors as billing_errors
from callgauge_eventstore import StoreUnavailable, WrongExpectedVersion
from callgauge_platform import domain_errors as de
from callgauge_platform.errors import (ERROR_CODE_KEY, ERROR_DETAILS_KEY, FIELD_ERRORS_KEY, INTERNAL_MESSAGE,
                                       DomainErrorInterceptor, field_errors_from)
from callgauge_runs.adapters import billing as runs_billing
from callgauge_runs.domain import errors as runs_errors

C = grpc.StatusCode
_ident = (lambda b: b, lambda b: b)  # raw bytes both ways: no proto needed for a generic handler


class Raising(grpc.GenericRpcHandler):
    """/t.T/Unary raises whatever the test put in `self.exc`; /t.T/Aborts answers itself;
    /t.T/Stream yields one message, then raises."""

    def __init__(self) -> None:
        self.exc: BaseException | None = None

    def service(self, handler_call_details):
        async def unary(request, context):
            raise self.exc

        async def aborts(request, context):
            await context.abort(C.OUT_OF_RANGE, "the handler's own answer")

        async def stream(request, context):
            yield b"first"
            raise self.exc

        method = handler_call_details.method
        if method == "/t.T/Unary":
            return grpc.unary_unary_rpc_method_handler(unary, *_ident)
        if method == "/t.T/Aborts":
            return grpc.unary_unary_rpc_method_handler(aborts, *_ident)
        if method == "/t.T/Stream":
            return grpc.unary_stream_rpc_method_handler(stream, *_ident)
        return None


@pytest.fixture
async def rpc():
    handler = Raising()
    server = grpc.aio.server(interceptors=[DomainErrorInterceptor()])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")

    async def call(exc: BaseException, method: str = "/t.T/Unary") -> grpc.aio.AioRpcError:
        handler.exc = exc
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await channel.unary_unary(method, *_ident)(b"x", timeout=10)
        return info.value

    call.channel = channel
    call.handler = handler
    yield call
    await channel.close()
    await server.stop(None)


def _md(err: grpc.aio.AioRpcError) -> dict:
    return dict(err.trailing_metadata() or ())


# every kind of domain error, as each service raises it -> (code, error-code metadata)
CASES = [
    (de.NotFound("run", "0193"), C.NOT_FOUND, None),
    (runs_errors.NotFound("test", "t1"), C.NOT_FOUND, None),
    (de.Conflict("slug taken"), C.ABORTED, None),
    (accounts_errors.Conflict("email taken"), C.ABORTED, None),  # accounts' was ALREADY_EXISTS once
    (billing_errors.Conflict("top-up id reused"), C.ABORTED, None),
    (runs_errors.Conflict("run already ended"), C.ABORTED, None),
    (WrongExpectedVersion("wallet-acc", 1, 2), C.ABORTED, None),
    (de.Invalid.one(["name"], "required"), C.INVALID_ARGUMENT, None),
    (accounts_errors.Unauthenticated(), C.UNAUTHENTICATED, None),
    (de.Unauthenticated("spent token"), C.UNAUTHENTICATED, None),
    (accounts_errors.Forbidden("not yours"), C.PERMISSION_DENIED, None),
    (runs_errors.QuotaExceeded("concurrent runs quota reached"), C.RESOURCE_EXHAUSTED, "QUOTA_EXCEEDED"),
    (billing_errors.InsufficientBalance(500, 20, "EUR"), C.FAILED_PRECONDITION, "INSUFFICIENT_BALANCE"),
    (billing_errors.PaymentDeclined("card declined"), C.FAILED_PRECONDITION, "PAYMENT_DECLINED"),
    (runs_billing.InsufficientBalance("no money", "INSUFFICIENT_BALANCE", {"needed": 5}), C.FAILED_PRECONDITION,
     "INSUFFICIENT_BALANCE"),
    (runs_billing.BillingUnavailable("billing is unavailable"), C.UNAVAILABLE, None),
    (StoreUnavailable("database or disk is full"), C.UNAVAILABLE, "STORE_UNAVAILABLE"),
    (OSError(28, "No space left on device"), C.UNAVAILABLE, "STORE_UNAVAILABLE"),
]


@pytest.mark.parametrize("exc, code, error_code", CASES, ids=[f"{type(c[0]).__module__}.{type(c[0]).__name__}"
                                                               for c in CASES])
async def test_every_domain_error_reaches_the_client_as_its_status(rpc, exc, code, error_code) -> None:
    err = await rpc(exc)
    assert err.code() == code
    assert _md(err).get(ERROR_CODE_KEY) == error_code
    if code not in (C.INVALID_ARGUMENT, C.UNAVAILABLE) and not isinstance(exc, WrongExpectedVersion):
        assert err.details() == str(exc)  # the domain's own words


async def test_invalid_carries_its_field_errors(rpc) -> None:
    err = await rpc(de.Invalid([de.FieldError(["steps", 0, "actions", 1], "unknown codec", "enum"),
                                de.FieldError(["name"], "required")]))
    assert err.code() == C.INVALID_ARGUMENT
    assert field_errors_from(err) == [{"loc": ["steps", 0, "actions", 1], "msg": "unknown codec", "type": "enum"},
                                      {"loc": ["name"], "msg": "required", "type": "value_error"}]
    assert FIELD_ERRORS_KEY in _md(err)


async def test_a_refusal_carries_its_facts(rpc) -> None:
    err = await rpc(billing_errors.InsufficientBalance(needed=500, available=-3, currency="EUR"))
    assert json.loads(_md(err)[ERROR_DETAILS_KEY]) == {"needed": 500, "available": 0, "currency": "EUR"}


async def test_a_write_conflict_does_not_show_the_stream_name(rpc) -> None:
    err = await rpc(WrongExpectedVersion("account-0190abcd", 1, 2))
    assert err.code() == C.ABORTED and "account-0190abcd" not in err.details()


async def test_a_full_disk_is_named_without_the_internal_cause(rpc) -> None:
    err = await rpc(StoreUnavailable("/var/lib/callgauge/runs.db: database or disk is full"))
    assert "disk is full" in err.details() and "/var/lib" not in err.details()


@pytest.mark.parametrize("exc", [ValueError("secret detail /etc/passwd"), KeyError("stream-account-1"),
                                 RuntimeError("boom")])
async def test_an_unknown_exception_is_internal_generic_and_logged_with_its_trace(rpc, exc) -> None:
    with capture_logs() as logs:
        err = await rpc(exc)
    assert err.code() == C.INTERNAL and err.details() == INTERNAL_MESSAGE
    assert not _md(err).get(ERROR_CODE_KEY)
    failed = [e for e in logs if e["event"] == "rpc_failed"]
    assert len(failed) == 1 and failed[0]["method"] == "/t.T/Unary"
    assert failed[0]["log_level"] == "error" and failed[0].get("exc_info") is True  # the trace goes to the log


async def test_a_handler_that_aborts_keeps_its_own_status(rpc) -> None:
    err = await rpc(None, "/t.T/Aborts")
    assert (err.code(), err.details()) == (C.OUT_OF_RANGE, "the handler's own answer")


async def test_a_streaming_handler_is_mapped_too(rpc) -> None:
    rpc.handler.exc = de.NotFound("run", "r1")
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for msg in rpc.channel.unary_stream("/t.T/Stream", *_ident)(b"x", timeout=10):
            received.append(msg)
    assert received == [b"first"] and info.value.code() == C.NOT_FOUND


class _Pass(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, handler_call_details):
        return await continuation(handler_call_details)


async def test_every_server_carries_the_interceptor() -> None:
    """accounts, runs and billing build their server with GrpcServer: it installs the mapping, and
    the request metrics count the mapped code (an answered error was counted INTERNAL before)."""
    from prometheus_client import REGISTRY

    from callgauge_platform.grpcutil import GrpcServer

    def counted(code: str) -> float:
        return REGISTRY.get_sample_value("callgauge_grpc_requests_total", {"method": "/t.T/Unary", "code": code}) or 0

    handler = Raising()
    handler.exc = runs_errors.QuotaExceeded("concurrent runs quota reached")
    server = GrpcServer("127.0.0.1:0", [lambda s: s.add_generic_rpc_handlers((handler,))], [], auth=_Pass())
    before, internal = counted("RESOURCE_EXHAUSTED"), counted("INTERNAL")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await channel.unary_unary("/t.T/Unary", *_ident)(b"x", timeout=10)
    finally:
        await server.stop(0)
    assert info.value.code() == C.RESOURCE_EXHAUSTED and _md(info.value)[ERROR_CODE_KEY] == "QUOTA_EXCEEDED"
    assert (counted("RESOURCE_EXHAUSTED"), counted("INTERNAL")) == (before + 1, internal)
