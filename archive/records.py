"""What the index knows of a document: `DocumentRecord`, its `OutputRecord`s and its
`SkippedRecord`s, as plain frozen values.

Separate from `archive.index` because these values travel far beyond the index (the
archiving stage builds them, the portal and the API read them, `archive.rebuild` makes them
from object metadata) and importing them must not cost SQLAlchemy: this module needs only
the standard library. Their table form is in `archive.tables`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["DocumentRecord", "OutputRecord", "SkippedRecord", "skipped_from_json",
           "skipped_to_json"]


@dataclass(frozen=True)
class OutputRecord:
    """One archived channel output of a document."""

    channel: str
    key: str
    media_type: str
    sha256: str
    size: int
    pages: int | None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SkippedRecord:
    """A channel a document's plan left out, and why."""

    channel: str
    reason: str
    field: str = ""  # the JSON path or layout setting behind it, when known


def skipped_to_json(skipped: Sequence[SkippedRecord]) -> str:
    """The stored form (index column, object metadata): a JSON list, "" when none."""
    if not skipped:
        return ""
    return json.dumps([{"channel": s.channel, "reason": s.reason, "field": s.field}
                       for s in skipped], ensure_ascii=False, separators=(",", ":"))


def skipped_from_json(text: str | None) -> tuple[SkippedRecord, ...]:
    return tuple(SkippedRecord(**entry) for entry in json.loads(text)) if text else ()


@dataclass(frozen=True)
class DocumentRecord:
    """One archived document and its outputs, as the index knows it."""

    tenant: str
    document_id: str
    customer_id: str
    kind: str
    layout_ref: str  # "layout-id@version"
    locale: str
    created_at: datetime
    input_sha256: str
    idempotency_key: str | None
    channel_plan: str  # e.g. "email>print"
    retain_until: datetime | None
    outputs: tuple[OutputRecord, ...]
    corrects_document_id: str | None = None
    # how `locale` was decided, e.g. "rule: $.currency = SEK -> SE" (None: not recorded)
    locale_decision: str | None = None
    skipped_channels: tuple[SkippedRecord, ...] = ()
    plan_reason: str | None = None  # the plan rule that chose the channels (None: not recorded)
