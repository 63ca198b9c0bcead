import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from kanal.v1 import common_pb2 as _common_pb2
from kanal.v1 import deliveries_pb2 as _deliveries_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListDocumentsRequest(_message.Message):
    __slots__ = ("customer_id", "kinds", "channels", "layout_id", "created_from", "created_before", "page_size", "page_token")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FROM_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    channels: _containers.RepeatedScalarFieldContainer[_common_pb2.Channel]
    layout_id: str
    created_from: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, customer_id: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ..., channels: _Optional[_Iterable[_Union[_common_pb2.Channel, str]]] = ..., layout_id: _Optional[str] = ..., created_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDocumentsResponse(_message.Message):
    __slots__ = ("documents", "next_page_token")
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedCompositeFieldContainer[PortalDocument]
    next_page_token: str
    def __init__(self, documents: _Optional[_Iterable[_Union[PortalDocument, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PortalDocument(_message.Message):
    __slots__ = ("document_id", "customer_id", "kind", "layout_id", "layout_version", "locale", "created_at", "retain_until", "input_sha256", "outputs", "corrects_document_id", "corrected_by_document_ids", "deliveries")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_ID_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_VERSION_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    RETAIN_UNTIL_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHA256_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    CORRECTS_DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CORRECTED_BY_DOCUMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    customer_id: str
    kind: str
    layout_id: str
    layout_version: str
    locale: str
    created_at: _timestamp_pb2.Timestamp
    retain_until: _timestamp_pb2.Timestamp
    input_sha256: str
    outputs: _containers.RepeatedCompositeFieldContainer[_common_pb2.Output]
    corrects_document_id: str
    corrected_by_document_ids: _containers.RepeatedScalarFieldContainer[str]
    deliveries: _containers.RepeatedCompositeFieldContainer[_deliveries_pb2.Delivery]
    def __init__(self, document_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., kind: _Optional[str] = ..., layout_id: _Optional[str] = ..., layout_version: _Optional[str] = ..., locale: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., retain_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., input_sha256: _Optional[str] = ..., outputs: _Optional[_Iterable[_Union[_common_pb2.Output, _Mapping]]] = ..., corrects_document_id: _Optional[str] = ..., corrected_by_document_ids: _Optional[_Iterable[str]] = ..., deliveries: _Optional[_Iterable[_Union[_deliveries_pb2.Delivery, _Mapping]]] = ...) -> None: ...

class PortalGetDocumentRequest(_message.Message):
    __slots__ = ("document_id",)
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    def __init__(self, document_id: _Optional[str] = ...) -> None: ...

class FetchDocumentRequest(_message.Message):
    __slots__ = ("document_id", "channel")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    channel: _common_pb2.Channel
    def __init__(self, document_id: _Optional[str] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ...) -> None: ...

class DocumentChunk(_message.Message):
    __slots__ = ("data", "media_type", "size", "sha256")
    DATA_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    media_type: str
    size: int
    sha256: str
    def __init__(self, data: _Optional[bytes] = ..., media_type: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class GetDownloadUrlRequest(_message.Message):
    __slots__ = ("document_id", "channel", "expires_seconds")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_SECONDS_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    channel: _common_pb2.Channel
    expires_seconds: int
    def __init__(self, document_id: _Optional[str] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., expires_seconds: _Optional[int] = ...) -> None: ...

class DownloadUrl(_message.Message):
    __slots__ = ("url", "expires_at", "sha256")
    URL_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    url: str
    expires_at: _timestamp_pb2.Timestamp
    sha256: str
    def __init__(self, url: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sha256: _Optional[str] = ...) -> None: ...

class SetLegalHoldRequest(_message.Message):
    __slots__ = ("document_id", "on")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ON_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    on: bool
    def __init__(self, document_id: _Optional[str] = ..., on: _Optional[bool] = ...) -> None: ...

class GetLegalHoldRequest(_message.Message):
    __slots__ = ("document_id",)
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    def __init__(self, document_id: _Optional[str] = ...) -> None: ...

class LegalHold(_message.Message):
    __slots__ = ("document_id", "on", "held_keys")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ON_FIELD_NUMBER: _ClassVar[int]
    HELD_KEYS_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    on: bool
    held_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, document_id: _Optional[str] = ..., on: _Optional[bool] = ..., held_keys: _Optional[_Iterable[str]] = ...) -> None: ...
