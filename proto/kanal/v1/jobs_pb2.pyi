import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from kanal.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobHeader(_message.Message):
    __slots__ = ("tenant", "layout_id", "layout_version", "job_name", "channels", "print_profile", "priority", "idempotency_key")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_ID_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_VERSION_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    PRINT_PROFILE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    layout_id: str
    layout_version: str
    job_name: str
    channels: _containers.RepeatedScalarFieldContainer[_common_pb2.Channel]
    print_profile: str
    priority: int
    idempotency_key: str
    def __init__(self, tenant: _Optional[str] = ..., layout_id: _Optional[str] = ..., layout_version: _Optional[str] = ..., job_name: _Optional[str] = ..., channels: _Optional[_Iterable[_Union[_common_pb2.Channel, str]]] = ..., print_profile: _Optional[str] = ..., priority: _Optional[int] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class JobRecord(_message.Message):
    __slots__ = ("record_key", "data_json")
    RECORD_KEY_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    record_key: str
    data_json: str
    def __init__(self, record_key: _Optional[str] = ..., data_json: _Optional[str] = ...) -> None: ...

class SubmitBatchRequest(_message.Message):
    __slots__ = ("header", "record")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    header: JobHeader
    record: JobRecord
    def __init__(self, header: _Optional[_Union[JobHeader, _Mapping]] = ..., record: _Optional[_Union[JobRecord, _Mapping]] = ...) -> None: ...

class SubmitBatchResponse(_message.Message):
    __slots__ = ("job_id", "records", "replayed")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    records: int
    replayed: bool
    def __init__(self, job_id: _Optional[str] = ..., records: _Optional[int] = ..., replayed: _Optional[bool] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ChannelCount(_message.Message):
    __slots__ = ("channel", "documents", "pages")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    channel: _common_pb2.Channel
    documents: int
    pages: int
    def __init__(self, channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., documents: _Optional[int] = ..., pages: _Optional[int] = ...) -> None: ...

class JobCounts(_message.Message):
    __slots__ = ("total", "pending", "running", "done", "failed", "cancelled")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    total: int
    pending: int
    running: int
    done: int
    failed: int
    cancelled: int
    def __init__(self, total: _Optional[int] = ..., pending: _Optional[int] = ..., running: _Optional[int] = ..., done: _Optional[int] = ..., failed: _Optional[int] = ..., cancelled: _Optional[int] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "tenant", "job_name", "layout_id", "layout_version", "state", "counts", "pages", "channels", "created_at", "finished_at", "priority", "print_profile", "stalled_reason", "next_retry_at", "idempotency_key")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_ID_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PRINT_PROFILE_FIELD_NUMBER: _ClassVar[int]
    STALLED_REASON_FIELD_NUMBER: _ClassVar[int]
    NEXT_RETRY_AT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    tenant: str
    job_name: str
    layout_id: str
    layout_version: str
    state: str
    counts: JobCounts
    pages: int
    channels: _containers.RepeatedCompositeFieldContainer[ChannelCount]
    created_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    priority: int
    print_profile: str
    stalled_reason: str
    next_retry_at: _timestamp_pb2.Timestamp
    idempotency_key: str
    def __init__(self, job_id: _Optional[str] = ..., tenant: _Optional[str] = ..., job_name: _Optional[str] = ..., layout_id: _Optional[str] = ..., layout_version: _Optional[str] = ..., state: _Optional[str] = ..., counts: _Optional[_Union[JobCounts, _Mapping]] = ..., pages: _Optional[int] = ..., channels: _Optional[_Iterable[_Union[ChannelCount, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., priority: _Optional[int] = ..., print_profile: _Optional[str] = ..., stalled_reason: _Optional[str] = ..., next_retry_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class JobProgress(_message.Message):
    __slots__ = ("job", "documents_per_second", "eta_seconds", "final")
    JOB_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    job: Job
    documents_per_second: float
    eta_seconds: float
    final: bool
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., documents_per_second: _Optional[float] = ..., eta_seconds: _Optional[float] = ..., final: _Optional[bool] = ...) -> None: ...

class GetJobErrorsRequest(_message.Message):
    __slots__ = ("job_id", "page_size", "page_token")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    page_size: int
    page_token: str
    def __init__(self, job_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class RecordError(_message.Message):
    __slots__ = ("record_key", "field", "message")
    RECORD_KEY_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    record_key: str
    field: str
    message: str
    def __init__(self, record_key: _Optional[str] = ..., field: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class GetJobErrorsResponse(_message.Message):
    __slots__ = ("errors", "next_page_token")
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    errors: _containers.RepeatedCompositeFieldContainer[RecordError]
    next_page_token: str
    def __init__(self, errors: _Optional[_Iterable[_Union[RecordError, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetJobCancelledRecordsRequest(_message.Message):
    __slots__ = ("job_id", "page_size", "page_token")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    page_size: int
    page_token: str
    def __init__(self, job_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetJobCancelledRecordsResponse(_message.Message):
    __slots__ = ("record_keys", "next_page_token")
    RECORD_KEYS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    record_keys: _containers.RepeatedScalarFieldContainer[str]
    next_page_token: str
    def __init__(self, record_keys: _Optional[_Iterable[str]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
