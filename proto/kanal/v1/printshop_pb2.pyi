from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PrintBatchState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRINT_BATCH_STATE_UNSPECIFIED: _ClassVar[PrintBatchState]
    PRINT_BATCH_STATE_READY: _ClassVar[PrintBatchState]
    PRINT_BATCH_STATE_FETCHED: _ClassVar[PrintBatchState]
    PRINT_BATCH_STATE_ACKNOWLEDGED: _ClassVar[PrintBatchState]

class PrintBatchPart(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRINT_BATCH_PART_UNSPECIFIED: _ClassVar[PrintBatchPart]
    PRINT_BATCH_PART_PDF: _ClassVar[PrintBatchPart]
    PRINT_BATCH_PART_MANIFEST_JSON: _ClassVar[PrintBatchPart]
    PRINT_BATCH_PART_MANIFEST_CSV: _ClassVar[PrintBatchPart]
PRINT_BATCH_STATE_UNSPECIFIED: PrintBatchState
PRINT_BATCH_STATE_READY: PrintBatchState
PRINT_BATCH_STATE_FETCHED: PrintBatchState
PRINT_BATCH_STATE_ACKNOWLEDGED: PrintBatchState
PRINT_BATCH_PART_UNSPECIFIED: PrintBatchPart
PRINT_BATCH_PART_PDF: PrintBatchPart
PRINT_BATCH_PART_MANIFEST_JSON: PrintBatchPart
PRINT_BATCH_PART_MANIFEST_CSV: PrintBatchPart

class PrintBatchFile(_message.Message):
    __slots__ = ("part", "size", "sha256")
    PART_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    part: PrintBatchPart
    size: int
    sha256: str
    def __init__(self, part: _Optional[_Union[PrintBatchPart, str]] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class PrintBatch(_message.Message):
    __slots__ = ("batch_id", "printshop", "profile", "envelope", "inserts", "state", "closed_reason", "closed_at", "pieces", "sheets", "pages", "first_sequence", "last_sequence", "files", "spoiled_piece_ids", "reprint_batch_id")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    PRINTSHOP_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    INSERTS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CLOSED_REASON_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    PIECES_FIELD_NUMBER: _ClassVar[int]
    SHEETS_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    SPOILED_PIECE_IDS_FIELD_NUMBER: _ClassVar[int]
    REPRINT_BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    printshop: str
    profile: str
    envelope: str
    inserts: _containers.RepeatedScalarFieldContainer[str]
    state: PrintBatchState
    closed_reason: str
    closed_at: str
    pieces: int
    sheets: int
    pages: int
    first_sequence: int
    last_sequence: int
    files: _containers.RepeatedCompositeFieldContainer[PrintBatchFile]
    spoiled_piece_ids: _containers.RepeatedScalarFieldContainer[str]
    reprint_batch_id: str
    def __init__(self, batch_id: _Optional[str] = ..., printshop: _Optional[str] = ..., profile: _Optional[str] = ..., envelope: _Optional[str] = ..., inserts: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[PrintBatchState, str]] = ..., closed_reason: _Optional[str] = ..., closed_at: _Optional[str] = ..., pieces: _Optional[int] = ..., sheets: _Optional[int] = ..., pages: _Optional[int] = ..., first_sequence: _Optional[int] = ..., last_sequence: _Optional[int] = ..., files: _Optional[_Iterable[_Union[PrintBatchFile, _Mapping]]] = ..., spoiled_piece_ids: _Optional[_Iterable[str]] = ..., reprint_batch_id: _Optional[str] = ...) -> None: ...

class ListPrintBatchesRequest(_message.Message):
    __slots__ = ("states",)
    STATES_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[PrintBatchState]
    def __init__(self, states: _Optional[_Iterable[_Union[PrintBatchState, str]]] = ...) -> None: ...

class ListPrintBatchesResponse(_message.Message):
    __slots__ = ("batches",)
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    batches: _containers.RepeatedCompositeFieldContainer[PrintBatch]
    def __init__(self, batches: _Optional[_Iterable[_Union[PrintBatch, _Mapping]]] = ...) -> None: ...

class FetchPrintBatchRequest(_message.Message):
    __slots__ = ("batch_id", "part", "offset", "chunk_size")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    part: PrintBatchPart
    offset: int
    chunk_size: int
    def __init__(self, batch_id: _Optional[str] = ..., part: _Optional[_Union[PrintBatchPart, str]] = ..., offset: _Optional[int] = ..., chunk_size: _Optional[int] = ...) -> None: ...

class PrintBatchChunk(_message.Message):
    __slots__ = ("part", "offset", "data", "total_size", "sha256", "last")
    PART_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    part: PrintBatchPart
    offset: int
    data: bytes
    total_size: int
    sha256: str
    last: bool
    def __init__(self, part: _Optional[_Union[PrintBatchPart, str]] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., total_size: _Optional[int] = ..., sha256: _Optional[str] = ..., last: _Optional[bool] = ...) -> None: ...

class AcknowledgePrintBatchRequest(_message.Message):
    __slots__ = ("batch_id", "spoiled_piece_ids")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    SPOILED_PIECE_IDS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    spoiled_piece_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, batch_id: _Optional[str] = ..., spoiled_piece_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ClosePrintBatchesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClosePrintBatchesResponse(_message.Message):
    __slots__ = ("batch_ids",)
    BATCH_IDS_FIELD_NUMBER: _ClassVar[int]
    batch_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, batch_ids: _Optional[_Iterable[str]] = ...) -> None: ...
