"""The gateway's one mapping of gRPC errors to HTTP (callgauge_gateway.entrypoints.errors.GRPC_TO_HTTP, applied
by api_error_from_grpc): every status a service answers (callgauge_platform.errors.status_of) has
its HTTP answer, a size limit is not a rate limit, gRPC's own text never reaches a client, a
service's own message does. Also the overridable parameters `GET /api/v1/tests` lists."""

from __future__ import annotations

import grpc
import pytest

from callgauge_billing.domain.errors import InsufficientBalance, PaymentDeclined
from callgauge_eventstore import StoreUnavailable, WrongExpectedVersion
from callgauge_gateway.entrypoints.envelope import ERROR_CODES
from callgauge_gateway.entrypoints.errors import GRPC_TO_HTTP, api_error_from_grpc
from callgauge_platform import domain_errors as de
from callgauge_platform.errors import status_of
from callgauge_gateway.entrypoints.routes.index import overridable_parameters
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2

LEAKS = ("Stream removed", "larger than max", "Socket closed", "4194304", "RST_STREAM", "ipv4:")


def rpc_error(code: grpc.StatusCode, details: str, trailing: tuple = ()) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details=details)


def test_a_response_over_the_receive_limit_is_500_response_too_large_not_429() -> None:
    err = api_error_from_grpc(rpc_error(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "Stream removed (CLIENT: Received message larger than max (6272206 vs. 4194304))"))
    assert err.status == 500 and err.code == "RESPONSE_TOO_LARGE"
    assert "/calls" in err.message  # what a person does about it
    assert not any(s in err.message for s in LEAKS)


def test_a_request_over_the_send_limit_is_413() -> None:
    err = api_error_from_grpc(rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                        "Sent message larger than max (5000000 vs. 4194304)"))
    assert err.status == 413 and not any(s in err.message for s in LEAKS)


def test_resource_exhausted_is_429_only_for_a_services_quota() -> None:
    err = api_error_from_grpc(rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "concurrent runs quota reached",
                                        (("callgauge-error-code", "QUOTA_EXCEEDED"),)))
    assert (err.status, err.code, err.message) == (429, "QUOTA_EXCEEDED", "concurrent runs quota reached")
    assert err.headers == {"Retry-After": "10"}
    for text in ("Too many pending RPCs", "slow down", "Received message larger than max (6 vs. 4)"):
        other = api_error_from_grpc(rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, text))
        assert other.status != 429 and (other.code or ERROR_CODES[other.status]) != "RATE_LIMITED"
        assert text not in other.message


# A domain error, through the services' mapping and then the gateway's: the HTTP answer a client gets.
END_TO_END = [
    (de.NotFound("run", "r1"), 404, "NOT_FOUND", "run 'r1' not found"),
    (de.Invalid.one(["name"], "required"), 422, "VALIDATION_ERROR", "The request is not valid: see details"),
    (de.Conflict("slug taken"), 409, "CONFLICT", "slug taken"),
    (WrongExpectedVersion("wallet-a", 1, 2), 409, "CONFLICT", "changed concurrently; retry"),
    (de.Unauthenticated("Invalid credentials"), 401, "UNAUTHORIZED", "Invalid credentials"),
    (de.Forbidden("not yours"), 403, "FORBIDDEN", "not yours"),
    (de.QuotaExceeded("concurrent runs quota reached"), 429, "QUOTA_EXCEEDED", "concurrent runs quota reached"),
    (InsufficientBalance(500, 20, "EUR"), 402, "INSUFFICIENT_BALANCE", str(InsufficientBalance(500, 20, "EUR"))),
    (PaymentDeclined("card declined"), 402, "PAYMENT_DECLINED",
     "The top-up was not paid, nothing was credited: card declined"),
    (de.Refused("the run already ended"), 409, "CONFLICT", "the run already ended"),
    (de.Unavailable("billing did not answer"), 503, "UNAVAILABLE", "A backend service is unavailable; retry shortly"),
    (StoreUnavailable("database or disk is full"), 503, "STORE_UNAVAILABLE",
     "Temporarily unavailable: the service's event store cannot write: its disk is full; retry shortly"),
]


@pytest.mark.parametrize("exc, status, code, message", END_TO_END, ids=[type(c[0]).__name__ for c in END_TO_END])
def test_the_mapping_table_from_domain_error_to_http(exc, status, code, message) -> None:
    s = status_of(exc)
    err = api_error_from_grpc(rpc_error(s.code, s.message, s.metadata))
    assert (err.status, err.code or ERROR_CODES[err.status], err.message) == (status, code, message)


def test_insufficient_balance_details_carry_the_amounts() -> None:
    s = status_of(InsufficientBalance(needed=500, available=-3, currency="EUR"))
    err = api_error_from_grpc(rpc_error(s.code, s.message, s.metadata))
    assert err.details == [{"type": "insufficient_balance", "msg": "top up the wallet (POST /api/v1/billing/top-ups)",
                            "needed": 500, "available": 0, "currency": "EUR"}]


def test_every_row_of_the_table_is_what_api_error_from_grpc_answers() -> None:
    """Each (code, reason) row answers with its status, and a fixed message never carries gRPC's text."""
    texts = {"RECEIVED_TOO_LARGE": "Received message larger than max (9 vs. 4)",
             "SENT_TOO_LARGE": "Sent message larger than max (9 vs. 4)"}
    for (code, reason), answer in GRPC_TO_HTTP.items():
        md = (("callgauge-error-code", reason),) if reason and reason not in texts else ()
        err = api_error_from_grpc(rpc_error(code, texts.get(reason, "the service's words"), md))
        assert err.status == answer.status, (code, reason)
        assert (err.code or ERROR_CODES[err.status]) == (answer.code or ERROR_CODES[answer.status])
        assert not any(s in err.message for s in LEAKS)
    # every status the services answer on purpose has a row
    assert {s.code for e, *_ in END_TO_END if (s := status_of(e))} <= {c for c, _ in GRPC_TO_HTTP}


@pytest.mark.parametrize("code, status", [
    (grpc.StatusCode.UNAVAILABLE, 503), (grpc.StatusCode.DEADLINE_EXCEEDED, 504),
    (grpc.StatusCode.INTERNAL, 500), (grpc.StatusCode.UNKNOWN, 500), (grpc.StatusCode.CANCELLED, 500),
    (grpc.StatusCode.NOT_FOUND, 404), (grpc.StatusCode.ABORTED, 409), (grpc.StatusCode.PERMISSION_DENIED, 403),
])
def test_grpc_runtime_text_never_reaches_the_client(code, status) -> None:
    for text in ("Stream removed", "Socket closed", "failed to connect to all addresses; last error: "
                 "UNKNOWN: ipv4:127.0.0.1:50051: Failed to connect", "Received RST_STREAM with error code 2"):
        err = api_error_from_grpc(rpc_error(code, text))
        assert err.status == status
        assert not any(s in err.message for s in LEAKS), err.message
        assert text not in err.message


def test_a_services_own_message_is_kept() -> None:
    err = api_error_from_grpc(rpc_error(grpc.StatusCode.NOT_FOUND, "run 0193 not found"))
    assert (err.status, err.message) == (404, "run 0193 not found")
    err = api_error_from_grpc(rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "the run already ended"))
    assert (err.status, err.message) == (409, "the run already ended")


def test_invalid_argument_is_422_with_the_field_errors() -> None:
    err = api_error_from_grpc(rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "bad",
                                        (("callgauge-field-errors", '[{"loc": ["x"], "msg": "m", "type": "t"}]'),)))
    assert err.status == 422 and err.details == [{"loc": ["x"], "msg": "m", "type": "t"}]


def test_overridable_parameters_name_each_scalar_attribute_with_its_type_and_value() -> None:
    spec = spec_pb2.TestSpec(steps=[
        spec_pb2.Step(actions=[spec_pb2.Action(register=spec_pb2.RegisterAction(target_pool="r1", regexpire=60))]),
        spec_pb2.Step(actions=[spec_pb2.Action(call=spec_pb2.CallAction(dial_destination="sip:a@b", duration_ms=5))]),
    ])
    params = {p["name"]: p for p in overridable_parameters(spec)}
    assert params["step.0.0.regexpire"] == {"name": "step.0.0.regexpire", "action": "register", "type": "integer",
                                            "value": 60}
    assert params["step.0.0.keep_registered"]["type"] == "boolean"
    assert params["step.1.0.dial_destination"]["value"] == "sip:a@b"
    assert params["step.1.0.duration_ms"]["value"] == 5
    assert not any(k.startswith("step.1.0.") and k.endswith("regexpire") for k in params)
    assert set(params) == ({f"step.0.0.{f.name}" for f in spec_pb2.RegisterAction.DESCRIPTOR.fields}
                           | {f"step.1.0.{f.name}" for f in spec_pb2.CallAction.DESCRIPTOR.fields if f.message_type is None})


def test_the_gateway_reads_grpc_status_codes_in_one_place() -> None:
    """Routes, auth, idempotency and the report pages ask the mapping (api_error_from_grpc /
    answer_for) what a gRPC error means; only entrypoints/errors.py names status codes."""
    from pathlib import Path

    import callgauge_gateway

    pkg = Path(callgauge_gateway.__file__).parent
    readers = sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*.py") if "StatusCode" in p.read_text())
    assert readers == ["entrypoints/errors.py"]
