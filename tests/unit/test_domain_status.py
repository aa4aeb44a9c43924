"""One error mapping (issue #19 item 2): the shared domain errors map to gRPC status in one place,
callgauge_platform.errors.domain_status, for every service; a service maps only its own errors."""

from __future__ import annotations

import grpc
import pytest

from callgauge_accounts.domain import errors as accounts_errors
from callgauge_accounts.entrypoints import grpc_api as accounts_api
from callgauge_billing.domain import errors as billing_errors
from callgauge_billing.entrypoints import grpc_api as billing_api
from callgauge_eventstore import WrongExpectedVersion
from callgauge_platform.domain_errors import FieldError
from callgauge_platform.errors import domain_status
from callgauge_runs.domain import errors as runs_errors
from callgauge_runs.entrypoints import grpc_api as runs_api


def _status(service_map, exc):
    return ((service_map(exc) if service_map is not None else None) or domain_status(exc))[0]


@pytest.mark.parametrize("service_map, errors", [
    (accounts_api._map, accounts_errors), (billing_api._map, billing_errors), (runs_api._map, runs_errors)])
def test_every_service_maps_the_shared_errors_alike(service_map, errors):
    assert _status(service_map, errors.Conflict("taken")) == grpc.StatusCode.ABORTED  # accounts: was ALREADY_EXISTS
    assert _status(service_map, WrongExpectedVersion("wallet-a", 1, 2)) == grpc.StatusCode.ABORTED
    invalid = errors.Invalid([FieldError(["name"], "required")])
    code, message, fields = (service_map(invalid) or domain_status(invalid))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and fields == [{"loc": ["name"], "msg": "required",
                                                                    "type": "value_error"}]


def test_a_write_conflict_does_not_show_the_stream_name():
    code, message, _ = domain_status(WrongExpectedVersion("account-0190", 1, 2))
    assert code == grpc.StatusCode.ABORTED and "account-0190" not in message


def test_accounts_maps_only_its_own_errors():
    assert accounts_api._map(accounts_errors.Unauthenticated("no"))[0] == grpc.StatusCode.UNAUTHENTICATED
    assert accounts_api._map(accounts_errors.Forbidden("no"))[0] == grpc.StatusCode.PERMISSION_DENIED
    assert accounts_api._map(accounts_errors.Conflict("x")) is None  # the shared mapping's
    assert domain_status(ValueError("x")) is None  # not a domain error: INTERNAL, logged
