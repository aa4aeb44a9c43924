"""The composition root of the media-engine: builds its adapters (the pjsua2 worker pool, the load
drivers, the outbox: local event store + relay, the Kafka producer, the run-credentials client, the
health server), chooses the load drivers, and wires them into the :class:`MediaEngine`."""

from __future__ import annotations

import os
import socket

from callgauge_bus.kafka import Producer
from callgauge_eventstore.factory import open_event_store
from callgauge_relay.relay import OutboxRelay
from callgauge_platform.destinations import DialPolicy
from callgauge_platform.health import HealthServer
from callgauge_platform.stack import free_port, udp_port_taken, with_pdeathsig

from callgauge_media.adapters.credentials import GrpcRunCredentials
from callgauge_media.adapters.sipp.driver import ProcessTools, SippLoad
from callgauge_media.domain.fairness import FairShare
from callgauge_media.domain.jobs import TlsFiles
from callgauge_media.domain.ports import LoadDriver
from callgauge_media.handlers.media_engine import SERVICE, MediaEngine, slug
from callgauge_media.handlers.metering import BillingGuard
from callgauge_media.handlers.runner import PjsuaLoad
from callgauge_media.settings import MediaSettings


def load_drivers() -> dict[str, LoadDriver]:
    """The load drivers by the name a load action gives as its ``driver``: pjsua2 calls through the
    engine's worker pool, or SIPp (given the host's process tools: ports, a child that dies with
    the engine)."""
    tools = ProcessTools(free_port=free_port, udp_port_taken=udp_port_taken, child_argv=with_pdeathsig)
    return {"pjsua": PjsuaLoad(), "sipp": SippLoad(tools)}


def _tls_files(settings: MediaSettings) -> TlsFiles:
    """The operator's TLS files, checked at start: a file that cannot be read stops the engine with
    a message naming the setting (rather than every TLS call failing later)."""
    named = {"CALLGAUGE_MEDIA_TLS_CA_FILE": settings.media_tls_ca_file,
             "CALLGAUGE_MEDIA_TLS_CERT_FILE": settings.media_tls_cert_file,
             "CALLGAUGE_MEDIA_TLS_KEY_FILE": settings.media_tls_key_file}
    for env, path in named.items():
        if path and not os.access(path, os.R_OK):
            raise SystemExit(f"media-engine: {env}={path!r} cannot be read")
    if bool(settings.media_tls_cert_file) != bool(settings.media_tls_key_file):
        raise SystemExit("media-engine: CALLGAUGE_MEDIA_TLS_CERT_FILE and CALLGAUGE_MEDIA_TLS_KEY_FILE go together")
    return TlsFiles(settings.media_tls_ca_file, settings.media_tls_cert_file, settings.media_tls_key_file)


def bootstrap(settings: MediaSettings | None = None) -> MediaEngine:
    from callgauge_media.adapters.pool import WorkerPool

    settings = settings or MediaSettings()
    engine_id = settings.media_engine_id or f"{socket.gethostname()}-{os.getpid()}"
    worker_options = dict(rtp_port_base=settings.media_rtp_port_base, sip_message_log=settings.media_sip_message_log,
                          tls=_tls_files(settings),
                          recorded_jitter_buffer_ms=settings.media_recorded_jitter_buffer_ms)
    if settings.media_workers:
        pool = WorkerPool(workers=settings.media_workers, calls_per_worker=settings.media_calls_per_worker,
                          **worker_options)
    else:
        pool = WorkerPool.for_calls(settings.media_max_calls, settings.media_calls_per_worker, **worker_options)
    # One outbox per engine identity: replicas that share a data dir or database need distinct
    # CALLGAUGE_MEDIA_ENGINE_ID values.
    namespace = f"media-{slug(settings.media_engine_id)}" if settings.media_engine_id else SERVICE
    store = open_event_store(settings.eventstore_url_for(), namespace)
    producer = Producer(settings.kafka_bootstrap, client_id=SERVICE)
    relay = OutboxRelay(store, producer, settings.topic("media"), name="relay:media", source=SERVICE)
    engine = MediaEngine(settings, pool, store, producer, relay, engine_id, pool=pool, drivers=load_drivers())
    engine.fair = FairShare(pool.capacity, settings.quota_concurrent_calls, settings.media_fair_reserve_calls)
    engine.work_store = open_event_store(settings.eventstore_url_for(), f"{namespace}-work")
    engine.work_relay = OutboxRelay(engine.work_store, producer, settings.topic("media-work"), name="relay:media-work",
                                    source=SERVICE)
    engine.guard = BillingGuard(store, relay.notify, engine_id, settings.media_progress_interval_s, pool.hangup)
    pool.add_listener(engine.guard.on_call)
    engine.credentials = GrpcRunCredentials(settings)
    engine.dial = DialPolicy.from_settings(settings)
    engine.health = HealthServer(settings.bind_host, settings.media_http_port, engine.ready)
    return engine
