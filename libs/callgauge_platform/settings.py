"""Settings (environment variables CALLGAUGE_*), in parts. Each service has its own settings class
(`callgauge_<service>/settings.py`) that composes the parts it reads with its own fields, so a
service's configuration is exactly what it reads (the docs site's settings reference lists each,
rendered from the classes). The parts here are the ones several processes
read: where the stores and the broker are, logs and traces, the internal service keys, the
addresses the services listen on and dial, the destination policy. `StackSettings` is what the
one-machine supervisor (`callgauge up`, `Stack`) reads itself."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from callgauge_platform.destinations import DEFAULT_ALLOW_PORTS, DEFAULT_DENY_CIDRS, DEFAULT_DENY_HOSTS


class CallgaugeSettings(BaseSettings):
    """The root of every settings class: the CALLGAUGE_ prefix and the data dir."""

    model_config = SettingsConfigDict(env_prefix="CALLGAUGE_", extra="ignore")

    data_dir: Path = Field(Path(".callgauge"), description="where the embedded stores and the bootstrap key live")


class TelemetrySettings(CallgaugeSettings):
    """Logs and traces (every service)."""

    log_level: str = "INFO"
    log_json: bool = True
    otlp_endpoint: str = Field("", description="OTLP/HTTP traces endpoint; empty = traces are not exported")


class ServiceAuthSettings(CallgaugeSettings):
    """The internal service identities' keys (every process that makes or answers internal gRPC calls)."""

    service_keys_dir: str = Field(
        "", description="Ed25519 keys of the internal service identities (<identity>.key for the one this "
                        "process signs as, <identity>.pub for all); empty = data_dir/service-keys, made once")
    service_token_ttl_seconds: int = Field(300, ge=30, le=3600, description="lifetime of internal service tokens")


class StoreSettings(CallgaugeSettings):
    """The event store (accounts, runs, billing, media-engine: one store per service)."""

    eventstore_url: str = Field(
        "", description="sqlite:///path/dir/, postgresql://…; empty = SQLite files under data_dir"
    )

    def eventstore_url_for(self) -> str:
        return self.eventstore_url or f"sqlite:///{self.data_dir.resolve()}/"


class BrokerSettings(CallgaugeSettings):
    """The Kafka broker and the topic names."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic_prefix: str = Field("", description="prefix for topic names, e.g. to isolate test stacks")

    def group(self, name: str) -> str:
        """Consumer groups follow the topic prefix, so prefixed stacks never share a group."""
        return f"{self.kafka_topic_prefix}{name}"

    def topic(self, area: str) -> str:
        """area: runs | billing | media | accounts."""
        return f"{self.kafka_topic_prefix}callgauge.{area}.v1"


class ListenSettings(CallgaugeSettings):
    """Where a service's gRPC and health/metrics servers listen."""

    bind_host: str = Field(
        "127.0.0.1",
        description="address the health/metrics and gRPC servers listen on; 0.0.0.0 in containers",
    )

    def grpc_listen(self, target: str) -> str:
        """Where a gRPC server listens: the port of its target address (which clients dial), on bind_host."""
        _host, _, port = target.rpartition(":")
        return f"{self.bind_host}:{port}"


class AccountsTarget(CallgaugeSettings):
    accounts_grpc: str = Field("127.0.0.1:50053", description="the accounts service's gRPC address")


class RunsTarget(CallgaugeSettings):
    runs_grpc: str = Field("127.0.0.1:50051", description="the runs service's gRPC address")


class BillingTarget(CallgaugeSettings):
    billing_grpc: str = Field("127.0.0.1:50052", description="the billing service's gRPC address")


class AccountsEndpoint(AccountsTarget):
    accounts_http_port: int = Field(9104, description="the accounts service's health/metrics port")


class RunsEndpoint(RunsTarget):
    runs_http_port: int = Field(9101, description="the runs service's health/metrics port")


class BillingEndpoint(BillingTarget):
    billing_http_port: int = Field(9102, description="the billing service's health/metrics port")


class MediaEndpoint(CallgaugeSettings):
    media_http_port: int = Field(9103, description="the media-engine's health/metrics port")
    media_drain_timeout_s: float = Field(30.0, ge=0, le=3600,
                                         description="on SIGTERM the media-engine lets runs in flight finish this "
                                         "long; `callgauge up` waits this + 15 s before it would SIGKILL it")


class GatewayEndpoint(CallgaugeSettings):
    gateway_host: str = Field("127.0.0.1", description="address the gateway (the REST API) listens on")
    gateway_port: int = Field(8080, description="port of the gateway")
    public_url: str = Field("", description="base URL clients use to reach the gateway; default from host/port")

    def gateway_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.gateway_host}:{self.gateway_port}"


class BootstrapKeySettings(CallgaugeSettings):
    api_key: str = Field("", description="bootstrap API key accepted by the gateway (cgk_live_… / cgk_test_…)")


class RateLimitSettings(CallgaugeSettings):
    """Per-key rate limits: the gateway enforces them, accounts bounds the limit a key may be given."""

    rate_limit_per_minute: int = Field(120, ge=1, le=1_000_000,
                                       description="requests a minute per API key (or user) unless the key sets its own")
    api_key_rate_limit_max: int = Field(0, ge=0, le=1_000_000,
                                        description="the highest rateLimitPerMinute a user may give a key (422 "
                                        "above; older keys are held to it too); 0 = rate_limit_per_minute")

    def key_rate_limit_max(self) -> int:
        return self.api_key_rate_limit_max or self.rate_limit_per_minute


class RunLimitsSettings(CallgaugeSettings):
    """Read by the runs service and the media-engine alike."""

    run_lease_s: float = Field(30.0, gt=0, le=3600, description="the runs service ends a taken run FAILED "
                               "'media engine lost' after this long without a word from its engine")
    quota_concurrent_calls: int = Field(1000, ge=1, le=1_000_000,
                                        description="calls an account may have up at once in one media-engine "
                                        "(a run asking for more concurrency is a 422; the engine holds the "
                                        "account's further calls until one of its calls ends)")


class DialSettings(CallgaugeSettings):
    """SIP/RTP destinations (dial destinations, registrars): see callgauge_platform/destinations.py."""

    dial_allow_cidrs: str = Field("", description="comma-separated networks always allowed as SIP destinations "
                                  "(e.g. 127.0.0.0/8 for the embedded demo); they win over the deny-list")
    dial_deny_cidrs: str = Field(DEFAULT_DENY_CIDRS, description="networks refused as SIP destinations: loopback, "
                                 "link-local, multicast and cloud metadata by default")
    dial_deny_hosts: str = Field(DEFAULT_DENY_HOSTS, description="host names refused as SIP destinations")
    dial_allow_ports: str = Field(DEFAULT_ALLOW_PORTS, description="destination ports allowed (ranges a-b)")
    dial_deny_ports: str = Field("", description="destination ports refused (ranges a-b)")


class ServiceSettings(TelemetrySettings, ServiceAuthSettings):
    """What every service reads."""


class StoreServiceSettings(ServiceSettings, StoreSettings, BrokerSettings, ListenSettings):
    """What every service behind the gateway reads: its event store, the broker, its listening address."""


class StackSettings(StoreSettings, BrokerSettings, ServiceAuthSettings, ListenSettings, AccountsEndpoint,
                    RunsEndpoint, BillingEndpoint, MediaEndpoint, GatewayEndpoint, BootstrapKeySettings):
    """What the one-machine supervisor (`callgauge up`, `Stack`) reads: the address of every part, so it
    can check they are free and wait until each is ready, and the bootstrap API key it makes. Any other
    setting given to it (a service's, e.g. billing_mode=...) is kept and handed to the children."""

    model_config = SettingsConfigDict(env_prefix="CALLGAUGE_", extra="allow")

    instance_token: str = Field("", description="set by `callgauge up` for each start: every service's /readyz "
                                "answers it in X-Callgauge-Instance, so the supervisor knows it reached a process "
                                "it started (not another stack's on the same port)")
    responder_host: str = Field("127.0.0.1", description="address of the built-in SIP responder")
    responder_port: int = Field(5070, description="SIP port (UDP) of the built-in responder")
    responder_rtp_port: int = Field(30000, description="RTP port of the built-in responder")
