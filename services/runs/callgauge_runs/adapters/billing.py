"""The billing port of the runs service: before a run starts, its maximum cost is reserved on the
account's wallet; a run that cannot be paid for is not started. The gRPC adapter talks to the
billing service; `UnmeteredBilling` (tests, tools) reserves nothing."""

from __future__ import annotations

import json
from typing import Protocol

import grpc

from callgauge_platform.grpcutil import service_channel
from callgauge_proto.callgauge.billing.v1 import billing_service_pb2 as bpb
from callgauge_proto.callgauge.billing.v1 import billing_service_pb2_grpc as bpb_grpc
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2

from callgauge_platform.domain_errors import Refused, Unavailable
from callgauge_platform.errors import ERROR_CODE_KEY, ERROR_DETAILS_KEY


class InsufficientBalance(Refused):
    """The wallet cannot pay for the run: billing's refusal (its code and details), passed on as it
    came (FAILED_PRECONDITION, REST 402)."""


class BillingUnavailable(Unavailable):
    """Billing did not answer: the run is not started (crosses gRPC as UNAVAILABLE, REST 503)."""


def _refusal(exc: grpc.aio.AioRpcError) -> InsufficientBalance | None:
    md = dict(exc.trailing_metadata() or ())
    if exc.code() != grpc.StatusCode.FAILED_PRECONDITION or not md.get(ERROR_CODE_KEY):
        return None
    try:
        details = json.loads(md.get(ERROR_DETAILS_KEY) or "{}")
    except ValueError:
        details = {}
    return InsufficientBalance(exc.details() or "insufficient balance", str(md[ERROR_CODE_KEY]),
                               details if isinstance(details, dict) else {})


class BillingPort(Protocol):
    async def reserve(self, account_id: str, mode: str, project_id: str, test_id: str, run_id: str,
                      spec: spec_pb2.TestSpec) -> None:
        """Hold the run's maximum cost; InsufficientBalance when the wallet cannot pay for it."""

    async def release(self, account_id: str, mode: str, run_id: str) -> None:
        """Give the hold back (the run was not started after all)."""

    async def close(self) -> None: ...


class UnmeteredBilling:
    async def reserve(self, account_id, mode, project_id, test_id, run_id, spec) -> None:
        return None

    async def release(self, account_id, mode, run_id) -> None:
        return None

    async def close(self) -> None:
        return None


class GrpcBilling:
    def __init__(self, settings, timeout: float = 10.0) -> None:
        self._settings, self._timeout = settings, timeout
        self._channel: grpc.aio.Channel | None = None
        self._stub: bpb_grpc.BillingServiceStub | None = None

    def _billing(self) -> bpb_grpc.BillingServiceStub:
        if self._stub is None:  # opened on first use, inside the running loop
            self._channel = service_channel(self._settings, "billing", "runs")
            self._stub = bpb_grpc.BillingServiceStub(self._channel)
        return self._stub

    async def reserve(self, account_id, mode, project_id, test_id, run_id, spec) -> None:
        try:
            await self._billing().Reserve(bpb.ReserveRequest(
                account_id=account_id, mode=mode, run_id=run_id, project_id=project_id, test_id=test_id,
                spec=spec), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            refusal = _refusal(exc)
            if refusal is not None:
                raise refusal from None
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise BillingUnavailable("the billing service is unavailable; retry shortly") from None
            raise

    async def release(self, account_id, mode, run_id) -> None:
        await self._billing().Release(bpb.ReleaseRequest(account_id=account_id, mode=mode, run_id=run_id),
                                      timeout=self._timeout)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
