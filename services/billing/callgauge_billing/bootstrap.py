"""The composition root of the billing service."""

from __future__ import annotations

from dataclasses import dataclass

from callgauge_bus.kafka import Producer
from callgauge_eventstore import EventStore
from callgauge_eventstore.factory import open_event_store
from callgauge_eventstore.relay import OutboxRelay
from callgauge_platform.grpcutil import GrpcServer
from callgauge_platform.health import HealthServer
from callgauge_platform.settings import Settings
from callgauge_proto.callgauge.billing.v1 import billing_service_pb2_grpc as pb_grpc

from callgauge_billing.entrypoints.grpc_api import BillingServicer

SERVICE = "billing"


@dataclass
class BillingService:
    store: EventStore
    producer: Producer
    relay: OutboxRelay
    grpc: GrpcServer
    health: HealthServer

    async def start(self) -> None:
        await self.producer.start()
        await self.relay.start()
        await self.grpc.start()
        await self.health.start()

    async def stop(self) -> None:
        await self.grpc.stop(grace=5)
        await self.relay.stop()
        await self.producer.stop()
        await self.health.stop()
        await self.store.close()

    async def ready(self) -> tuple[bool, str]:
        try:
            await self.store.last_position()
        except Exception as exc:  # a probe reports, never raises
            return False, f"event store: {exc!r}"
        return True, "ready"


def bootstrap(settings: Settings | None = None) -> BillingService:
    settings = settings or Settings()
    store = open_event_store(settings.eventstore_url_for(), SERVICE)
    producer = Producer(settings.kafka_bootstrap, client_id="callgauge-billing")
    relay = OutboxRelay(store, producer, settings.topic("billing"), name="relay:billing", source=SERVICE)
    servicer = BillingServicer(store)
    server = GrpcServer(settings.grpc_listen(settings.billing_grpc),
                        [lambda s: pb_grpc.add_BillingServiceServicer_to_server(servicer, s)],
                        ["callgauge.billing.v1.BillingService"])
    svc = BillingService(store, producer, relay, server, None)  # type: ignore[arg-type]
    svc.health = HealthServer(settings.bind_host, settings.billing_http_port, svc.ready)
    return svc
