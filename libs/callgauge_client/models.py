"""Response models. Field names are snake_case; each accepts the API's camelCase or snake_case
spelling (the API mixes CallMeter's camelCase with Sipfront's snake_case). Unknown fields are kept
(`model_extra`), so a newer gateway never breaks an older client."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import AliasChoices, AliasGenerator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel


class Model(BaseModel):
    model_config = ConfigDict(
        extra="allow", populate_by_name=True, protected_namespaces=(),
        alias_generator=AliasGenerator(validation_alias=lambda n: AliasChoices(to_camel(n), n)),
    )


T = TypeVar("T", bound=Model)


class Pagination(Model):
    """Page-numbered lists fill page/total_pages; keyset lists (a run's calls) cursor/next_cursor."""
    page: int = 1
    per_page: int = 25
    total: int = 0
    total_pages: int = 0
    cursor: str | None = None
    next_cursor: str | None = None


class Page(BaseModel, Generic[T]):
    items: list[T]
    pagination: Pagination = Field(default_factory=Pagination)

    def __iter__(self):  # type: ignore[override]
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class Tokens(Model):
    access_token: str
    refresh_token: str = ""
    expires_in: int = 0
    token_type: str = "Bearer"


class User(Model):
    id: str = ""
    email: str = ""
    name: str = ""
    created_at: datetime | None = None


class ApiKey(Model):
    id: str
    name: str = ""
    mode: str = ""
    prefix: str = ""
    last_four: str = Field("", validation_alias=AliasChoices("last4", "lastFour", "last_four"))
    rate_limit_per_minute: int | None = None
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    key: str | None = Field(None, description="the full key; present only in the answer that created it")


class Project(Model):
    id: str
    name: str = ""
    slug: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)
    test_count: int = 0
    probe_count: int = 0
    registrar_count: int = 0
    created_at: datetime | None = None


class Registrar(Model):
    id: str
    project_id: str = ""
    name: str = ""
    host: str = ""
    port: int = 0
    transport: str = ""  # udp | tcp | tls
    domain: str = ""
    created_at: datetime | None = None
    tls_verify: bool | None = None  # tls: the engine checks the registrar's certificate (None: true)


class Credential(Model):
    username: str = ""
    auth_username: str = ""
    domain: str = ""
    has_password: bool = False  # the password itself is write-only


class CredentialPool(Model):
    id: str
    project_id: str = ""
    name: str = ""
    credentials: list[Credential] = Field(default_factory=list)
    created_at: datetime | None = None


class Test(Model):
    id: str
    project_id: str = ""
    name: str = ""
    steps: list[dict[str, Any]] = Field(default_factory=list)
    assertions: list[dict[str, Any]] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    created_at: datetime | None = None


class RunStarted(Model):
    test_run_id: str
    status: str = "PENDING"
    project_id: str = ""
    test_id: str = ""
    report_url: str = ""
    kiosk_url: str = ""
    session_id: str = ""
    status_url: str = ""


class CallMeasurement(Model):
    call_id: str = ""
    step: int = 0
    action: int = 0
    index: int = 0
    destination: str = ""
    outcome: str = ""
    sip_code: int = 0
    sip_reason: str = ""
    # None: not measured (e.g. the audio figures of a SIPp-driven call)
    setup_time_ms: float | None = None
    post_dial_delay_ms: float | None = None
    duration_ms: float | None = None
    codec: str = ""
    tx_packets: int | None = None
    rx_packets: int | None = None
    loss_pct: float | None = None
    jitter_ms: float | None = None
    rtt_ms: float | None = None
    mos: float | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    detail: str = ""
    # judged from the recorded audio (None: not recorded or not scored)
    mos_lqo: float | None = None
    audio_delay_ms: float | None = None
    audio_match: float | None = None
    audio_silent: bool = False
    audio_clipped: bool = False
    audio_one_way: bool = False
    recorded_legs: str = ""  # "caller", "callee", "caller,callee": Client.download_call_audio
    callee_mos_lqo: float | None = None
    callee_audio_match: float | None = None
    callee_audio_silent: bool = False
    transport: str = ""  # udp | tcp | tls ("" : no INVITE sent)
    srtp: bool = False  # the audio was SRTP
    srtp_suite: str = ""
    srtp_keying: str = ""  # sdes | dtls ("": no SRTP)
    codec_clock_hz: int | None = None  # the audio sample rate the codec was opened at (None: no stream)
    audio_bandwidth: str = ""  # narrowband .. fullband ("": no stream)


class Run(Model):
    id: str
    project_id: str = ""
    test_id: str = ""
    test_name: str = ""
    status: str = ""
    passed: bool = False
    result_description: str = ""
    summary: dict[str, Any] | None = None
    planned_calls: int = 0
    calls_recorded: int | None = None  # the calls themselves: Client.run_calls / export_run_calls
    created_at: datetime | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    report_url: str = ""

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


class RunStatus(Model):
    """Sipfront's status shape (GET /runs/{id}/status answers `data.run` with these fields):
    `status` is running | passed | failed, `state` the run's state (PENDING … CANCELLED)."""

    id: str = ""
    status: str = ""
    state: str = ""
    report_url: str = ""
    has_passed: bool = False
    is_failed: bool = False
    is_finished: bool = False
    result_description: str = ""
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    tags: list[str] = Field(default_factory=list)
    test_id: str = ""
    test_name: str = ""
    project_id: str = ""
    project_name: str = ""

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("run"), dict):
            return value["run"]
        return value


class Wallet(Model):
    """Money in integer minor units (cents)."""

    balance_minor: int = 0
    reserved_minor: int = 0
    available_minor: int = 0
    currency: str = ""
    mode: str = ""
    auto_top_up: dict[str, Any] | None = None
    exhausted: bool = False


TopUp = Wallet  # a top-up answers the wallet after it


class Probe(Model):
    id: str
    project_id: str = ""
    name: str = ""
    test_id: str = ""
    interval_seconds: int = 0
    thresholds: dict[str, Any] | None = None
    webhook_url: str = ""
    webhook_secret: str = ""  # only in the answer that created the webhook endpoint
    enabled: bool = True
    state: str = ""  # HEALTHY | DEGRADED | UNHEALTHY | UNKNOWN
    state_reasons: list[str] = Field(default_factory=list)
    last_run_id: str = ""
    unacknowledged_changes: int = 0
    uptime: list[dict[str, Any]] = Field(default_factory=list)


TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")
