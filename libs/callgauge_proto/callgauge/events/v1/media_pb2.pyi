from callgauge_proto.callgauge.media.v1 import measurements_pb2 as _measurements_pb2
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

class RunMediaFinished(_message.Message):
    __slots__ = ("run_id", "engine_id", "summary", "error")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    engine_id: str
    summary: _measurements_pb2.RunSummary
    error: str
    def __init__(self, run_id: _Optional[str] = ..., engine_id: _Optional[str] = ..., summary: _Optional[_Union[_measurements_pb2.RunSummary, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...
