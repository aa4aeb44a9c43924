"""Settings shared by every service (env prefix CALLGAUGE_). One class, so `callgauge up` can hand
the same environment to every child process."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from callgauge_platform.destinations import DEFAULT_ALLOW_PORTS, DEFAULT_DENY_CIDRS, DEFAULT_DENY_HOSTS


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLGAUGE_", extra="ignore")

    data_dir: Path = Field(Path(".callgauge"), description="where the embedded stores and the bootstrap key live")
    eventstore_url: str = Field(
        "", description="sqlite:///path/dir/, postgresql://…; empty = SQLite files under data_dir"
    )
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic_prefix: str = Field("", description="prefix for topic names, e.g. to isolate test stacks")

    bind_host: str = Field(
        "127.0.0.1",
        description="address the health/metrics and gRPC servers listen on; 0.0.0.0 in containers",
    )
    runs_grpc: str = "127.0.0.1:50051"
    billing_grpc: str = "127.0.0.1:50052"
    accounts_grpc: str = "127.0.0.1:50053"
    runs_http_port: int = 9101
    billing_http_port: int = 9102
    media_http_port: int = 9103
    accounts_http_port: int = 9104
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    public_url: str = Field("", description="base URL clients use to reach the gateway; default from host/port")

    api_key: str = Field("", description="bootstrap API key accepted by the gateway (cgk_live_… / cgk_test_…)")
    instance_token: str = Field("", description="set by `callgauge up` for each start: every service's /readyz "
                                "answers it in X-Callgauge-Instance, so the supervisor knows it reached a process "
                                "it started (not another stack's on the same port)")
    jwt_secret: str = Field("", description="HMAC secret of access tokens (>= 32 chars); empty = generated "
                            "once into data_dir/jwt_secret")
    jwt_ttl_seconds: int = Field(3600, ge=60, le=86400)
    refresh_ttl_seconds: int = Field(30 * 86400, ge=3600, le=365 * 86400)
    rate_limit_per_minute: int = Field(120, ge=1, le=1_000_000,
                                       description="requests a minute per API key (or user) unless the key sets its own")
    api_key_rate_limit_max: int = Field(0, ge=0, le=1_000_000,
                                        description="the highest rateLimitPerMinute a user may give a key (422 "
                                        "above; older keys are held to it too); 0 = rate_limit_per_minute")
    account_rate_limit_per_minute: int = Field(0, ge=0, le=10_000_000,
                                               description="requests a minute of one account across all its keys "
                                               "and login tokens; 0 = api_key_rate_limit_max")
    max_api_keys_per_account: int = Field(20, ge=1, le=10_000, description="active API keys one account may hold")
    auth_failure_window_seconds: int = Field(600, ge=10, le=86400,
                                             description="the window failed authentications are counted in")
    auth_failures_per_client: int = Field(30, ge=1, le=10_000_000,
                                          description="failed authentications (bad key, token, password or "
                                          "refresh token) one client address may make per window; 429 after")
    login_failures_per_account: int = Field(10, ge=1, le=10_000_000,
                                            description="failed logins per email address per window, from any "
                                            "address; 429 after (even for the right password) until it ends")
    trusted_proxies: str = Field("", description="comma-separated CIDRs of the reverse proxies in front of the "
                                 "gateway; only their X-Forwarded-For is believed. Empty = none: the client "
                                 "address is the TCP peer")
    report_session_ttl_seconds: int = Field(12 * 3600, ge=60, le=30 * 86400,
                                            description="how long a report-page sign-in lasts")
    redis_url: str = Field("", description="redis://… shared by gateway processes for rate limits and "
                           "idempotency keys; empty = memory (limits) and a SQLite file under data_dir (idempotency)")
    gateway_max_body_bytes: int = Field(1024 * 1024, ge=1024, le=1024 * 1024 * 1024,
                                        description="largest request body the gateway reads (413 above)")
    gateway_max_json_depth: int = Field(32, ge=2, le=500, description="deepest JSON nesting accepted (422 above)")
    idempotency_ttl_seconds: int = Field(86400, ge=60, le=7 * 86400)
    secrets_key: str = Field(
        "", description="Fernet key(s), comma-separated, encrypting SIP passwords in the runs store; "
                        "empty = generated into data_dir/runs-secrets.key",
    )

    service_keys_dir: str = Field(
        "", description="Ed25519 keys of the internal service identities (<identity>.key for the one this "
                        "process signs as, <identity>.pub for all); empty = data_dir/service-keys, made once")
    service_token_ttl_seconds: int = Field(300, ge=30, le=3600, description="lifetime of internal service tokens")

    media_max_calls: int = Field(128, ge=1, le=16384, description="concurrent calls one media-engine holds; "
                                 "the worker pool has ceil(max_calls / calls_per_worker) processes")
    media_calls_per_worker: int = Field(64, ge=1, le=256, description="calls one pjsua2 worker process holds "
                                        "(at most PJSUA_MAX_CALLS = 256 of our build); default from the benchmark")
    media_workers: int = Field(0, ge=0, le=256, description="worker processes; 0 = sized by media_max_calls")
    media_rtp_port_base: int = Field(40000, ge=1024, le=65000)
    media_engine_id: str = ""
    media_run_fetch_wait_ms: int = Field(20, ge=1, le=500, description="how long the broker may hold the "
                                         "media-engine's fetch of run requests when none is waiting: the "
                                         "latency of a run's start (Tansu answers a fetch only when this is up)")
    media_lease_renew_s: float = Field(10.0, gt=0, le=300, description="how often the media-engine renews the "
                                       "lease of each run it carries out (RunLeaseRenewed)")
    run_lease_s: float = Field(30.0, gt=0, le=3600, description="the runs service ends a taken run FAILED "
                               "'media engine lost' after this long without a word from its engine")
    media_drain_timeout_s: float = Field(30.0, ge=0, le=3600,
                                         description="on SIGTERM the media-engine lets runs in flight finish this "
                                         "long; `callgauge up` waits this + 15 s before it would SIGKILL it")
    media_sip_message_log: bool = Field(True, description="SIP ladders of failed calls and registrations from "
                                        "pjsip's message log (every message, 401/407 challenges included; "
                                        "~0.35 ms of worker CPU per call); false: what pjsua2's callbacks show")
    media_tls_ca_file: str = Field("", description="PEM file of the CA certificates the media engine trusts for SIP "
                                   "over TLS (registrars, sips: destinations); empty = the system's bundle "
                                   "(/etc/ssl/certs/ca-certificates.crt). A registrar's tls_verify false skips the check")
    media_tls_cert_file: str = Field("", description="PEM certificate the media engine presents over SIP TLS (to a "
                                     "registrar asking for a client certificate, and on its TLS listener for calls "
                                     "a proxy opens a new connection for); empty = none")
    media_tls_key_file: str = Field("", description="PEM private key of media_tls_cert_file")
    media_load_shards: int = Field(1, ge=0, le=64, description="split a load run over the replicas: 1 = no, "
                                   "N = N shards, 0 = one per partition of the media-work topic")
    # per-account quotas (test mode too), checked by the runs service when a run starts
    quota_planned_calls_per_run: int = Field(100_000, ge=1, le=1_000_000_000,
                                             description="planned call attempts one run may hold (422 above)")
    quota_concurrent_runs: int = Field(20, ge=1, le=100_000,
                                       description="runs an account may have unfinished at once (429 above)")
    quota_concurrent_calls: int = Field(1000, ge=1, le=1_000_000,
                                        description="calls an account may have up at once in one media-engine "
                                        "(a run asking for more concurrency is a 422; the engine holds the "
                                        "account's further calls until one of its calls ends)")
    media_fair_reserve_calls: int = Field(-1, ge=-1, le=16384,
                                          description="call slots of a media-engine one account can never take, "
                                          "kept for the other accounts (fair sharing); -1 = an eighth of the "
                                          "engine's capacity, at least 1")
    # SIP/RTP destinations (dial destinations, registrars): see callgauge_platform/destinations.py
    dial_allow_cidrs: str = Field("", description="comma-separated networks always allowed as SIP destinations "
                                  "(e.g. 127.0.0.0/8 for the embedded demo); they win over the deny-list")
    dial_deny_cidrs: str = Field(DEFAULT_DENY_CIDRS, description="networks refused as SIP destinations: loopback, "
                                 "link-local, multicast and cloud metadata by default")
    dial_deny_hosts: str = Field(DEFAULT_DENY_HOSTS, description="host names refused as SIP destinations")
    dial_allow_ports: str = Field(DEFAULT_ALLOW_PORTS, description="destination ports allowed (ranges a-b)")
    dial_deny_ports: str = Field("", description="destination ports refused (ranges a-b)")
    responder_host: str = "127.0.0.1"
    responder_port: int = 5070
    responder_rtp_port: int = 30000

    # billing (prices and limits in minor units of billing_currency)
    billing_mode: str = Field(
        "unmetered", description="unmetered (self-hosted default: usage and history are recorded and shown, "
        "priced at zero; nothing is ever refused or hung up for money) | prepaid (an operator selling "
        "Callgauge: prices, wallets, 402 when a run does not fit, hang-up at zero, auto top-up)")
    billing_currency: str = Field("EUR", description="ISO 4217 currency of new wallets")
    billing_welcome_credit_minor: int = Field(
        10_000, ge=0, description="credited when a wallet opens, so a new account can run its first tests")
    billing_price_call_second_minor: int = Field(1, ge=0, description="per answered call-second")
    billing_price_registration_minor: int = Field(1, ge=0, description="per registration attempt")
    billing_price_probe_run_minor: int = Field(5, ge=0, description="per probe run")
    billing_min_balance_minor: int = Field(1, ge=0, description="available balance a run needs to start")
    billing_max_top_up_minor: int = Field(10_000_000, ge=1, description="largest single top-up")
    billing_reservation: str = Field(
        "max_cost", description="max_cost: a run holds its maximum cost before it starts; minimum: only "
        "billing_min_balance_minor must be available (calls are cut when the balance runs out)")
    billing_payment_provider: str = Field(
        "none", description="pays top-ups and auto top-ups: none (nothing is paid, so nothing credited: the "
        "operator credits wallets with `callgauge credit`) | local (every payment succeeds: one-user machines "
        "and tests only, users mint money with it) | declining")
    audio_scorers: int = Field(1, ge=1, le=64, description="processes of the media engine's audio scoring pool "
                               "(ViSQOL, alignment), apart from the pjsua2 workers")
    audio_score_queue: int = Field(16, ge=1, le=10_000, description="calls waiting for the scoring pool at most; "
                                   "a call beyond it is reported unscored")
    audio_max_recordings_per_run: int = Field(200, ge=0, le=1_000_000, description="recorded calls one run keeps "
                                              "at most (each leg counts); beyond it calls are placed unrecorded")
    audio_max_run_mb: int = Field(200, ge=0, le=1_000_000, description="disk one run's recordings may take, MB")
    audio_max_total_mb: int = Field(2000, ge=0, le=10_000_000, description="disk all recordings may take, MB; "
                                    "the oldest runs' recordings are deleted beyond it (0: no limit)")
    audio_retention_days: float = Field(7.0, ge=0, le=3650, description="recordings older than this are deleted "
                                        "(0: kept until the disk cap)")
    media_progress_interval_s: float = Field(2.0, gt=0, le=60, description="CallProgress tick while a call is up")
    # probes and webhooks (runs service)
    probe_min_interval_seconds: int = Field(10, ge=1, description="shortest probe interval accepted")
    probe_tick_seconds: float = Field(1.0, gt=0, le=60, description="how often the scheduler and dispatcher look")
    monitor_scheduler: bool = Field(True, description="run the probe scheduler and webhook dispatcher here")
    webhook_allow_private: bool = Field(False, description="allow webhook receivers on private/loopback addresses")
    webhook_retry_base_seconds: float = Field(30.0, gt=0, description="first retry delay; doubles, capped at 4 h")

    log_level: str = "INFO"
    log_json: bool = True
    otlp_endpoint: str = Field("", description="OTLP/HTTP traces endpoint; empty = traces are not exported")

    def eventstore_url_for(self) -> str:
        return self.eventstore_url or f"sqlite:///{self.data_dir.resolve()}/"

    def jwt_secret_value(self) -> str:
        """CALLGAUGE_JWT_SECRET, else the one in data_dir/jwt_secret (created once, mode 0600)."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.data_dir / "jwt_secret"
        if not path.exists():
            import os
            import secrets
            import tempfile

            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.data_dir, prefix=".jwt_secret.")  # mode 0600
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48) + "\n")
            try:
                os.link(tmp, path)  # atomic and exclusive: whoever links first wins, all read the same
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        return path.read_text().strip()

    def grpc_listen(self, target: str) -> str:
        """Where a gRPC server listens: the port of its target address (which clients dial), on bind_host."""
        _host, _, port = target.rpartition(":")
        return f"{self.bind_host}:{port}"

    def key_rate_limit_max(self) -> int:
        return self.api_key_rate_limit_max or self.rate_limit_per_minute

    def account_rate_limit(self) -> int:
        return self.account_rate_limit_per_minute or self.key_rate_limit_max()

    def gateway_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.gateway_host}:{self.gateway_port}"

    def group(self, name: str) -> str:
        """Consumer groups follow the topic prefix, so prefixed stacks never share a group."""
        return f"{self.kafka_topic_prefix}{name}"

    def topic(self, area: str) -> str:
        """area: runs | billing | media | accounts."""
        return f"{self.kafka_topic_prefix}callgauge.{area}.v1"
