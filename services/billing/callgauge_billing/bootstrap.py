"""The composition root of the billing service."""

from __future__ import annotations

from dataclasses import dataclass

from callgauge_bus.dead_letters import DeadLetters
from callgauge_bus.kafka import Consumer, Producer, ensure_topics
from callgauge_eventstore import EventStore
from callgauge_eventstore.factory import open_event_store
from callgauge_relay.relay import OutboxRelay
from callgauge_platform.grpcutil import GrpcServer
from callgauge_platform.service_auth import server_interceptor
from callgauge_platform.health import HealthServer, store_ready
from callgauge_proto.callgauge.billing.v1 import billing_service_pb2_grpc as pb_grpc

from callgauge_billing.adapters.payments import PaymentProvider, payment_provider
from callgauge_billing.domain import pricing, wallet
from callgauge_billing.entrypoints.grpc_api import BillingServicer
from callgauge_billing.handlers.app import CONSUMED_TYPES, BillingApp, BillingConfig
from callgauge_billing.settings import BillingSettings

SERVICE = "billing"


@dataclass
class BillingService:
    settings: BillingSettings
    store: EventStore
    app: BillingApp
    producer: Producer
    relay: OutboxRelay
    consumer: Consumer
    grpc: GrpcServer
    health: HealthServer

    async def start(self) -> None:
        await ensure_topics(self.settings.kafka_bootstrap, [self.settings.topic(a) for a in ("runs", "billing", "media", "accounts")])
        await self.app.start()
        await self.producer.start()
        await self.relay.start()
        await self.consumer.start()
        await self.grpc.start()
        await self.health.start()

    async def stop(self) -> None:
        await self.grpc.stop(grace=5)
        await self.consumer.stop()
        await self.relay.stop()
        await self.producer.stop()
        await self.health.stop()
        await self.store.close()

    async def ready(self) -> tuple[bool, str]:
        if not self.consumer.ready.is_set():
            return False, "run/media consumer not assigned yet"
        return await store_ready(self.store)


def config_from(settings: BillingSettings) -> BillingConfig:
    currency = settings.billing_currency.upper()
    if currency not in wallet.CURRENCIES:
        raise ValueError(f"CALLGAUGE_BILLING_CURRENCY={settings.billing_currency!r} is not a supported currency")
    if settings.billing_reservation not in ("max_cost", "minimum"):
        raise ValueError("CALLGAUGE_BILLING_RESERVATION: max_cost or minimum")
    if settings.billing_mode not in wallet.BILLING_MODES:
        raise ValueError(f"CALLGAUGE_BILLING_MODE={settings.billing_mode!r}: unmetered or prepaid")
    return BillingConfig(
        currency=currency, welcome_credit_minor=settings.billing_welcome_credit_minor,
        prices=pricing.Prices(settings.billing_price_call_second_minor, settings.billing_price_registration_minor,
                              settings.billing_price_probe_run_minor),
        min_balance_minor=settings.billing_min_balance_minor, max_top_up_minor=settings.billing_max_top_up_minor,
        reservation=settings.billing_reservation, billing_mode=settings.billing_mode,
    )


def bootstrap(settings: BillingSettings | None = None, store: EventStore | None = None,
              payments: PaymentProvider | None = None) -> BillingService:
    settings = settings or BillingSettings()
    store = store or open_event_store(settings.eventstore_url_for(), SERVICE)
    app = BillingApp(store, config_from(settings), payments or payment_provider(settings.billing_payment_provider))
    producer = Producer(settings.kafka_bootstrap, client_id=settings.group("callgauge-billing"))
    relay = OutboxRelay(store, producer, settings.topic("billing"), name="relay:billing", source=SERVICE)
    group = settings.group("callgauge-billing")
    consumer = Consumer(settings.kafka_bootstrap, [settings.topic("runs"), settings.topic("media"),
                                                   settings.topic("accounts")],
                        group, app.on_event, batch_handler=app.on_batch,
                        dead_letters=DeadLetters(store, group), types=CONSUMED_TYPES)
    servicer = BillingServicer(app)
    server = GrpcServer(settings.grpc_listen(settings.billing_grpc),
                        [lambda s: pb_grpc.add_BillingServiceServicer_to_server(servicer, s)],
                        ["callgauge.billing.v1.BillingService"],
                        server_interceptor(settings, "billing"))
    svc = BillingService(settings, store, app, producer, relay, consumer, server, None)  # type: ignore[arg-type]
    svc.health = HealthServer(settings.bind_host, settings.billing_http_port, svc.ready)
    return svc
