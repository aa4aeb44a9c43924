import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as _test_spec_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetWalletRequest(_message.Message):
    __slots__ = ("account_id", "mode")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ...) -> None: ...

class AutoTopUp(_message.Message):
    __slots__ = ("enabled", "threshold_minor", "amount_minor")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_MINOR_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    threshold_minor: int
    amount_minor: int
    def __init__(self, enabled: _Optional[bool] = ..., threshold_minor: _Optional[int] = ..., amount_minor: _Optional[int] = ...) -> None: ...

class Wallet(_message.Message):
    __slots__ = ("account_id", "balance_minor", "currency", "version", "reserved_minor", "available_minor", "mode", "auto_top_up", "exhausted", "billing_mode")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    BALANCE_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RESERVED_MINOR_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_MINOR_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    AUTO_TOP_UP_FIELD_NUMBER: _ClassVar[int]
    EXHAUSTED_FIELD_NUMBER: _ClassVar[int]
    BILLING_MODE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    balance_minor: int
    currency: str
    version: int
    reserved_minor: int
    available_minor: int
    mode: str
    auto_top_up: AutoTopUp
    exhausted: bool
    billing_mode: str
    def __init__(self, account_id: _Optional[str] = ..., balance_minor: _Optional[int] = ..., currency: _Optional[str] = ..., version: _Optional[int] = ..., reserved_minor: _Optional[int] = ..., available_minor: _Optional[int] = ..., mode: _Optional[str] = ..., auto_top_up: _Optional[_Union[AutoTopUp, _Mapping]] = ..., exhausted: _Optional[bool] = ..., billing_mode: _Optional[str] = ...) -> None: ...

class CreditRequest(_message.Message):
    __slots__ = ("account_id", "mode", "amount_minor", "currency", "credit_id", "reason")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    CREDIT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    amount_minor: int
    currency: str
    credit_id: str
    reason: str
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ..., amount_minor: _Optional[int] = ..., currency: _Optional[str] = ..., credit_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class TopUpRequest(_message.Message):
    __slots__ = ("account_id", "mode", "amount_minor", "currency", "top_up_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    TOP_UP_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    amount_minor: int
    currency: str
    top_up_id: str
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ..., amount_minor: _Optional[int] = ..., currency: _Optional[str] = ..., top_up_id: _Optional[str] = ...) -> None: ...

class SetAutoTopUpRequest(_message.Message):
    __slots__ = ("account_id", "mode", "enabled", "threshold_minor", "amount_minor", "currency")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_MINOR_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    enabled: bool
    threshold_minor: int
    amount_minor: int
    currency: str
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ..., enabled: _Optional[bool] = ..., threshold_minor: _Optional[int] = ..., amount_minor: _Optional[int] = ..., currency: _Optional[str] = ...) -> None: ...

class ReserveRequest(_message.Message):
    __slots__ = ("account_id", "mode", "run_id", "project_id", "test_id", "spec")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    run_id: str
    project_id: str
    test_id: str
    spec: _test_spec_pb2.TestSpec
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ..., run_id: _Optional[str] = ..., project_id: _Optional[str] = ..., test_id: _Optional[str] = ..., spec: _Optional[_Union[_test_spec_pb2.TestSpec, _Mapping]] = ...) -> None: ...

class Reservation(_message.Message):
    __slots__ = ("run_id", "amount_minor", "currency", "available_after_minor")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_AFTER_MINOR_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    amount_minor: int
    currency: str
    available_after_minor: int
    def __init__(self, run_id: _Optional[str] = ..., amount_minor: _Optional[int] = ..., currency: _Optional[str] = ..., available_after_minor: _Optional[int] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("account_id", "mode", "run_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    run_id: str
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ..., run_id: _Optional[str] = ...) -> None: ...

class ChargeRequest(_message.Message):
    __slots__ = ("account_id", "mode", "run_id", "kind", "quantity", "charge_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    CHARGE_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    run_id: str
    kind: str
    quantity: int
    charge_id: str
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ..., run_id: _Optional[str] = ..., kind: _Optional[str] = ..., quantity: _Optional[int] = ..., charge_id: _Optional[str] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("account_id", "mode", "to", "group_by")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    to: _timestamp_pb2.Timestamp
    group_by: str
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., group_by: _Optional[str] = ..., **kwargs) -> None: ...

class UsageGroup(_message.Message):
    __slots__ = ("key", "amount_minor", "call_seconds", "registrations", "probe_runs", "charges")
    KEY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    CALL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REGISTRATIONS_FIELD_NUMBER: _ClassVar[int]
    PROBE_RUNS_FIELD_NUMBER: _ClassVar[int]
    CHARGES_FIELD_NUMBER: _ClassVar[int]
    key: str
    amount_minor: int
    call_seconds: int
    registrations: int
    probe_runs: int
    charges: int
    def __init__(self, key: _Optional[str] = ..., amount_minor: _Optional[int] = ..., call_seconds: _Optional[int] = ..., registrations: _Optional[int] = ..., probe_runs: _Optional[int] = ..., charges: _Optional[int] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("currency", "total_minor", "groups", "mode")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MINOR_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    currency: str
    total_minor: int
    groups: _containers.RepeatedCompositeFieldContainer[UsageGroup]
    mode: str
    def __init__(self, currency: _Optional[str] = ..., total_minor: _Optional[int] = ..., groups: _Optional[_Iterable[_Union[UsageGroup, _Mapping]]] = ..., mode: _Optional[str] = ...) -> None: ...

class ListUsageRequest(_message.Message):
    __slots__ = ("account_id", "mode", "page", "per_page")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PER_PAGE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    page: int
    per_page: int
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ..., page: _Optional[int] = ..., per_page: _Optional[int] = ...) -> None: ...

class LedgerEntry(_message.Message):
    __slots__ = ("id", "type", "at", "amount_minor", "balance_after_minor", "description", "run_id", "kind", "quantity")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_MINOR_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    at: _timestamp_pb2.Timestamp
    amount_minor: int
    balance_after_minor: int
    description: str
    run_id: str
    kind: str
    quantity: int
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., amount_minor: _Optional[int] = ..., balance_after_minor: _Optional[int] = ..., description: _Optional[str] = ..., run_id: _Optional[str] = ..., kind: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class ListUsageResponse(_message.Message):
    __slots__ = ("entries", "total", "currency")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[LedgerEntry]
    total: int
    currency: str
    def __init__(self, entries: _Optional[_Iterable[_Union[LedgerEntry, _Mapping]]] = ..., total: _Optional[int] = ..., currency: _Optional[str] = ...) -> None: ...
