"""The index's tables and how a record becomes rows and rows a record again.

- `documents`: one row per document, keyed by (tenant, document_id); (tenant,
  idempotency_key) is unique so a retried request finds its first result; indexed on
  (tenant, customer_id, created_at DESC, document_id) for customer listings, newest first.
- `outputs`: one row per channel output (tenant, document_id, channel) with its S3 key, media
  type, sha256, size, page count and the renderer's facts as JSON text.

A document's `skipped_channels` (JSON text) are the channels its plan left out because they
could not carry it, with the reason: support answers "why did she get no SMS?" from the index.

Times are stored in UTC and always come back timezone-aware: SQLite has no time zones, so
`UTCDateTime` adds UTC back. The other stages' tables beside the index (jobs, delivery,
events, journeys, print queue, surveys) use `UTCDateTime` too.

Separate from `archive.index` (the queries and transactions) because the schema is shared:
the Alembic migrations (archive/migrations), the tables of other stages and the tests that
count rows read it without needing a `DocumentIndex`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

from archive.records import DocumentRecord, OutputRecord, skipped_from_json, skipped_to_json

__all__ = ["UTCDateTime", "document_record", "document_row", "documents", "metadata",
           "output_record", "output_row", "outputs", "require_aware"]


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("timestamps stored in the index must be timezone-aware")
        utc = value.astimezone(UTC)
        # SQLite keeps a naive text form; comparisons stay correct because all values are UTC.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

documents = Table(
    "documents",
    metadata,
    Column("tenant", String(100), nullable=False),
    Column("document_id", String(128), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("layout_ref", String(200), nullable=False),
    Column("locale", String(35), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("input_sha256", String(64), nullable=False),
    Column("idempotency_key", String(200), nullable=True),
    Column("channel_plan", Text(), nullable=False),
    Column("corrects_document_id", String(128), nullable=True),
    Column("retain_until", UTCDateTime(), nullable=True),
    Column("locale_decision", Text(), nullable=True),
    Column("skipped_channels", Text(), nullable=True),  # JSON, see SkippedRecord
    Column("plan_reason", Text(), nullable=True),  # e.g. "paper-preference" (0005)
    PrimaryKeyConstraint("tenant", "document_id", name="pk_documents"),
    UniqueConstraint("tenant", "idempotency_key", name="uq_documents_idempotency_key"),
)
# The indexes as of the newest migration (archive/migrations/versions); the migrations, not
# `create_all`, make them.
Index(
    "ix_documents_customer_created",
    documents.c.tenant,
    documents.c.customer_id,
    documents.c.created_at,
    documents.c.document_id,
)
Index(
    "ix_documents_customer_kind_created",
    documents.c.tenant,
    documents.c.customer_id,
    documents.c.kind,
    documents.c.created_at,
    documents.c.document_id,
)
Index("ix_documents_corrects", documents.c.tenant, documents.c.corrects_document_id)

outputs = Table(
    "outputs",
    metadata,
    Column("tenant", String(100), nullable=False),
    Column("document_id", String(128), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("key", Text(), nullable=False),
    Column("media_type", String(200), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger(), nullable=False),
    Column("pages", Integer(), nullable=True),
    Column("facts", Text(), nullable=False),
    PrimaryKeyConstraint("tenant", "document_id", "channel", name="pk_outputs"),
    ForeignKeyConstraint(
        ["tenant", "document_id"],
        ["documents.tenant", "documents.document_id"],
        name="fk_outputs_document",
        ondelete="CASCADE",
    ),
)


# --- records <-> rows -------------------------------------------------------------------


def require_aware(name: str, value: datetime | None) -> None:
    """ValueError unless `value` is None or timezone-aware."""
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be timezone-aware")


def document_row(record: DocumentRecord) -> dict[str, Any]:
    """The `documents` row of `record`, its outputs left out. ValueError for a naive time."""
    require_aware("created_at", record.created_at)
    require_aware("retain_until", record.retain_until)
    return {
        "tenant": record.tenant,
        "document_id": record.document_id,
        "customer_id": record.customer_id,
        "kind": str(record.kind),
        "layout_ref": record.layout_ref,
        "locale": record.locale,
        "created_at": record.created_at,
        "input_sha256": record.input_sha256,
        "idempotency_key": record.idempotency_key,
        "channel_plan": record.channel_plan,
        "corrects_document_id": record.corrects_document_id,
        "retain_until": record.retain_until,
        "locale_decision": record.locale_decision,
        "skipped_channels": skipped_to_json(record.skipped_channels) or None,
        "plan_reason": record.plan_reason,
    }


def output_row(tenant: str, document_id: str, output: OutputRecord) -> dict[str, Any]:
    """The `outputs` row of one output. ValueError when its facts are not JSON."""
    try:
        facts = json.dumps(output.facts, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"output {output.channel}: facts must be JSON-serialisable") from exc
    return {
        "tenant": tenant,
        "document_id": document_id,
        "channel": str(output.channel),
        "key": output.key,
        "media_type": output.media_type,
        "sha256": output.sha256,
        "size": output.size,
        "pages": output.pages,
        "facts": facts,
    }


def output_record(row: Mapping[str, Any]) -> OutputRecord:
    """An `outputs` row -> OutputRecord."""
    return OutputRecord(
        channel=row["channel"],
        key=row["key"],
        media_type=row["media_type"],
        sha256=row["sha256"],
        size=int(row["size"]),
        pages=row["pages"],
        facts=json.loads(row["facts"]),
    )


def document_record(row: Mapping[str, Any], outs: list[OutputRecord]) -> DocumentRecord:
    """A `documents` row and its outputs' records -> DocumentRecord."""
    return DocumentRecord(
        tenant=row["tenant"],
        document_id=row["document_id"],
        customer_id=row["customer_id"],
        kind=row["kind"],
        layout_ref=row["layout_ref"],
        locale=row["locale"],
        created_at=row["created_at"],
        input_sha256=row["input_sha256"],
        idempotency_key=row["idempotency_key"],
        channel_plan=row["channel_plan"],
        retain_until=row["retain_until"],
        outputs=tuple(outs),
        corrects_document_id=row["corrects_document_id"],
        locale_decision=row["locale_decision"],
        skipped_channels=skipped_from_json(row["skipped_channels"]),
        plan_reason=row["plan_reason"],
    )
