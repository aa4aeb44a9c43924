"""The gateway's gRPC clients of the services it fronts: one channel each to runs (RunsService,
MonitorService and its health), billing and accounts (and its health), every call signed with the
gateway's service token (callgauge_platform.grpcutil.service_channel)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2_grpc

from callgauge_platform.grpcutil import service_channel
from callgauge_gateway.settings import GatewaySettings
from callgauge_proto.callgauge.accounts.v1 import accounts_service_pb2_grpc as accounts_grpc
from callgauge_proto.callgauge.billing.v1 import billing_service_pb2_grpc as billing_grpc
from callgauge_proto.callgauge.runs.v1 import monitor_service_pb2_grpc as monitor_grpc
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2_grpc as runs_grpc


@dataclass
class ServiceClients:
    runs: runs_grpc.RunsServiceStub
    monitor: monitor_grpc.MonitorServiceStub
    billing: billing_grpc.BillingServiceStub
    accounts: accounts_grpc.AccountsServiceStub
    runs_health: health_pb2_grpc.HealthStub
    accounts_health: health_pb2_grpc.HealthStub
    channels: tuple[grpc.aio.Channel, ...]

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


def open_service_clients(settings: GatewaySettings) -> ServiceClients:
    """Opened inside the running event loop (gRPC's asyncio channels belong to it)."""
    runs = service_channel(settings, "runs", "gateway")
    billing = service_channel(settings, "billing", "gateway")
    accounts = service_channel(settings, "accounts", "gateway")
    return ServiceClients(
        runs=runs_grpc.RunsServiceStub(runs), monitor=monitor_grpc.MonitorServiceStub(runs),
        billing=billing_grpc.BillingServiceStub(billing), accounts=accounts_grpc.AccountsServiceStub(accounts),
        runs_health=health_pb2_grpc.HealthStub(runs), accounts_health=health_pb2_grpc.HealthStub(accounts),
        channels=(accounts, billing, runs))
