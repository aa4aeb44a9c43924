from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TestSpec(_message.Message):
    __slots__ = ("steps", "assertions")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    ASSERTIONS_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[Step]
    assertions: _containers.RepeatedCompositeFieldContainer[Assertion]
    def __init__(self, steps: _Optional[_Iterable[_Union[Step, _Mapping]]] = ..., assertions: _Optional[_Iterable[_Union[Assertion, _Mapping]]] = ...) -> None: ...

class Step(_message.Message):
    __slots__ = ("actions",)
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    actions: _containers.RepeatedCompositeFieldContainer[Action]
    def __init__(self, actions: _Optional[_Iterable[_Union[Action, _Mapping]]] = ...) -> None: ...

class Action(_message.Message):
    __slots__ = ("call",)
    CALL_FIELD_NUMBER: _ClassVar[int]
    call: CallAction
    def __init__(self, call: _Optional[_Union[CallAction, _Mapping]] = ...) -> None: ...

class CallAction(_message.Message):
    __slots__ = ("destination", "duration_ms", "tone_hz", "codec", "setup_timeout_ms", "count", "concurrency", "from_user", "transport")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    TONE_HZ_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    SETUP_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    FROM_USER_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    destination: str
    duration_ms: int
    tone_hz: int
    codec: str
    setup_timeout_ms: int
    count: int
    concurrency: int
    from_user: str
    transport: str
    def __init__(self, destination: _Optional[str] = ..., duration_ms: _Optional[int] = ..., tone_hz: _Optional[int] = ..., codec: _Optional[str] = ..., setup_timeout_ms: _Optional[int] = ..., count: _Optional[int] = ..., concurrency: _Optional[int] = ..., from_user: _Optional[str] = ..., transport: _Optional[str] = ...) -> None: ...

class Assertion(_message.Message):
    __slots__ = ("metric", "op", "value")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    metric: str
    op: str
    value: float
    def __init__(self, metric: _Optional[str] = ..., op: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
