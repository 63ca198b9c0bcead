from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_PRINT: _ClassVar[Channel]
    CHANNEL_EMAIL: _ClassVar[Channel]
    CHANNEL_SMS: _ClassVar[Channel]
    CHANNEL_EINVOICE: _ClassVar[Channel]
    CHANNEL_MAILBOX: _ClassVar[Channel]
CHANNEL_UNSPECIFIED: Channel
CHANNEL_PRINT: Channel
CHANNEL_EMAIL: Channel
CHANNEL_SMS: Channel
CHANNEL_EINVOICE: Channel
CHANNEL_MAILBOX: Channel

class Output(_message.Message):
    __slots__ = ("channel", "media_type", "size", "sha256", "pages", "archive_key", "content", "facts")
    class FactsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_KEY_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    channel: Channel
    media_type: str
    size: int
    sha256: str
    pages: int
    archive_key: str
    content: bytes
    facts: _containers.ScalarMap[str, str]
    def __init__(self, channel: _Optional[_Union[Channel, str]] = ..., media_type: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ..., pages: _Optional[int] = ..., archive_key: _Optional[str] = ..., content: _Optional[bytes] = ..., facts: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ChannelPlan(_message.Message):
    __slots__ = ("channels", "fallbacks", "reason", "skipped")
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedScalarFieldContainer[Channel]
    fallbacks: _containers.RepeatedScalarFieldContainer[Channel]
    reason: str
    skipped: _containers.RepeatedCompositeFieldContainer[SkippedChannel]
    def __init__(self, channels: _Optional[_Iterable[_Union[Channel, str]]] = ..., fallbacks: _Optional[_Iterable[_Union[Channel, str]]] = ..., reason: _Optional[str] = ..., skipped: _Optional[_Iterable[_Union[SkippedChannel, _Mapping]]] = ...) -> None: ...

class SkippedChannel(_message.Message):
    __slots__ = ("channel", "reason", "field")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    channel: Channel
    reason: str
    field: str
    def __init__(self, channel: _Optional[_Union[Channel, str]] = ..., reason: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...
