from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as _test_spec_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as _measurements_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProjectCreated(_message.Message):
    __slots__ = ("project_id", "account_id", "name", "slug", "metadata", "mode")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    account_id: str
    name: str
    slug: str
    metadata: _containers.ScalarMap[str, str]
    mode: str
    def __init__(self, project_id: _Optional[str] = ..., account_id: _Optional[str] = ..., name: _Optional[str] = ..., slug: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., mode: _Optional[str] = ...) -> None: ...

class ProjectUpdated(_message.Message):
    __slots__ = ("project_id", "name", "slug", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    name: str
    slug: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, project_id: _Optional[str] = ..., name: _Optional[str] = ..., slug: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ProjectDeleted(_message.Message):
    __slots__ = ("project_id",)
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    def __init__(self, project_id: _Optional[str] = ...) -> None: ...

class ProjectSlugClaimed(_message.Message):
    __slots__ = ("project_id", "slug")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    slug: str
    def __init__(self, project_id: _Optional[str] = ..., slug: _Optional[str] = ...) -> None: ...

class ProjectSlugReleased(_message.Message):
    __slots__ = ("project_id", "slug")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    slug: str
    def __init__(self, project_id: _Optional[str] = ..., slug: _Optional[str] = ...) -> None: ...

class TestCreated(_message.Message):
    __slots__ = ("test_id", "project_id", "account_id", "name", "spec", "metadata", "mode")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    test_id: str
    project_id: str
    account_id: str
    name: str
    spec: _test_spec_pb2.TestSpec
    metadata: _containers.ScalarMap[str, str]
    mode: str
    def __init__(self, test_id: _Optional[str] = ..., project_id: _Optional[str] = ..., account_id: _Optional[str] = ..., name: _Optional[str] = ..., spec: _Optional[_Union[_test_spec_pb2.TestSpec, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., mode: _Optional[str] = ...) -> None: ...

class TestUpdated(_message.Message):
    __slots__ = ("test_id", "name", "spec", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    test_id: str
    name: str
    spec: _test_spec_pb2.TestSpec
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, test_id: _Optional[str] = ..., name: _Optional[str] = ..., spec: _Optional[_Union[_test_spec_pb2.TestSpec, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class TestDeleted(_message.Message):
    __slots__ = ("test_id", "project_id")
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    test_id: str
    project_id: str
    def __init__(self, test_id: _Optional[str] = ..., project_id: _Optional[str] = ...) -> None: ...

class RegistrarCreated(_message.Message):
    __slots__ = ("registrar_id", "project_id", "account_id", "mode", "name", "host", "port", "transport", "domain", "tls_verify")
    REGISTRAR_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    TLS_VERIFY_FIELD_NUMBER: _ClassVar[int]
    registrar_id: str
    project_id: str
    account_id: str
    mode: str
    name: str
    host: str
    port: int
    transport: str
    domain: str
    tls_verify: bool
    def __init__(self, registrar_id: _Optional[str] = ..., project_id: _Optional[str] = ..., account_id: _Optional[str] = ..., mode: _Optional[str] = ..., name: _Optional[str] = ..., host: _Optional[str] = ..., port: _Optional[int] = ..., transport: _Optional[str] = ..., domain: _Optional[str] = ..., tls_verify: _Optional[bool] = ...) -> None: ...

class RegistrarUpdated(_message.Message):
    __slots__ = ("registrar_id", "name", "host", "port", "transport", "domain", "tls_verify")
    REGISTRAR_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    TLS_VERIFY_FIELD_NUMBER: _ClassVar[int]
    registrar_id: str
    name: str
    host: str
    port: int
    transport: str
    domain: str
    tls_verify: bool
    def __init__(self, registrar_id: _Optional[str] = ..., name: _Optional[str] = ..., host: _Optional[str] = ..., port: _Optional[int] = ..., transport: _Optional[str] = ..., domain: _Optional[str] = ..., tls_verify: _Optional[bool] = ...) -> None: ...

class RegistrarDeleted(_message.Message):
    __slots__ = ("registrar_id", "project_id")
    REGISTRAR_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    registrar_id: str
    project_id: str
    def __init__(self, registrar_id: _Optional[str] = ..., project_id: _Optional[str] = ...) -> None: ...

class StoredCredential(_message.Message):
    __slots__ = ("username", "auth_username", "domain", "password_ciphertext")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    AUTH_USERNAME_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    username: str
    auth_username: str
    domain: str
    password_ciphertext: bytes
    def __init__(self, username: _Optional[str] = ..., auth_username: _Optional[str] = ..., domain: _Optional[str] = ..., password_ciphertext: _Optional[bytes] = ...) -> None: ...

class CredentialPoolCreated(_message.Message):
    __slots__ = ("pool_id", "project_id", "account_id", "mode", "name", "credentials")
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    pool_id: str
    project_id: str
    account_id: str
    mode: str
    name: str
    credentials: _containers.RepeatedCompositeFieldContainer[StoredCredential]
    def __init__(self, pool_id: _Optional[str] = ..., project_id: _Optional[str] = ..., account_id: _Optional[str] = ..., mode: _Optional[str] = ..., name: _Optional[str] = ..., credentials: _Optional[_Iterable[_Union[StoredCredential, _Mapping]]] = ...) -> None: ...

class CredentialPoolUpdated(_message.Message):
    __slots__ = ("pool_id", "name", "credentials")
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    pool_id: str
    name: str
    credentials: _containers.RepeatedCompositeFieldContainer[StoredCredential]
    def __init__(self, pool_id: _Optional[str] = ..., name: _Optional[str] = ..., credentials: _Optional[_Iterable[_Union[StoredCredential, _Mapping]]] = ...) -> None: ...

class CredentialPoolDeleted(_message.Message):
    __slots__ = ("pool_id", "project_id")
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    pool_id: str
    project_id: str
    def __init__(self, pool_id: _Optional[str] = ..., project_id: _Optional[str] = ...) -> None: ...

class RunRequested(_message.Message):
    __slots__ = ("run_id", "project_id", "test_id", "account_id", "test_name", "spec", "metadata", "tags", "mode", "targets", "pools")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TEST_NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    project_id: str
    test_id: str
    account_id: str
    test_name: str
    spec: _test_spec_pb2.TestSpec
    metadata: _containers.ScalarMap[str, str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    mode: str
    targets: _containers.RepeatedCompositeFieldContainer[_test_spec_pb2.ResolvedTarget]
    pools: _containers.RepeatedCompositeFieldContainer[_test_spec_pb2.ResolvedPool]
    def __init__(self, run_id: _Optional[str] = ..., project_id: _Optional[str] = ..., test_id: _Optional[str] = ..., account_id: _Optional[str] = ..., test_name: _Optional[str] = ..., spec: _Optional[_Union[_test_spec_pb2.TestSpec, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., tags: _Optional[_Iterable[str]] = ..., mode: _Optional[str] = ..., targets: _Optional[_Iterable[_Union[_test_spec_pb2.ResolvedTarget, _Mapping]]] = ..., pools: _Optional[_Iterable[_Union[_test_spec_pb2.ResolvedPool, _Mapping]]] = ...) -> None: ...

class RunQueued(_message.Message):
    __slots__ = ("run_id", "engine_id", "planned_calls")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    PLANNED_CALLS_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    engine_id: str
    planned_calls: int
    def __init__(self, run_id: _Optional[str] = ..., engine_id: _Optional[str] = ..., planned_calls: _Optional[int] = ...) -> None: ...

class RunStarted(_message.Message):
    __slots__ = ("run_id", "engine_id")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    engine_id: str
    def __init__(self, run_id: _Optional[str] = ..., engine_id: _Optional[str] = ...) -> None: ...

class CallRecorded(_message.Message):
    __slots__ = ("run_id", "call")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    call: _measurements_pb2.CallMeasurement
    def __init__(self, run_id: _Optional[str] = ..., call: _Optional[_Union[_measurements_pb2.CallMeasurement, _Mapping]] = ...) -> None: ...

class RunCompleted(_message.Message):
    __slots__ = ("run_id", "summary", "passed", "result_description")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    RESULT_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    summary: _measurements_pb2.RunSummary
    passed: bool
    result_description: str
    def __init__(self, run_id: _Optional[str] = ..., summary: _Optional[_Union[_measurements_pb2.RunSummary, _Mapping]] = ..., passed: _Optional[bool] = ..., result_description: _Optional[str] = ...) -> None: ...

class RunFailed(_message.Message):
    __slots__ = ("run_id", "summary", "result_description")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    RESULT_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    summary: _measurements_pb2.RunSummary
    result_description: str
    def __init__(self, run_id: _Optional[str] = ..., summary: _Optional[_Union[_measurements_pb2.RunSummary, _Mapping]] = ..., result_description: _Optional[str] = ...) -> None: ...

class RunStopRequested(_message.Message):
    __slots__ = ("run_id", "reason")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    reason: str
    def __init__(self, run_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RunCancelled(_message.Message):
    __slots__ = ("run_id", "summary", "result_description")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    RESULT_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    summary: _measurements_pb2.RunSummary
    result_description: str
    def __init__(self, run_id: _Optional[str] = ..., summary: _Optional[_Union[_measurements_pb2.RunSummary, _Mapping]] = ..., result_description: _Optional[str] = ...) -> None: ...

class RunKioskLinkCreated(_message.Message):
    __slots__ = ("run_id", "token_sha256")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_SHA256_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    token_sha256: str
    def __init__(self, run_id: _Optional[str] = ..., token_sha256: _Optional[str] = ...) -> None: ...

class RunKioskLinkRevoked(_message.Message):
    __slots__ = ("run_id", "token_sha256")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_SHA256_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    token_sha256: str
    def __init__(self, run_id: _Optional[str] = ..., token_sha256: _Optional[str] = ...) -> None: ...

class AccountClosed(_message.Message):
    __slots__ = ("account_id", "source_event_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    source_event_id: str
    def __init__(self, account_id: _Optional[str] = ..., source_event_id: _Optional[str] = ...) -> None: ...
