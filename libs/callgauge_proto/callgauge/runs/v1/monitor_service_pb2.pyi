import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from callgauge_proto.callgauge.events.v1 import monitor_pb2 as _monitor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Scope(_message.Message):
    __slots__ = ("account_id", "mode")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ...) -> None: ...

class UptimeDay(_message.Message):
    __slots__ = ("day", "runs", "up_runs", "uptime_pct")
    DAY_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    UP_RUNS_FIELD_NUMBER: _ClassVar[int]
    UPTIME_PCT_FIELD_NUMBER: _ClassVar[int]
    day: str
    runs: int
    up_runs: int
    uptime_pct: float
    def __init__(self, day: _Optional[str] = ..., runs: _Optional[int] = ..., up_runs: _Optional[int] = ..., uptime_pct: _Optional[float] = ...) -> None: ...

class Probe(_message.Message):
    __slots__ = ("id", "project_id", "test_id", "name", "interval_seconds", "thresholds", "webhook_url", "enabled", "state", "state_reasons", "state_since", "last_run_id", "next_due_at", "created_at", "webhook_endpoint_id", "webhook_secret", "slots_fired", "unacknowledged_changes", "uptime", "mode")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_REASONS_FIELD_NUMBER: _ClassVar[int]
    STATE_SINCE_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NEXT_DUE_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_SECRET_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIRED_FIELD_NUMBER: _ClassVar[int]
    UNACKNOWLEDGED_CHANGES_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    id: str
    project_id: str
    test_id: str
    name: str
    interval_seconds: int
    thresholds: _monitor_pb2.ProbeThresholds
    webhook_url: str
    enabled: bool
    state: str
    state_reasons: _containers.RepeatedScalarFieldContainer[str]
    state_since: _timestamp_pb2.Timestamp
    last_run_id: str
    next_due_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    webhook_endpoint_id: str
    webhook_secret: str
    slots_fired: int
    unacknowledged_changes: int
    uptime: _containers.RepeatedCompositeFieldContainer[UptimeDay]
    mode: str
    def __init__(self, id: _Optional[str] = ..., project_id: _Optional[str] = ..., test_id: _Optional[str] = ..., name: _Optional[str] = ..., interval_seconds: _Optional[int] = ..., thresholds: _Optional[_Union[_monitor_pb2.ProbeThresholds, _Mapping]] = ..., webhook_url: _Optional[str] = ..., enabled: _Optional[bool] = ..., state: _Optional[str] = ..., state_reasons: _Optional[_Iterable[str]] = ..., state_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_run_id: _Optional[str] = ..., next_due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., webhook_endpoint_id: _Optional[str] = ..., webhook_secret: _Optional[str] = ..., slots_fired: _Optional[int] = ..., unacknowledged_changes: _Optional[int] = ..., uptime: _Optional[_Iterable[_Union[UptimeDay, _Mapping]]] = ..., mode: _Optional[str] = ...) -> None: ...

class CreateProbeRequest(_message.Message):
    __slots__ = ("scope", "project_id", "test_id", "name", "interval_seconds", "thresholds", "has_thresholds", "webhook_url", "enabled")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    HAS_THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    scope: Scope
    project_id: str
    test_id: str
    name: str
    interval_seconds: int
    thresholds: _monitor_pb2.ProbeThresholds
    has_thresholds: bool
    webhook_url: str
    enabled: bool
    def __init__(self, scope: _Optional[_Union[Scope, _Mapping]] = ..., project_id: _Optional[str] = ..., test_id: _Optional[str] = ..., name: _Optional[str] = ..., interval_seconds: _Optional[int] = ..., thresholds: _Optional[_Union[_monitor_pb2.ProbeThresholds, _Mapping]] = ..., has_thresholds: _Optional[bool] = ..., webhook_url: _Optional[str] = ..., enabled: _Optional[bool] = ...) -> None: ...

class UpdateProbeRequest(_message.Message):
    __slots__ = ("scope", "project_id", "probe_id", "test_id", "name", "interval_seconds", "thresholds", "has_thresholds", "webhook_url", "enabled")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    HAS_THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    scope: Scope
    project_id: str
    probe_id: str
    test_id: str
    name: str
    interval_seconds: int
    thresholds: _monitor_pb2.ProbeThresholds
    has_thresholds: bool
    webhook_url: str
    enabled: bool
    def __init__(self, scope: _Optional[_Union[Scope, _Mapping]] = ..., project_id: _Optional[str] = ..., probe_id: _Optional[str] = ..., test_id: _Optional[str] = ..., name: _Optional[str] = ..., interval_seconds: _Optional[int] = ..., thresholds: _Optional[_Union[_monitor_pb2.ProbeThresholds, _Mapping]] = ..., has_thresholds: _Optional[bool] = ..., webhook_url: _Optional[str] = ..., enabled: _Optional[bool] = ...) -> None: ...

class ListProbesRequest(_message.Message):
    __slots__ = ("scope", "project_id", "page", "per_page")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PER_PAGE_FIELD_NUMBER: _ClassVar[int]
    scope: Scope
    project_id: str
    page: int
    per_page: int
    def __init__(self, scope: _Optional[_Union[Scope, _Mapping]] = ..., project_id: _Optional[str] = ..., page: _Optional[int] = ..., per_page: _Optional[int] = ...) -> None: ...

class ListProbesResponse(_message.Message):
    __slots__ = ("probes", "total")
    PROBES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    probes: _containers.RepeatedCompositeFieldContainer[Probe]
    total: int
    def __init__(self, probes: _Optional[_Iterable[_Union[Probe, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class GetProbeRequest(_message.Message):
    __slots__ = ("scope", "project_id", "probe_id")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    scope: Scope
    project_id: str
    probe_id: str
    def __init__(self, scope: _Optional[_Union[Scope, _Mapping]] = ..., project_id: _Optional[str] = ..., probe_id: _Optional[str] = ...) -> None: ...

class DeleteProbeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ProbeStateChange(_message.Message):
    __slots__ = ("seq", "from_state", "to_state", "run_id", "reasons", "changed_at", "acknowledged")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    seq: int
    from_state: str
    to_state: str
    run_id: str
    reasons: _containers.RepeatedScalarFieldContainer[str]
    changed_at: _timestamp_pb2.Timestamp
    acknowledged: bool
    def __init__(self, seq: _Optional[int] = ..., from_state: _Optional[str] = ..., to_state: _Optional[str] = ..., run_id: _Optional[str] = ..., reasons: _Optional[_Iterable[str]] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledged: _Optional[bool] = ...) -> None: ...

class ProbeHistory(_message.Message):
    __slots__ = ("changes", "uptime")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[ProbeStateChange]
    uptime: _containers.RepeatedCompositeFieldContainer[UptimeDay]
    def __init__(self, changes: _Optional[_Iterable[_Union[ProbeStateChange, _Mapping]]] = ..., uptime: _Optional[_Iterable[_Union[UptimeDay, _Mapping]]] = ...) -> None: ...

class ProbeChanges(_message.Message):
    __slots__ = ("changes",)
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[ProbeStateChange]
    def __init__(self, changes: _Optional[_Iterable[_Union[ProbeStateChange, _Mapping]]] = ...) -> None: ...

class AckProbeChangesRequest(_message.Message):
    __slots__ = ("scope", "project_id", "probe_id", "up_to_seq")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    UP_TO_SEQ_FIELD_NUMBER: _ClassVar[int]
    scope: Scope
    project_id: str
    probe_id: str
    up_to_seq: int
    def __init__(self, scope: _Optional[_Union[Scope, _Mapping]] = ..., project_id: _Optional[str] = ..., probe_id: _Optional[str] = ..., up_to_seq: _Optional[int] = ...) -> None: ...

class Webhook(_message.Message):
    __slots__ = ("id", "url", "events", "probe_id", "description", "secret", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    url: str
    events: _containers.RepeatedScalarFieldContainer[str]
    probe_id: str
    description: str
    secret: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., url: _Optional[str] = ..., events: _Optional[_Iterable[str]] = ..., probe_id: _Optional[str] = ..., description: _Optional[str] = ..., secret: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateWebhookRequest(_message.Message):
    __slots__ = ("scope", "url", "events", "description")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    scope: Scope
    url: str
    events: _containers.RepeatedScalarFieldContainer[str]
    description: str
    def __init__(self, scope: _Optional[_Union[Scope, _Mapping]] = ..., url: _Optional[str] = ..., events: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ...) -> None: ...

class ListWebhooksRequest(_message.Message):
    __slots__ = ("scope",)
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    scope: Scope
    def __init__(self, scope: _Optional[_Union[Scope, _Mapping]] = ...) -> None: ...

class ListWebhooksResponse(_message.Message):
    __slots__ = ("webhooks",)
    WEBHOOKS_FIELD_NUMBER: _ClassVar[int]
    webhooks: _containers.RepeatedCompositeFieldContainer[Webhook]
    def __init__(self, webhooks: _Optional[_Iterable[_Union[Webhook, _Mapping]]] = ...) -> None: ...

class WebhookRequest(_message.Message):
    __slots__ = ("scope", "webhook_id")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    scope: Scope
    webhook_id: str
    def __init__(self, scope: _Optional[_Union[Scope, _Mapping]] = ..., webhook_id: _Optional[str] = ...) -> None: ...

class WebhookAttempt(_message.Message):
    __slots__ = ("attempt", "status_code", "error", "outcome", "attempted_at", "duration_ms")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTED_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    status_code: int
    error: str
    outcome: str
    attempted_at: _timestamp_pb2.Timestamp
    duration_ms: int
    def __init__(self, attempt: _Optional[int] = ..., status_code: _Optional[int] = ..., error: _Optional[str] = ..., outcome: _Optional[str] = ..., attempted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_ms: _Optional[int] = ...) -> None: ...

class WebhookDelivery(_message.Message):
    __slots__ = ("id", "event", "status", "created_at", "next_attempt_at", "attempts", "body")
    ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    id: str
    event: str
    status: str
    created_at: _timestamp_pb2.Timestamp
    next_attempt_at: _timestamp_pb2.Timestamp
    attempts: _containers.RepeatedCompositeFieldContainer[WebhookAttempt]
    body: str
    def __init__(self, id: _Optional[str] = ..., event: _Optional[str] = ..., status: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempts: _Optional[_Iterable[_Union[WebhookAttempt, _Mapping]]] = ..., body: _Optional[str] = ...) -> None: ...

class WebhookDeliveries(_message.Message):
    __slots__ = ("deliveries",)
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[WebhookDelivery]
    def __init__(self, deliveries: _Optional[_Iterable[_Union[WebhookDelivery, _Mapping]]] = ...) -> None: ...

class CompareRunsRequest(_message.Message):
    __slots__ = ("scope", "project_id", "base_run_id", "run_id", "tolerances")
    class TolerancesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    BASE_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TOLERANCES_FIELD_NUMBER: _ClassVar[int]
    scope: Scope
    project_id: str
    base_run_id: str
    run_id: str
    tolerances: _containers.ScalarMap[str, float]
    def __init__(self, scope: _Optional[_Union[Scope, _Mapping]] = ..., project_id: _Optional[str] = ..., base_run_id: _Optional[str] = ..., run_id: _Optional[str] = ..., tolerances: _Optional[_Mapping[str, float]] = ...) -> None: ...

class MetricComparison(_message.Message):
    __slots__ = ("metric", "base", "value", "delta", "tolerance", "better", "regression")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    BETTER_FIELD_NUMBER: _ClassVar[int]
    REGRESSION_FIELD_NUMBER: _ClassVar[int]
    metric: str
    base: float
    value: float
    delta: float
    tolerance: float
    better: str
    regression: bool
    def __init__(self, metric: _Optional[str] = ..., base: _Optional[float] = ..., value: _Optional[float] = ..., delta: _Optional[float] = ..., tolerance: _Optional[float] = ..., better: _Optional[str] = ..., regression: _Optional[bool] = ...) -> None: ...

class RunComparison(_message.Message):
    __slots__ = ("base_run_id", "run_id", "metrics", "regression", "base_status", "status")
    BASE_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    REGRESSION_FIELD_NUMBER: _ClassVar[int]
    BASE_STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    base_run_id: str
    run_id: str
    metrics: _containers.RepeatedCompositeFieldContainer[MetricComparison]
    regression: bool
    base_status: str
    status: str
    def __init__(self, base_run_id: _Optional[str] = ..., run_id: _Optional[str] = ..., metrics: _Optional[_Iterable[_Union[MetricComparison, _Mapping]]] = ..., regression: _Optional[bool] = ..., base_status: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...
