import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PublishEventRequest(_message.Message):
    __slots__ = ("tenant", "customer_id", "event_type", "occurred_at", "data_json", "idempotency_key", "attributes_json")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_JSON_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    customer_id: str
    event_type: str
    occurred_at: _timestamp_pb2.Timestamp
    data_json: str
    idempotency_key: str
    attributes_json: str
    def __init__(self, tenant: _Optional[str] = ..., customer_id: _Optional[str] = ..., event_type: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., data_json: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., attributes_json: _Optional[str] = ...) -> None: ...

class PublishEventResponse(_message.Message):
    __slots__ = ("event_id", "replayed", "journeys_started", "journeys_exited")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    JOURNEYS_STARTED_FIELD_NUMBER: _ClassVar[int]
    JOURNEYS_EXITED_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    replayed: bool
    journeys_started: int
    journeys_exited: int
    def __init__(self, event_id: _Optional[str] = ..., replayed: _Optional[bool] = ..., journeys_started: _Optional[int] = ..., journeys_exited: _Optional[int] = ...) -> None: ...

class PublishEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[PublishEventRequest]
    def __init__(self, events: _Optional[_Iterable[_Union[PublishEventRequest, _Mapping]]] = ...) -> None: ...

class PublishEventsResponse(_message.Message):
    __slots__ = ("accepted", "replayed", "event_ids")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    replayed: int
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, accepted: _Optional[int] = ..., replayed: _Optional[int] = ..., event_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListCustomerActivityRequest(_message.Message):
    __slots__ = ("tenant", "customer_id", "page_size", "page_token")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    customer_id: str
    page_size: int
    page_token: str
    def __init__(self, tenant: _Optional[str] = ..., customer_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class CustomerActivity(_message.Message):
    __slots__ = ("at", "kind", "summary", "event_id", "event_type", "journey", "step", "document_id", "channel", "state", "reason", "details_json")
    AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    JOURNEY_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    kind: str
    summary: str
    event_id: str
    event_type: str
    journey: str
    step: str
    document_id: str
    channel: str
    state: str
    reason: str
    details_json: str
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[str] = ..., summary: _Optional[str] = ..., event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., journey: _Optional[str] = ..., step: _Optional[str] = ..., document_id: _Optional[str] = ..., channel: _Optional[str] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ..., details_json: _Optional[str] = ...) -> None: ...

class ListCustomerActivityResponse(_message.Message):
    __slots__ = ("activities", "next_page_token")
    ACTIVITIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    activities: _containers.RepeatedCompositeFieldContainer[CustomerActivity]
    next_page_token: str
    def __init__(self, activities: _Optional[_Iterable[_Union[CustomerActivity, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
