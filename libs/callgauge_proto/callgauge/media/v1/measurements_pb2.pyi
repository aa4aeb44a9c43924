import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as _test_spec_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CallOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CALL_OUTCOME_UNSPECIFIED: _ClassVar[CallOutcome]
    SUCCESS: _ClassVar[CallOutcome]
    REGISTRATION_FAILED: _ClassVar[CallOutcome]
    CALL_FAILED: _ClassVar[CallOutcome]
    NEGOTIATION_FAILED: _ClassVar[CallOutcome]
    TIMEOUT: _ClassVar[CallOutcome]
CALL_OUTCOME_UNSPECIFIED: CallOutcome
SUCCESS: CallOutcome
REGISTRATION_FAILED: CallOutcome
CALL_FAILED: CallOutcome
NEGOTIATION_FAILED: CallOutcome
TIMEOUT: CallOutcome

class CallMeasurement(_message.Message):
    __slots__ = ("call_id", "step", "action", "index", "destination", "outcome", "sip_code", "sip_reason", "setup_time_ms", "post_dial_delay_ms", "duration_ms", "codec", "tx_packets", "rx_packets", "rx_lost_packets", "loss_pct", "jitter_ms", "rtt_ms", "r_factor", "mos", "one_way_audio", "started_at", "ended_at", "detail", "dtmf_sent", "dtmf_received", "dtmf_ok", "sip_ladder", "sip_call_id", "role", "mos_lqo", "audio_delay_ms", "audio_match", "audio_silent", "audio_clipped", "audio_one_way", "recorded_legs", "audio_score_cpu_s", "callee_mos_lqo", "callee_audio_match", "callee_audio_silent", "impairment", "transport", "srtp", "srtp_suite", "srtp_keying", "codec_clock_hz", "audio_bandwidth")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    SIP_CODE_FIELD_NUMBER: _ClassVar[int]
    SIP_REASON_FIELD_NUMBER: _ClassVar[int]
    SETUP_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    POST_DIAL_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    TX_PACKETS_FIELD_NUMBER: _ClassVar[int]
    RX_PACKETS_FIELD_NUMBER: _ClassVar[int]
    RX_LOST_PACKETS_FIELD_NUMBER: _ClassVar[int]
    LOSS_PCT_FIELD_NUMBER: _ClassVar[int]
    JITTER_MS_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    R_FACTOR_FIELD_NUMBER: _ClassVar[int]
    MOS_FIELD_NUMBER: _ClassVar[int]
    ONE_WAY_AUDIO_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    DTMF_SENT_FIELD_NUMBER: _ClassVar[int]
    DTMF_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    DTMF_OK_FIELD_NUMBER: _ClassVar[int]
    SIP_LADDER_FIELD_NUMBER: _ClassVar[int]
    SIP_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MOS_LQO_FIELD_NUMBER: _ClassVar[int]
    AUDIO_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_MATCH_FIELD_NUMBER: _ClassVar[int]
    AUDIO_SILENT_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CLIPPED_FIELD_NUMBER: _ClassVar[int]
    AUDIO_ONE_WAY_FIELD_NUMBER: _ClassVar[int]
    RECORDED_LEGS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_SCORE_CPU_S_FIELD_NUMBER: _ClassVar[int]
    CALLEE_MOS_LQO_FIELD_NUMBER: _ClassVar[int]
    CALLEE_AUDIO_MATCH_FIELD_NUMBER: _ClassVar[int]
    CALLEE_AUDIO_SILENT_FIELD_NUMBER: _ClassVar[int]
    IMPAIRMENT_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    SRTP_FIELD_NUMBER: _ClassVar[int]
    SRTP_SUITE_FIELD_NUMBER: _ClassVar[int]
    SRTP_KEYING_FIELD_NUMBER: _ClassVar[int]
    CODEC_CLOCK_HZ_FIELD_NUMBER: _ClassVar[int]
    AUDIO_BANDWIDTH_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    step: int
    action: int
    index: int
    destination: str
    outcome: CallOutcome
    sip_code: int
    sip_reason: str
    setup_time_ms: float
    post_dial_delay_ms: float
    duration_ms: float
    codec: str
    tx_packets: int
    rx_packets: int
    rx_lost_packets: int
    loss_pct: float
    jitter_ms: float
    rtt_ms: float
    r_factor: float
    mos: float
    one_way_audio: bool
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    detail: str
    dtmf_sent: str
    dtmf_received: str
    dtmf_ok: bool
    sip_ladder: _containers.RepeatedCompositeFieldContainer[SipMessage]
    sip_call_id: str
    role: str
    mos_lqo: float
    audio_delay_ms: float
    audio_match: float
    audio_silent: bool
    audio_clipped: bool
    audio_one_way: bool
    recorded_legs: str
    audio_score_cpu_s: float
    callee_mos_lqo: float
    callee_audio_match: float
    callee_audio_silent: bool
    impairment: AppliedImpairment
    transport: str
    srtp: bool
    srtp_suite: str
    srtp_keying: str
    codec_clock_hz: int
    audio_bandwidth: str
    def __init__(self, call_id: _Optional[str] = ..., step: _Optional[int] = ..., action: _Optional[int] = ..., index: _Optional[int] = ..., destination: _Optional[str] = ..., outcome: _Optional[_Union[CallOutcome, str]] = ..., sip_code: _Optional[int] = ..., sip_reason: _Optional[str] = ..., setup_time_ms: _Optional[float] = ..., post_dial_delay_ms: _Optional[float] = ..., duration_ms: _Optional[float] = ..., codec: _Optional[str] = ..., tx_packets: _Optional[int] = ..., rx_packets: _Optional[int] = ..., rx_lost_packets: _Optional[int] = ..., loss_pct: _Optional[float] = ..., jitter_ms: _Optional[float] = ..., rtt_ms: _Optional[float] = ..., r_factor: _Optional[float] = ..., mos: _Optional[float] = ..., one_way_audio: _Optional[bool] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., detail: _Optional[str] = ..., dtmf_sent: _Optional[str] = ..., dtmf_received: _Optional[str] = ..., dtmf_ok: _Optional[bool] = ..., sip_ladder: _Optional[_Iterable[_Union[SipMessage, _Mapping]]] = ..., sip_call_id: _Optional[str] = ..., role: _Optional[str] = ..., mos_lqo: _Optional[float] = ..., audio_delay_ms: _Optional[float] = ..., audio_match: _Optional[float] = ..., audio_silent: _Optional[bool] = ..., audio_clipped: _Optional[bool] = ..., audio_one_way: _Optional[bool] = ..., recorded_legs: _Optional[str] = ..., audio_score_cpu_s: _Optional[float] = ..., callee_mos_lqo: _Optional[float] = ..., callee_audio_match: _Optional[float] = ..., callee_audio_silent: _Optional[bool] = ..., impairment: _Optional[_Union[AppliedImpairment, _Mapping]] = ..., transport: _Optional[str] = ..., srtp: _Optional[bool] = ..., srtp_suite: _Optional[str] = ..., srtp_keying: _Optional[str] = ..., codec_clock_hz: _Optional[int] = ..., audio_bandwidth: _Optional[str] = ...) -> None: ...

class AppliedImpairment(_message.Message):
    __slots__ = ("asked", "rx_packets", "rx_dropped", "rx_loss_pct", "tx_packets", "tx_dropped", "tx_loss_pct", "rx_bypassed", "seed")
    ASKED_FIELD_NUMBER: _ClassVar[int]
    RX_PACKETS_FIELD_NUMBER: _ClassVar[int]
    RX_DROPPED_FIELD_NUMBER: _ClassVar[int]
    RX_LOSS_PCT_FIELD_NUMBER: _ClassVar[int]
    TX_PACKETS_FIELD_NUMBER: _ClassVar[int]
    TX_DROPPED_FIELD_NUMBER: _ClassVar[int]
    TX_LOSS_PCT_FIELD_NUMBER: _ClassVar[int]
    RX_BYPASSED_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    asked: _test_spec_pb2.Impairment
    rx_packets: int
    rx_dropped: int
    rx_loss_pct: float
    tx_packets: int
    tx_dropped: int
    tx_loss_pct: float
    rx_bypassed: int
    seed: int
    def __init__(self, asked: _Optional[_Union[_test_spec_pb2.Impairment, _Mapping]] = ..., rx_packets: _Optional[int] = ..., rx_dropped: _Optional[int] = ..., rx_loss_pct: _Optional[float] = ..., tx_packets: _Optional[int] = ..., tx_dropped: _Optional[int] = ..., tx_loss_pct: _Optional[float] = ..., rx_bypassed: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class SipMessage(_message.Message):
    __slots__ = ("at_ms", "direction", "summary", "peer", "text", "truncated")
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    at_ms: float
    direction: str
    summary: str
    peer: str
    text: str
    truncated: bool
    def __init__(self, at_ms: _Optional[float] = ..., direction: _Optional[str] = ..., summary: _Optional[str] = ..., peer: _Optional[str] = ..., text: _Optional[str] = ..., truncated: _Optional[bool] = ...) -> None: ...

class RegistrationMeasurement(_message.Message):
    __slots__ = ("registration_id", "step", "action", "index", "kind", "user", "registrar", "transport", "outcome", "sip_code", "sip_reason", "register_time_ms", "expires_requested", "expires", "refreshes", "refresh_failures", "unregistered", "unregister_code", "unregister_reason", "kept", "sip_call_id", "sip_ladder", "started_at", "ended_at", "detail", "calls_answered")
    REGISTRATION_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    REGISTRAR_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    SIP_CODE_FIELD_NUMBER: _ClassVar[int]
    SIP_REASON_FIELD_NUMBER: _ClassVar[int]
    REGISTER_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    REFRESHES_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FAILURES_FIELD_NUMBER: _ClassVar[int]
    UNREGISTERED_FIELD_NUMBER: _ClassVar[int]
    UNREGISTER_CODE_FIELD_NUMBER: _ClassVar[int]
    UNREGISTER_REASON_FIELD_NUMBER: _ClassVar[int]
    KEPT_FIELD_NUMBER: _ClassVar[int]
    SIP_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    SIP_LADDER_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    CALLS_ANSWERED_FIELD_NUMBER: _ClassVar[int]
    registration_id: str
    step: int
    action: int
    index: int
    kind: str
    user: str
    registrar: str
    transport: str
    outcome: CallOutcome
    sip_code: int
    sip_reason: str
    register_time_ms: float
    expires_requested: int
    expires: int
    refreshes: int
    refresh_failures: int
    unregistered: bool
    unregister_code: int
    unregister_reason: str
    kept: bool
    sip_call_id: str
    sip_ladder: _containers.RepeatedCompositeFieldContainer[SipMessage]
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    detail: str
    calls_answered: int
    def __init__(self, registration_id: _Optional[str] = ..., step: _Optional[int] = ..., action: _Optional[int] = ..., index: _Optional[int] = ..., kind: _Optional[str] = ..., user: _Optional[str] = ..., registrar: _Optional[str] = ..., transport: _Optional[str] = ..., outcome: _Optional[_Union[CallOutcome, str]] = ..., sip_code: _Optional[int] = ..., sip_reason: _Optional[str] = ..., register_time_ms: _Optional[float] = ..., expires_requested: _Optional[int] = ..., expires: _Optional[int] = ..., refreshes: _Optional[int] = ..., refresh_failures: _Optional[int] = ..., unregistered: _Optional[bool] = ..., unregister_code: _Optional[int] = ..., unregister_reason: _Optional[str] = ..., kept: _Optional[bool] = ..., sip_call_id: _Optional[str] = ..., sip_ladder: _Optional[_Iterable[_Union[SipMessage, _Mapping]]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., detail: _Optional[str] = ..., calls_answered: _Optional[int] = ...) -> None: ...

class RunSummary(_message.Message):
    __slots__ = ("calls_attempted", "calls_answered", "calls_failed", "asr", "acd_ms", "mos_mean", "mos_min", "setup_p50_ms", "setup_p95_ms", "rx_packets", "tx_packets", "loss_pct_max", "jitter_ms_max", "jitter_ms_mean", "sip_codes", "outcomes", "mos_p5", "setup_p99_ms", "post_dial_delay_p95_ms", "calls_planned", "peak_concurrency", "driver", "engines", "registrations_ok", "registrations_failed", "register_p50_ms", "register_p95_ms", "not_attempted", "mos_lqo_mean", "mos_lqo_min", "calls_audio_recorded")
    class SipCodesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    class OutcomesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class EnginesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class NotAttemptedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    CALLS_ATTEMPTED_FIELD_NUMBER: _ClassVar[int]
    CALLS_ANSWERED_FIELD_NUMBER: _ClassVar[int]
    CALLS_FAILED_FIELD_NUMBER: _ClassVar[int]
    ASR_FIELD_NUMBER: _ClassVar[int]
    ACD_MS_FIELD_NUMBER: _ClassVar[int]
    MOS_MEAN_FIELD_NUMBER: _ClassVar[int]
    MOS_MIN_FIELD_NUMBER: _ClassVar[int]
    SETUP_P50_MS_FIELD_NUMBER: _ClassVar[int]
    SETUP_P95_MS_FIELD_NUMBER: _ClassVar[int]
    RX_PACKETS_FIELD_NUMBER: _ClassVar[int]
    TX_PACKETS_FIELD_NUMBER: _ClassVar[int]
    LOSS_PCT_MAX_FIELD_NUMBER: _ClassVar[int]
    JITTER_MS_MAX_FIELD_NUMBER: _ClassVar[int]
    JITTER_MS_MEAN_FIELD_NUMBER: _ClassVar[int]
    SIP_CODES_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    MOS_P5_FIELD_NUMBER: _ClassVar[int]
    SETUP_P99_MS_FIELD_NUMBER: _ClassVar[int]
    POST_DIAL_DELAY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    CALLS_PLANNED_FIELD_NUMBER: _ClassVar[int]
    PEAK_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    DRIVER_FIELD_NUMBER: _ClassVar[int]
    ENGINES_FIELD_NUMBER: _ClassVar[int]
    REGISTRATIONS_OK_FIELD_NUMBER: _ClassVar[int]
    REGISTRATIONS_FAILED_FIELD_NUMBER: _ClassVar[int]
    REGISTER_P50_MS_FIELD_NUMBER: _ClassVar[int]
    REGISTER_P95_MS_FIELD_NUMBER: _ClassVar[int]
    NOT_ATTEMPTED_FIELD_NUMBER: _ClassVar[int]
    MOS_LQO_MEAN_FIELD_NUMBER: _ClassVar[int]
    MOS_LQO_MIN_FIELD_NUMBER: _ClassVar[int]
    CALLS_AUDIO_RECORDED_FIELD_NUMBER: _ClassVar[int]
    calls_attempted: int
    calls_answered: int
    calls_failed: int
    asr: float
    acd_ms: float
    mos_mean: float
    mos_min: float
    setup_p50_ms: float
    setup_p95_ms: float
    rx_packets: int
    tx_packets: int
    loss_pct_max: float
    jitter_ms_max: float
    jitter_ms_mean: float
    sip_codes: _containers.ScalarMap[int, int]
    outcomes: _containers.ScalarMap[str, int]
    mos_p5: float
    setup_p99_ms: float
    post_dial_delay_p95_ms: float
    calls_planned: int
    peak_concurrency: int
    driver: str
    engines: _containers.ScalarMap[str, int]
    registrations_ok: int
    registrations_failed: int
    register_p50_ms: float
    register_p95_ms: float
    not_attempted: _containers.ScalarMap[str, int]
    mos_lqo_mean: float
    mos_lqo_min: float
    calls_audio_recorded: int
    def __init__(self, calls_attempted: _Optional[int] = ..., calls_answered: _Optional[int] = ..., calls_failed: _Optional[int] = ..., asr: _Optional[float] = ..., acd_ms: _Optional[float] = ..., mos_mean: _Optional[float] = ..., mos_min: _Optional[float] = ..., setup_p50_ms: _Optional[float] = ..., setup_p95_ms: _Optional[float] = ..., rx_packets: _Optional[int] = ..., tx_packets: _Optional[int] = ..., loss_pct_max: _Optional[float] = ..., jitter_ms_max: _Optional[float] = ..., jitter_ms_mean: _Optional[float] = ..., sip_codes: _Optional[_Mapping[int, int]] = ..., outcomes: _Optional[_Mapping[str, int]] = ..., mos_p5: _Optional[float] = ..., setup_p99_ms: _Optional[float] = ..., post_dial_delay_p95_ms: _Optional[float] = ..., calls_planned: _Optional[int] = ..., peak_concurrency: _Optional[int] = ..., driver: _Optional[str] = ..., engines: _Optional[_Mapping[str, int]] = ..., registrations_ok: _Optional[int] = ..., registrations_failed: _Optional[int] = ..., register_p50_ms: _Optional[float] = ..., register_p95_ms: _Optional[float] = ..., not_attempted: _Optional[_Mapping[str, int]] = ..., mos_lqo_mean: _Optional[float] = ..., mos_lqo_min: _Optional[float] = ..., calls_audio_recorded: _Optional[int] = ...) -> None: ...
