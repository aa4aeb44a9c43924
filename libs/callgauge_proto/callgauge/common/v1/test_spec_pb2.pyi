from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TestSpec(_message.Message):
    __slots__ = ("steps", "assertions", "allow_unattempted_calls")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    ASSERTIONS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_UNATTEMPTED_CALLS_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[Step]
    assertions: _containers.RepeatedCompositeFieldContainer[Assertion]
    allow_unattempted_calls: bool
    def __init__(self, steps: _Optional[_Iterable[_Union[Step, _Mapping]]] = ..., assertions: _Optional[_Iterable[_Union[Assertion, _Mapping]]] = ..., allow_unattempted_calls: _Optional[bool] = ...) -> None: ...

class Step(_message.Message):
    __slots__ = ("actions",)
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    actions: _containers.RepeatedCompositeFieldContainer[Action]
    def __init__(self, actions: _Optional[_Iterable[_Union[Action, _Mapping]]] = ...) -> None: ...

class Action(_message.Message):
    __slots__ = ("call", "register", "wait_for_calls", "load")
    CALL_FIELD_NUMBER: _ClassVar[int]
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    WAIT_FOR_CALLS_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    call: CallAction
    register: RegisterAction
    wait_for_calls: WaitForCallsAction
    load: LoadAction
    def __init__(self, call: _Optional[_Union[CallAction, _Mapping]] = ..., register: _Optional[_Union[RegisterAction, _Mapping]] = ..., wait_for_calls: _Optional[_Union[WaitForCallsAction, _Mapping]] = ..., load: _Optional[_Union[LoadAction, _Mapping]] = ...) -> None: ...

class RegisterAction(_message.Message):
    __slots__ = ("target_pool", "credential_pool", "regexpire", "count", "transport", "keep_registered")
    TARGET_POOL_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_POOL_FIELD_NUMBER: _ClassVar[int]
    REGEXPIRE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    KEEP_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    target_pool: str
    credential_pool: str
    regexpire: int
    count: int
    transport: str
    keep_registered: bool
    def __init__(self, target_pool: _Optional[str] = ..., credential_pool: _Optional[str] = ..., regexpire: _Optional[int] = ..., count: _Optional[int] = ..., transport: _Optional[str] = ..., keep_registered: _Optional[bool] = ...) -> None: ...

class WaitForCallsAction(_message.Message):
    __slots__ = ("target_pool", "credential_pool", "answer_delay_ms", "tone_hz", "codec", "max_total_calls", "timeout_ms", "expect_dtmf", "hangup_by", "duration_ms", "play_file", "record", "expect_audio", "expect_audio_min", "srtp", "srtp_keying")
    TARGET_POOL_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_POOL_FIELD_NUMBER: _ClassVar[int]
    ANSWER_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    TONE_HZ_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    MAX_TOTAL_CALLS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    EXPECT_DTMF_FIELD_NUMBER: _ClassVar[int]
    HANGUP_BY_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    PLAY_FILE_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    EXPECT_AUDIO_FIELD_NUMBER: _ClassVar[int]
    EXPECT_AUDIO_MIN_FIELD_NUMBER: _ClassVar[int]
    SRTP_FIELD_NUMBER: _ClassVar[int]
    SRTP_KEYING_FIELD_NUMBER: _ClassVar[int]
    target_pool: str
    credential_pool: str
    answer_delay_ms: int
    tone_hz: int
    codec: str
    max_total_calls: int
    timeout_ms: int
    expect_dtmf: str
    hangup_by: str
    duration_ms: int
    play_file: str
    record: bool
    expect_audio: str
    expect_audio_min: float
    srtp: str
    srtp_keying: str
    def __init__(self, target_pool: _Optional[str] = ..., credential_pool: _Optional[str] = ..., answer_delay_ms: _Optional[int] = ..., tone_hz: _Optional[int] = ..., codec: _Optional[str] = ..., max_total_calls: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., expect_dtmf: _Optional[str] = ..., hangup_by: _Optional[str] = ..., duration_ms: _Optional[int] = ..., play_file: _Optional[str] = ..., record: _Optional[bool] = ..., expect_audio: _Optional[str] = ..., expect_audio_min: _Optional[float] = ..., srtp: _Optional[str] = ..., srtp_keying: _Optional[str] = ...) -> None: ...

class CallAction(_message.Message):
    __slots__ = ("dial_destination", "duration_ms", "tone_hz", "codec", "setup_timeout_ms", "max_total_calls", "concurrency", "from_user", "transport", "target_pool", "credential_pool", "dtmf", "dtmf_delay_ms", "play_file", "play_once", "record", "expect_audio", "expect_audio_min", "expect", "impairment", "srtp", "srtp_keying", "audio_bandwidth")
    DIAL_DESTINATION_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    TONE_HZ_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    SETUP_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOTAL_CALLS_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    FROM_USER_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    TARGET_POOL_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_POOL_FIELD_NUMBER: _ClassVar[int]
    DTMF_FIELD_NUMBER: _ClassVar[int]
    DTMF_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    PLAY_FILE_FIELD_NUMBER: _ClassVar[int]
    PLAY_ONCE_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    EXPECT_AUDIO_FIELD_NUMBER: _ClassVar[int]
    EXPECT_AUDIO_MIN_FIELD_NUMBER: _ClassVar[int]
    EXPECT_FIELD_NUMBER: _ClassVar[int]
    IMPAIRMENT_FIELD_NUMBER: _ClassVar[int]
    SRTP_FIELD_NUMBER: _ClassVar[int]
    SRTP_KEYING_FIELD_NUMBER: _ClassVar[int]
    AUDIO_BANDWIDTH_FIELD_NUMBER: _ClassVar[int]
    dial_destination: str
    duration_ms: int
    tone_hz: int
    codec: str
    setup_timeout_ms: int
    max_total_calls: int
    concurrency: int
    from_user: str
    transport: str
    target_pool: str
    credential_pool: str
    dtmf: str
    dtmf_delay_ms: int
    play_file: str
    play_once: bool
    record: bool
    expect_audio: str
    expect_audio_min: float
    expect: _containers.RepeatedCompositeFieldContainer[Expect]
    impairment: Impairment
    srtp: str
    srtp_keying: str
    audio_bandwidth: str
    def __init__(self, dial_destination: _Optional[str] = ..., duration_ms: _Optional[int] = ..., tone_hz: _Optional[int] = ..., codec: _Optional[str] = ..., setup_timeout_ms: _Optional[int] = ..., max_total_calls: _Optional[int] = ..., concurrency: _Optional[int] = ..., from_user: _Optional[str] = ..., transport: _Optional[str] = ..., target_pool: _Optional[str] = ..., credential_pool: _Optional[str] = ..., dtmf: _Optional[str] = ..., dtmf_delay_ms: _Optional[int] = ..., play_file: _Optional[str] = ..., play_once: _Optional[bool] = ..., record: _Optional[bool] = ..., expect_audio: _Optional[str] = ..., expect_audio_min: _Optional[float] = ..., expect: _Optional[_Iterable[_Union[Expect, _Mapping]]] = ..., impairment: _Optional[_Union[Impairment, _Mapping]] = ..., srtp: _Optional[str] = ..., srtp_keying: _Optional[str] = ..., audio_bandwidth: _Optional[str] = ...) -> None: ...

class LoadAction(_message.Message):
    __slots__ = ("dial_destination", "target_pool", "credential_pool", "cps", "max_concurrency", "ramp_up_s", "hold_s", "ramp_down_s", "max_total_calls", "duration_ms", "duration_distribution", "duration_spread_ms", "codec", "tone_hz", "setup_timeout_ms", "transport", "driver", "expect", "play_file", "record_sample", "record_max", "impairment", "srtp", "srtp_keying", "audio_bandwidth")
    DIAL_DESTINATION_FIELD_NUMBER: _ClassVar[int]
    TARGET_POOL_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_POOL_FIELD_NUMBER: _ClassVar[int]
    CPS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    RAMP_UP_S_FIELD_NUMBER: _ClassVar[int]
    HOLD_S_FIELD_NUMBER: _ClassVar[int]
    RAMP_DOWN_S_FIELD_NUMBER: _ClassVar[int]
    MAX_TOTAL_CALLS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    DURATION_DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    DURATION_SPREAD_MS_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    TONE_HZ_FIELD_NUMBER: _ClassVar[int]
    SETUP_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    DRIVER_FIELD_NUMBER: _ClassVar[int]
    EXPECT_FIELD_NUMBER: _ClassVar[int]
    PLAY_FILE_FIELD_NUMBER: _ClassVar[int]
    RECORD_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    RECORD_MAX_FIELD_NUMBER: _ClassVar[int]
    IMPAIRMENT_FIELD_NUMBER: _ClassVar[int]
    SRTP_FIELD_NUMBER: _ClassVar[int]
    SRTP_KEYING_FIELD_NUMBER: _ClassVar[int]
    AUDIO_BANDWIDTH_FIELD_NUMBER: _ClassVar[int]
    dial_destination: str
    target_pool: str
    credential_pool: str
    cps: float
    max_concurrency: int
    ramp_up_s: int
    hold_s: int
    ramp_down_s: int
    max_total_calls: int
    duration_ms: int
    duration_distribution: str
    duration_spread_ms: int
    codec: str
    tone_hz: int
    setup_timeout_ms: int
    transport: str
    driver: str
    expect: _containers.RepeatedCompositeFieldContainer[Expect]
    play_file: str
    record_sample: float
    record_max: int
    impairment: Impairment
    srtp: str
    srtp_keying: str
    audio_bandwidth: str
    def __init__(self, dial_destination: _Optional[str] = ..., target_pool: _Optional[str] = ..., credential_pool: _Optional[str] = ..., cps: _Optional[float] = ..., max_concurrency: _Optional[int] = ..., ramp_up_s: _Optional[int] = ..., hold_s: _Optional[int] = ..., ramp_down_s: _Optional[int] = ..., max_total_calls: _Optional[int] = ..., duration_ms: _Optional[int] = ..., duration_distribution: _Optional[str] = ..., duration_spread_ms: _Optional[int] = ..., codec: _Optional[str] = ..., tone_hz: _Optional[int] = ..., setup_timeout_ms: _Optional[int] = ..., transport: _Optional[str] = ..., driver: _Optional[str] = ..., expect: _Optional[_Iterable[_Union[Expect, _Mapping]]] = ..., play_file: _Optional[str] = ..., record_sample: _Optional[float] = ..., record_max: _Optional[int] = ..., impairment: _Optional[_Union[Impairment, _Mapping]] = ..., srtp: _Optional[str] = ..., srtp_keying: _Optional[str] = ..., audio_bandwidth: _Optional[str] = ...) -> None: ...

class Impairment(_message.Message):
    __slots__ = ("loss_pct", "burst_packets", "jitter_ms", "delay_ms", "direction", "seed")
    LOSS_PCT_FIELD_NUMBER: _ClassVar[int]
    BURST_PACKETS_FIELD_NUMBER: _ClassVar[int]
    JITTER_MS_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    loss_pct: float
    burst_packets: float
    jitter_ms: float
    delay_ms: float
    direction: str
    seed: int
    def __init__(self, loss_pct: _Optional[float] = ..., burst_packets: _Optional[float] = ..., jitter_ms: _Optional[float] = ..., delay_ms: _Optional[float] = ..., direction: _Optional[str] = ..., seed: _Optional[int] = ...) -> None: ...

class Expect(_message.Message):
    __slots__ = ("outcome", "sip_code")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    SIP_CODE_FIELD_NUMBER: _ClassVar[int]
    outcome: str
    sip_code: int
    def __init__(self, outcome: _Optional[str] = ..., sip_code: _Optional[int] = ...) -> None: ...

class Assertion(_message.Message):
    __slots__ = ("metric", "op", "value")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    metric: str
    op: str
    value: float
    def __init__(self, metric: _Optional[str] = ..., op: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...

class ResolvedTarget(_message.Message):
    __slots__ = ("id", "host", "port", "transport", "domain", "tls_verify")
    ID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    TLS_VERIFY_FIELD_NUMBER: _ClassVar[int]
    id: str
    host: str
    port: int
    transport: str
    domain: str
    tls_verify: bool
    def __init__(self, id: _Optional[str] = ..., host: _Optional[str] = ..., port: _Optional[int] = ..., transport: _Optional[str] = ..., domain: _Optional[str] = ..., tls_verify: _Optional[bool] = ...) -> None: ...

class ResolvedCredential(_message.Message):
    __slots__ = ("username", "auth_username", "domain")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    AUTH_USERNAME_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    username: str
    auth_username: str
    domain: str
    def __init__(self, username: _Optional[str] = ..., auth_username: _Optional[str] = ..., domain: _Optional[str] = ...) -> None: ...

class ResolvedPool(_message.Message):
    __slots__ = ("id", "credentials")
    ID_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    id: str
    credentials: _containers.RepeatedCompositeFieldContainer[ResolvedCredential]
    def __init__(self, id: _Optional[str] = ..., credentials: _Optional[_Iterable[_Union[ResolvedCredential, _Mapping]]] = ...) -> None: ...

class RunCredentials(_message.Message):
    __slots__ = ("run_id", "passwords")
    class PasswordsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PASSWORDS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    passwords: _containers.ScalarMap[str, str]
    def __init__(self, run_id: _Optional[str] = ..., passwords: _Optional[_Mapping[str, str]] = ...) -> None: ...
