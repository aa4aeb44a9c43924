"""The composition root of the runs service: the one place that wires adapters to the domain."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from callgauge_bus.dead_letters import DeadLetters
from callgauge_bus.kafka import Consumer, Producer, ensure_topics
from callgauge_eventstore import EventStore
from callgauge_eventstore.factory import open_event_store
from callgauge_relay.relay import OutboxRelay
from callgauge_platform.destinations import DialPolicy
from callgauge_platform.grpcutil import GrpcServer
from callgauge_platform.service_auth import server_interceptor
from callgauge_platform.health import HealthServer, store_ready
from callgauge_proto.callgauge.runs.v1 import monitor_service_pb2_grpc as monitor_grpc
from callgauge_proto.callgauge.runs.v1 import runs_service_pb2_grpc as pb_grpc

from callgauge_runs.adapters.billing import BillingPort, GrpcBilling
from callgauge_runs.adapters.webhook_http import HttpWebhookSender
from callgauge_runs.entrypoints.grpc_api import RunsServicer
from callgauge_runs.entrypoints.monitor_grpc import MonitorServicer
from callgauge_runs.handlers.app import Quotas, RunsApp
from callgauge_runs.handlers.monitor import MonitorApp, monitor_config
from callgauge_runs.handlers.secrets import load_secrets
from callgauge_runs.settings import RunsSettings

SERVICE = "runs"


@dataclass
class RunsService:
    settings: RunsSettings
    store: EventStore
    app: RunsApp
    producer: Producer
    relay: OutboxRelay
    consumer: Consumer
    grpc: GrpcServer
    health: HealthServer
    monitor: MonitorApp | None = None
    webhook_client: httpx.AsyncClient | None = None  # the webhook sender's HTTP client, closed at stop

    async def start(self) -> None:
        await ensure_topics(self.settings.kafka_bootstrap, [self.settings.topic(a) for a in ("runs", "billing", "media", "accounts")])
        await self.app.start()
        if self.monitor is not None:
            await self.monitor.start()
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
        if self.monitor is not None:
            await self.monitor.stop()
        if self.webhook_client is not None:
            await self.webhook_client.aclose()
        await self.app.stop()
        await self.health.stop()
        await self.store.close()

    async def ready(self) -> tuple[bool, str]:
        if not self.consumer.ready.is_set():
            return False, "media consumer not assigned yet"
        return await store_ready(self.store)


def bootstrap(settings: RunsSettings | None = None, store: EventStore | None = None,
              billing: BillingPort | None = None) -> RunsService:
    settings = settings or RunsSettings()
    store = store or open_event_store(settings.eventstore_url_for(), SERVICE)
    app = RunsApp(store, billing or GrpcBilling(settings),
                  load_secrets(settings.secrets_key, settings.data_dir), DialPolicy.from_settings(settings),
                  lease_s=settings.run_lease_s,
                  quotas=Quotas(settings.quota_planned_calls_per_run, settings.quota_concurrent_runs,
                                settings.quota_concurrent_calls))
    producer = Producer(settings.kafka_bootstrap, client_id=settings.group("callgauge-runs"))
    relay = OutboxRelay(store, producer, settings.topic("runs"), name="relay:runs", source=SERVICE)
    group = settings.group("callgauge-runs")
    consumer = Consumer(settings.kafka_bootstrap, [settings.topic("media"), settings.topic("accounts")], group,
                        app.on_media_event,
                        batch_handler=app.on_media_batch, dead_letters=DeadLetters(store, group),
                        on_arrival=app.heard)
    app.media_polled = lambda: consumer.last_poll
    servicer = RunsServicer(app)
    config = monitor_config(settings)
    # redirects are not followed: a receiver's 3xx is its answer (no hop to an unchecked address)
    webhook_client = httpx.AsyncClient(timeout=config.http_timeout, follow_redirects=False)
    monitor = MonitorApp(store, app, config,
                         HttpWebhookSender(webhook_client, allow_private=config.allow_private))
    app.account_closed_hooks.append(monitor.close_account)  # a deleted account's probes and webhooks end
    monitor_servicer = MonitorServicer(monitor)
    grpc_server = GrpcServer(settings.grpc_listen(settings.runs_grpc),
                             [lambda s: pb_grpc.add_RunsServiceServicer_to_server(servicer, s),
                              lambda s: monitor_grpc.add_MonitorServiceServicer_to_server(monitor_servicer, s)],
                             ["callgauge.runs.v1.RunsService", "callgauge.runs.v1.MonitorService"],
                             server_interceptor(settings, "runs"))
    svc = RunsService(settings, store, app, producer, relay, consumer, grpc_server, None,  # type: ignore[arg-type]
                      monitor, webhook_client)
    svc.health = HealthServer(settings.bind_host, settings.runs_http_port, svc.ready)
    return svc
