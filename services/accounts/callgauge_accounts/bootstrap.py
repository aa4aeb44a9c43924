"""The composition root of the accounts service. Its events hold password and key hashes, so its
outbox relay publishes one type only, AccountDeleted (an account id and nothing else), to topic
callgauge.accounts.v1: runs and billing end a deleted account's probes, runs and charges."""

from __future__ import annotations

from dataclasses import dataclass

from callgauge_bus.kafka import Producer, ensure_topics
from callgauge_eventstore import EventStore
from callgauge_relay.relay import OutboxRelay
from callgauge_eventstore.factory import open_event_store
from callgauge_platform.grpcutil import GrpcServer
from callgauge_platform.service_auth import server_interceptor
from callgauge_platform.health import HealthServer, store_ready
from callgauge_proto.callgauge.accounts.v1 import accounts_service_pb2_grpc as pb_grpc

from callgauge_accounts.adapters.passwords import Argon2Passwords
from callgauge_accounts.entrypoints.grpc_api import AccountsServicer
from callgauge_accounts.handlers.app import AccountsApp
from callgauge_accounts.settings import AccountsSettings

SERVICE = "accounts"
# stored type -> published type: the only events of the accounts store that reach Kafka
PUBLIC_EVENTS = {"callgauge.accounts.v1.AccountDeleted": "callgauge.events.v1.AccountDeleted"}


@dataclass
class AccountsService:
    settings: AccountsSettings
    store: EventStore
    app: AccountsApp
    grpc: GrpcServer
    health: HealthServer
    producer: Producer | None = None
    relay: OutboxRelay | None = None

    async def start(self) -> None:
        await self.app.start()
        if self.relay is not None and self.producer is not None:
            await ensure_topics(self.settings.kafka_bootstrap, [self.settings.topic("accounts")])
            await self.producer.start()
            await self.relay.start()
        await self.grpc.start()
        await self.health.start()

    async def stop(self) -> None:
        await self.grpc.stop(grace=5)
        if self.relay is not None and self.producer is not None:
            await self.relay.stop()
            await self.producer.stop()
        await self.app.stop()
        await self.health.stop()
        await self.store.close()

    async def ready(self) -> tuple[bool, str]:
        return await store_ready(self.store)


def bootstrap(settings: AccountsSettings | None = None, store: EventStore | None = None,
              relay: bool = True) -> AccountsService:
    """`relay`: publish AccountDeleted to Kafka (False for tools and tests without a broker)."""
    settings = settings or AccountsSettings()
    store = store or open_event_store(settings.eventstore_url_for(), SERVICE)
    app = AccountsApp(store, settings.jwt_secret_value(), settings.jwt_ttl_seconds, settings.refresh_ttl_seconds,
                      passwords=Argon2Passwords(),
                      key_rate_limit_max=settings.key_rate_limit_max(), max_keys=settings.max_api_keys_per_account)
    servicer = AccountsServicer(app)
    server = GrpcServer(settings.grpc_listen(settings.accounts_grpc),
                        [lambda s: pb_grpc.add_AccountsServiceServicer_to_server(servicer, s)],
                        ["callgauge.accounts.v1.AccountsService"],
                        server_interceptor(settings, "accounts"))
    svc = AccountsService(settings, store, app, server, None)  # type: ignore[arg-type]
    if relay:
        svc.producer = Producer(settings.kafka_bootstrap, client_id=settings.group("callgauge-accounts"))
        svc.relay = OutboxRelay(store, svc.producer, settings.topic("accounts"), name="relay:accounts",
                                source=SERVICE, publish_types=PUBLIC_EVENTS)
    svc.health = HealthServer(settings.bind_host, settings.accounts_http_port, svc.ready)
    return svc
