import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from kanal.v1 import common_pb2 as _common_pb2
from kanal.v1 import deliveries_pb2 as _deliveries_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LocaleSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOCALE_SOURCE_UNSPECIFIED: _ClassVar[LocaleSource]
    LOCALE_SOURCE_REQUEST: _ClassVar[LocaleSource]
    LOCALE_SOURCE_DATA: _ClassVar[LocaleSource]
    LOCALE_SOURCE_LAYOUT_RULE: _ClassVar[LocaleSource]
    LOCALE_SOURCE_LAYOUT_DEFAULT: _ClassVar[LocaleSource]
LOCALE_SOURCE_UNSPECIFIED: LocaleSource
LOCALE_SOURCE_REQUEST: LocaleSource
LOCALE_SOURCE_DATA: LocaleSource
LOCALE_SOURCE_LAYOUT_RULE: LocaleSource
LOCALE_SOURCE_LAYOUT_DEFAULT: LocaleSource

class ComposeRequest(_message.Message):
    __slots__ = ("tenant", "layout_id", "layout_version", "data_json", "locale", "channels", "idempotency_key", "preview", "corrects_document_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_ID_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_VERSION_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    CORRECTS_DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    layout_id: str
    layout_version: str
    data_json: str
    locale: str
    channels: _containers.RepeatedScalarFieldContainer[_common_pb2.Channel]
    idempotency_key: str
    preview: bool
    corrects_document_id: str
    def __init__(self, tenant: _Optional[str] = ..., layout_id: _Optional[str] = ..., layout_version: _Optional[str] = ..., data_json: _Optional[str] = ..., locale: _Optional[str] = ..., channels: _Optional[_Iterable[_Union[_common_pb2.Channel, str]]] = ..., idempotency_key: _Optional[str] = ..., preview: _Optional[bool] = ..., corrects_document_id: _Optional[str] = ...) -> None: ...

class ComposeResponse(_message.Message):
    __slots__ = ("document_id", "layout_version", "outputs", "plan", "created_at", "replayed", "locale", "locale_source", "locale_reason")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_VERSION_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    LOCALE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    LOCALE_REASON_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    layout_version: str
    outputs: _containers.RepeatedCompositeFieldContainer[_common_pb2.Output]
    plan: _common_pb2.ChannelPlan
    created_at: _timestamp_pb2.Timestamp
    replayed: bool
    locale: str
    locale_source: LocaleSource
    locale_reason: str
    def __init__(self, document_id: _Optional[str] = ..., layout_version: _Optional[str] = ..., outputs: _Optional[_Iterable[_Union[_common_pb2.Output, _Mapping]]] = ..., plan: _Optional[_Union[_common_pb2.ChannelPlan, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., replayed: _Optional[bool] = ..., locale: _Optional[str] = ..., locale_source: _Optional[_Union[LocaleSource, str]] = ..., locale_reason: _Optional[str] = ...) -> None: ...

class GetDocumentRequest(_message.Message):
    __slots__ = ("tenant", "document_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    document_id: str
    def __init__(self, tenant: _Optional[str] = ..., document_id: _Optional[str] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("document_id", "tenant", "customer_id", "kind", "layout_id", "layout_version", "locale", "created_at", "retain_until", "input_sha256", "idempotency_key", "outputs", "plan", "locale_source", "locale_reason", "deliveries")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_ID_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_VERSION_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    RETAIN_UNTIL_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHA256_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    LOCALE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    LOCALE_REASON_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    tenant: str
    customer_id: str
    kind: str
    layout_id: str
    layout_version: str
    locale: str
    created_at: _timestamp_pb2.Timestamp
    retain_until: _timestamp_pb2.Timestamp
    input_sha256: str
    idempotency_key: str
    outputs: _containers.RepeatedCompositeFieldContainer[_common_pb2.Output]
    plan: _common_pb2.ChannelPlan
    locale_source: LocaleSource
    locale_reason: str
    deliveries: _containers.RepeatedCompositeFieldContainer[_deliveries_pb2.Delivery]
    def __init__(self, document_id: _Optional[str] = ..., tenant: _Optional[str] = ..., customer_id: _Optional[str] = ..., kind: _Optional[str] = ..., layout_id: _Optional[str] = ..., layout_version: _Optional[str] = ..., locale: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., retain_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., input_sha256: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., outputs: _Optional[_Iterable[_Union[_common_pb2.Output, _Mapping]]] = ..., plan: _Optional[_Union[_common_pb2.ChannelPlan, _Mapping]] = ..., locale_source: _Optional[_Union[LocaleSource, str]] = ..., locale_reason: _Optional[str] = ..., deliveries: _Optional[_Iterable[_Union[_deliveries_pb2.Delivery, _Mapping]]] = ...) -> None: ...
