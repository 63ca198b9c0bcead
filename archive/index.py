"""The document index: turns archived documents into rows a portal can query, and rows back
into `DocumentRecord`s. SQLAlchemy 2 Core, one schema for SQLite and PostgreSQL.

Why an index beside S3: S3 can list a prefix but cannot answer "the latest 50 documents of this
customer", "the document for this idempotency key" or "what corrected invoice X" quickly. The
index is a cache of facts that are also in the objects' metadata, so it can be rebuilt from the
archive alone (`ArchiveStore.iter_objects`); the objects are the record, the index the lookup.

This module holds `DocumentIndex`: its writes and its queries. Beside it:

- `archive.records`   DocumentRecord, OutputRecord, SkippedRecord: the values it takes and gives
- `archive.tables`    the `documents` and `outputs` tables, and records <-> rows
- `archive.database`  the engine, its timeouts, transactions and how their failures read

A document and its outputs are written in one transaction: a duplicate document id or
idempotency key raises `DuplicateDocument` and leaves nothing behind. A caller may add its own
rows to that transaction (`add(record, also=...)`): that is how a later stage (the delivery
outbox) commits with the document or not at all, without the archive knowing about it.
A correction calls `claim_correction` in that transaction: one document is corrected at most
once (`AlreadyCorrected`), even by two corrections committing at the same moment.

For PostgreSQL an optional `schema` puts the tables in their own schema (via SQLAlchemy's
`schema_translate_map`), which is how tests that share one database keep apart. Failures to
reach the database become `ArchiveUnavailable`, and no call waits on it without bound (see
`archive.database`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, bindparam, exists, insert, select, text, tuple_
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine, RowMapping

from archive.database import create_index_engine, transaction
from archive.errors import AlreadyCorrected, DuplicateDocument
from archive.records import DocumentRecord, OutputRecord
from archive.tables import (
    UTCDateTime,
    document_record,
    document_row,
    documents,
    metadata,
    output_record,
    output_row,
    outputs,
    require_aware,
)

__all__ = ["DocumentIndex"]


class DocumentIndex:
    """Document and output rows in SQLite (embedded default) or PostgreSQL."""

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        """`url` e.g. "sqlite:///state/index.db" or
        "postgresql+psycopg://postgres@127.0.0.1:5432/kanal". `schema` (PostgreSQL only)
        places the tables in that schema instead of the connection's default."""
        engine = create_index_engine(url, schema)
        self.schema = schema
        self._base_engine = engine
        self._engine: Engine = (
            engine.execution_options(schema_translate_map={None: schema}) if schema else engine
        )

    @property
    def engine(self) -> Engine:
        """The engine (with the schema mapping applied), for maintenance tools and tests."""
        return self._engine

    @property
    def dialect(self) -> str:
        return self._base_engine.dialect.name

    def close(self) -> None:
        """Release pooled connections."""
        self._base_engine.dispose()

    def create_schema(self) -> None:
        """Bring the schema up to date (see `migrate`); kept under its first name."""
        self.migrate()

    def migrate(self) -> None:
        """Create the PostgreSQL schema (if given) and run the Alembic migrations
        (archive/migrations) up to the newest revision. Safe to call on every start and from
        several servers at once (PostgreSQL: an advisory lock serialises them)."""
        from archive.migrations.run import upgrade

        with self._connect() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SET LOCAL statement_timeout = 0"))  # an index on a big
                conn.execute(text("SET LOCAL lock_timeout = 0"))  # table takes its time
                conn.execute(text("SELECT pg_advisory_xact_lock(7305514)"))
            if self.schema is not None:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
                conn.execute(text(f'SET LOCAL search_path TO "{self.schema}"'))
            upgrade(conn, self.schema)

    def drop_schema(self) -> None:
        """Drop the index tables and the migration record: the index is lost (it can be
        rebuilt from the archive with `archive.rebuild.reindex`). For recovery drills."""
        with self._connect() as conn:
            metadata.drop_all(conn)
            conn.execute(text(
                f'DROP TABLE IF EXISTS {self._qualified("alembic_version_archive")}'))

    def _qualified(self, name: str) -> str:
        return f'"{self.schema}"."{name}"' if self.schema else f'"{name}"'

    # --- writing --------------------------------------------------------------------------

    def add(self, record: DocumentRecord,
            also: Callable[[Connection], None] | None = None) -> None:
        """Insert a document and its outputs in one transaction.

        `also(conn)`, when given, runs inside that transaction after the rows are inserted:
        its statements commit with the document or not at all (a transactional outbox).

        Raises DuplicateDocument (and writes nothing) if the (tenant, document_id) or the
        (tenant, idempotency_key) is already indexed.
        """
        document = document_row(record)
        output_rows = [output_row(record.tenant, record.document_id, output)
                       for output in record.outputs]
        channels = [row["channel"] for row in output_rows]
        if len(set(channels)) != len(channels):
            raise ValueError(f"document {record.document_id}: duplicate channel in outputs")
        try:
            with self._connect() as conn:
                conn.execute(insert(documents), [document])
                if output_rows:
                    conn.execute(insert(outputs), output_rows)
                if also is not None:
                    also(conn)
        except sa_exc.IntegrityError as exc:
            raise self._duplicate(record) from exc

    def add_many(self, records: Sequence[tuple[DocumentRecord,
                                               Callable[[Connection], None] | None]]) -> None:
        """`add` for many documents in ONE transaction (a bulk chunk): every document row,
        every output row (one multi-row statement each), then each document's `also(conn)`.
        All commit or none. Raises DuplicateDocument (nothing written) when any document is
        indexed already; the caller then adds them one by one to learn which."""
        if not records:
            return
        document_rows, output_rows = [], []
        for record, _ in records:
            document_rows.append(document_row(record))
            rows = [output_row(record.tenant, record.document_id, output)
                    for output in record.outputs]
            if len({row["channel"] for row in rows}) != len(rows):
                raise ValueError(f"document {record.document_id}: duplicate channel in outputs")
            output_rows.extend(rows)
        try:
            with self._connect() as conn:
                conn.execute(insert(documents), document_rows)
                if output_rows:
                    conn.execute(insert(outputs), output_rows)
                for _, also in records:
                    if also is not None:
                        also(conn)
        except sa_exc.IntegrityError as exc:
            raise DuplicateDocument(
                f"one of {len(records)} documents is already indexed") from exc

    def add_output(self, tenant: str, document_id: str, output: OutputRecord,
                   also: Callable[[Connection], None] | None = None) -> bool:
        """Index one more output of an indexed document (a channel rendered later, e.g. a
        delivery fallback), with `also(conn)` in the same transaction. -> False (and nothing
        written) when the document already has an output of that channel."""
        row = output_row(tenant, document_id, output)
        try:
            with self._connect() as conn:
                conn.execute(insert(outputs), [row])
                if also is not None:
                    also(conn)
        except sa_exc.IntegrityError:
            return False
        return True

    @staticmethod
    def claim_correction(conn: Connection, tenant: str, corrected_id: str,
                         correction_id: str) -> None:
        """Inside the transaction that inserts the correction's row (`add(also=...)`, after
        the insert): raise AlreadyCorrected, naming the oldest, when another document
        corrects `corrected_id` too, so a correction chain stays linear. The corrected row
        is locked first (PostgreSQL `FOR UPDATE`; SQLite has one writer, and the insert
        made this a write transaction), so of two corrections committing at once the
        second waits for the first and then sees it (a new statement's snapshot, READ
        COMMITTED). Rows indexed before this check existed (two corrections of one
        document) stay as they are; a third is refused."""
        first = DocumentIndex.first_correction(conn, tenant, corrected_id,
                                               excluding=correction_id)
        if first is not None:
            raise AlreadyCorrected(corrected_id, first)

    @staticmethod
    def first_correction(conn: Connection, tenant: str, document_id: str, *,
                         excluding: str | None = None) -> str | None:
        """On `conn`, in the caller's transaction: the id of the oldest document correcting
        `document_id` (other than `excluding`), None when none does. The document's row is
        locked first (PostgreSQL `FOR UPDATE`), as `claim_correction` locks it, so a caller
        acting on the document in this transaction (an operator's retry of one of its
        deliveries) and a correction committing meanwhile happen one after the other."""
        conn.execute(select(documents.c.document_id).where(
            documents.c.tenant == tenant, documents.c.document_id == document_id,
        ).with_for_update())
        query = select(documents.c.document_id).where(
            documents.c.tenant == tenant, documents.c.corrects_document_id == document_id)
        if excluding is not None:
            query = query.where(documents.c.document_id != excluding)
        return conn.execute(query.order_by(documents.c.created_at, documents.c.document_id)
                            .limit(1)).scalar()

    def bulk_load(self, rows: Iterator[tuple[Any, ...]] | Sequence[tuple[Any, ...]]) -> int:
        """Load document rows fast (no outputs), in `documents` column order up to
        `retain_until` (bulk-loaded documents have no skipped channels and no plan reason),
        with aware datetimes: PostgreSQL COPY, SQLite one executemany. For benchmarks, tests
        and data migrations; it bypasses the duplicate checks of `add`."""
        columns = [c.name for c in documents.columns
                   if c.name not in ("skipped_channels", "plan_reason")]
        count = 0
        raw = self._base_engine.raw_connection()
        try:
            cursor = raw.cursor()
            if self.dialect == "postgresql":
                table = self._qualified("documents")
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                        count += 1
            else:
                def sqlite_rows() -> Iterator[tuple[Any, ...]]:
                    nonlocal count
                    for row in rows:
                        count += 1
                        yield tuple(_sqlite_value(v) for v in row)
                marks = ", ".join("?" * len(columns))
                cursor.executemany(
                    f"INSERT INTO documents ({', '.join(columns)}) VALUES ({marks})",
                    sqlite_rows())
            raw.commit()
        finally:
            raw.close()
        return count

    def _duplicate(self, record: DocumentRecord) -> DuplicateDocument:
        if self.get(record.tenant, record.document_id) is not None:
            return DuplicateDocument(
                f"document {record.tenant}/{record.document_id} is already indexed",
                field="document_id",
            )
        if record.idempotency_key is not None:
            existing = self.find_by_idempotency_key(record.tenant, record.idempotency_key)
            if existing is not None:
                return DuplicateDocument(
                    f"idempotency key already used by document {existing.document_id}",
                    field="idempotency_key",
                    existing_document_id=existing.document_id,
                )
        return DuplicateDocument(f"document {record.tenant}/{record.document_id} conflicts")

    # --- reading --------------------------------------------------------------------------

    def get(self, tenant: str, document_id: str) -> DocumentRecord | None:
        query = select(documents).where(
            documents.c.tenant == tenant, documents.c.document_id == document_id
        )
        return self._one(query)

    def find_by_idempotency_key(self, tenant: str, key: str) -> DocumentRecord | None:
        query = select(documents).where(
            documents.c.tenant == tenant, documents.c.idempotency_key == key
        )
        return self._one(query)

    def list_for_customer(
        self, tenant: str, customer_id: str, *, limit: int = 50
    ) -> list[DocumentRecord]:
        """A customer's documents, newest first (ties broken by document id, descending)."""
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be within 1..1000")
        query = (
            select(documents)
            .where(documents.c.tenant == tenant, documents.c.customer_id == customer_id)
            .order_by(documents.c.created_at.desc(), documents.c.document_id.desc())
            .limit(limit)
        )
        with self._connect() as conn:
            rows = conn.execute(query).mappings().all()
            return self._with_outputs(conn, rows)

    def list_page(self, tenant: str, customer_id: str, **filters: Any) -> list[DocumentRecord]:
        """One page of a customer's documents, newest first, by keyset: only documents
        strictly older than `after` = (created_at, document_id) of the previous page's last
        row. Documents added meanwhile sort before `after` or after it by their own key, so
        a page sequence never repeats or skips a document. Filters: see `list_query`."""
        query = self.list_query(tenant, customer_id, **filters)
        with self._connect() as conn:
            rows = conn.execute(query).mappings().all()
            return self._with_outputs(conn, rows)

    def list_query(
        self,
        tenant: str,
        customer_id: str,
        *,
        limit: int = 50,
        after: tuple[datetime, str] | None = None,
        kinds: Sequence[str] = (),
        channels: Sequence[str] = (),
        layout_id: str | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Any:
        """The SELECT behind `list_page` (exposed so tests can EXPLAIN it)."""
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be within 1..1000")
        query = select(documents).where(
            documents.c.tenant == tenant, documents.c.customer_id == customer_id
        )
        if after is not None:
            require_aware("after", after[0])
            query = query.where(
                tuple_(documents.c.created_at, documents.c.document_id) < tuple_(
                    bindparam("after_created", after[0], type_=UTCDateTime()),
                    bindparam("after_id", after[1], type_=String()),
                )
            )
        if kinds:
            query = query.where(documents.c.kind.in_(list(kinds)))
        if layout_id:
            query = query.where(documents.c.layout_ref.startswith(f"{layout_id}@", autoescape=True))
        if created_from is not None:
            require_aware("created_from", created_from)
            query = query.where(documents.c.created_at >= created_from)
        if created_before is not None:
            require_aware("created_before", created_before)
            query = query.where(documents.c.created_at < created_before)
        if channels:
            query = query.where(
                select(outputs.c.channel)
                .where(
                    outputs.c.tenant == documents.c.tenant,
                    outputs.c.document_id == documents.c.document_id,
                    outputs.c.channel.in_(list(channels)),
                )
                .exists()
            )
        return query.order_by(
            documents.c.created_at.desc(), documents.c.document_id.desc()
        ).limit(limit)

    def corrected_by(self, tenant: str, document_ids: Sequence[str]) -> dict[str, list[str]]:
        """For each id, the documents that say they correct it (oldest first)."""
        found: dict[str, list[str]] = {document_id: [] for document_id in document_ids}
        if not document_ids:
            return found
        query = (
            select(documents.c.corrects_document_id, documents.c.document_id)
            .where(
                documents.c.tenant == tenant,
                documents.c.corrects_document_id.in_(list(document_ids)),
            )
            .order_by(documents.c.created_at, documents.c.document_id)
        )
        with self._connect() as conn:
            for corrected, document_id in conn.execute(query):
                found[corrected].append(document_id)
        return found

    def iter_all(self, batch: int = 1000, *, key_prefix: str = "") -> Iterator[DocumentRecord]:
        """Every indexed document with its outputs, ordered by (tenant, document_id): for
        comparing two indexes and for `verify`. With `key_prefix`, only documents with an
        output whose key may begin with it (SQL LIKE, which SQLite compares without regard
        to ASCII case: a caller that must be exact checks each output's key itself)."""
        last: tuple[str, str] | None = None
        while True:
            query = select(documents).order_by(documents.c.tenant, documents.c.document_id)
            if key_prefix:
                query = query.where(exists().where(
                    outputs.c.tenant == documents.c.tenant,
                    outputs.c.document_id == documents.c.document_id,
                    outputs.c.key.startswith(key_prefix, autoescape=True)))
            if last is not None:
                query = query.where(tuple_(documents.c.tenant, documents.c.document_id) > last)
            with self._connect() as conn:
                rows = conn.execute(query.limit(batch)).mappings().all()
                records = self._with_outputs(conn, rows)
            if not records:
                return
            yield from records
            last = (records[-1].tenant, records[-1].document_id)

    def known_ids(self, tenant: str, document_ids: Sequence[str]) -> set[str]:
        """Which of these document ids of `tenant` are indexed."""
        if not document_ids:
            return set()
        query = select(documents.c.document_id).where(
            documents.c.tenant == tenant, documents.c.document_id.in_(list(document_ids))
        )
        with self._connect() as conn:
            return set(conn.execute(query).scalars())

    def _one(self, query: Any) -> DocumentRecord | None:
        with self._connect() as conn:
            row = conn.execute(query).mappings().first()
            if row is None:
                return None
            return self._with_outputs(conn, [row])[0]

    @staticmethod
    def _with_outputs(conn: Connection, rows: Sequence[RowMapping]) -> list[DocumentRecord]:
        if not rows:
            return []
        ids = [(row["tenant"], row["document_id"]) for row in rows]
        query = (
            select(outputs)
            .where(tuple_(outputs.c.tenant, outputs.c.document_id).in_(ids))
            .order_by(outputs.c.channel)
        )
        by_document: dict[tuple[str, str], list[OutputRecord]] = {key: [] for key in ids}
        for out in conn.execute(query).mappings():
            by_document[(out["tenant"], out["document_id"])].append(output_record(out))
        return [
            document_record(row, by_document[(row["tenant"], row["document_id"])]) for row in rows
        ]

    # --- plumbing -------------------------------------------------------------------------

    def _connect(self) -> AbstractContextManager[Connection]:
        """A connection in a transaction: see `archive.database.transaction`."""
        return transaction(self._engine)

    def ping(self) -> None:
        """`SELECT 1`, or ArchiveUnavailable: how health checks ask whether the index answers."""
        with self._connect() as conn:
            conn.execute(text("SELECT 1"))


def _sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy's SQLite DateTime stores it (naive UTC text)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value

