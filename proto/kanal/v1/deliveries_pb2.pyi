import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from kanal.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeliveryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATE_UNSPECIFIED: _ClassVar[DeliveryState]
    DELIVERY_STATE_QUEUED: _ClassVar[DeliveryState]
    DELIVERY_STATE_SENDING: _ClassVar[DeliveryState]
    DELIVERY_STATE_SENT: _ClassVar[DeliveryState]
    DELIVERY_STATE_DELIVERED: _ClassVar[DeliveryState]
    DELIVERY_STATE_BOUNCED: _ClassVar[DeliveryState]
    DELIVERY_STATE_FAILED: _ClassVar[DeliveryState]
    DELIVERY_STATE_EXPIRED: _ClassVar[DeliveryState]
    DELIVERY_STATE_SUPPRESSED: _ClassVar[DeliveryState]
    DELIVERY_STATE_FELL_BACK: _ClassVar[DeliveryState]
DELIVERY_STATE_UNSPECIFIED: DeliveryState
DELIVERY_STATE_QUEUED: DeliveryState
DELIVERY_STATE_SENDING: DeliveryState
DELIVERY_STATE_SENT: DeliveryState
DELIVERY_STATE_DELIVERED: DeliveryState
DELIVERY_STATE_BOUNCED: DeliveryState
DELIVERY_STATE_FAILED: DeliveryState
DELIVERY_STATE_EXPIRED: DeliveryState
DELIVERY_STATE_SUPPRESSED: DeliveryState
DELIVERY_STATE_FELL_BACK: DeliveryState

class DeliveryEvent(_message.Message):
    __slots__ = ("event_id", "delivery_id", "document_id", "channel", "state", "at", "reason")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    event_id: int
    delivery_id: str
    document_id: str
    channel: _common_pb2.Channel
    state: DeliveryState
    at: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, event_id: _Optional[int] = ..., delivery_id: _Optional[str] = ..., document_id: _Optional[str] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., state: _Optional[_Union[DeliveryState, str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class DeliveryAttempt(_message.Message):
    __slots__ = ("number", "started_at", "finished_at", "outcome", "reason", "message_id")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    number: int
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    outcome: str
    reason: str
    message_id: str
    def __init__(self, number: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., outcome: _Optional[str] = ..., reason: _Optional[str] = ..., message_id: _Optional[str] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("delivery_id", "document_id", "channel", "provider", "state", "state_at", "reason", "attempts", "next_attempt_at", "message_id", "provider_message_id", "created_at", "fallback_of", "fallbacks", "dead_letter", "events", "attempt_log", "customer_id")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_OF_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_LOG_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    document_id: str
    channel: _common_pb2.Channel
    provider: str
    state: DeliveryState
    state_at: _timestamp_pb2.Timestamp
    reason: str
    attempts: int
    next_attempt_at: _timestamp_pb2.Timestamp
    message_id: str
    provider_message_id: str
    created_at: _timestamp_pb2.Timestamp
    fallback_of: str
    fallbacks: _containers.RepeatedScalarFieldContainer[_common_pb2.Channel]
    dead_letter: bool
    events: _containers.RepeatedCompositeFieldContainer[DeliveryEvent]
    attempt_log: _containers.RepeatedCompositeFieldContainer[DeliveryAttempt]
    customer_id: str
    def __init__(self, delivery_id: _Optional[str] = ..., document_id: _Optional[str] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., provider: _Optional[str] = ..., state: _Optional[_Union[DeliveryState, str]] = ..., state_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., attempts: _Optional[int] = ..., next_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message_id: _Optional[str] = ..., provider_message_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fallback_of: _Optional[str] = ..., fallbacks: _Optional[_Iterable[_Union[_common_pb2.Channel, str]]] = ..., dead_letter: _Optional[bool] = ..., events: _Optional[_Iterable[_Union[DeliveryEvent, _Mapping]]] = ..., attempt_log: _Optional[_Iterable[_Union[DeliveryAttempt, _Mapping]]] = ..., customer_id: _Optional[str] = ...) -> None: ...

class ListDeliveriesRequest(_message.Message):
    __slots__ = ("states", "document_id", "dead_letter", "page_size", "page_token")
    STATES_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[DeliveryState]
    document_id: str
    dead_letter: bool
    page_size: int
    page_token: str
    def __init__(self, states: _Optional[_Iterable[_Union[DeliveryState, str]]] = ..., document_id: _Optional[str] = ..., dead_letter: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDeliveriesResponse(_message.Message):
    __slots__ = ("deliveries", "next_page_token")
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
    next_page_token: str
    def __init__(self, deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetDeliveryRequest(_message.Message):
    __slots__ = ("delivery_id",)
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    def __init__(self, delivery_id: _Optional[str] = ...) -> None: ...

class DeliveryActionRequest(_message.Message):
    __slots__ = ("delivery_id",)
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    def __init__(self, delivery_id: _Optional[str] = ...) -> None: ...

class WatchDeliveriesRequest(_message.Message):
    __slots__ = ("document_id", "after_event_id")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    after_event_id: int
    def __init__(self, document_id: _Optional[str] = ..., after_event_id: _Optional[int] = ...) -> None: ...
