import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MetricThreshold(_message.Message):
    __slots__ = ("warning", "critical")
    WARNING_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_FIELD_NUMBER: _ClassVar[int]
    warning: float
    critical: float
    def __init__(self, warning: _Optional[float] = ..., critical: _Optional[float] = ...) -> None: ...

class ProbeThresholds(_message.Message):
    __slots__ = ("mos", "jitter_ms", "loss_pct", "setup_ms", "asr")
    MOS_FIELD_NUMBER: _ClassVar[int]
    JITTER_MS_FIELD_NUMBER: _ClassVar[int]
    LOSS_PCT_FIELD_NUMBER: _ClassVar[int]
    SETUP_MS_FIELD_NUMBER: _ClassVar[int]
    ASR_FIELD_NUMBER: _ClassVar[int]
    mos: MetricThreshold
    jitter_ms: MetricThreshold
    loss_pct: MetricThreshold
    setup_ms: MetricThreshold
    asr: MetricThreshold
    def __init__(self, mos: _Optional[_Union[MetricThreshold, _Mapping]] = ..., jitter_ms: _Optional[_Union[MetricThreshold, _Mapping]] = ..., loss_pct: _Optional[_Union[MetricThreshold, _Mapping]] = ..., setup_ms: _Optional[_Union[MetricThreshold, _Mapping]] = ..., asr: _Optional[_Union[MetricThreshold, _Mapping]] = ...) -> None: ...

class ProbeCreated(_message.Message):
    __slots__ = ("probe_id", "project_id", "account_id", "mode", "test_id", "name", "interval_seconds", "thresholds", "webhook_url", "enabled", "first_due_at", "webhook_endpoint_id")
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    FIRST_DUE_AT_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    probe_id: str
    project_id: str
    account_id: str
    mode: str
    test_id: str
    name: str
    interval_seconds: int
    thresholds: ProbeThresholds
    webhook_url: str
    enabled: bool
    first_due_at: _timestamp_pb2.Timestamp
    webhook_endpoint_id: str
    def __init__(self, probe_id: _Optional[str] = ..., project_id: _Optional[str] = ..., account_id: _Optional[str] = ..., mode: _Optional[str] = ..., test_id: _Optional[str] = ..., name: _Optional[str] = ..., interval_seconds: _Optional[int] = ..., thresholds: _Optional[_Union[ProbeThresholds, _Mapping]] = ..., webhook_url: _Optional[str] = ..., enabled: _Optional[bool] = ..., first_due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., webhook_endpoint_id: _Optional[str] = ...) -> None: ...

class ProbeUpdated(_message.Message):
    __slots__ = ("probe_id", "test_id", "name", "interval_seconds", "thresholds", "webhook_url", "enabled", "next_due_at", "webhook_endpoint_id")
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    NEXT_DUE_AT_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    probe_id: str
    test_id: str
    name: str
    interval_seconds: int
    thresholds: ProbeThresholds
    webhook_url: str
    enabled: bool
    next_due_at: _timestamp_pb2.Timestamp
    webhook_endpoint_id: str
    def __init__(self, probe_id: _Optional[str] = ..., test_id: _Optional[str] = ..., name: _Optional[str] = ..., interval_seconds: _Optional[int] = ..., thresholds: _Optional[_Union[ProbeThresholds, _Mapping]] = ..., webhook_url: _Optional[str] = ..., enabled: _Optional[bool] = ..., next_due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., webhook_endpoint_id: _Optional[str] = ...) -> None: ...

class ProbeDeleted(_message.Message):
    __slots__ = ("probe_id", "project_id")
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    probe_id: str
    project_id: str
    def __init__(self, probe_id: _Optional[str] = ..., project_id: _Optional[str] = ...) -> None: ...

class ProbeSlotFired(_message.Message):
    __slots__ = ("probe_id", "slot", "due_at", "fired_at", "run_id", "skipped_slots", "next_due_at")
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    FIRED_AT_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_SLOTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_DUE_AT_FIELD_NUMBER: _ClassVar[int]
    probe_id: str
    slot: int
    due_at: _timestamp_pb2.Timestamp
    fired_at: _timestamp_pb2.Timestamp
    run_id: str
    skipped_slots: int
    next_due_at: _timestamp_pb2.Timestamp
    def __init__(self, probe_id: _Optional[str] = ..., slot: _Optional[int] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fired_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., run_id: _Optional[str] = ..., skipped_slots: _Optional[int] = ..., next_due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProbeRunMetrics(_message.Message):
    __slots__ = ("mos", "jitter_ms", "loss_pct", "setup_ms", "asr")
    MOS_FIELD_NUMBER: _ClassVar[int]
    JITTER_MS_FIELD_NUMBER: _ClassVar[int]
    LOSS_PCT_FIELD_NUMBER: _ClassVar[int]
    SETUP_MS_FIELD_NUMBER: _ClassVar[int]
    ASR_FIELD_NUMBER: _ClassVar[int]
    mos: float
    jitter_ms: float
    loss_pct: float
    setup_ms: float
    asr: float
    def __init__(self, mos: _Optional[float] = ..., jitter_ms: _Optional[float] = ..., loss_pct: _Optional[float] = ..., setup_ms: _Optional[float] = ..., asr: _Optional[float] = ...) -> None: ...

class ProbeRunRecorded(_message.Message):
    __slots__ = ("probe_id", "run_id", "run_status", "level", "reasons", "metrics", "finished_at")
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_STATUS_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    probe_id: str
    run_id: str
    run_status: str
    level: str
    reasons: _containers.RepeatedScalarFieldContainer[str]
    metrics: ProbeRunMetrics
    finished_at: _timestamp_pb2.Timestamp
    def __init__(self, probe_id: _Optional[str] = ..., run_id: _Optional[str] = ..., run_status: _Optional[str] = ..., level: _Optional[str] = ..., reasons: _Optional[_Iterable[str]] = ..., metrics: _Optional[_Union[ProbeRunMetrics, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProbeStateChanged(_message.Message):
    __slots__ = ("probe_id", "seq", "from_state", "to_state", "run_id", "reasons", "changed_at")
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    probe_id: str
    seq: int
    from_state: str
    to_state: str
    run_id: str
    reasons: _containers.RepeatedScalarFieldContainer[str]
    changed_at: _timestamp_pb2.Timestamp
    def __init__(self, probe_id: _Optional[str] = ..., seq: _Optional[int] = ..., from_state: _Optional[str] = ..., to_state: _Optional[str] = ..., run_id: _Optional[str] = ..., reasons: _Optional[_Iterable[str]] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProbeChangesAcknowledged(_message.Message):
    __slots__ = ("probe_id", "up_to_seq")
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    UP_TO_SEQ_FIELD_NUMBER: _ClassVar[int]
    probe_id: str
    up_to_seq: int
    def __init__(self, probe_id: _Optional[str] = ..., up_to_seq: _Optional[int] = ...) -> None: ...

class WebhookEndpointCreated(_message.Message):
    __slots__ = ("endpoint_id", "account_id", "mode", "url", "events", "probe_id", "description")
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    PROBE_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    endpoint_id: str
    account_id: str
    mode: str
    url: str
    events: _containers.RepeatedScalarFieldContainer[str]
    probe_id: str
    description: str
    def __init__(self, endpoint_id: _Optional[str] = ..., account_id: _Optional[str] = ..., mode: _Optional[str] = ..., url: _Optional[str] = ..., events: _Optional[_Iterable[str]] = ..., probe_id: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class WebhookEndpointDeleted(_message.Message):
    __slots__ = ("endpoint_id",)
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    endpoint_id: str
    def __init__(self, endpoint_id: _Optional[str] = ...) -> None: ...

class WebhookDeliveryScheduled(_message.Message):
    __slots__ = ("delivery_id", "endpoint_id", "event", "body", "created_at", "source_event_id")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    endpoint_id: str
    event: str
    body: str
    created_at: _timestamp_pb2.Timestamp
    source_event_id: str
    def __init__(self, delivery_id: _Optional[str] = ..., endpoint_id: _Optional[str] = ..., event: _Optional[str] = ..., body: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source_event_id: _Optional[str] = ...) -> None: ...

class WebhookAttemptStarted(_message.Message):
    __slots__ = ("delivery_id", "attempt", "worker_id", "lease_until")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_UNTIL_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    attempt: int
    worker_id: str
    lease_until: _timestamp_pb2.Timestamp
    def __init__(self, delivery_id: _Optional[str] = ..., attempt: _Optional[int] = ..., worker_id: _Optional[str] = ..., lease_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WebhookAttempted(_message.Message):
    __slots__ = ("delivery_id", "attempt", "status_code", "error", "outcome", "attempted_at", "next_attempt_at", "duration_ms")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTED_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    attempt: int
    status_code: int
    error: str
    outcome: str
    attempted_at: _timestamp_pb2.Timestamp
    next_attempt_at: _timestamp_pb2.Timestamp
    duration_ms: int
    def __init__(self, delivery_id: _Optional[str] = ..., attempt: _Optional[int] = ..., status_code: _Optional[int] = ..., error: _Optional[str] = ..., outcome: _Optional[str] = ..., attempted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_ms: _Optional[int] = ...) -> None: ...
