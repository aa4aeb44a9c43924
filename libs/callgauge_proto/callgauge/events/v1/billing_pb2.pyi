from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class WalletOpened(_message.Message):
    __slots__ = ("account_id", "currency", "mode")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    currency: str
    mode: str
    def __init__(self, account_id: _Optional[str] = ..., currency: _Optional[str] = ..., mode: _Optional[str] = ...) -> None: ...

class WalletCredited(_message.Message):
    __slots__ = ("account_id", "amount_minor", "currency", "reason", "top_up_id", "balance_after_minor", "mode")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TOP_UP_ID_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_MINOR_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    amount_minor: int
    currency: str
    reason: str
    top_up_id: str
    balance_after_minor: int
    mode: str
    def __init__(self, account_id: _Optional[str] = ..., amount_minor: _Optional[int] = ..., currency: _Optional[str] = ..., reason: _Optional[str] = ..., top_up_id: _Optional[str] = ..., balance_after_minor: _Optional[int] = ..., mode: _Optional[str] = ...) -> None: ...

class FundsReserved(_message.Message):
    __slots__ = ("account_id", "run_id", "amount_minor", "currency", "project_id", "test_id", "available_after_minor", "mode")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_AFTER_MINOR_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    run_id: str
    amount_minor: int
    currency: str
    project_id: str
    test_id: str
    available_after_minor: int
    mode: str
    def __init__(self, account_id: _Optional[str] = ..., run_id: _Optional[str] = ..., amount_minor: _Optional[int] = ..., currency: _Optional[str] = ..., project_id: _Optional[str] = ..., test_id: _Optional[str] = ..., available_after_minor: _Optional[int] = ..., mode: _Optional[str] = ...) -> None: ...

class ReservationSettled(_message.Message):
    __slots__ = ("account_id", "run_id", "reserved_minor", "charged_minor", "released_minor", "currency", "run_outcome", "mode")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVED_MINOR_FIELD_NUMBER: _ClassVar[int]
    CHARGED_MINOR_FIELD_NUMBER: _ClassVar[int]
    RELEASED_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    RUN_OUTCOME_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    run_id: str
    reserved_minor: int
    charged_minor: int
    released_minor: int
    currency: str
    run_outcome: str
    mode: str
    def __init__(self, account_id: _Optional[str] = ..., run_id: _Optional[str] = ..., reserved_minor: _Optional[int] = ..., charged_minor: _Optional[int] = ..., released_minor: _Optional[int] = ..., currency: _Optional[str] = ..., run_outcome: _Optional[str] = ..., mode: _Optional[str] = ...) -> None: ...

class UsageCharged(_message.Message):
    __slots__ = ("account_id", "run_id", "call_id", "kind", "quantity", "total_quantity", "unit_price_minor", "amount_minor", "uncollected_minor", "currency", "balance_after_minor", "project_id", "test_id", "mode", "source_event_id", "final")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    TOTAL_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    UNCOLLECTED_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_MINOR_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    run_id: str
    call_id: str
    kind: str
    quantity: int
    total_quantity: int
    unit_price_minor: int
    amount_minor: int
    uncollected_minor: int
    currency: str
    balance_after_minor: int
    project_id: str
    test_id: str
    mode: str
    source_event_id: str
    final: bool
    def __init__(self, account_id: _Optional[str] = ..., run_id: _Optional[str] = ..., call_id: _Optional[str] = ..., kind: _Optional[str] = ..., quantity: _Optional[int] = ..., total_quantity: _Optional[int] = ..., unit_price_minor: _Optional[int] = ..., amount_minor: _Optional[int] = ..., uncollected_minor: _Optional[int] = ..., currency: _Optional[str] = ..., balance_after_minor: _Optional[int] = ..., project_id: _Optional[str] = ..., test_id: _Optional[str] = ..., mode: _Optional[str] = ..., source_event_id: _Optional[str] = ..., final: _Optional[bool] = ...) -> None: ...

class BalanceExhausted(_message.Message):
    __slots__ = ("account_id", "run_id", "currency", "uncollected_minor", "mode")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    UNCOLLECTED_MINOR_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    run_id: str
    currency: str
    uncollected_minor: int
    mode: str
    def __init__(self, account_id: _Optional[str] = ..., run_id: _Optional[str] = ..., currency: _Optional[str] = ..., uncollected_minor: _Optional[int] = ..., mode: _Optional[str] = ...) -> None: ...

class AutoTopUpConfigured(_message.Message):
    __slots__ = ("account_id", "enabled", "threshold_minor", "amount_minor", "currency", "mode")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_MINOR_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    enabled: bool
    threshold_minor: int
    amount_minor: int
    currency: str
    mode: str
    def __init__(self, account_id: _Optional[str] = ..., enabled: _Optional[bool] = ..., threshold_minor: _Optional[int] = ..., amount_minor: _Optional[int] = ..., currency: _Optional[str] = ..., mode: _Optional[str] = ...) -> None: ...

class AutoTopUpDeclined(_message.Message):
    __slots__ = ("account_id", "amount_minor", "currency", "reason", "attempt_id", "mode")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    amount_minor: int
    currency: str
    reason: str
    attempt_id: str
    mode: str
    def __init__(self, account_id: _Optional[str] = ..., amount_minor: _Optional[int] = ..., currency: _Optional[str] = ..., reason: _Optional[str] = ..., attempt_id: _Optional[str] = ..., mode: _Optional[str] = ...) -> None: ...

class WalletClosed(_message.Message):
    __slots__ = ("account_id", "mode", "balance_minor", "currency", "source_event_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    BALANCE_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    balance_minor: int
    currency: str
    source_event_id: str
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ..., balance_minor: _Optional[int] = ..., currency: _Optional[str] = ..., source_event_id: _Optional[str] = ...) -> None: ...
