"""Proto messages <-> domain values. No logic beyond the mapping."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from archive.records import OutputRecord
from kanal.v1 import common_pb2, documents_pb2
from server.compose.model import Channel, ChannelPlan
from server.errors import InvalidInput

_TO_PROTO = {
    Channel.PRINT: common_pb2.CHANNEL_PRINT,
    Channel.EMAIL: common_pb2.CHANNEL_EMAIL,
    Channel.SMS: common_pb2.CHANNEL_SMS,
    Channel.EINVOICE: common_pb2.CHANNEL_EINVOICE,
    Channel.MAILBOX: common_pb2.CHANNEL_MAILBOX,
}
_FROM_PROTO = {v: k for k, v in _TO_PROTO.items()}


def channel_to_proto(channel: Channel | str) -> int:
    return _TO_PROTO[Channel(channel)]


def channels_from_proto(values: list[int], field: str = "channels") -> tuple[Channel, ...]:
    try:
        return tuple(_FROM_PROTO[v] for v in values)
    except KeyError as exc:
        raise InvalidInput.field(field, f"unknown channel value {exc.args[0]}") from exc


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def plan_to_proto(plan: ChannelPlan) -> common_pb2.ChannelPlan:
    return common_pb2.ChannelPlan(
        channels=[channel_to_proto(c) for c in plan.channels],
        fallbacks=[channel_to_proto(c) for c in plan.fallbacks],
        reason=plan.reason,
        skipped=[common_pb2.SkippedChannel(channel=channel_to_proto(s.channel),
                                           reason=s.reason, field=s.field)
                 for s in plan.skipped],
    )


def output_to_proto(record: OutputRecord, content: bytes = b"") -> common_pb2.Output:
    return common_pb2.Output(
        channel=channel_to_proto(record.channel),
        media_type=record.media_type,
        size=record.size,
        sha256=record.sha256,
        pages=record.pages or 0,
        archive_key=record.key,
        content=content,
        facts={k: str(v) for k, v in record.facts.items()},
    )


_LOCALE_SOURCES = {
    "request": documents_pb2.LOCALE_SOURCE_REQUEST,
    "data": documents_pb2.LOCALE_SOURCE_DATA,
    "rule": documents_pb2.LOCALE_SOURCE_LAYOUT_RULE,
    "default": documents_pb2.LOCALE_SOURCE_LAYOUT_DEFAULT,
}


def locale_decision_to_proto(text: str | None) -> tuple[int, str]:
    """'rule: $.currency = SEK -> SE' (server.compose.model.LocaleDecision as the index keeps
    it) -> (LocaleSource, reason); a document indexed before it was recorded -> unspecified."""
    source, _, reason = (text or "").partition(": ")
    return _LOCALE_SOURCES.get(source, documents_pb2.LOCALE_SOURCE_UNSPECIFIED), reason
