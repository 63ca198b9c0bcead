from kanal.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListLayoutsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListLayoutsResponse(_message.Message):
    __slots__ = ("layouts",)
    LAYOUTS_FIELD_NUMBER: _ClassVar[int]
    layouts: _containers.RepeatedCompositeFieldContainer[Layout]
    def __init__(self, layouts: _Optional[_Iterable[_Union[Layout, _Mapping]]] = ...) -> None: ...

class GetLayoutRequest(_message.Message):
    __slots__ = ("layout_id", "version", "sample_locale")
    LAYOUT_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_LOCALE_FIELD_NUMBER: _ClassVar[int]
    layout_id: str
    version: str
    sample_locale: str
    def __init__(self, layout_id: _Optional[str] = ..., version: _Optional[str] = ..., sample_locale: _Optional[str] = ...) -> None: ...

class Layout(_message.Message):
    __slots__ = ("id", "version", "versions", "kind", "title", "locales", "default_locale", "channels", "schema_json", "sample_json", "sample_locales")
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    LOCALES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_LOCALE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_JSON_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_LOCALES_FIELD_NUMBER: _ClassVar[int]
    id: str
    version: str
    versions: _containers.RepeatedScalarFieldContainer[str]
    kind: str
    title: str
    locales: _containers.RepeatedScalarFieldContainer[str]
    default_locale: str
    channels: _containers.RepeatedScalarFieldContainer[_common_pb2.Channel]
    schema_json: str
    sample_json: str
    sample_locales: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., version: _Optional[str] = ..., versions: _Optional[_Iterable[str]] = ..., kind: _Optional[str] = ..., title: _Optional[str] = ..., locales: _Optional[_Iterable[str]] = ..., default_locale: _Optional[str] = ..., channels: _Optional[_Iterable[_Union[_common_pb2.Channel, str]]] = ..., schema_json: _Optional[str] = ..., sample_json: _Optional[str] = ..., sample_locales: _Optional[_Iterable[str]] = ...) -> None: ...
