import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from callgauge_proto.callgauge.common.v1 import test_spec_pb2 as _test_spec_pb2
from callgauge_proto.callgauge.media.v1 import measurements_pb2 as _measurements_pb2
from callgauge_proto.callgauge.events.v1 import media_pb2 as _media_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATUS_UNSPECIFIED: _ClassVar[RunStatus]
    PENDING: _ClassVar[RunStatus]
    QUEUED: _ClassVar[RunStatus]
    RUNNING: _ClassVar[RunStatus]
    STOPPING: _ClassVar[RunStatus]
    COMPLETED: _ClassVar[RunStatus]
    FAILED: _ClassVar[RunStatus]
    CANCELLED: _ClassVar[RunStatus]
RUN_STATUS_UNSPECIFIED: RunStatus
PENDING: RunStatus
QUEUED: RunStatus
RUNNING: RunStatus
STOPPING: RunStatus
COMPLETED: RunStatus
FAILED: RunStatus
CANCELLED: RunStatus

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Project(_message.Message):
    __slots__ = ("id", "account_id", "name", "slug", "metadata", "test_count", "probe_count", "registrar_count", "created_at")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TEST_COUNT_FIELD_NUMBER: _ClassVar[int]
    PROBE_COUNT_FIELD_NUMBER: _ClassVar[int]
    REGISTRAR_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    account_id: str
    name: str
    slug: str
    metadata: _containers.ScalarMap[str, str]
    test_count: int
    probe_count: int
    registrar_count: int
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., account_id: _Optional[str] = ..., name: _Optional[str] = ..., slug: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., test_count: _Optional[int] = ..., probe_count: _Optional[int] = ..., registrar_count: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Test(_message.Message):
    __slots__ = ("id", "project_id", "name", "spec", "metadata", "created_at")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    project_id: str
    name: str
    spec: _test_spec_pb2.TestSpec
    metadata: _containers.ScalarMap[str, str]
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., project_id: _Optional[str] = ..., name: _Optional[str] = ..., spec: _Optional[_Union[_test_spec_pb2.TestSpec, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("id", "project_id", "test_id", "test_name", "status", "created_at", "started_at", "stopped_at", "summary", "passed", "result_description", "metadata", "tags", "planned_calls", "kiosk_token", "project_name", "account_id", "mode", "stop_requested", "kiosk_links", "calls_recorded", "first_failed_calls", "recorded")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    TEST_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    STOPPED_AT_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    RESULT_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PLANNED_CALLS_FIELD_NUMBER: _ClassVar[int]
    KIOSK_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    STOP_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    KIOSK_LINKS_FIELD_NUMBER: _ClassVar[int]
    CALLS_RECORDED_FIELD_NUMBER: _ClassVar[int]
    FIRST_FAILED_CALLS_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    id: str
    project_id: str
    test_id: str
    test_name: str
    status: RunStatus
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    stopped_at: _timestamp_pb2.Timestamp
    summary: _measurements_pb2.RunSummary
    passed: bool
    result_description: str
    metadata: _containers.ScalarMap[str, str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    planned_calls: int
    kiosk_token: str
    project_name: str
    account_id: str
    mode: str
    stop_requested: bool
    kiosk_links: int
    calls_recorded: int
    first_failed_calls: _containers.RepeatedCompositeFieldContainer[_measurements_pb2.CallMeasurement]
    recorded: _measurements_pb2.RunSummary
    def __init__(self, id: _Optional[str] = ..., project_id: _Optional[str] = ..., test_id: _Optional[str] = ..., test_name: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stopped_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., summary: _Optional[_Union[_measurements_pb2.RunSummary, _Mapping]] = ..., passed: _Optional[bool] = ..., result_description: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., tags: _Optional[_Iterable[str]] = ..., planned_calls: _Optional[int] = ..., kiosk_token: _Optional[str] = ..., project_name: _Optional[str] = ..., account_id: _Optional[str] = ..., mode: _Optional[str] = ..., stop_requested: _Optional[bool] = ..., kiosk_links: _Optional[int] = ..., calls_recorded: _Optional[int] = ..., first_failed_calls: _Optional[_Iterable[_Union[_measurements_pb2.CallMeasurement, _Mapping]]] = ..., recorded: _Optional[_Union[_measurements_pb2.RunSummary, _Mapping]] = ...) -> None: ...

class ListRunCallsRequest(_message.Message):
    __slots__ = ("account_id", "project_id", "run_id", "mode", "page_size", "page_token", "outcomes", "sip_codes", "mos_min", "mos_max", "sort")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    SIP_CODES_FIELD_NUMBER: _ClassVar[int]
    MOS_MIN_FIELD_NUMBER: _ClassVar[int]
    MOS_MAX_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    project_id: str
    run_id: str
    mode: str
    page_size: int
    page_token: str
    outcomes: _containers.RepeatedScalarFieldContainer[str]
    sip_codes: _containers.RepeatedScalarFieldContainer[int]
    mos_min: float
    mos_max: float
    sort: str
    def __init__(self, account_id: _Optional[str] = ..., project_id: _Optional[str] = ..., run_id: _Optional[str] = ..., mode: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., outcomes: _Optional[_Iterable[str]] = ..., sip_codes: _Optional[_Iterable[int]] = ..., mos_min: _Optional[float] = ..., mos_max: _Optional[float] = ..., sort: _Optional[str] = ...) -> None: ...

class ListRunCallsResponse(_message.Message):
    __slots__ = ("calls", "next_page_token", "total")
    CALLS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    calls: _containers.RepeatedCompositeFieldContainer[_measurements_pb2.CallMeasurement]
    next_page_token: str
    total: int
    def __init__(self, calls: _Optional[_Iterable[_Union[_measurements_pb2.CallMeasurement, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total: _Optional[int] = ...) -> None: ...

class CreateProjectRequest(_message.Message):
    __slots__ = ("account_id", "name", "slug", "metadata", "mode")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    name: str
    slug: str
    metadata: _containers.ScalarMap[str, str]
    mode: str
    def __init__(self, account_id: _Optional[str] = ..., name: _Optional[str] = ..., slug: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., mode: _Optional[str] = ...) -> None: ...

class ListProjectsRequest(_message.Message):
    __slots__ = ("account_id", "page", "per_page", "mode")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PER_PAGE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    page: int
    per_page: int
    mode: str
    def __init__(self, account_id: _Optional[str] = ..., page: _Optional[int] = ..., per_page: _Optional[int] = ..., mode: _Optional[str] = ...) -> None: ...

class ListProjectsResponse(_message.Message):
    __slots__ = ("projects", "total")
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    projects: _containers.RepeatedCompositeFieldContainer[Project]
    total: int
    def __init__(self, projects: _Optional[_Iterable[_Union[Project, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class GetProjectRequest(_message.Message):
    __slots__ = ("account_id", "project_id", "mode")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    project_id: str
    mode: str
    def __init__(self, account_id: _Optional[str] = ..., project_id: _Optional[str] = ..., mode: _Optional[str] = ...) -> None: ...

class CreateTestRequest(_message.Message):
    __slots__ = ("account_id", "project_id", "name", "spec", "metadata", "mode")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    project_id: str
    name: str
    spec: _test_spec_pb2.TestSpec
    metadata: _containers.ScalarMap[str, str]
    mode: str
    def __init__(self, account_id: _Optional[str] = ..., project_id: _Optional[str] = ..., name: _Optional[str] = ..., spec: _Optional[_Union[_test_spec_pb2.TestSpec, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., mode: _Optional[str] = ...) -> None: ...

class GetTestRequest(_message.Message):
    __slots__ = ("account_id", "project_id", "test_id", "mode")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    project_id: str
    test_id: str
    mode: str
    def __init__(self, account_id: _Optional[str] = ..., project_id: _Optional[str] = ..., test_id: _Optional[str] = ..., mode: _Optional[str] = ...) -> None: ...

class StartRunRequest(_message.Message):
    __slots__ = ("account_id", "project_id", "test_id", "metadata", "tags", "mode", "overrides", "report_mode", "test_name")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class OverridesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    REPORT_MODE_FIELD_NUMBER: _ClassVar[int]
    TEST_NAME_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    project_id: str
    test_id: str
    metadata: _containers.ScalarMap[str, str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    mode: str
    overrides: _containers.ScalarMap[str, str]
    report_mode: str
    test_name: str
    def __init__(self, account_id: _Optional[str] = ..., project_id: _Optional[str] = ..., test_id: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., tags: _Optional[_Iterable[str]] = ..., mode: _Optional[str] = ..., overrides: _Optional[_Mapping[str, str]] = ..., report_mode: _Optional[str] = ..., test_name: _Optional[str] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("account_id", "project_id", "run_id", "mode")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    project_id: str
    run_id: str
    mode: str
    def __init__(self, account_id: _Optional[str] = ..., project_id: _Optional[str] = ..., run_id: _Optional[str] = ..., mode: _Optional[str] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("account_id", "project_id", "page", "per_page", "mode", "test_id", "status", "created_from", "created_to")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PER_PAGE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_FROM_FIELD_NUMBER: _ClassVar[int]
    CREATED_TO_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    project_id: str
    page: int
    per_page: int
    mode: str
    test_id: str
    status: str
    created_from: _timestamp_pb2.Timestamp
    created_to: _timestamp_pb2.Timestamp
    def __init__(self, account_id: _Optional[str] = ..., project_id: _Optional[str] = ..., page: _Optional[int] = ..., per_page: _Optional[int] = ..., mode: _Optional[str] = ..., test_id: _Optional[str] = ..., status: _Optional[str] = ..., created_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs", "total")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    total: int
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class UpdateProjectRequest(_message.Message):
    __slots__ = ("account_id", "mode", "project_id", "name", "slug", "set_metadata", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    SET_METADATA_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    project_id: str
    name: str
    slug: str
    set_metadata: bool
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ..., project_id: _Optional[str] = ..., name: _Optional[str] = ..., slug: _Optional[str] = ..., set_metadata: _Optional[bool] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListTestsRequest(_message.Message):
    __slots__ = ("account_id", "mode", "project_id", "page", "per_page")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PER_PAGE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    project_id: str
    page: int
    per_page: int
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ..., project_id: _Optional[str] = ..., page: _Optional[int] = ..., per_page: _Optional[int] = ...) -> None: ...

class ListTestsResponse(_message.Message):
    __slots__ = ("tests", "total")
    TESTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    tests: _containers.RepeatedCompositeFieldContainer[Test]
    total: int
    def __init__(self, tests: _Optional[_Iterable[_Union[Test, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class UpdateTestRequest(_message.Message):
    __slots__ = ("account_id", "mode", "project_id", "test_id", "name", "set_steps", "set_assertions", "spec", "set_metadata", "metadata", "allow_unattempted_calls")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TEST_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SET_STEPS_FIELD_NUMBER: _ClassVar[int]
    SET_ASSERTIONS_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    SET_METADATA_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ALLOW_UNATTEMPTED_CALLS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    project_id: str
    test_id: str
    name: str
    set_steps: bool
    set_assertions: bool
    spec: _test_spec_pb2.TestSpec
    set_metadata: bool
    metadata: _containers.ScalarMap[str, str]
    allow_unattempted_calls: bool
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ..., project_id: _Optional[str] = ..., test_id: _Optional[str] = ..., name: _Optional[str] = ..., set_steps: _Optional[bool] = ..., set_assertions: _Optional[bool] = ..., spec: _Optional[_Union[_test_spec_pb2.TestSpec, _Mapping]] = ..., set_metadata: _Optional[bool] = ..., metadata: _Optional[_Mapping[str, str]] = ..., allow_unattempted_calls: _Optional[bool] = ...) -> None: ...

class Registrar(_message.Message):
    __slots__ = ("id", "project_id", "name", "host", "port", "transport", "domain", "created_at", "tls_verify")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    TLS_VERIFY_FIELD_NUMBER: _ClassVar[int]
    id: str
    project_id: str
    name: str
    host: str
    port: int
    transport: str
    domain: str
    created_at: _timestamp_pb2.Timestamp
    tls_verify: bool
    def __init__(self, id: _Optional[str] = ..., project_id: _Optional[str] = ..., name: _Optional[str] = ..., host: _Optional[str] = ..., port: _Optional[int] = ..., transport: _Optional[str] = ..., domain: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tls_verify: _Optional[bool] = ...) -> None: ...

class RegistrarRequest(_message.Message):
    __slots__ = ("account_id", "mode", "project_id", "registrar_id", "name", "host", "port", "transport", "domain", "tls_verify")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    REGISTRAR_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    TLS_VERIFY_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    project_id: str
    registrar_id: str
    name: str
    host: str
    port: int
    transport: str
    domain: str
    tls_verify: bool
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ..., project_id: _Optional[str] = ..., registrar_id: _Optional[str] = ..., name: _Optional[str] = ..., host: _Optional[str] = ..., port: _Optional[int] = ..., transport: _Optional[str] = ..., domain: _Optional[str] = ..., tls_verify: _Optional[bool] = ...) -> None: ...

class GetResourceRequest(_message.Message):
    __slots__ = ("account_id", "mode", "project_id", "id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    project_id: str
    id: str
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ..., project_id: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class ListResourcesRequest(_message.Message):
    __slots__ = ("account_id", "mode", "project_id", "page", "per_page")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PER_PAGE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    project_id: str
    page: int
    per_page: int
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ..., project_id: _Optional[str] = ..., page: _Optional[int] = ..., per_page: _Optional[int] = ...) -> None: ...

class ListRegistrarsResponse(_message.Message):
    __slots__ = ("registrars", "total")
    REGISTRARS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    registrars: _containers.RepeatedCompositeFieldContainer[Registrar]
    total: int
    def __init__(self, registrars: _Optional[_Iterable[_Union[Registrar, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class Credential(_message.Message):
    __slots__ = ("username", "auth_username", "domain", "has_password")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    AUTH_USERNAME_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    HAS_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    username: str
    auth_username: str
    domain: str
    has_password: bool
    def __init__(self, username: _Optional[str] = ..., auth_username: _Optional[str] = ..., domain: _Optional[str] = ..., has_password: _Optional[bool] = ...) -> None: ...

class CredentialIn(_message.Message):
    __slots__ = ("username", "auth_username", "domain", "password")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    AUTH_USERNAME_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    username: str
    auth_username: str
    domain: str
    password: str
    def __init__(self, username: _Optional[str] = ..., auth_username: _Optional[str] = ..., domain: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class CredentialPool(_message.Message):
    __slots__ = ("id", "project_id", "name", "credentials", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    project_id: str
    name: str
    credentials: _containers.RepeatedCompositeFieldContainer[Credential]
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., project_id: _Optional[str] = ..., name: _Optional[str] = ..., credentials: _Optional[_Iterable[_Union[Credential, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CredentialPoolRequest(_message.Message):
    __slots__ = ("account_id", "mode", "project_id", "pool_id", "name", "set_credentials", "credentials")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SET_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    project_id: str
    pool_id: str
    name: str
    set_credentials: bool
    credentials: _containers.RepeatedCompositeFieldContainer[CredentialIn]
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ..., project_id: _Optional[str] = ..., pool_id: _Optional[str] = ..., name: _Optional[str] = ..., set_credentials: _Optional[bool] = ..., credentials: _Optional[_Iterable[_Union[CredentialIn, _Mapping]]] = ...) -> None: ...

class ListCredentialPoolsResponse(_message.Message):
    __slots__ = ("pools", "total")
    POOLS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    pools: _containers.RepeatedCompositeFieldContainer[CredentialPool]
    total: int
    def __init__(self, pools: _Optional[_Iterable[_Union[CredentialPool, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class GetRunByKioskTokenRequest(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class GetRunCredentialsRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class GetRunSecondsRequest(_message.Message):
    __slots__ = ("account_id", "mode", "run_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    mode: str
    run_id: str
    def __init__(self, account_id: _Optional[str] = ..., mode: _Optional[str] = ..., run_id: _Optional[str] = ...) -> None: ...

class RunSeconds(_message.Message):
    __slots__ = ("seconds",)
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    seconds: _containers.RepeatedCompositeFieldContainer[_media_pb2.RunSecondStats]
    def __init__(self, seconds: _Optional[_Iterable[_Union[_media_pb2.RunSecondStats, _Mapping]]] = ...) -> None: ...
