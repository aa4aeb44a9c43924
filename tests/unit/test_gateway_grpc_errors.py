"""The gateway's one mapping of gRPC errors to HTTP (callgauge_gateway.errors.api_error_from_grpc):
a size limit is not a rate limit, gRPC's own text never reaches a client, a service's own message
does. Also the overridable parameters `GET /api/v1/tests` lists."""

from __future__ import annotations

import grpc
import pytest

from callgauge_gateway.errors import api_error_from_grpc
from callgauge_gateway.routes.index import overridable_parameters
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


def test_resource_exhausted_is_429_only_when_the_service_says_rate_limited() -> None:
    err = api_error_from_grpc(rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down",
                                        (("callgauge-error-code", "RATE_LIMITED"),)))
    assert err.status == 429 and err.headers == {"Retry-After": "1"}
    other = api_error_from_grpc(rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "Too many pending RPCs"))
    assert other.status == 503 and "pending" not in other.message


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
