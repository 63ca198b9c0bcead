"""Request bytes -> request messages, and the limits of every request field.

**Bytes that do not parse.** grpcio deserializes a request before any Kanal code runs; when
protobuf refuses the bytes (a `string` field that is not valid UTF-8, a truncated message)
grpcio answers INTERNAL on its own. So every method's deserializer is replaced by
`safe_deserializer`, which never raises: bytes protobuf refuses become a `BadMessage`
holding an `InvalidInput` that names the field, found by parsing the bytes again with a
*lenient twin* of the message type (the same descriptors with every `string` field
declared `bytes`, which is wire-compatible) and looking for the field that is not UTF-8.
The interceptor raises it, so the caller gets INVALID_ARGUMENT with the field path. The
proto itself is unchanged: clients keep their `str` fields.

**Fields within limits.** `check_request` refuses, with the field path, any string field
longer than its limit (FIELD_CHARS, else DEFAULT_FIELD_CHARS: ids, tenants, layout ids,
versions, locales), any repeated field with more than MAX_REPEATED items, and control
characters in any of them. The JSON data fields are left to `server.compose.data` and the
`max_data_bytes` setting.

**Messages of a client stream** are named as their servicer names them (`in_stream`,
STREAM_ITEMS): the third message of SubmitBatch with too long a record key is refused at
`records[1].record_key` (the header comes first), as every other error about that record
is, not at `record.record_key`, which names no record among thousands.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from server.errors import FieldViolation, InvalidInput, quote

DEFAULT_FIELD_CHARS = 128
MAX_REPEATED = 1000
FIELD_CHARS: dict[str, int | None] = {
    "kanal.v1.ComposeRequest.data_json": None,  # server/compose/data.py, max_data_bytes
    "kanal.v1.JobRecord.data_json": None,
    "kanal.v1.ComposeRequest.idempotency_key": 200,
    "kanal.v1.JobRecord.record_key": 200,
    "kanal.v1.JobHeader.job_name": 200,
    "kanal.v1.JobHeader.idempotency_key": 200,
    "kanal.v1.ListDocumentsRequest.customer_id": 200,
    "kanal.v1.ListDocumentsRequest.page_token": 1000,
    # server/surveys: the layout data (like Compose's), a link's token, and what customers
    # and agents write (line breaks allowed; lengths checked by SurveyService)
    "kanal.v1.SendSurveyRequest.data_json": None,
    "kanal.v1.SendSurveyRequest.idempotency_key": 200,
    "kanal.v1.SendSurveyRequest.touchpoint_ref": 200,
    "kanal.v1.RecordResponseRequest.token": 1000,
    "kanal.v1.RecordResponseRequest.comment": None,
    "kanal.v1.RecordSmsReplyRequest.text": None,
    "kanal.v1.CloseFollowUpRequest.note": None,
    # server/compose/data.py's limits (depth, values, string lengths) apply to both JSONs
    "kanal.v1.PublishEventRequest.data_json": None,
    "kanal.v1.PublishEventRequest.attributes_json": None,
    "kanal.v1.PublishEventRequest.customer_id": 200,
    "kanal.v1.PublishEventRequest.idempotency_key": 200,
    "kanal.v1.ListCustomerActivityRequest.customer_id": 200,
}
_CONTROL = {chr(c) for c in range(0x20)} | {"\x7f"}
# A client stream's message type -> (its field holding one item, "" for the whole message;
# the name the servicer gives the items; how many messages come before the first item):
# server/api/jobs.py names `records[n]` (n from 0, the header not counted), and
# server/api/events.py `events[n]`.
STREAM_ITEMS: dict[str, tuple[str, str, int]] = {
    "kanal.v1.SubmitBatchRequest": ("record", "records", 1),
    "kanal.v1.PublishEventRequest": ("", "events", 0),
}


class BadMessage:
    """A request whose bytes protobuf refused; `error` says which field and why,
    `message_type` is the full name of the request type."""

    __slots__ = ("error", "message_type")

    def __init__(self, error: InvalidInput, message_type: str = ""):
        self.error = error
        self.message_type = message_type


def request_type(method: str) -> Descriptor | None:
    """The request message of `/package.Service/Method`, from the default descriptor pool."""
    try:
        name = method.lstrip("/").replace("/", ".")
        return descriptor_pool.Default().FindMethodByName(name).input_type
    except KeyError:
        return None


def safe_deserializer(method: str, deserialize: Callable[[bytes], Any] | None
                      ) -> Callable[[bytes], Any] | None:
    """`deserialize`, but bytes it refuses become a BadMessage instead of an exception."""
    descriptor = request_type(method)
    if deserialize is None or descriptor is None:
        return deserialize

    def safely(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except DecodeError:
            return BadMessage(_explain(descriptor, raw), descriptor.full_name)
        except Exception:  # noqa: BLE001 - whatever protobuf raises, never INTERNAL
            return BadMessage(InvalidInput.field("request", "is not a valid message"),
                              descriptor.full_name)
    return safely


def _explain(descriptor: Descriptor, raw: bytes) -> InvalidInput:
    try:
        twin = _lenient_class(descriptor.full_name).FromString(raw)
    except Exception:  # noqa: BLE001 - not even the lenient twin parses it
        return InvalidInput.field("request", "is not a valid protobuf message")
    path = _not_utf8(twin, descriptor, "")
    if path is None:
        return InvalidInput.field("request", "is not a valid protobuf message")
    return InvalidInput.field(path, "is not valid UTF-8 text")


def _not_utf8(message: Message, original: Descriptor, prefix: str) -> str | None:
    """The path of the first string field (of `original`) whose bytes are not UTF-8."""
    for field, value in message.ListFields():
        spec = original.fields_by_name[field.name]
        path = f"{prefix}{field.name}"
        is_map = (spec.type == FieldDescriptor.TYPE_MESSAGE
                  and spec.message_type.GetOptions().map_entry)
        if is_map:  # keys stay strings in the twin (protobuf's rule), so a bad key still
            # fails to parse there and is reported as an invalid message
            items: list[tuple[str, Any]] = [(f"{path}[{quote(key)}]", item)
                                            for key, item in value.items()]
        elif spec.is_repeated:
            items = [(f"{path}[{n}]", item) for n, item in enumerate(value)]
        else:
            items = [(path, value)]
        for where, item in items:
            value_type = spec.message_type.fields_by_name["value"].type if is_map else spec.type
            if isinstance(item, bytes) and value_type == FieldDescriptor.TYPE_STRING:
                try:
                    item.decode("utf-8")
                except UnicodeDecodeError:
                    return where
            elif isinstance(item, Message):
                kind = spec.message_type.fields_by_name["value"].message_type if is_map \
                    else spec.message_type
                found = _not_utf8(item, kind, f"{where}.")
                if found:
                    return found
    return None


@cache
def _lenient_class(full_name: str) -> type[Message]:
    """The message class `full_name` with every string field (at any depth) as bytes, in a
    private descriptor pool."""
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(file: Any) -> None:
        if file.name in added:
            return
        for dependency in file.dependencies:
            add(dependency)
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        for message in proto.message_type:
            _strings_as_bytes(message)
        pool.Add(proto)
        added.add(file.name)

    add(descriptor_pool.Default().FindMessageTypeByName(full_name).file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))


def _strings_as_bytes(message: descriptor_pb2.DescriptorProto) -> None:
    for field in message.field:
        if field.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING and not (
                message.options.map_entry and field.name == "key"):  # keys stay strings
            field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
    for nested in message.nested_type:
        _strings_as_bytes(nested)


def check_request(message: Message, prefix: str = "") -> None:
    """Raise InvalidInput naming every request field outside its limits."""
    violations = _violations(message, prefix)
    if violations:
        raise InvalidInput("request fields outside their limits", violations)


def in_stream(error: InvalidInput, message_type: str, index: int) -> InvalidInput:
    """`error` about the `index`-th message (from 0) of a client stream of `message_type`,
    its paths renamed as the stream's servicer names the item (STREAM_ITEMS):
    `record.record_key` of SubmitBatch's message 3 -> `records[2].record_key`,
    `customer_id` of PublishEventStream's message 3 -> `events[3].customer_id`, `request`
    (bytes that are no message) -> `records[2]`. A message before the first item (the job
    header) and a stream not in STREAM_ITEMS keep their paths."""
    if message_type not in STREAM_ITEMS:
        return error
    field, items, before = STREAM_ITEMS[message_type]
    n = index - before
    if n < 0:
        return error

    def rename(path: str) -> str:
        if path == "request" or path == field:
            return f"{items}[{n}]"
        if not field:
            return f"{items}[{n}].{path}"
        if path.startswith(field + "."):
            return f"{items}[{n}]{path[len(field):]}"
        return path

    message = error.message
    if message.startswith("invalid "):  # InvalidInput.field's "invalid <path>"
        message = f"invalid {rename(message.removeprefix('invalid '))}"
    return InvalidInput(message, [FieldViolation(rename(v.field), v.description)
                                  for v in error.violations])


def _violations(message: Message, prefix: str) -> list[FieldViolation]:
    found: list[FieldViolation] = []
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.is_repeated:
            if len(value) > MAX_REPEATED:
                found.append(FieldViolation(path, f"has more than {MAX_REPEATED} items"))
                continue
            items = list(enumerate(value))
        else:
            items = [(None, value)]
        for n, item in items:
            where = path if n is None else f"{path}[{n}]"
            if isinstance(item, str):
                problem = field_problem(field.full_name, item)
                if problem:
                    found.append(FieldViolation(where, problem))
            elif isinstance(item, Message):
                found += _violations(item, f"{where}.")
    return found


def field_problem(full_name: str, text: str) -> str | None:
    """What is wrong with `text` as the string field `full_name` (`kanal.v1.JobRecord.
    record_key`): too long (FIELD_CHARS, DEFAULT_FIELD_CHARS), a control character; None
    when nothing is. Clients check with it too (`kanal submit`), so both say the same."""
    limit = FIELD_CHARS.get(full_name, DEFAULT_FIELD_CHARS)
    if limit is None:
        return None
    if len(text) > limit:
        return f"is {len(text)} characters long; at most {limit} are allowed"
    if not _CONTROL.isdisjoint(text):
        char = next(c for c in text if c in _CONTROL)
        return f"holds the control character U+{ord(char):04X}"
    return None
