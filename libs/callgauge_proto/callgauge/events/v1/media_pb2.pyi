import datetime

from callgauge_proto.callgauge.media.v1 import measurements_pb2 as _measurements_pb2
from callgauge_proto.callgauge.events.v1 import runs_pb2 as _runs_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunAccepted(_message.Message):
    __slots__ = ("run_id", "engine_id", "planned_calls")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    PLANNED_CALLS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    engine_id: str
    planned_calls: int
    def __init__(self, run_id: _Optional[str] = ..., engine_id: _Optional[str] = ..., planned_calls: _Optional[int] = ...) -> None: ...

class RunLeaseRenewed(_message.Message):
    __slots__ = ("run_id", "engine_id", "lease_s")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_S_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    engine_id: str
    lease_s: int
    def __init__(self, run_id: _Optional[str] = ..., engine_id: _Optional[str] = ..., lease_s: _Optional[int] = ...) -> None: ...

class RunMediaStarted(_message.Message):
    __slots__ = ("run_id", "engine_id")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    engine_id: str
    def __init__(self, run_id: _Optional[str] = ..., engine_id: _Optional[str] = ...) -> None: ...

class CallMeasured(_message.Message):
    __slots__ = ("run_id", "engine_id", "call")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    engine_id: str
    call: _measurements_pb2.CallMeasurement
    def __init__(self, run_id: _Optional[str] = ..., engine_id: _Optional[str] = ..., call: _Optional[_Union[_measurements_pb2.CallMeasurement, _Mapping]] = ...) -> None: ...

class RegistrationMeasured(_message.Message):
    __slots__ = ("run_id", "engine_id", "registration")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    engine_id: str
    registration: _measurements_pb2.RegistrationMeasurement
    def __init__(self, run_id: _Optional[str] = ..., engine_id: _Optional[str] = ..., registration: _Optional[_Union[_measurements_pb2.RegistrationMeasurement, _Mapping]] = ...) -> None: ...

class RunMediaFinished(_message.Message):
    __slots__ = ("run_id", "engine_id", "summary", "error", "ended_by")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ENDED_BY_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    engine_id: str
    summary: _measurements_pb2.RunSummary
    error: str
    ended_by: str
    def __init__(self, run_id: _Optional[str] = ..., engine_id: _Optional[str] = ..., summary: _Optional[_Union[_measurements_pb2.RunSummary, _Mapping]] = ..., error: _Optional[str] = ..., ended_by: _Optional[str] = ...) -> None: ...

class CallAnswered(_message.Message):
    __slots__ = ("run_id", "engine_id", "call_id", "answered_at")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_AT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    engine_id: str
    call_id: str
    answered_at: _timestamp_pb2.Timestamp
    def __init__(self, run_id: _Optional[str] = ..., engine_id: _Optional[str] = ..., call_id: _Optional[str] = ..., answered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CallProgress(_message.Message):
    __slots__ = ("run_id", "engine_id", "call_id", "up_ms")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    UP_MS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    engine_id: str
    call_id: str
    up_ms: int
    def __init__(self, run_id: _Optional[str] = ..., engine_id: _Optional[str] = ..., call_id: _Optional[str] = ..., up_ms: _Optional[int] = ...) -> None: ...

class RunSecondStats(_message.Message):
    __slots__ = ("run_id", "engine_id", "second", "at", "active_calls", "attempts", "answers", "failures", "calls_ended", "jitter_ms_mean", "jitter_ms_max", "loss_pct", "rx_packets", "lost_packets", "driver")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    SECOND_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_CALLS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    CALLS_ENDED_FIELD_NUMBER: _ClassVar[int]
    JITTER_MS_MEAN_FIELD_NUMBER: _ClassVar[int]
    JITTER_MS_MAX_FIELD_NUMBER: _ClassVar[int]
    LOSS_PCT_FIELD_NUMBER: _ClassVar[int]
    RX_PACKETS_FIELD_NUMBER: _ClassVar[int]
    LOST_PACKETS_FIELD_NUMBER: _ClassVar[int]
    DRIVER_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    engine_id: str
    second: int
    at: _timestamp_pb2.Timestamp
    active_calls: int
    attempts: int
    answers: int
    failures: int
    calls_ended: int
    jitter_ms_mean: float
    jitter_ms_max: float
    loss_pct: float
    rx_packets: int
    lost_packets: int
    driver: str
    def __init__(self, run_id: _Optional[str] = ..., engine_id: _Optional[str] = ..., second: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., active_calls: _Optional[int] = ..., attempts: _Optional[int] = ..., answers: _Optional[int] = ..., failures: _Optional[int] = ..., calls_ended: _Optional[int] = ..., jitter_ms_mean: _Optional[float] = ..., jitter_ms_max: _Optional[float] = ..., loss_pct: _Optional[float] = ..., rx_packets: _Optional[int] = ..., lost_packets: _Optional[int] = ..., driver: _Optional[str] = ...) -> None: ...

class LoadShardAssigned(_message.Message):
    __slots__ = ("run_id", "owner_engine_id", "shard", "shards", "request", "start_at")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    SHARD_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    START_AT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    owner_engine_id: str
    shard: int
    shards: int
    request: _runs_pb2.RunRequested
    start_at: _timestamp_pb2.Timestamp
    def __init__(self, run_id: _Optional[str] = ..., owner_engine_id: _Optional[str] = ..., shard: _Optional[int] = ..., shards: _Optional[int] = ..., request: _Optional[_Union[_runs_pb2.RunRequested, _Mapping]] = ..., start_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LoadShardFinished(_message.Message):
    __slots__ = ("run_id", "engine_id", "shard", "shards", "summary", "error")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    SHARD_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    engine_id: str
    shard: int
    shards: int
    summary: _measurements_pb2.RunSummary
    error: str
    def __init__(self, run_id: _Optional[str] = ..., engine_id: _Optional[str] = ..., shard: _Optional[int] = ..., shards: _Optional[int] = ..., summary: _Optional[_Union[_measurements_pb2.RunSummary, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...
