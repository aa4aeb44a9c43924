from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class AccountRegistered(_message.Message):
    __slots__ = ("account_id", "email", "password_hash")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_HASH_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    email: str
    password_hash: str
    def __init__(self, account_id: _Optional[str] = ..., email: _Optional[str] = ..., password_hash: _Optional[str] = ...) -> None: ...

class AccountEmailChanged(_message.Message):
    __slots__ = ("account_id", "email")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    email: str
    def __init__(self, account_id: _Optional[str] = ..., email: _Optional[str] = ...) -> None: ...

class AccountPasswordChanged(_message.Message):
    __slots__ = ("account_id", "password_hash")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_HASH_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    password_hash: str
    def __init__(self, account_id: _Optional[str] = ..., password_hash: _Optional[str] = ...) -> None: ...

class AccountDeleted(_message.Message):
    __slots__ = ("account_id",)
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    def __init__(self, account_id: _Optional[str] = ...) -> None: ...

class ApiKeyCreated(_message.Message):
    __slots__ = ("account_id", "key_id", "name", "mode", "prefix", "last4", "key_hash", "rate_limit_per_minute")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    LAST4_FIELD_NUMBER: _ClassVar[int]
    KEY_HASH_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    key_id: str
    name: str
    mode: str
    prefix: str
    last4: str
    key_hash: str
    rate_limit_per_minute: int
    def __init__(self, account_id: _Optional[str] = ..., key_id: _Optional[str] = ..., name: _Optional[str] = ..., mode: _Optional[str] = ..., prefix: _Optional[str] = ..., last4: _Optional[str] = ..., key_hash: _Optional[str] = ..., rate_limit_per_minute: _Optional[int] = ...) -> None: ...

class ApiKeyRevoked(_message.Message):
    __slots__ = ("account_id", "key_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    key_id: str
    def __init__(self, account_id: _Optional[str] = ..., key_id: _Optional[str] = ...) -> None: ...

class ApiKeyUsed(_message.Message):
    __slots__ = ("account_id", "key_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    key_id: str
    def __init__(self, account_id: _Optional[str] = ..., key_id: _Optional[str] = ...) -> None: ...

class EmailClaimed(_message.Message):
    __slots__ = ("email", "account_id")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    email: str
    account_id: str
    def __init__(self, email: _Optional[str] = ..., account_id: _Optional[str] = ...) -> None: ...

class EmailReleased(_message.Message):
    __slots__ = ("email", "account_id")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    email: str
    account_id: str
    def __init__(self, email: _Optional[str] = ..., account_id: _Optional[str] = ...) -> None: ...

class SessionStarted(_message.Message):
    __slots__ = ("session_id", "account_id", "refresh_hash", "expires_at")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    REFRESH_HASH_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    account_id: str
    refresh_hash: str
    expires_at: int
    def __init__(self, session_id: _Optional[str] = ..., account_id: _Optional[str] = ..., refresh_hash: _Optional[str] = ..., expires_at: _Optional[int] = ...) -> None: ...

class SessionRefreshed(_message.Message):
    __slots__ = ("session_id", "refresh_hash", "expires_at")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REFRESH_HASH_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    refresh_hash: str
    expires_at: int
    def __init__(self, session_id: _Optional[str] = ..., refresh_hash: _Optional[str] = ..., expires_at: _Optional[int] = ...) -> None: ...

class SessionRevoked(_message.Message):
    __slots__ = ("session_id", "reason")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    reason: str
    def __init__(self, session_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
