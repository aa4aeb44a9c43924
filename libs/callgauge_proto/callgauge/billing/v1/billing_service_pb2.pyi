from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class GetWalletRequest(_message.Message):
    __slots__ = ("account_id",)
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    def __init__(self, account_id: _Optional[str] = ...) -> None: ...

class Wallet(_message.Message):
    __slots__ = ("account_id", "balance_minor", "currency", "version")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    BALANCE_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    balance_minor: int
    currency: str
    version: int
    def __init__(self, account_id: _Optional[str] = ..., balance_minor: _Optional[int] = ..., currency: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...
