"""The billing port of the runs service: before a run starts, its maximum cost is reserved on the
account's wallet; a run that cannot be paid for is not started. The gRPC adapter talks to the
billing service; `UnmeteredBilling` (tests, tools) reserves nothing."""

from __future__ import annotations

from typing import Protocol

import grpc

from callgauge_platform.grpcutil import service_channel
from callgauge_proto.callgauge.billing.v1 import billing_service_pb2 as bpb
from callgauge_proto.callgauge.billing.v1 import billing_service_pb2_grpc as bpb_grpc
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as spec_pb2

from callgauge_runs.domain.errors import DomainError


class InsufficientBalance(DomainError):
    """The wallet cannot pay for the run (crosses gRPC as FAILED_PRECONDITION + metadata)."""

    def __init__(self, message: str, metadata: tuple[tuple[str, str], ...]) -> None:
        super().__init__(message)
        self.metadata = metadata


class BillingUnavailable(DomainError):
    """Billing did not answer: the run is not started (crosses gRPC as UNAVAILABLE, REST 503)."""


class BillingPort(Protocol):
    async def reserve(self, account_id: str, mode: str, run_id: str, project_id: str, test_id: str,
                      spec: spec_pb2.TestSpec) -> None:
        """Hold the run's maximum cost; InsufficientBalance when the wallet cannot pay for it."""

    async def release(self, account_id: str, mode: str, run_id: str) -> None:
        """Give the hold back (the run was not started after all)."""

    async def close(self) -> None: ...


class UnmeteredBilling:
    async def reserve(self, account_id, mode, run_id, project_id, test_id, spec) -> None:
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

    async def reserve(self, account_id, mode, run_id, project_id, test_id, spec) -> None:
        try:
            await self._billing().Reserve(bpb.ReserveRequest(
                account_id=account_id, mode=mode, run_id=run_id, project_id=project_id, test_id=test_id,
                spec=spec), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            md = tuple((k, v) for k, v in (exc.trailing_metadata() or ()) if k.startswith("callgauge-error"))
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION and md:
                raise InsufficientBalance(exc.details() or "insufficient balance", md) from None
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise BillingUnavailable("the billing service is unavailable; retry shortly") from None
            raise

    async def release(self, account_id, mode, run_id) -> None:
        await self._billing().Release(bpb.ReleaseRequest(account_id=account_id, mode=mode, run_id=run_id),
                                      timeout=self._timeout)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
